#!/usr/bin/python3
"""Bench: what the plugin adds to `dnf upgrade --assumeno`, in wall time and peak RSS.

Repo: the kernel-drivers split of the real Debian 6.1 kernel's ~4,000 modules
(tiny ELF stand-ins with the real names and aliases, kmod() and modalias()
provides), at two releases.  Host: a real server's udev database from
../shared/realdata (DELL_IDRAC: 210 PCI functions, 453 devices with a
modalias), emulated with umockdev.  The installroot holds the older release;
`dnf -C --assumeno upgrade` runs with the plugin on and off, alternately,
under the same emulated hardware and the same cached metadata.

Targets: at most 5% more wall time and at most 10 MB more peak RSS.

Usage: bench/upgrade.py [--rounds N] [--machine NAME] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT / 'tests'), str(ROOT / 'dnf-plugin-kernelsplit')]

import kernelrepo  # noqa: E402
import realdata  # noqa: E402
import realkernel  # noqa: E402
from dnf_kernelsplit.kmod import ModuleIndex  # noqa: E402
from harness import PYTHON, TESTBED_EXEC, Installroot  # noqa: E402

TARGET_TIME, TARGET_RSS_MB = 0.05, 10.0
SCENARIOS = {
    # what is installed of the older release before the upgrade
    'standard': ('kernel',),                 # the metapackage: core + drivers
    'core-only': ('kernel-core',),           # a cloud image on bare metal: exact mode
}


def timed(command: list[str], env: dict[str, str], report: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB, exit status) of the dnf process itself.

    tests/testbed_exec.py times dnf inside the emulated machine, so neither
    umockdev-run's set-up of the testbed nor its own RSS is counted.
    """
    done = subprocess.run(command, env={**env, 'KERNELSPLIT_MEASURE': str(report)},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall, rss_kib = report.read_text().split()
    return float(wall), int(rss_kib) / 1024.0, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=9)
    parser.add_argument('--machine', default='DELL_IDRAC')
    parser.add_argument('--all-devices', action='store_true',
                        help='emulate every device of the capture with a modalias, not only '
                             'its PCI functions')
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args()
    if not realdata.available():
        print('bench/upgrade: no ../shared/realdata; nothing to measure')
        return 0

    kernel = realkernel.fetch()
    releases = [realkernel.split_release_from_real(kernel, '6.1.0', str(n), modalias_provides=True)
                for n in (1, 2)]
    old = releases[0].uname_r
    modules = sum(len(p.modules) for p in releases[0].packages)
    work = Path(tempfile.mkdtemp(prefix='kernelsplit-bench-', dir='/var/tmp'))
    repo = kernelrepo.build_repo(releases, work / 'repo')

    devices = realdata.udevadm_machines()[args.machine]
    if not args.all_devices:
        devices = [d for d in devices if d.get('SUBSYSTEM') == 'pci']
    with ModuleIndex.for_kernel(str(kernel.root), kernel.kver) as index:
        umockdev, drivers = realdata.umockdev_from_udevadm(devices,
                                                           lambda m: index.info(m).known)
    (work / 'host.umockdev').write_text(umockdev)
    (work / 'host.drivers').write_text(drivers)
    pci = sum(1 for d in devices if d.get('SUBSYSTEM') == 'pci')
    with_modalias = umockdev.count('\nP: ') + 1

    figures = {'kernel': kernel.package, 'modules': modules, 'machine': args.machine,
               'pci_devices': pci, 'devices_with_modalias': with_modalias,
               'rounds': args.rounds, 'scenarios': {}}
    print('repo           %d modules (real names and aliases from %s), 2 releases'
          % (modules, kernel.package))
    print('host           %s: %d PCI functions, %d devices with a modalias'
          % (args.machine, pci, with_modalias))
    # As the RPM ships it: byte-compiled, so no run pays for compiling the plugin.
    subprocess.run([PYTHON, '-m', 'compileall', '-q', str(ROOT / 'dnf-plugin-kernelsplit')],
                   check=True)
    failed = False
    for name, installed in SCENARIOS.items():
        root = Installroot(work / name, {'bench': repo})
        root.install(*('%s-%s' % (pkg, old) for pkg in installed))
        root.dnf('makecache', plugin=False, check=True)

        def command(plugin: bool) -> list[str]:
            return ['umockdev-run', '-d', str(work / 'host.umockdev'), '--', PYTHON,
                    str(TESTBED_EXEC), str(work / 'host.drivers'), '--'] + \
                root.dnf_command('-C', '--assumeno', 'upgrade', plugin=plugin)

        env = {k: v for k, v in root.env.items() if k != 'PYTHONDONTWRITEBYTECODE'}
        check = subprocess.run(command(True), env=env, capture_output=True, text=True)
        lines = [l for l in check.stdout.splitlines() if l.startswith('kernelsplit:')]
        samples = {True: [], False: []}
        for _ in range(args.rounds):
            for plugin in (False, True):
                wall, rss, status = timed(command(plugin), env, work / 'measure')
                if status not in (0, 1):           # --assumeno exits 1 after the summary
                    print('dnf failed (%d)' % status)
                    return 1
                samples[plugin].append((wall, rss))
        off = statistics.median(w for w, _ in samples[False])
        on = statistics.median(w for w, _ in samples[True])
        rss_off = statistics.median(r for _, r in samples[False])
        rss_on = statistics.median(r for _, r in samples[True])
        overhead, rss_delta = on / off - 1, rss_on - rss_off
        ok = overhead <= TARGET_TIME and rss_delta <= TARGET_RSS_MB
        failed |= not ok
        figures['scenarios'][name] = {
            'installed': list(installed), 'plugin_lines': lines,
            'wall_off_s': round(off, 3), 'wall_on_s': round(on, 3),
            'overhead_pct': round(overhead * 100, 1),
            'rss_off_mb': round(rss_off, 1), 'rss_on_mb': round(rss_on, 1),
            'rss_delta_mb': round(rss_delta, 1)}
        print('\n%s install (%s), dnf -C --assumeno upgrade, median of %d alternating runs:'
              % (name, ' '.join(installed), args.rounds))
        for line in lines:
            print('  ' + (line if len(line) < 150 else line[:147] + '...'))
        print('  wall   plugin off %.3f s, on %.3f s: %+.1f%% (target <= %d%%)'
              % (off, on, overhead * 100, TARGET_TIME * 100))
        print('  rss    plugin off %.1f MB, on %.1f MB: %+.1f MB (target <= %d MB)'
              % (rss_off, rss_on, rss_delta, TARGET_RSS_MB))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + '\n')
    subprocess.run(['rm', '-rf', str(work)])
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
