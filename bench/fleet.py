#!/usr/bin/python3
"""Bench: the audit playbook on an emulated fleet -- wall time, controller memory, growth.

`ansible-playbook -f 10 kernelsplit.fleet.audit` against N hosts on this
machine (the local connection), each an installroot with its own emulated
hardware (tests/fleethosts.py): a mix of KVM guests, core-only SR-IOV + GPU
servers, core-only bare metal judged by modalias() provides, and complete
servers, from the fixture factory's split kernel repository.  The collection
is built and installed by ansible-galaxy, as a user would.

Measured, per fleet size (1, 10, 25, 50 hosts by default; the median of --rounds):
  wall           the playbook, start to report written
  controller     peak memory of the ansible-playbook processes (the main process
                 and its forked workers; the hosts' modules are not the
                 controller's): the peak of the sum of their proportional set
                 sizes (PSS, shared pages counted once), and the main process's
                 own peak RSS (VmHWM), sampled every 50 ms from /proc
  per host       one module run on the target, from inside its testbed: wall and
                 peak RSS of the Python that runs kernelsplit_check and the
                 `dnf kernelsplit check` it starts
And once per host kind: `dnf kernelsplit check --json` alone (wall, peak RSS),
what the module spends most of its time in.

This machine has 2 cores and runs every "host" too, so the wall time is the
targets' work serialised on 2 cores; on a real fleet the checks run on the
hosts and the controller's share is what it does between them.

Usage: bench/fleet.py [--sizes 1 10 25 50] [--forks 10] [--rounds N] [--json FILE]
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
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT / 'tests'), str(ROOT / 'dnf-plugin-kernelsplit')]

import fleethosts  # noqa: E402
import kernelrepo  # noqa: E402
from harness import PYTHON, TESTBED_EXEC, Host, Installroot  # noqa: E402

NEW = '6.9.1-1.x86_64'
# kind: (hardware, packages); the fleet cycles through them
KINDS = {
    'vm': (Host('kvm-guest'), ['kernel-core-' + NEW]),
    'sriov-gpu-core-only': (Host('baremetal-sriov-gpu'), ['kernel-core-' + NEW]),
    'bare-metal-core-only': (Host('baremetal-coreonly'), ['kernel-core-' + NEW]),
    'complete': (Host('baremetal-sriov-gpu'), ['kernel-' + NEW, 'kernel-drivers-sriov-' + NEW,
                                               'kernel-drivers-gpu-' + NEW]),
}


def build_templates(work: Path, repo: Path) -> dict[str, Installroot]:
    """One installed root per kind; every host of that kind gets a copy."""
    templates = {}
    for kind, (_, packages) in KINDS.items():
        root = Installroot(work / 'templates' / kind, {'exact': repo})
        root.install(*packages)
        templates[kind] = root
    return templates


def make_fleet(work: Path, repo: Path, templates: dict[str, Installroot], size: int) -> dict:
    hosts = {}
    kinds = list(KINDS)
    for i in range(size):
        kind = kinds[i % len(kinds)]
        name = 'host%03d-%s' % (i, kind)
        root = Installroot(work / 'hosts' / name, {'exact': repo})
        shutil.rmtree(root.root)
        shutil.copytree(templates[kind].root, root.root, symlinks=True)
        python = write_measuring_interpreter(root, KINDS[kind][0])
        hosts[name] = {'ansible_connection': 'local', 'ansible_python_interpreter': str(python),
                       **fleethosts.check_options(root)}
    return hosts


def write_measuring_interpreter(root: Installroot, host: Host) -> Path:
    """The host's interpreter wrapper, timing each module run into ROOT/../module.measure."""
    python = fleethosts.write_interpreter(root.base / 'python', host, root)
    text = python.read_text().replace('exec env ', 'exec env KERNELSPLIT_MEASURE=%s '
                                      % (root.base / 'module.measure'), 1)
    python.write_text(text)
    return python


