#!/usr/bin/python3
"""Bench: what the plugin adds to `dnf upgrade --assumeno`, in wall time and peak RSS.

Kernel repo: the kernel-drivers split of the real Debian 6.1 kernel's 4,023
modules (tiny ELF stand-ins with the real names and aliases, kmod() and
modalias() provides), at two releases.  Hardware: a real server's udev
database from ../shared/realdata (DELL_IDRAC, a PowerEdge R820: its 210 PCI
functions; --all-devices for all 453 devices with a modalias), emulated with
umockdev.  The installroot holds the older release, either as the metapackage
(core + drivers) or kernel-core alone (a cloud image on bare metal: exact mode).

Systems:
  distro   a distribution-sized host: 1,000 packages installed (164 files
           each), 60,000 in the repositories (52 files each on average) besides
           the kernel; sizes from real systems, see bench/distro.py -- the target;
  minimal  nothing but the kernel: dnf has almost nothing else to do, so
           this is the plugin's cost at its most visible.

`dnf -C --assumeno upgrade` runs with the plugin on and off in back-to-back
pairs (alternating which goes first) under the same hardware and cached
metadata; tests/testbed_exec.py times the dnf process itself (not umockdev's
set-up) and reports its peak RSS.  The overhead is the median of the pairs'
differences, over the median run without the plugin.  Core-only is measured
twice: as every run on the same metadata finds it (exact mode's answers in
dnf's cachedir, next to dnf's own parsed metadata), and as the first run after
a new kernel reached its repository (dnf's parsed copy of that repository and
the plugin's answers removed before each run).
Targets (distro): at most 5% more wall time, at most 10 MB more peak RSS.

Usage: bench/upgrade.py [--rounds N] [--machine NAME] [--all-devices] [--systems S...]
                       [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / 'tests'), str(ROOT / 'dnf-plugin-kernelsplit')]

import distro  # noqa: E402
import kernelrepo  # noqa: E402
import realdata  # noqa: E402
import realkernel  # noqa: E402
from dnf_kernelsplit.kmod import ModuleIndex  # noqa: E402
from harness import DBPATH, PLUGIN_NOT_LOADED, PYTHON, TESTBED_EXEC, Installroot  # noqa: E402

TARGET_TIME, TARGET_RSS_MB = 0.05, 10.0
DISTRO = dict(installed=1000, installed_files=164, available=60000, files=52)
# What the root holds of the older release.  'complete': the host's GPU driver
# package too, so the upgrade brings its newer version (kernel subpackages are
# install-only) and the plugin only checks: every kernel update after the first.
INSTALLS = {'standard': ['kernel'], 'core-only': ['kernel-core'],
            'complete': ['kernel', 'kernel-drivers-gpu']}
# Exact mode keeps its answers in dnf's cachedir, as dnf keeps its parsed
# metadata (see dnf_kernelsplit/cache.py): every run but the first on the same
# metadata reads them.  The first run after a new kernel reached the repository
# is measured too: before each run dnf's parsed copy of the kernel repository
# goes (dnf reads its metadata again, with or without the plugin), and before
# each run with the plugin its exact-mode answers go.
FIRST_RUN = 'core-only'


class Testbed(NamedTuple):
    """What every measured root shares (testbed())."""
    kernel: realkernel.RealKernel
    releases: list              # the two kernelrepo releases of the real kernel's split
    kernel_repo: Path
    distro_rpms: Any            # distro.installed_rpms()
    distro_repo: Path
    host: Path                  # the umockdev description of the machine
    host_drivers: Path          # its drivers file, for testbed_exec.py
    emulated: int               # devices in it


def testbed(work: Path, machine: str = 'DELL_IDRAC', all_devices: bool = False) -> Testbed:
    """In WORK: the kernel repository (two releases of the real kernel's split, kmod() and
    modalias() provides), the distribution-sized system, and MACHINE's hardware (its PCI
    functions unless ALL_DEVICES).  Shared with bench/hook_time.py."""
    kernel = realkernel.fetch()
    releases = [realkernel.split_release_from_real(kernel, '6.1.0', str(n), modalias_provides=True)
                for n in (1, 2)]
    kernel_repo = kernelrepo.build_repo(releases, work / 'kernel-repo')
    distro_rpms = distro.installed_rpms(DISTRO['installed'], DISTRO['installed_files'])
    distro_repo = distro.repository(DISTRO['installed'], DISTRO['available'], DISTRO['files'],
                                    DISTRO['installed_files'])
    devices = realdata.udevadm_machines()[machine]
    if not all_devices:
        devices = [d for d in devices if d.get('SUBSYSTEM') == 'pci']
    with ModuleIndex.for_kernel(str(kernel.root), kernel.kver) as index:
        umockdev, drivers = realdata.umockdev_from_udevadm(devices, lambda m: index.info(m).known)
    host, host_drivers = work / 'host.umockdev', work / 'host.drivers'
    host.write_text(umockdev)
    host_drivers.write_text(drivers)
    return Testbed(kernel, releases, kernel_repo, distro_rpms, distro_repo, host, host_drivers,
                   umockdev.count('\nP: ') + 1)


def timed(command: list[str], env: dict[str, str], report: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB, exit status) of the dnf process itself."""
    done = subprocess.run(command, env={**env, 'KERNELSPLIT_MEASURE': str(report)},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall, rss_kib = report.read_text().split()
    return float(wall), int(rss_kib) / 1024.0, done.returncode


def forget_kernel_metadata(root: Installroot) -> None:
    """As if the kernel repository's metadata were new: dnf's parsed copy of it and the
    plugin's cached answers go, so the next run reads both again."""
    cachedir = root.root / 'var/cache/dnf'
    for parsed in cachedir.glob('kernel*.solv*'):
        parsed.unlink()
    shutil.rmtree(cachedir / 'kernelsplit', ignore_errors=True)


def measure(root: Installroot, host: Path, drivers: Path, rounds: int, work: Path,
            dnf_args: tuple[str, ...] = ('upgrade',), first_run: bool = False) -> dict:
    """FIRST_RUN: as if the kernel repository's metadata were new to every run."""
    env = {k: v for k, v in root.env.items() if k != 'PYTHONDONTWRITEBYTECODE'}

    def command(plugin: bool) -> list[str]:
        return ['umockdev-run', '-d', str(host), '--', PYTHON, str(TESTBED_EXEC), str(drivers),
                '--'] + root.dnf_command('-C', '--assumeno', *dnf_args, plugin=plugin)

    shown = subprocess.run(command(True), env=env, capture_output=True, text=True)
    if PLUGIN_NOT_LOADED in shown.stdout + shown.stderr:   # else "on" would be dnf alone
        raise SystemExit('the plugin did not load: %s' % shown.stderr)
    lines = [l for l in shown.stdout.splitlines() if l.startswith('kernelsplit:')]
    samples: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for round_ in range(rounds):
        # Each round is a pair run back to back, in alternating order: the
        # machine's speed drifts (a shared VM), a pair's two runs share it.
        for plugin in ((False, True) if round_ % 2 == 0 else (True, False)):
            if first_run:
                forget_kernel_metadata(root)
            wall, rss, status = timed(command(plugin), env, work / 'measure')
            if status not in (0, 1):            # --assumeno exits 1 after the summary
                raise SystemExit('dnf failed (%d): %s' % (status, shown.stderr))
            samples[plugin].append((wall, rss))
    off = statistics.median(w for w, _ in samples[False])
    on = statistics.median(w for w, _ in samples[True])
    deltas = sorted(a - b for (a, _), (b, _) in zip(samples[True], samples[False]))
    overhead = statistics.median(deltas)
    rss_off = statistics.median(r for _, r in samples[False])
    rss_on = statistics.median(r for _, r in samples[True])
    return {'plugin_lines': lines, 'wall_off_s': round(off, 3), 'wall_on_s': round(on, 3),
            'overhead_ms': round(overhead * 1000, 1), 'overhead_pct': round(overhead / off * 100, 1),
            'overhead_quartiles_ms': [round(q * 1000, 1) for q in
                                      statistics.quantiles(deltas, n=4)[::2]],
            'rss_off_mb': round(rss_off, 1), 'rss_on_mb': round(rss_on, 1),
            'rss_delta_mb': round(rss_on - rss_off, 1)}


def background_child(host: Path, drivers: Path, rounds: int, work: Path, root: Path) -> dict:
    """Wall time and peak RSS of the child background.BackgroundHost starts for ROOT."""
    from dnf_kernelsplit import background
    # dnf's sys.path as kernelsplit.py leaves it when loaded from the checkout
    path = [str(ROOT / 'dnf-plugin-kernelsplit')] + [p for p in sys.path if p]
    # The child takes the pid of the process that started it (it stops when that
    # one is gone): sh hands over its own parent's, then becomes the child.
    command = ['umockdev-run', '-d', str(host), '--', PYTHON, str(TESTBED_EXEC), str(drivers),
               '--', 'sh', '-c', 'exec "$0" -S -c "$1" "$PPID" "*" "$2"',
               PYTHON, background._CHILD_CODE % (path,), str(root)]
    samples = [timed(command, dict(os.environ), work / 'measure')[:2] for _ in range(rounds)]
    return {'wall_ms': round(statistics.median(w for w, _ in samples) * 1000, 1),
            'rss_mb': round(statistics.median(r for _, r in samples), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=15)
    parser.add_argument('--machine', default='DELL_IDRAC')
    parser.add_argument('--all-devices', action='store_true',
                        help='emulate every device of the capture with a modalias, not only '
                             'its PCI functions')
    parser.add_argument('--systems', nargs='+', choices=('distro', 'minimal'),
                        default=('distro', 'minimal'))
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error('--rounds: at least 2 (the pairs\' quartiles need two)')
    if not realdata.available():
        print('bench/upgrade: no ../shared/realdata; nothing to measure')
        return 0

    work = Path(tempfile.mkdtemp(prefix='kernelsplit-bench-', dir='/var/tmp'))
    bed = testbed(work, args.machine, args.all_devices)
    kernel, releases, kernel_repo = bed.kernel, bed.releases, bed.kernel_repo
    distro_rpms, distro_repo = bed.distro_rpms, bed.distro_repo
    host, host_drivers, emulated = bed.host, bed.host_drivers, bed.emulated
    old = releases[0].uname_r
    modules = sum(len(p.modules) for p in releases[0].packages)

    # As the RPM ships it: byte-compiled, so no run pays for compiling the plugin.
    subprocess.run([PYTHON, '-m', 'compileall', '-q', str(ROOT / 'dnf-plugin-kernelsplit')],
                   check=True)
    figures = {'kernel': kernel.package, 'modules': modules, 'machine': args.machine,
               'devices': emulated, 'rounds': args.rounds, 'distro': DISTRO, 'runs': []}
    print('kernel repo    %d modules (names and aliases of %s), 2 releases'
          % (modules, kernel.package))
    print('hardware       %s: %d devices with a modalias' % (args.machine, emulated))
    print('distro system  %(installed)d packages installed (%(installed_files)d files each), '
          '%(available)d available (%(files)d files each on average)' % DISTRO)
    failed = False
    scenarios = [(install, packages, False) for install, packages in INSTALLS.items()]
    scenarios.insert(list(INSTALLS).index(FIRST_RUN) + 1, (FIRST_RUN, INSTALLS[FIRST_RUN], True))
    for system in args.systems:
        for install, packages, first_run in scenarios:
            repos = {'kernel': kernel_repo}
            if system == 'distro':
                repos['distro'] = distro_repo
            root = Installroot(work / ('%s-%s%s' % (system, install, '-first' * first_run)),
                               repos)
            if system == 'distro':
                distro.install_into(root.root, distro_rpms, DBPATH)
            root.install(*('%s-%s' % (name, old) for name in packages))
            root.dnf('makecache', plugin=False, check=True)
            result = measure(root, host, host_drivers, args.rounds, work, first_run=first_run)
            result.update(system=system, install=install, first_run=first_run)
            figures['runs'].append(result)
            target = system == 'distro'
            ok = result['overhead_pct'] <= TARGET_TIME * 100 and \
                result['rss_delta_mb'] <= TARGET_RSS_MB
            failed |= target and not ok
            print('\n%s system, %s install (%s-%s)%s, median of %d back-to-back pairs%s:'
                  % (system, install, ' + '.join(packages), old,
                     ', first run on new kernel metadata' if first_run else '', args.rounds,
                     '' if target else ' (worst case, not the target)'))
            for line in result['plugin_lines']:
                print('  ' + (line if len(line) < 140 else line[:137] + '...'))
            print('  wall  plugin off %.3f s, on %.3f s: %+.1f ms, %+.1f%%%s; pairs\' '
                  'quartiles %+.1f..%+.1f ms'
                  % (result['wall_off_s'], result['wall_on_s'], result['overhead_ms'],
                     result['overhead_pct'], ' (target <= 5%)' if target else '',
                     *result['overhead_quartiles_ms']))
            print('  rss   plugin off %.1f MB, on %.1f MB: %+.1f MB%s'
                  % (result['rss_off_mb'], result['rss_on_mb'], result['rss_delta_mb'],
                     ' (target <= 10 MB)' if target else ''))
    # Every other transaction: the hook only looks for a kernel among its packages.
    # (a row of the distro system, whose standard root it reuses)
    if 'distro' in args.systems:
        root = Installroot(work / 'distro-standard',
                           {'kernel': kernel_repo, 'distro': distro_repo})
        result = measure(root, host, host_drivers, args.rounds, work,
                         ('reinstall', 'distro-pkg-00001'))
        result.update(system='distro', install='no kernel in the transaction')
        figures['runs'].append(result)
        print('\ndistro system, a transaction without a kernel (dnf reinstall distro-pkg-00001):')
        print('  wall  plugin off %.3f s, on %.3f s: %+.1f ms, %+.1f%%'
              % (result['wall_off_s'], result['wall_on_s'], result['overhead_ms'],
                 result['overhead_pct']))
        print('  rss   plugin off %.1f MB, on %.1f MB: %+.1f MB'
              % (result['rss_off_mb'], result['rss_on_mb'], result['rss_delta_mb']))
    # The child that lists the devices alongside dnf: a process of its own.
    # ROOT, the last measured, has the older kernel installed: its index resolves the needs.
    child = background_child(host, host_drivers, args.rounds, work, root.root)
    figures['background_discovery'] = child
    print('\ndevices and their needs in the background (a process of its own, alongside '
          'dnf): %.1f ms, peak RSS %.1f MB' % (child['wall_ms'], child['rss_mb']))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + '\n')
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
