#!/usr/bin/python3
"""Bench: the time dnf spends inside the plugin's hooks, this checkout against another.

bench/upgrade.py measures the wall time the plugin adds to a whole dnf run;
on a machine whose speed drifts, the pairs' differences scatter more than
the plugin costs.  This measures what the plugin itself spends, inside the
dnf process: dnf's plugin loading (Plugins._load) and every hook call
(Plugins._caller: config, sack, resolved, including the re-resolve the
plugin asks for), summed per run -- for this checkout and for OLD (another
checkout, e.g. a `git worktree add` of an earlier commit), on the same roots
as bench/upgrade.py's distro system, in rotating order, plugin off as well.
Each run's wall time (testbed_exec.py) is kept too: the medians of each
round's differences to the run without the plugin show what the plugin costs
outside its hooks (the background child's share of the machine, say).

"core-only-first" is core-only as the first run after a new kernel reached
its repository finds it: dnf's parsed copy of the kernel repository and the
plugin's cached answers are removed before each run, as bench/upgrade.py's
first-run row does.

Usage: bench/hook_time.py OLD [--rounds N]
                          [--installs standard core-only core-only-first no-kernel]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / 'tests'), str(ROOT / 'dnf-plugin-kernelsplit')]

import distro  # noqa: E402
import realdata  # noqa: E402
import upgrade  # noqa: E402
from hooktimes import hook_ms, shim as hook_shim  # noqa: E402
from harness import DBPATH, PLUGIN_DIR, PYTHON, TESTBED_EXEC, Installroot  # noqa: E402

ARGS = {'no-kernel': ('reinstall', 'distro-pkg-00001')}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('old', type=Path, help='the other checkout')
    parser.add_argument('--rounds', type=int, default=11)
    parser.add_argument('--installs', nargs='+', default=['standard', 'core-only', 'no-kernel'],
                        choices=[*upgrade.INSTALLS, 'core-only-first', 'no-kernel'])
    args = parser.parse_args()
    if not realdata.available():
        print('bench/hook_time: no ../shared/realdata; nothing to measure')
        return 0
    old_plugin = args.old.resolve() / 'dnf-plugin-kernelsplit'
    work = Path(tempfile.mkdtemp(prefix='kernelsplit-hooks-', dir='/var/tmp'))
    try:
        bed = upgrade.testbed(work)
        host, host_drivers = bed.host, bed.host_drivers
        shim = hook_shim(work / 'shim')
        wall = work / 'wall'
        for plugin in (PLUGIN_DIR, old_plugin):
            subprocess.run([PYTHON, '-m', 'compileall', '-q', str(plugin)], check=True)
        print('%d rounds; ms inside dnf\'s plugin machinery per run (median)' % args.rounds)
        for install in args.installs:
            root = Installroot(work / install,
                               {'kernel': bed.kernel_repo, 'distro': bed.distro_repo})
            first_run = install == 'core-only-first'
            distro.install_into(root.root, bed.distro_rpms, DBPATH)
            root.install(*('%s-%s' % (name, bed.releases[0].uname_r)
                           for name in upgrade.INSTALLS.get(
                               'core-only' if first_run else install, ['kernel'])))
            root.dnf('makecache', plugin=False, check=True)
            env = {k: v for k, v in root.env.items() if k != 'PYTHONDONTWRITEBYTECODE'}
            # An old checkout may need PYTHONPATH to find its package (this one does not).
            paths = {'off': str(shim), 'new': str(shim), 'old': '%s:%s' % (old_plugin, shim)}
            times = {which: work / ('%s-%s' % (install, which)) for which in paths}
            walls: dict[str, list[float]] = {which: [] for which in paths}

            def command(which: str) -> list[str]:
                dnf = root.dnf_command('-C', '--assumeno', *ARGS.get(install, ('upgrade',)),
                                       plugin=which != 'off')
                if which == 'old':
                    dnf = [a.replace(str(PLUGIN_DIR), str(old_plugin)) for a in dnf]
                return ['umockdev-run', '-d', str(host), '--', PYTHON, str(TESTBED_EXEC),
                        str(host_drivers), '--'] + dnf
            orders = [('off', 'old', 'new'), ('new', 'off', 'old'), ('old', 'new', 'off')]
            for round_ in range(args.rounds + 1):       # the first round warms the caches
                for which in orders[round_ % 3]:
                    if round_ == 0:
                        times[which].unlink(missing_ok=True)
                    if first_run:
                        upgrade.forget_kernel_metadata(root)
                    run_env = {**env, 'PYTHONPATH': paths[which],
                               'KERNELSPLIT_HOOK_TIMES': str(times[which])}
                    done = subprocess.run(command(which), capture_output=True, text=True,
                                          env={**run_env, 'KERNELSPLIT_MEASURE': str(wall)})
                    if done.returncode not in (0, 1) or 'Failed loading plugin' in done.stderr:
                        raise SystemExit('dnf failed (%s, %s): %s'
                                         % (install, which, done.stderr[-500:]))
                    if round_ == 0:
                        times[which].unlink(missing_ok=True)
                    else:
                        walls[which].append(float(wall.read_text().split()[0]))
            medians = {w: statistics.median(hook_ms(times[w].read_text().splitlines()))
                       for w in times}
            print('%-10s off %.1f ms, %s %.1f ms, this checkout %.1f ms: %+.1f ms'
                  % (install, medians['off'], args.old, medians['old'], medians['new'],
                     medians['new'] - medians['old']))
            off = walls['off']
            print('%-10s wall: off %.3f s; over off, median of the rounds: old %+.1f ms, '
                  'this checkout %+.1f ms' % (
                      '', statistics.median(off),
                      1000 * statistics.median(o - f for o, f in zip(walls['old'], off)),
                      1000 * statistics.median(n - f for n, f in zip(walls['new'], off))),
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