def vm_hwm_kib(pid: int) -> int:
    """The peak RSS of process PID itself (not its children)."""
    try:
        with open('/proc/%d/status' % pid) as handle:
            for line in handle:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid: int) -> int:
    try:
        with open('/proc/%d/smaps_rollup' % pid) as handle:
            for line in handle:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def controller_pids(main_pid: int) -> list[int]:
    """ansible-playbook and its forked workers (its descendants with the same command line),
    not the modules they start."""
    parents, commands = {}, {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                parents[int(entry)] = int(handle.read().rsplit(')', 1)[1].split()[1])
            with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                commands[int(entry)] = handle.read().split(b'\0')
        except (OSError, IndexError, ValueError):
            continue

    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == main_pid:
                return True
            pid = parents.get(pid, 0)
        return False

    return [pid for pid, cmdline in commands.items() if descends(pid) and
            any(part.endswith(b'ansible-playbook') for part in cmdline[:2])]


class MemorySampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_pss_kib, self.peak_workers, self.main_hwm_kib = pid, 0, 0, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            pids = controller_pids(self.pid)
            self.peak_pss_kib = max(self.peak_pss_kib, sum(pss_kib(p) for p in pids))
            self.peak_workers = max(self.peak_workers, len(pids) - 1)
            self.main_hwm_kib = max(self.main_hwm_kib, vm_hwm_kib(self.pid))


def run_audit(work: Path, inventory: Path, env: dict, forks: int) -> dict:
    cwd = work / 'run'
    shutil.rmtree(cwd, ignore_errors=True)
    cwd.mkdir()
    env = {**env, 'PWD': str(cwd)}
    start = time.perf_counter()
    proc = subprocess.Popen(['ansible-playbook', '-f', str(forks), '-i', str(inventory),
                             'kernelsplit.fleet.audit'], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = MemorySampler(proc.pid)
    sampler.start()
    output = proc.stdout.read()
    status = proc.wait()
    wall = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    figures = json.loads((cwd / 'kernelsplit-report' / 'fleet-report.json').read_text())
    totals = figures['totals']
    if totals['unchecked']:
        raise SystemExit('hosts could not be checked:\n%s' % output.decode()[-3000:])
    return {'wall': wall, 'exit': status,
            'controller_pss_mb': sampler.peak_pss_kib / 1024,
            'main_rss_mb': sampler.main_hwm_kib / 1024, 'workers': sampler.peak_workers,
            'stranded': totals['stranded'], 'ok': totals['ok'], 'unknown': totals['unknown']}


def module_costs(work: Path) -> list[tuple[float, float]]:
    costs = []
    for measure in sorted((work / 'hosts').glob('*/module.measure')):
        seconds, kib = measure.read_text().split()
        costs.append((float(seconds), int(kib) / 1024))
    return costs


def dnf_check_cost(work: Path, templates: dict[str, Installroot], rounds: int) -> dict:
    """`dnf kernelsplit check --json` alone, per kind: median wall and peak RSS."""
    found = {}
    for kind, root in templates.items():
        runs = []
        for _ in range(rounds):
            measure = work / 'check.measure'
            command = fleethosts.dnf_check_command(root)
            env = {**os.environ, **fleethosts.host_env(root), 'KERNELSPLIT_MEASURE': str(measure)}
            env.pop('container', None)
            subprocess.run(KINDS[kind][0].wrap(command), env=env, capture_output=True)
            seconds, kib = measure.read_text().split()
            runs.append((float(seconds), int(kib) / 1024))
        found[kind] = {'wall': statistics.median(r[0] for r in runs),
                       'rss_mb': statistics.median(r[1] for r in runs)}
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[1, 10, 25, 50])
    parser.add_argument('--forks', type=int, default=10)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix='kernelsplit-bench-fleet-', dir='/var/tmp'))
    try:
        repo = kernelrepo.build_repo([kernelrepo.split_release('6.9.1', '1',
                                                               modalias_provides=True)],
                                     work / 'repo')
        templates = build_templates(work, repo)
        collections = fleethosts.install_collection(work)
        env = fleethosts.ansible_env(collections, work)
        env.pop('ANSIBLE_CALLBACKS_ENABLED')     # the tests' results callback: not a user's
        figures = {'forks': args.forks, 'rounds': args.rounds, 'sizes': {},
                   'dnf_check': dnf_check_cost(work, templates, args.rounds)}
        for size in args.sizes:
            shutil.rmtree(work / 'hosts', ignore_errors=True)
            inventory = fleethosts.write_inventory(work / 'inventory.yml',
                                                   make_fleet(work, repo, templates, size))
            runs = [run_audit(work, inventory, env, args.forks) for _ in range(args.rounds)]
            costs = module_costs(work)
            figures['sizes'][size] = {
                'wall': statistics.median(r['wall'] for r in runs),
                'walls': [round(r['wall'], 2) for r in runs],
                'controller_pss_mb': statistics.median(r['controller_pss_mb'] for r in runs),
                'main_rss_mb': statistics.median(r['main_rss_mb'] for r in runs),
                'workers': max(r['workers'] for r in runs),
                'exit': runs[0]['exit'], 'stranded': runs[0]['stranded'], 'ok': runs[0]['ok'],
                'module_wall': statistics.median(c[0] for c in costs),
                'module_rss_mb': statistics.median(c[1] for c in costs),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print('fleet audit, forks=%d, median of %d rounds' % (args.forks, args.rounds))
    print('%5s  %8s  %9s  %16s  %13s  %8s  %14s' % (
        'hosts', 'wall', 'per host', 'controller PSS', 'main RSS', 'workers',
        'module (target)'))
    for size, f in figures['sizes'].items():
        print('%5d  %7.1fs  %8.2fs  %13.1f MB  %10.1f MB  %8d  %5.2fs %5.1f MB' % (
            size, f['wall'], f['wall'] / size, f['controller_pss_mb'], f['main_rss_mb'],
            f['workers'], f['module_wall'], f['module_rss_mb']))
    print('dnf kernelsplit check --json alone, per host kind:')
    for kind, f in figures['dnf_check'].items():
        print('  %-22s %.2fs  %.1f MB' % (kind, f['wall'], f['rss_mb']))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
