"""Exact and inspect mode's alias matching against libkmod itself, on generated aliases.

A batch of alias patterns becomes a real module tree: one real ELF .ko per pattern
(kernelrepo.build_module, that pattern its only alias), indexed by depmod.  Every
modalias of the batch is looked up by libkmod (kmod.ModuleIndex: what `modprobe -R`
does) and matched by kernelsplit's two ways, and each must name the same modules:

  exact     the provides rpm/modalias.prov writes for those .ko files, narrowed by
            kmod.ModaliasFilter (its plain loop, and its one-regex way forced) and
            matched by kmod.AliasMatcher;
  inspect   the aliases payload.py reads from the .ko files, matched by AliasMatcher.

Every pattern is checked against every modalias of its batch: the pairs.

Where libkmod may find more than the patterns themselves say: its index walk
(libkmod-index.c, index_mm_searchwild_node) follows the modalias's own characters
down the index, and a `*`, `?` or `[` in the modalias also follows an index edge of
that same character, literally.  Whether such an edge exists depends on which other
aliases the index holds (where their keys branch), which no single pattern tells;
kernelsplit matches each pattern as its own wildcards say (the walk every pattern
gets).  For a modalias holding one of those characters libkmod's answer must then
lie between kernelsplit's and the most that literal walk could add
(literal_walk_bound); for every other modalias they must be equal.

Shared by tests/test_alias_normalise.py (a small sample; hypothesis shrinks any
disagreement) and bench/agreement.py (a million pairs and more).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import shutil
import subprocess
from collections import namedtuple
from pathlib import Path
from typing import Iterable, Sequence

import hypothesis
import hypothesis.strategies as st

import kernelrepo
from dnf_kernelsplit.kmod import AliasMatcher, ModaliasFilter, ModuleIndex, _c_locale, alias_key
from dnf_kernelsplit.payload import module_aliases

PROV = kernelrepo.ROOT / 'rpm' / 'modalias.prov'
KVER = '0.0.1-agreement'

# --- what is generated ----------------------------------------------------------------

# Pieces of a pattern.  Literals: the two separators libkmod takes as one, characters
# rpm/modalias.prov %-encodes (and an encoding's look-alike, '%2C'), a backslash
# (fnmatch's escape); a few letters so that patterns share prefixes.
LITERALS = ('a', 'a', 'b', '0', '1', '-', '-', '_', '_', ':', ',', ' ', '(', ')', '=',
            '%', '%2C', '\\', '.')
WILDCARDS = ('*', '*', '?')
# Bracket expressions, '-' as a range and as a member; libkmod normalises no '-' inside.
CLASSES = ('[ab]', '[!a]', '[^a]', '[a-c]', '[0-1]', '[-a]', '[a-]', '[_-]', '[!-]', '[-]',
           '[_]', '[!_]')
# What libkmod's alias_normalize() refuses, alone or in a pattern: depmod drops those.
REFUSED = (']', '[', '[[:digit:]]', '[]a]', '[a', '[\\]]')
PATTERN_PIECES = LITERALS * 3 + WILDCARDS * 3 + CLASSES + REFUSED

# Characters a wildcard or a class of a pattern stands for in a modalias made from it;
# 'é' is two bytes that no literal of an (ASCII) alias equals.
FILLERS = ('a', 'b', 'c', '0', '1', '2', '-', '_', ':', ',', ' ', ']', '!', '^', '\\', 'é')
# Rarely, a modalias carries a bracket expression (a real DMI string does), a `*` or
# `?` (see above) or what libkmod refuses in a modalias.
ODD_KEY_PIECES = ('[a-b]', '[-]', '*', '?', ']', '[')


def _class_members(piece: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in piece if c not in '[]!^') or 'a')


@st.composite
def modalias_from(draw, pieces: Sequence[str]) -> str:
    """A modalias made from a pattern's PIECES: matching it, or nearly."""
    out = []
    for piece in pieces:
        if piece == '*':
            out += draw(st.lists(st.sampled_from(FILLERS), max_size=3))
        elif piece == '?':
            out.append(draw(st.sampled_from(FILLERS)))
        elif piece in ('-', '_'):
            out.append(draw(st.sampled_from(('-', '_'))))
        elif piece in CLASSES:
            out.append(draw(st.sampled_from(_class_members(piece) + ('-', '_', 'z'))))
        else:
            out.append(piece)
    change = draw(st.sampled_from(('none', 'none', 'none', 'append', 'drop', 'odd')))
    if change == 'append':
        out.append(draw(st.sampled_from(FILLERS)))
    elif change == 'drop' and out:
        del out[draw(st.integers(0, len(out) - 1))]
    elif change == 'odd':
        out.insert(draw(st.integers(0, len(out))), draw(st.sampled_from(ODD_KEY_PIECES)))
    return ''.join(out)


@st.composite
def pattern_and_modaliases(draw, max_modaliases: int = 4) -> tuple[str, list[str]]:
    """An alias pattern and a few modaliases made from it."""
    pieces = draw(st.lists(st.sampled_from(PATTERN_PIECES), min_size=1, max_size=8))
    modaliases = draw(st.lists(modalias_from(pieces), min_size=1, max_size=max_modaliases))
    return ''.join(pieces), modaliases


def batches(min_patterns: int, max_patterns: int, max_modaliases: int = 4):
    """Lists of (pattern, modaliases): one index each."""
    return st.lists(pattern_and_modaliases(max_modaliases), min_size=min_patterns,
                    max_size=max_patterns)


