#!/usr/bin/python3
"""Bench: exact and inspect mode's alias matching against libkmod, a million pairs and more.

hypothesis generates alias patterns and modaliases made from them (tests/aliasagreement.py:
'-'/'_' variants, bracket expressions, what depmod refuses, characters modalias.prov
%-encodes); they are put into real module trees of PATTERNS patterns each (one real
ELF .ko per pattern, depmod's index), and every modalias of a tree is looked up by
libkmod and matched by exact mode (the provides rpm/modalias.prov writes, ModaliasFilter
both ways, AliasMatcher) and inspect mode (the aliases payload.py reads, AliasMatcher).
A pair is one pattern and one modalias of the same tree; until PAIRS pairs are checked.
Any disagreement is printed, and the exit status is 1.

Usage: bench/agreement.py [--pairs N] [--patterns P] [--seed S] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT / 'tests'), str(ROOT / 'dnf-plugin-kernelsplit')]

import aliasagreement  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pairs', type=int, default=1_000_000)
    parser.add_argument('--patterns', type=int, default=400, help='patterns per module tree')
    parser.add_argument('--seed', type=int, default=None)
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2 ** 32)

    pairs = patterns = modaliases = walks = batches = 0
    disagreements: list = []
    generate_s = check_s = 0.0
    with tempfile.TemporaryDirectory(prefix='kernelsplit-agreement-') as tmp:
        while pairs < args.pairs:
            start = time.perf_counter()
            chosen, keys = aliasagreement.generated_tree(args.patterns, seed + batches)
            generate_s += time.perf_counter() - start
            start = time.perf_counter()
            result = aliasagreement.check_batch(chosen, keys, Path(tmp) / 'tree')
            check_s += time.perf_counter() - start
            batches += 1
            pairs += result.pairs
            patterns += result.patterns
            modaliases += result.modaliases
            walks += result.literal_walks
            disagreements += result.disagreements
            print('tree %d: %d patterns x %d modaliases = %d pairs, %d disagreements'
                  % (batches, result.patterns, result.modaliases, result.pairs,
                     len(result.disagreements)), flush=True)
    figures = {
        'seed': seed, 'trees': batches, 'patterns': patterns, 'modaliases': modaliases,
        'pairs': pairs, 'disagreements': len(disagreements),
        'libkmod_literal_walks': walks,
        'generate_s': round(generate_s, 1), 'check_s': round(check_s, 1),
        'pairs_per_s': round(pairs / max(check_s, 1e-9)),
    }
    print('seed           %d' % seed)
    print('pairs          %d (%d trees, %d patterns, %d modaliases)'
          % (pairs, batches, patterns, modaliases))
    print('disagreements  %d (exact, exact by regex, inspect vs libkmod)' % len(disagreements))
    print('literal walks  %d modaliases with * ? [ where libkmod found more, within bounds'
          % walks)
    print('time           %.1f s generating, %.1f s building indexes and comparing'
          % (generate_s, check_s))
    for found in disagreements[:20]:
        print('  %r %s: ours %r, libkmod %r' % found)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + '\n')
    return 1 if disagreements else 0


if __name__ == '__main__':
    sys.exit(main())
