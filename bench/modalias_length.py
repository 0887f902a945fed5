#!/usr/bin/python3
"""Bench: exact mode's cost against the length of one device's modalias.

Exact mode takes the modaliases the local index could not resolve, narrows a
package's modalias() provides to those whose literal prefix begins one of
them (kmod.ModaliasFilter) and matches the rest with fnmatch()
(kmod.AliasMatcher).  Both must stay linear in a modalias's length: a real
input device's modalias runs to a few thousand characters, and a sysfs
attribute may be up to PAGE_SIZE (64 KiB on some arm64 and ppc64 kernels).

Each length runs in a fresh interpreter: a real server's modaliases (the
R820's from ../shared/realdata, else the test hosts') plus one input-device
modalias of that length, against the real Debian kernel's aliases as
modalias() provides (else the fixture catalogue's).  It reports the time of
ModaliasFilter(), select() over the provides and match() of the long
modalias, and the peak of the memory they allocate (tracemalloc, in a
second pass).

Usage: bench/modalias_length.py [--lengths N...] [--plugin DIR] [--json FILE]
  --plugin: the dnf-plugin-kernelsplit directory to measure (another checkout's,
            to compare before and after a change)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LENGTHS = (0, 1024, 2048, 4096, 8192, 16384, 32768, 65536)

# Runs in the fresh interpreter: argv[1] the length, argv[2] a JSON file of
# (modaliases, provides); prints the figures as JSON.
CHILD = r'''
import json, sys, time
from dnf_kernelsplit.kmod import AliasMatcher, ModaliasFilter
length = int(sys.argv[1])
with open(sys.argv[2]) as handle:
    modaliases, provides = json.load(handle)
head = 'input:b0003v046DpC52Be0111-e0,1,4,11,14,k'
long_alias = head + ','.join(str(71 + n % 700) for n in range(length))
long_alias = long_alias[:length] if length else ''
if long_alias:
    modaliases.append(long_alias)
def work():
    wanted = ModaliasFilter(modaliases)
    has_any, kept = wanted.select(provides)
    matcher = AliasMatcher(kept)
    return wanted, kept, [matcher.match(alias) for alias in modaliases]
start = time.perf_counter()
wanted = ModaliasFilter(modaliases)
built = time.perf_counter()
has_any, kept = wanted.select(provides)
selected = time.perf_counter()
matcher = AliasMatcher(kept)
found = [matcher.match(alias) for alias in modaliases]
matched = time.perf_counter()
del wanted, matcher
# The memory the same work allocates at its peak, traced in a second pass.
import tracemalloc
tracemalloc.start()
work()
peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
tracemalloc.stop()
print(json.dumps({'length': length, 'filter_ms': (built - start) * 1000,
                  'select_ms': (selected - built) * 1000, 'match_ms': (matched - selected) * 1000,
                  'total_ms': (matched - start) * 1000, 'peak_mb': peak_mb,
                  'kept': len(kept), 'matched': sum(map(len, found))}))
'''


def inputs() -> tuple[list[str], list[str], str]:
    """(a real machine's modaliases, modalias() provides, where they come from)."""
    sys.path[:0] = [str(ROOT / 'tests'), str(ROOT / 'dnf-plugin-kernelsplit')]
    import kernelrepo
    import realdata
    from dnf_kernelsplit.kmod import encode_modalias
    source = []
    modaliases: list[str] = []
    if realdata.available():
        machines = realdata.udevadm_machines()
        name = 'DELL_IDRAC' if 'DELL_IDRAC' in machines else \
            max(machines, key=lambda n: len(machines[n]))
        modaliases = sorted({d['MODALIAS'] for d in machines[name] if d.get('MODALIAS')})
        source.append('%d modaliases of %s' % (len(modaliases), name))
    else:
        for host in (ROOT / 'tests' / 'hosts').glob('*.umockdev'):
            modaliases += [line.split('=', 1)[1] for line in host.read_text().splitlines()
                           if line.startswith('E: MODALIAS=')]
        modaliases = sorted(set(modaliases))
        source.append('%d modaliases of the test hosts' % len(modaliases))
    entries = []
    try:
        import realkernel
        kernel = realkernel.fetch() if realdata.available() else None
    except Exception:          # no apt-get: the fixture catalogue instead
        kernel = None
    if kernel is not None:
        for line in (kernel.modules_dir / 'modules.alias').read_text().splitlines():
            if line.startswith('alias '):
                _, pattern, module = line.split(' ', 2)
                entries.append((pattern, module))
        source.append('%d aliases of %s' % (len(entries), kernel.package))
    else:
        entries = [(pattern, module.name) for module in kernelrepo.CATALOGUE.values()
                   for pattern in module.aliases]
        source.append('%d aliases of the fixture catalogue' % len(entries))
    provides = ['modalias(%s) = %s' % (encode_modalias(pattern), module)
                for pattern, module in entries]
    return modaliases, provides, ', '.join(source)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--lengths', type=int, nargs='+', default=list(LENGTHS))
    parser.add_argument('--plugin', default=str(ROOT / 'dnf-plugin-kernelsplit'))
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args()
    modaliases, provides, source = inputs()
    data = Path(os.environ.get('TMPDIR', '/tmp')) / ('kernelsplit-bench-%d.json' % os.getpid())
    data.write_text(json.dumps([modaliases, provides]))
    rows = []
    try:
        for length in args.lengths:
            out = subprocess.run([sys.executable, '-c', CHILD, str(length), str(data)],
                                 capture_output=True, text=True,
                                 env={**os.environ, 'PYTHONPATH': args.plugin})
            if out.returncode != 0:
                print('length %d: failed: %s' % (length, out.stderr.strip().splitlines()[-1:]))
                continue
            rows.append(json.loads(out.stdout))
    finally:
        data.unlink()
    print('%s; plugin %s' % (source, args.plugin))
    print('%9s %10s %10s %10s %10s %12s' % ('length', 'filter ms', 'select ms', 'match ms',
                                            'total ms', 'peak MB'))
    for row in rows:
        print('%9d %10.1f %10.1f %10.1f %10.1f %12.1f' % (
            row['length'], row['filter_ms'], row['select_ms'], row['match_ms'],
            row['total_ms'], row['peak_mb']))
    if args.json:
        Path(args.json).write_text(json.dumps({'source': source, 'rows': rows}, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
