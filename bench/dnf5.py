#!/usr/bin/python3
"""Bench: what the dnf5 guard adds to `dnf5 upgrade --assumeno`, in wall time.

The same machine and repositories as bench/upgrade.py -- the 210 PCI functions
of a real Dell PowerEdge R820 under umockdev, the kernel-drivers split of the
real Debian 6.1 kernel's 4,023 modules at two releases (kmod() and modalias()
provides), and the distribution-sized system of bench/distro.py (1,000
packages installed, 60,000 available) -- driven by the real dnf5 5.4.6 in the
Debian sid chroot of tests/sidchroot.py.

`dnf5 -C --assumeno upgrade` runs with kernelsplit.actions in dnf5's
actions.d and without it, in back-to-back pairs (alternating which goes
first), every run in one umockdev session, as on one boot of a machine.  The overhead is
the median of the pairs' differences, over the median run without the guard.
Installed: "standard" is `kernel` (core + drivers: the guard stops the
upgrade, naming kernel-drivers-gpu for the server's Matrox VGA), "core-only"
is kernel-core alone (exact mode: the guard stops it naming three packages),
"complete" has kernel-drivers-gpu too (the upgrade brings every package the
hardware needs: the guard checks and lets it through).  Each of these runs
twice: with the device listing kept from the run before (the machine's
/sys/kernel/uevent_seqnum unchanged, as on every run but the first after a
boot or a hardware change), and as the first run, the kept listing removed
before every run.  "no kernel" is `dnf5 reinstall distro-pkg-00001`: the
shell gate alone.
Targets: at most 5% with a kernel, at most 2% without.

The dnf_kernelsplit package runs from a copy byte-compiled by the chroot's
Python, as an RPM built for it would be.

Usage: bench/dnf5.py [--rounds N] [--json FILE]
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
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / 'tests'), str(ROOT / 'dnf-plugin-kernelsplit')]

DISTRO = dict(installed=1000, installed_files=164, available=60000, files=52)
INSTALLS = {'standard': ['kernel'], 'core-only': ['kernel-core'],
            'complete': ['kernel', 'kernel-drivers-gpu']}
ACTIONS = '/etc/dnf/libdnf5-plugins/actions.d/kernelsplit.actions'
KEPT_LISTING = '/run/kernelsplit/devices'      # hardware.listing_directory(), as root
UEVENT_SEQNUM = 5418         # the R820's count after booting, near enough: any will do
TARGET_KERNEL, TARGET_NO_KERNEL = 5.0, 2.0


# --- inside the chroot ----------------------------------------------------------------

def _timed(command: list[str], env: dict) -> tuple[float, int]:
    """The wall seconds and exit status of COMMAND."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    _, status, _ = os.wait4(child.pid, 0)
    return time.perf_counter() - start, os.waitstatus_to_exitcode(status)


def inside(plan_file: str) -> int:
    """Run the rounds of every scenario in PLAN_FILE, in the umockdev session this runs in;
    write the samples next to it."""
    plan = json.loads(Path(plan_file).read_text())
    work = Path(plan['work'])
    env = {k: v for k, v in os.environ.items()}
    actions, off = Path(ACTIONS), Path(ACTIONS + '.off')
    samples = {}
    for scenario in plan['scenarios']:
        command = ['dnf5', *scenario['options'], '-C', '--assumeno', *scenario['args']]
        if scenario['first_listing']:
            Path(KEPT_LISTING).unlink(missing_ok=True)
        shown = subprocess.run(command, env=env, capture_output=True, text=True)
        pairs = []
        # without a kernel the difference is a few milliseconds in half a second: more pairs
        rounds = plan['rounds'] * (3 if scenario['name'] == 'no kernel' else 1)
        for round_ in range(rounds):
            result = {}
            for guard in ((False, True) if round_ % 2 == 0 else (True, False)):
                if guard and off.exists():
                    off.rename(actions)
                elif not guard and actions.exists():
                    actions.rename(off)
                if scenario['first_listing']:
                    Path(KEPT_LISTING).unlink(missing_ok=True)
                wall, status = _timed(command, env)
                if status not in (0, 1):
                    raise SystemExit('dnf5 failed (%d): %s' % (status, shown.stderr))
                result[guard] = wall
            pairs.append((result[False], result[True]))
        if off.exists():
            off.rename(actions)
        samples[scenario['name']] = {'pairs': pairs, 'stderr': shown.stderr[-3000:]}
    # what the pieces of the guard cost, in this chroot
    pieces = {}
    empty = ('{ "op": "reply", "requested_op": "get", "domain": "trans_packages", "return": '
             '{ "trans_packages": [ ] }, "status": "OK" }\n')
    walls = []
    for _ in range(plan['rounds'] * 3):
        start = time.perf_counter()
        subprocess.run([plan['gate']], input=empty * 2, text=True, stdout=subprocess.DEVNULL,
                       check=True)
        walls.append(time.perf_counter() - start)
    pieces['the gate alone, no kernel (sh, two requests)'] = round(statistics.median(walls) * 1000, 1)
    for name, code in (('python3 -c pass', 'pass'),
                       ('python3: import libdnf5', 'import libdnf5')):
        walls = []
        for _ in range(plan['rounds']):
            start = time.perf_counter()
            subprocess.run(['python3', '-c', code], check=True)
            walls.append(time.perf_counter() - start)
        pieces[name] = round(statistics.median(walls) * 1000, 1)
    # the device listing in-process: asking libudev, and reading the listing kept
    listing = ('import sys, time; sys.path.insert(0, %r); '
               'from dnf_kernelsplit import hardware; start = time.perf_counter(); '
               'found = hardware.discover(); print((time.perf_counter() - start) * 1000); '
               'assert found.devices, found' % str(Path(plan['gate']).parent))
    for name, first in (('the device listing, asking libudev', True),
                        ('the device listing, the one kept', False)):
        walls = []
        for _ in range(plan['rounds']):
            if first:
                Path(KEPT_LISTING).unlink(missing_ok=True)
            walls.append(float(subprocess.run(['python3', '-c', listing], check=True,
                                              capture_output=True, text=True).stdout))
        pieces[name] = round(statistics.median(walls), 1)
    (work / 'samples.json').write_text(json.dumps({'scenarios': samples, 'pieces': pieces}))
    return 0


