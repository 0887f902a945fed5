#!/usr/bin/python3
"""Bench: modalias -> module resolution, kernelsplit vs libkmod itself.

Resolves every distinct PCI modalias in ../shared/realdata against the real
Debian 6.1 generic kernel's index (fetched with apt-get download), two ways,
alternating in one run:
  libkmod   bench/kmod_lookup.c: kmod_module_new_from_lookup() in a C loop,
            timed inside the process (what modprobe -R does per alias);
  ours      dnf_kernelsplit.kmod.ModuleIndex.lookup_many() in Python.
Both must find the same (alias, module) pairs.  Target: ours <= 2x libkmod.

Usage: bench/resolve.py [--rounds N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT / 'tests'), str(ROOT / 'dnf-plugin-kernelsplit')]

import realdata  # noqa: E402
import realkernel  # noqa: E402
from dnf_kernelsplit.hardware import Device  # noqa: E402
from dnf_kernelsplit.kmod import ModuleIndex  # noqa: E402
from dnf_kernelsplit.modules import device_needs  # noqa: E402

TARGET_RATIO = 2.0


def build_reference(workdir: Path) -> Path:
    binary = workdir / 'kmod_lookup'
    subprocess.run(['cc', '-O2', '-o', str(binary), str(BENCH / 'kmod_lookup.c'), '-lkmod'],
                   check=True)
    return binary


def libkmod_round(binary: Path, modules_dir: Path, aliases_file: Path) -> tuple[float, int]:
    out = subprocess.run([str(binary), str(modules_dir), str(aliases_file), '1'],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def ours_round(index: ModuleIndex, aliases: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    found = index.lookup_many(aliases)
    elapsed = time.perf_counter() - start
    return elapsed, sum(len(v) for v in found.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=21)
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args()

    if not realdata.available():
        print('bench/resolve: no ../shared/realdata; nothing to measure')
        return 0
    kernel = realkernel.fetch()
    aliases = realdata.pci_modaliases()
    aliases_count = sum(1 for line in open(kernel.modules_dir / 'modules.alias')
                        if line.startswith('alias '))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        aliases_file = workdir / 'aliases.txt'
        aliases_file.write_text('\n'.join(aliases) + '\n')
        binary = build_reference(workdir)
        # Open once, as a dnf run does; load_resources is not part of either side.
        index = ModuleIndex.for_kernel(str(kernel.root), kernel.kver)
        ours_round(index, aliases)                       # warm the page cache
        libkmod_round(binary, kernel.modules_dir, aliases_file)
        ref_times, our_times = [], []
        for _ in range(args.rounds):
            t, ref_pairs = libkmod_round(binary, kernel.modules_dir, aliases_file)
            ref_times.append(t)
            t, our_pairs = ours_round(index, aliases)
            our_times.append(t)
            if ref_pairs != our_pairs:
                print('MISMATCH: libkmod found %d pairs, ours %d' % (ref_pairs, our_pairs))
                return 1
        # The whole per-device step the plugin runs: lookups, in-tree check, needs.
        devices = [Device('/sys/devices/bench/%d' % i, 'pci', a) for i, a in enumerate(aliases)]
        needs_times = []
        for _ in range(5):
            fresh = ModuleIndex.for_kernel(str(kernel.root), kernel.kver)
            start = time.perf_counter()
            device_needs(devices, fresh)
            needs_times.append(time.perf_counter() - start)
            fresh.close()
    ref, ours = statistics.median(ref_times), statistics.median(our_times)
    figures = {
        'kernel': kernel.package,
        'index_aliases': aliases_count,
        'modaliases': len(aliases),
        'matched_pairs': ref_pairs,
        'rounds': args.rounds,
        'libkmod_ms': round(ref * 1000, 2),
        'ours_ms': round(ours * 1000, 2),
        'ratio': round(ours / ref, 2),
        'needs_all_devices_ms': round(statistics.median(needs_times) * 1000, 2),
        'target_ratio': TARGET_RATIO,
    }
    print('kernel index   %s (%d aliases)' % (figures['kernel'], aliases_count))
    print('modaliases     %d distinct real PCI modaliases, %d (alias, module) pairs'
          % (len(aliases), ref_pairs))
    print('libkmod (C)    %.2f ms per pass (median of %d)' % (ref * 1000, args.rounds))
    print('kernelsplit    %.2f ms per pass (median of %d)' % (ours * 1000, args.rounds))
    print('ratio          %.2fx (target <= %.1fx)' % (ours / ref, TARGET_RATIO))
    print('device needs   %.2f ms for all %d as unbound devices (lookups + in-tree checks)'
          % (figures['needs_all_devices_ms'], len(aliases)))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + '\n')
    return 0 if ours / ref <= TARGET_RATIO else 1


if __name__ == '__main__':
    sys.exit(main())