def generated_tree(patterns: int, seed: int) -> tuple[list[str], list[str]]:
    """PATTERNS distinct patterns and the modaliases made from them, from hypothesis's
    generate phase with SEED (no shrinking: for trees too big for one example)."""
    found: dict[str, list[str]] = {}

    @hypothesis.seed(seed)
    @hypothesis.settings(max_examples=patterns * 3, phases=[hypothesis.Phase.generate],
                         database=None, deadline=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(pattern_and_modaliases(max_modaliases=6))
    def collect(example: tuple[str, list[str]]) -> None:
        found.setdefault(example[0], []).extend(example[1])

    collect()
    chosen = list(found)[:patterns]
    return chosen, [modalias for pattern in chosen for modalias in found[pattern]]


# --- libkmod's literal walk (see the docstring) ----------------------------------------

_FNMATCH = ctypes.CDLL(None).fnmatch
_FNMATCH.restype = ctypes.c_int
_FNMATCH.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]


def literal_walk_bound(pattern: bytes, modalias: bytes) -> bool:
    """Whether libkmod could match the normalised MODALIAS to the normalised PATTERN,
    were there an index edge at every wildcard character of PATTERN that the modalias
    has in the same place (call it in the C locale, as libkmod runs)."""
    for i, char in enumerate(pattern):
        if char in b'*?[':
            if _FNMATCH(pattern[i:], modalias[i:], 0) == 0:
                return True
        if i >= len(modalias) or modalias[i] != char:
            return False
    return len(modalias) == len(pattern)


# --- one batch ------------------------------------------------------------------------

class Disagreement(namedtuple('Disagreement', [
        'modalias',         # str
        'way',              # 'exact' | 'exact (regex)' | 'inspect'
        'ours',             # the patterns kernelsplit matched
        'libkmod',          # the patterns libkmod's lookup named
        ])):
    __slots__ = ()


class BatchResult(namedtuple('BatchResult', [
        'patterns',         # int
        'modaliases',       # int
        'pairs',            # patterns x modaliases
        'disagreements',    # list[Disagreement]
        'literal_walks',    # modaliases where libkmod's literal walk found more, as allowed
        ])):
    __slots__ = ()


def _module_name(number: int) -> str:
    return 'Q%d' % number     # no generated modalias holds a 'Q': none names a module


def build_index(patterns: Sequence[str], root: Path) -> list[Path]:
    """ROOT/lib/modules/KVER: a .ko per pattern and depmod's index; the .ko files."""
    shutil.rmtree(root, ignore_errors=True)
    moddir = root / 'lib' / 'modules' / KVER
    moddir.mkdir(parents=True)
    workdir = root / 'work'
    workdir.mkdir()
    for name in ('modules.builtin', 'modules.builtin.modinfo'):
        (moddir / name).write_bytes(b'')
    modules = [kernelrepo.Module(_module_name(n), (pattern,), subdir='kernel/gen', compression='')
               for n, pattern in enumerate(patterns)]
    (moddir / 'modules.order').write_text(''.join('%s\n' % m.file for m in modules))
    files = [kernelrepo.build_module(modules[0], KVER, moddir, workdir)]   # makes base.o
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        files += pool.map(lambda m: kernelrepo.build_module(m, KVER, moddir, workdir),
                          modules[1:])
    subprocess.run(['depmod', '-b', str(root), KVER], check=True, capture_output=True)
    return files


def generated_provides(files: Iterable[Path]) -> list[str]:
    """What rpm/modalias.prov writes for FILES, as an RPM build would call it."""
    return subprocess.run([str(PROV)], input=''.join('%s\n' % f for f in files),
                          capture_output=True, text=True, check=True).stdout.splitlines()


def check_batch(patterns: Sequence[str], modaliases: Sequence[str], root: Path,
                filter_group: int = 64) -> BatchResult:
    """Every pattern against every modalias, kernelsplit's ways against libkmod's."""
    modaliases = list(dict.fromkeys(modaliases))
    files = build_index(patterns, root)
    with ModuleIndex(str(root / 'lib' / 'modules' / KVER), []) as index:
        libkmod = {m: frozenset(index.lookup(m)) for m in modaliases}
    provides = generated_provides(files)
    table = [(alias, module) for path in files
             for module in [path.name[:-len('.ko')]]
             for alias in module_aliases(str(path), path.read_bytes())]
    inspect = AliasMatcher(table)
    found: dict[str, dict[str, frozenset[str]]] = {}
    # A machine's worth of modaliases at a time, as ModaliasFilter sees them.
    for start in range(0, len(modaliases), filter_group):
        group = modaliases[start:start + filter_group]
        plain = ModaliasFilter(group)
        forced = ModaliasFilter(group)
        forced.REGEX_MIN_PROVIDES = 0
        exact = AliasMatcher(plain.select(provides)[1])
        exact_regex = AliasMatcher(forced.select(provides)[1])
        for modalias in group:
            found[modalias] = {
                'exact': frozenset(exact.match(modalias)),
                'exact (regex)': frozenset(exact_regex.match(modalias)),
                'inspect': frozenset(inspect.match(modalias)),
            }
    keys = [alias_key(p) for p in patterns]
    disagreements, walks = [], 0
    for modalias in modaliases:
        theirs = libkmod[modalias]
        key = alias_key(modalias)
        bound = None
        if key is not None and any(c in key for c in b'*?['):
            with _c_locale().active():
                bound = frozenset(_module_name(n) for n, k in enumerate(keys)
                                  if k is not None and literal_walk_bound(k, key))
        walked = False
        for way, ours in found[modalias].items():
            if ours == theirs:
                continue
            if bound is not None and ours < theirs <= bound:
                walked = True
                continue
            disagreements.append(Disagreement(
                modalias, way, sorted(patterns[int(n[1:])] for n in ours),
                sorted(patterns[int(n[1:])] for n in theirs)))
        walks += walked
    return BatchResult(len(patterns), len(modaliases), len(patterns) * len(modaliases),
                       disagreements, walks)