# --- on the host ------------------------------------------------------------------------

def summarize(pairs: list[list[float]]) -> dict:
    off = statistics.median(p[0] for p in pairs)
    on = statistics.median(p[1] for p in pairs)
    deltas = sorted(b - a for a, b in pairs)
    overhead = statistics.median(deltas)
    return {'wall_off_s': round(off, 3), 'wall_on_s': round(on, 3),
            'overhead_ms': round(overhead * 1000, 1),
            'overhead_pct': round(overhead / off * 100, 1),
            'overhead_quartiles_ms': [round(q * 1000, 1) for q in
                                      statistics.quantiles(deltas, n=4)[::2]]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=15)
    parser.add_argument('--machine', default='DELL_IDRAC')
    parser.add_argument('--json', help='also write the figures to this file')
    parser.add_argument('--keep', action='store_true', help='keep the roots (to profile)')
    parser.add_argument('--inside', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error('--rounds: at least 2 (the pairs\' quartiles need two)')
    if args.inside:
        return inside(args.inside)

    import distro
    import kernelrepo
    import realdata
    import realkernel
    import sidchroot
    from dnf_kernelsplit.kmod import ModuleIndex
    from harness import DBPATH, TESTBED_EXEC
    if not realdata.available():
        print('bench/dnf5: no ../shared/realdata; nothing to measure')
        return 0
    try:
        chroot = sidchroot.ensure_built()
    except sidchroot.Unavailable as exc:
        print('bench/dnf5: no sid chroot with dnf5 (%s); nothing to measure' % exc)
        return 0

    kernel = realkernel.fetch()
    releases = [realkernel.split_release_from_real(kernel, '6.1.0', str(n), modalias_provides=True)
                for n in (1, 2)]
    old = releases[0].uname_r
    work = Path(tempfile.mkdtemp(prefix='kernelsplit-bench-dnf5-', dir='/var/tmp'))
    os.chmod(work, 0o755)
    kernel_repo = kernelrepo.build_repo(releases, work / 'kernel-repo')
    distro_rpms = distro.installed_rpms(DISTRO['installed'], DISTRO['installed_files'])
    distro_repo = distro.repository(DISTRO['installed'], DISTRO['available'], DISTRO['files'],
                                    DISTRO['installed_files'])
    devices = [d for d in realdata.udevadm_machines()[args.machine]
               if d.get('SUBSYSTEM') == 'pci']
    with ModuleIndex.for_kernel(str(kernel.root), kernel.kver) as index:
        umockdev, drivers = realdata.umockdev_from_udevadm(devices, lambda m: index.info(m).known)
    (work / 'host.umockdev').write_text(umockdev)
    (work / 'host.drivers').write_text(drivers)
    # the package, byte-compiled by the chroot's Python (the checkout is read-only there)
    package = work / 'dnf-plugin-kernelsplit'
    shutil.copytree(ROOT / 'dnf-plugin-kernelsplit', package,
                    ignore=shutil.ignore_patterns('__pycache__'))
    sid = sidchroot.SidRoot(chroot, work / 'sid')
    mounts = {'rw': [work], 'ro': [distro_repo.parent]}
    sid.run(['python3', '-m', 'compileall', '-q', str(package)], check=True, **mounts)
    actions = sid.upper / ACTIONS.lstrip('/')
    actions.parent.mkdir(parents=True, exist_ok=True)
    actions.write_text((ROOT / 'etc/dnf/libdnf5-plugins/actions.d/kernelsplit.actions')
                       .read_text().replace('/usr/libexec/kernelsplit/dnf5-guard',
                                            str(package / 'kernelsplit-dnf5-guard')))
    conf_dir = sid.upper / 'etc/dnf/plugins'
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / 'kernelsplit.conf').write_text('[main]\nhardware_in_installroot = yes\n')

    scenarios = []
    names = [(name, packages, ['upgrade']) for name, packages in INSTALLS.items()]
    names.append(('no kernel', INSTALLS['standard'], ['reinstall', 'distro-pkg-00001']))
    for name, packages, dnf_args in names:
        base = work / name.replace(' ', '-')
        (base / 'repos.d').mkdir(parents=True)
        for repo, path in (('kernel', kernel_repo), ('distro', distro_repo)):
            (base / 'repos.d' / ('%s.repo' % repo)).write_text(
                '[%s]\nname=%s\nbaseurl=file://%s\ngpgcheck=0\nmetadata_expire=0\n'
                % (repo, repo, path))
        (base / 'dnf5.conf').write_text('[main]\ngpgcheck=0\ninstall_weak_deps=0\nkeepcache=0\n')
        root = base / 'root'
        root.mkdir()
        distro.install_into(root, distro_rpms, DBPATH)
        options = ['--installroot=%s' % root, '-c', str(base / 'dnf5.conf'),
                   '--setopt=reposdir=%s' % (base / 'repos.d')]
        sid.run(['dnf5', *options, '-y', '--disableplugin=actions', 'install',
                 *('%s-%s' % (p, old) for p in packages)], check=True, **mounts)
        sid.run(['depmod', '-b', str(root), old], check=True, **mounts)
        sid.run(['dnf5', *options, 'makecache'], check=True, **mounts)
        scenarios.append({'name': name, 'options': options, 'args': dnf_args,
                          'first_listing': False})
        if name != 'no kernel':
            scenarios.append({'name': name + ', first run', 'options': options,
                              'args': dnf_args, 'first_listing': True})
    plan = {'work': str(work), 'rounds': args.rounds, 'scenarios': scenarios,
            'umockdev': str(work / 'host.umockdev'), 'drivers': str(work / 'host.drivers'),
            'testbed_exec': str(TESTBED_EXEC), 'gate': str(package / 'kernelsplit-dnf5-guard')}
    (work / 'plan.json').write_text(json.dumps(plan))
    # One umockdev session for every run: one boot of the machine, its uevent count still.
    sid.run(['umockdev-run', '-d', plan['umockdev'], '--', 'python3', plan['testbed_exec'],
             '--uevent-seqnum=%d' % UEVENT_SEQNUM, plan['drivers'], '--',
             'python3', str(Path(__file__).resolve()), '--inside', str(work / 'plan.json')],
            check=True, timeout=7200, **mounts)
    samples = json.loads((work / 'samples.json').read_text())

    figures = {'kernel': kernel.package, 'machine': args.machine, 'devices': len(devices),
               'rounds': args.rounds, 'distro': DISTRO, 'dnf5': sidchroot.stamp(chroot)['versions'],
               'runs': [], 'pieces_ms': samples['pieces']}
    print('dnf5 %s in the sid chroot; %s: %d PCI functions; kernel: %s, 2 releases; distro '
          'system %d installed, %d available' % (figures['dnf5'].get('dnf5'), args.machine,
                                                  len(devices), kernel.package,
                                                  DISTRO['installed'], DISTRO['available']))
    failed = False
    for scenario in scenarios:
        sample = samples['scenarios'][scenario['name']]
        result = summarize(sample['pairs'])
        stops = [l for l in sample['stderr'].splitlines() if 'kernelsplit' in l][:2]
        result.update(system='distro', install=scenario['name'], guard_said=stops)
        figures['runs'].append(result)
        if scenario['first_listing']:
            kept = samples['scenarios'][scenario['name'].replace(', first run', '')]['stderr']
            if [l for l in kept.splitlines() if 'kernelsplit' in l] != \
                    [l for l in sample['stderr'].splitlines() if 'kernelsplit' in l]:
                print('%s: the guard said something else with the listing kept:\n%s'
                      % (scenario['name'], kept))
                failed = True
        target = TARGET_NO_KERNEL if scenario['name'] == 'no kernel' else TARGET_KERNEL
        failed |= result['overhead_pct'] > target
        print('\n%s: dnf5 %s, median of %d back-to-back pairs:'
              % (scenario['name'], ' '.join(scenario['args']), len(sample['pairs'])))
        for line in stops:
            print('  ' + (line if len(line) < 140 else line[:137] + '...'))
        print('  wall  guard off %.3f s, on %.3f s: %+.1f ms, %+.1f%% (target <= %g%%); pairs\' '
              'quartiles %+.1f..%+.1f ms' % (result['wall_off_s'], result['wall_on_s'],
                                             result['overhead_ms'], result['overhead_pct'],
                                             target, *result['overhead_quartiles_ms']))
    print('\npieces, in the chroot: %s' % ', '.join('%s %.1f ms' % kv
                                                   for kv in samples['pieces'].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + '\n')
    if args.keep:
        print('kept: %s' % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
