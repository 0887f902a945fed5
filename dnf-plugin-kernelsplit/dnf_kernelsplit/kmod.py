"""Module resolution: which kernel modules serve a modalias, exactly as kmod says.

The lookups go through libkmod itself (ctypes), the same library and the same
calls `modprobe -R` makes: kmod_new() on /lib/modules/KVER, kmod_load_resources(),
kmod_module_new_from_lookup().  Where there is no index to ask -- a package's
alias patterns, before it is installed (exact and inspect mode) -- AliasMatcher
matches them as libkmod would: its normalisation (normalize_alias), its index
walk and glibc's fnmatch().
"""

from __future__ import annotations

import contextlib
import ctypes
import locale
import os
import re
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Any, Callable, Iterable, Optional, Sequence

MODULE_DIRS = ('lib/modules', 'usr/lib/modules')
MODULE_SUFFIXES = ('.ko', '.ko.xz', '.ko.zst', '.ko.gz')

# modprobe.d locations kmod reads by default (libkmod's default_config_paths);
# inside an installroot the same paths are taken relative to that root.
_CONFIG_DIRS = ('etc/modprobe.d', 'run/modprobe.d', 'usr/local/lib/modprobe.d',
                'usr/lib/modprobe.d', 'lib/modprobe.d')

_KMOD_INDEX_MODULES_BUILTIN = 4  # enum kmod_index
_LOG_CRIT = 2
_PERCENT_RE = re.compile(r'%([0-9A-Fa-f]{2})')
# What rpm/modalias.prov leaves as is; everything else is %XX-encoded.
_MODALIAS_SAFE = frozenset('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
                           '*?[]!^:._+-/')
_LITERAL_PREFIX_RE = re.compile(r'[^*?[]*')
_LITERAL_PREFIX_BYTES_RE = re.compile(rb'[^*?[]*')
# libkmod's buffers for an alias and for the modalias it looks up (shared/util.c,
# libkmod/libkmod-module.c): PATH_MAX bytes, the terminating NUL included.
_PATH_MAX = 4096
# A bracket expression as alias_normalize() reads one: '[' up to the first ']'.
_BRACKETS_RE = re.compile(rb'\[[^\]]*\]')
# modalias.prov encodes ')' inside patterns: the first one closes the provide's name.
_PROVIDE_LITERAL_RE = re.compile(r'modalias\(([^*?[)]*)')
# ModaliasFilter keeps the modaliases' prefixes up to this length, and a pattern's
# literal prefix is looked up by as many of its first characters.  Real literals
# are shorter (a PCI modalias is 52 characters; of:, acpi: and dmi: patterns
# have their first wildcard within a few); longer ones can only let through
# more candidates, which fnmatch() then rejects.  Keeping every prefix of
# every modalias would cost memory in the square of its length.
_PREFIX_CAP = 64


class KmodError(Exception):
    """libkmod is missing or an index cannot be opened."""


class DamagedIndexError(KmodError):
    """A module index file depmod wrote is not whole: its message names it and the fix."""


# The index files kmod_load_resources() maps (libkmod's index_files[]), and
# their format (libkmod-index.c, tools/depmod.c): a header of three big-endian
# 32-bit words, magic, version (major in the high half) and the root node's
# offset; each node offset carries flags in its top four bits.
INDEX_FILES = ('modules.dep.bin', 'modules.alias.bin', 'modules.symbols.bin',
               'modules.builtin.alias.bin', 'modules.builtin.bin')
_OPTIONAL_INDEX_FILES = frozenset({'modules.builtin.alias.bin'})   # newer than the others
_INDEX_MAGIC, _INDEX_MAJOR = 0xB007F457, 2
_NODE_PREFIX, _NODE_VALUES, _NODE_CHILDS, _NODE_MASK = 0x80000000, 0x40000000, 0x20000000, \
    0x0FFFFFFF
_MAX_ROOT_NODE = 1 << 20


def index_file_damage(path: str) -> Optional[str]:
    """What is wrong with the index file PATH as libkmod would read it, or None.

    libkmod checks a file's magic and version, then follows node offsets into
    its map of the file without bounds checks: a truncated file loads, and a
    lookup then reads past the end (SIGSEGV in dnf) or finds nothing.  depmod
    writes the root node either last, after every other node (kmod up to 32:
    Debian 12's), so that the file ends where the root node ends, or first,
    right after the header (kmod 33 and later: Fedora 41's, Debian 13's).  A
    root node last that does not end exactly at the end of the file, or
    either one whose children lie outside the file (or inside the root node),
    means the file is not the one depmod wrote.  A few hundred bytes are
    read; damage inside the other nodes is beyond what this sees (and what
    libkmod checks), and a root-first file cut past its root node is too.
    """
    import struct
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        return 'unreadable (%s)' % exc.strerror
    try:
        size = os.fstat(fd).st_size
        header = os.pread(fd, 12, 0)
        if len(header) < 12:
            return 'shorter (%d bytes) than its header' % size
        magic, version, root = struct.unpack('>III', header)
        if magic != _INDEX_MAGIC:
            return 'not a module index (magic %#x)' % magic
        if version >> 16 != _INDEX_MAJOR:
            return 'index format %d, not %d' % (version >> 16, _INDEX_MAJOR)
        start = root & _NODE_MASK
        root_first = start == 12 and size > 12
        if not 12 <= start <= size or (not root_first and size - start > _MAX_ROOT_NODE):
            return 'truncated or corrupt (its root node at %d, the file %d bytes)' % (
                start, size)
        node = os.pread(fd, min(size - start, _MAX_ROOT_NODE), start)
    except OSError as exc:
        return 'unreadable (%s)' % exc.strerror
    finally:
        os.close(fd)
    end = 0
    children: tuple[int, ...] = ()
    try:
        if root & _NODE_PREFIX:
            end = node.index(b'\0') + 1
        if root & _NODE_CHILDS:
            first, last = node[end], node[end + 1]
            count = last - first + 1
            if count <= 0 or last >= 128:
                return 'corrupt (its root node points outside the file)'
            children = struct.unpack_from('>%dI' % count, node, end + 2)
            end += 2 + 4 * count
        if root & _NODE_VALUES:
            (values,), end = struct.unpack_from('>I', node, end), end + 4
            for _ in range(values):
                end = node.index(b'\0', end + 4) + 1
    except (IndexError, ValueError, struct.error):      # the node runs past the end
        return 'truncated (it ends inside its root node)'
    # where the other nodes may lie: before a root node last, after a root node first
    low, high = (start + end, size) if root_first else (12, start)
    if any(not low <= c & _NODE_MASK < high for c in children if c & _NODE_MASK):
        return 'corrupt (its root node points outside the file)'
    if not root_first and end != size - start:
        return 'truncated or corrupt (%d bytes after its root node)' % (size - start - end)
    return None


def depmod_command(dirname: str) -> str:
    """How to rebuild the index in DIRNAME (ROOT/lib/modules/KVER): 'depmod [-b ROOT] KVER'."""
    dirname = os.path.abspath(dirname)
    kver = os.path.basename(dirname)
    parent = os.path.dirname(dirname)
    for modules_dir in sorted(MODULE_DIRS, key=len, reverse=True):    # usr/lib/modules first
        if parent.endswith('/' + modules_dir):
            root = parent[:-len(modules_dir) - 1]
            return 'depmod -b %s %s' % (root, kver) if root not in ('', '/') else \
                'depmod %s' % kver
    return 'depmod -b <root> %s' % kver


def check_index(dirname: str) -> None:
    """Raise DamagedIndexError when an index file in DIRNAME is damaged."""
    for name in INDEX_FILES:
        path = os.path.join(dirname, name)
        if name in _OPTIONAL_INDEX_FILES and not os.path.exists(path):
            continue
        damage = index_file_damage(path)
        if damage is not None:
            raise DamagedIndexError('%s is %s: rebuild the index with `%s`'
                                    % (path, damage, depmod_command(dirname)))


def normalize(name: str) -> str:
    """Module names compare with '-' and '_' as the same character, as kmod does."""
    return name.replace('-', '_')


def normalize_alias(alias: bytes) -> Optional[bytes]:
    """ALIAS as libkmod compares it, or None where libkmod refuses it.

    libkmod's alias_normalize() (shared/util.c; the same in kmod 30 and in
    kmod's tree today).  depmod runs it over every alias before it indexes
    them (tools/depmod.c, output_aliases_bin() and output_builtin_alias_bin():
    a refused alias is left out with the warning "Unmatched bracket"), and
    kmod_module_new_from_lookup() (libkmod/libkmod-module.c) over the modalias
    it looks up (a refused one finds nothing: -EINVAL).  Read left to right:

    - it is a C string in a PATH_MAX buffer: it ends at a NUL, and past
      PATH_MAX - 1 bytes the rest is cut off;
    - '-' becomes '_';
    - '[' opens a bracket expression, copied as it is up to the first ']'
      (so '[0-9]' stays a range; '[]a]' and '[[:digit:]]' end at their
      first ']', and what follows is read as outside);
    - a '[' with no ']' after it, or a ']' outside a bracket expression,
      refuses the whole alias.  (kmod 30 copies a bracket expression running
      past the buffer without a bound; today's kmod refuses it, as here.)
    """
    if b'\0' in alias:
        alias = alias[:alias.index(b'\0')]
    alias = alias[:_PATH_MAX - 1]
    if b'[' not in alias and b']' not in alias:        # nearly every alias and modalias
        return alias.replace(b'-', b'_')
    parts, start = [], 0
    for brackets in _BRACKETS_RE.finditer(alias):
        outside = alias[start:brackets.start()]
        if b']' in outside:
            return None
        parts += [outside.replace(b'-', b'_'), brackets.group()]
        start = brackets.end()
    outside = alias[start:]
    if b'[' in outside or b']' in outside:
        return None
    parts.append(outside.replace(b'-', b'_'))
    return b''.join(parts)


def alias_key(alias: str) -> Optional[bytes]:
    """An alias pattern or a modalias as libkmod compares it (normalize_alias()), or None."""
    # The common case on the text, where Python's tests are several times
    # faster: no bracket, no NUL, too short to be cut (4 bytes a character at most).
    if len(alias) < (_PATH_MAX - 1) // 4 and '[' not in alias and ']' not in alias \
            and '\0' not in alias:
        return alias.replace('-', '_').encode('utf-8', 'surrogateescape')
    return normalize_alias(alias.encode('utf-8', 'surrogateescape'))


def module_name_from_path(path: str) -> Optional[str]:
    """'.../snd-hda-intel.ko.xz' -> 'snd_hda_intel'; None when not a module file."""
    base = os.path.basename(path)
    for suffix in MODULE_SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            return normalize(base[:-len(suffix)])
    return None


def literal_prefix(pattern: str) -> str:
    """The part of an alias pattern before its first wildcard (* ? [)."""
    return _LITERAL_PREFIX_RE.match(pattern).group()  # type: ignore[union-attr]


def _normal_prefix(literal: str) -> str:
    """A literal prefix as normalize_alias() leaves it: no bracket expression yet,
    so every '-' is a '_' (a ']' in it refuses the whole pattern, which
    AliasMatcher then leaves out)."""
    return literal.replace('-', '_')


def select_modalias_provides(provides: Iterable[str], wanted_prefixes: Optional[set[str]] = None
                             ) -> tuple[bool, list[tuple[str, Optional[str]]]]:
    """The modalias(PATTERN) [= MODULE] provides among PROVIDES, decoded: (any at all, them).

    WANTED_PREFIXES: keep only the patterns whose literal prefix's first
    _PREFIX_CAP characters, normalised as libkmod does, are among them
    (ModaliasFilter.prefixes; it also narrows PROVIDES much faster).
    """
    match = _PROVIDE_LITERAL_RE.match
    found, any_seen = [], False
    for text in provides:
        literal = match(text)
        if literal is None:
            continue
        any_seen = True
        prefix = literal.group(1)
        encoded = '%' in prefix      # compare the decoded pattern's prefix instead
        if wanted_prefixes is not None and not encoded:
            prefix = _normal_prefix(prefix)
            if prefix not in wanted_prefixes and \
                    (len(prefix) <= _PREFIX_CAP or prefix[:_PREFIX_CAP] not in wanted_prefixes):
                continue
        parsed = modalias_from_provide(text)
        if parsed is None:
            continue
        if wanted_prefixes is not None and encoded and \
                _normal_prefix(literal_prefix(parsed[0]))[:_PREFIX_CAP] not in wanted_prefixes:
            continue
        found.append(parsed)
    return any_seen, found


class ModaliasFilter:
    """Which modalias(PATTERN) provides may match some of MODALIASES.

    A pattern can match a modalias only when its literal prefix (up to the
    first wildcard) begins that modalias, both normalised as libkmod does
    (normalize_alias(): in a literal prefix, every '-' is a '_').  A kernel
    package carries tens of thousands of these provides, and a loop over them
    in Python costs ~10 ms per package.  So a big package's provides are
    joined and searched at once with one regex: a trie of the normalised
    modaliases' first HEAD characters (where the trie has a '_', the provide
    may have '-' or '_'), where any node may end in a wildcard, an encoded
    character or the closing ')'.  It captures each candidate's literal
    prefix, so that a set lookup weeds out most candidates before the
    per-provide test sees them.
    """

    HEAD = 14          # bus and vendor: 'pci:v00008086d'
    # Compiling the regex costs ~0.3 ms per 100 trie nodes: a real machine's
    # modaliases make a few hundred; past this many, the plain loop is cheaper.
    MAX_NODES = 3000
    # It saves ~0.1 us per provide over the plain loop: worth compiling (~1 ms,
    # once) only for a package as big as a kernel's driver package.
    REGEX_MIN_PROVIDES = 10000

    def __init__(self, modaliases: Iterable[str]) -> None:
        # As libkmod looks them up; one it refuses matches nothing.
        keys = {alias_key(alias) for alias in modaliases}
        modaliases = {key.decode('utf-8', 'surrogateescape') for key in keys if key is not None}
        # Linear in the modaliases' length (see _PREFIX_CAP).
        self.prefixes = {alias[:end] for alias in modaliases
                         for end in range(min(len(alias), _PREFIX_CAP) + 1)}
        self._trie: dict = {}
        self._nodes = 0
        for alias in modaliases:
            node = self._trie
            for char in alias[:self.HEAD]:
                if char not in node:
                    node[char] = {}
                    self._nodes += 1
                node = node[char]
        self._regex: Optional[Any] = None

    def candidates_regex(self) -> Optional[Any]:
        """The compiled regex (groups: the literal prefix, the rest), or None: too many nodes."""
        if self._regex is None and self._nodes <= self.MAX_NODES:
            # The literal runs on past the trie to the first wildcard, encoded
            # character or closing ')'.
            self._regex = re.compile(r'\nmodalias\((%s[^*?[%%)\n]*)([^\n]*)'
                                     % self._trie_regex(self._trie, 0))
        return self._regex

    def _trie_regex(self, node: dict, depth: int) -> str:
        if depth == self.HEAD:
            return ''
        ends = '(?=[*?[%)])'   # a wildcard, an encoded character, the end of the pattern
        return '(?:%s)' % '|'.join([ends] + [('[_-]' if char == '_' else re.escape(char)) +
                                            self._trie_regex(child, depth + 1)
                                            for char, child in sorted(node.items())])

    def select(self, provides: Sequence[Any], name: Optional[Callable[[Any], str]] = None
               ) -> tuple[bool, list[tuple[str, Optional[str]]]]:
        """select_modalias_provides(PROVIDES, these modaliases' prefixes), the fast way.

        PROVIDES: rpm dependencies, as strings or anything whose str() is one.
        NAME: a provide's name, its text before ' = VERSION' (cheaper than str()
        for hawkey's Reldeps: only the candidates are turned into strings).
        """
        regex = self.candidates_regex() if len(provides) >= self.REGEX_MIN_PROVIDES else None
        if regex is None:
            return select_modalias_provides(map(str, provides), self.prefixes)
        text = '\n' + '\n'.join(map(name or str, provides))   # a dependency holds no newline
        prefixes = self.prefixes
        kept, index, last = [], 0, 0
        count = text.count
        for match in regex.finditer(text):
            literal, rest = match.groups()
            literal = _normal_prefix(literal)
            if literal in prefixes or rest.startswith('%') or \
                    (len(literal) > _PREFIX_CAP and literal[:_PREFIX_CAP] in prefixes):
                start = match.start()      # the newline before provide number INDEX
                index += count('\n', last, start)
                last = start
                kept.append(str(provides[index]))
        return '\nmodalias(' in text, select_modalias_provides(kept, prefixes)[1]


def encode_modalias(pattern: str) -> str:
    """An alias as it goes into a modalias(...) provide (what rpm/modalias.prov does)."""
    return ''.join(c if c in _MODALIAS_SAFE else ''.join('%%%02X' % b for b in c.encode())
                   for c in pattern)


def decode_modalias(text: str) -> str:
    """Undo the %XX encoding of a modalias(...) provide, as libzypp does."""
    return _PERCENT_RE.sub(lambda m: chr(int(m.group(1), 16)), text) \
        .encode('latin-1', errors='surrogateescape').decode('utf-8', errors='replace')


def modalias_from_provide(provide: str) -> Optional[tuple[str, Optional[str]]]:
    """'modalias(pci:v...*) = i40e' -> ('pci:v...*', 'i40e'); the module part is optional."""
    if not provide.startswith('modalias('):
        return None
    close = provide.rfind(')')
    pattern, rest = provide[9:close], provide[close + 1:].strip()
    if close < 0 or not pattern or '(' in pattern or ' ' in pattern:
        return None
    module = None
    if rest:
        if not rest.startswith('='):
            return None
        module = normalize(rest[1:].strip()) or None
    return (decode_modalias(pattern) if '%' in pattern else pattern), module


def kernel_release_from_path(path: str) -> Optional[str]:
    """'/lib/modules/6.9.1-1.x86_64/kernel/x.ko' -> '6.9.1-1.x86_64'."""
    stripped = path.lstrip('/')
    for prefix in MODULE_DIRS:
        if stripped.startswith(prefix + '/'):
            rest = stripped[len(prefix) + 1:]
            kver, sep, _ = rest.partition('/')
            if kver and sep:
                return kver
    return None


def release_dirs(root: str) -> list[tuple[str, str]]:
    """(MODULE_DIRS entry, KVER) for each kernel release directory under ROOT, sorted."""
    found = []
    for modules_dir in MODULE_DIRS:
        try:
            found += [(modules_dir, entry.name)
                      for entry in os.scandir(os.path.join(root, modules_dir)) if entry.is_dir()]
        except OSError:
            continue
    return sorted(found)


def modules_dir(root: str, kver: str) -> str:
    """Where kmod looks for KVER's modules under ROOT (kmod's MODULE_DIRECTORY)."""
    return os.path.join(root, 'lib/modules', kver)


def has_index(dirname: str) -> bool:
    """Whether depmod has written a module index in DIRNAME (see modules_dir())."""
    return os.path.isfile(os.path.join(dirname, 'modules.dep.bin')) or \
        os.path.isfile(os.path.join(dirname, 'modules.dep'))


class _Lib:
    """The few libkmod entry points we use, typed once."""

    def __init__(self) -> None:
        try:
            # The soname first: find_library() may run ldconfig or gcc to look.
            lib = ctypes.CDLL('libkmod.so.2')
        except OSError:
            # ctypes.util imports shutil, subprocess and tempfile (~20 ms on Python 3.14):
            # only for this fallback
            from ctypes.util import find_library
            try:
                lib = ctypes.CDLL(find_library('kmod') or 'libkmod.so')
            except OSError as exc:
                raise KmodError('libkmod cannot be loaded: %s' % exc) from exc
        vp, cp, ip = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        sigs = {
            'kmod_new': (vp, [cp, ctypes.POINTER(cp)]),
            'kmod_unref': (vp, [vp]),
            'kmod_load_resources': (ip, [vp]),
            'kmod_set_log_priority': (None, [vp, ip]),
            'kmod_module_new_from_lookup': (ip, [vp, cp, ctypes.POINTER(vp)]),
            'kmod_module_new_from_name': (ip, [vp, cp, ctypes.POINTER(vp)]),
            'kmod_module_unref_list': (ip, [vp]),
            'kmod_module_unref': (vp, [vp]),
            'kmod_list_next': (vp, [vp, vp]),
            'kmod_module_get_module': (vp, [vp]),
            'kmod_module_get_name': (cp, [vp]),
            'kmod_module_get_path': (cp, [vp]),
            'kmod_dump_index': (ip, [vp, ip, ip]),
            'kmod_module_new_from_path': (ip, [vp, cp, ctypes.POINTER(vp)]),
            'kmod_module_get_info': (ip, [vp, ctypes.POINTER(vp)]),
            'kmod_module_info_get_key': (cp, [vp]),
            'kmod_module_info_get_value': (cp, [vp]),
            'kmod_module_info_free_list': (None, [vp]),
        }
        for fname, (restype, argtypes) in sigs.items():
            func = getattr(lib, fname)
            func.restype = restype
            func.argtypes = argtypes
            setattr(self, fname, func)


_LIB: Optional[_Lib] = None


class _CLocale:
    """The calling thread in the C locale while libkmod matches aliases.

    kmod's own tools never call setlocale(), so modprobe matches with glibc's
    byte-wise fnmatch().  Python sets LC_CTYPE from the environment, and under
    a UTF-8 locale fnmatch() converts every pattern to wide characters first,
    which makes the same lookups two to three times slower.  uselocale() is
    per thread, so dnf's own locale is untouched.
    """

    def __init__(self) -> None:
        libc = ctypes.CDLL(None)
        self._newlocale = libc.newlocale
        self._newlocale.restype = ctypes.c_void_p
        self._newlocale.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
        self._uselocale = libc.uselocale
        self._uselocale.restype = ctypes.c_void_p
        self._uselocale.argtypes = [ctypes.c_void_p]
        self._c = self._newlocale(1 << locale.LC_CTYPE, b'C', None)

    @contextlib.contextmanager
    def active(self):
        if not self._c:
            yield
            return
        previous = self._uselocale(self._c)
        try:
            yield
        finally:
            self._uselocale(previous)


_C_LOCALE: Optional[_CLocale] = None


def _c_locale() -> _CLocale:
    global _C_LOCALE
    if _C_LOCALE is None:
        _C_LOCALE = _CLocale()
    return _C_LOCALE


def _lib() -> _Lib:
    global _LIB
    if _LIB is None:
        _LIB = _Lib()
    return _LIB


class ModuleInfo(namedtuple('ModuleInfo', [
        'name',             # str
        'builtin',          # bool
        'path',             # the .ko file, absolute; None for built-ins and unknown names
        ])):
    """What an index knows of one module name."""
    __slots__ = ()

    @property
    def known(self) -> bool:
        return self.builtin or self.path is not None


def _glibc_fnmatch() -> Any:
    """glibc's fnmatch(3), the function libkmod matches aliases with (called with flags 0)."""
    fnmatch = ctypes.CDLL(None).fnmatch
    fnmatch.restype = ctypes.c_int
    fnmatch.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    return fnmatch


def _module_itself(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


class AliasMatcher:
    """Alias patterns (modalias() provides, or read inside packages) matched as libkmod
    matches a modalias against modules.alias.bin.

    Both sides are normalised first (normalize_alias(): '-' is '_' outside
    bracket expressions; what libkmod refuses matches nothing: depmod leaves
    such a pattern out of the index, and a lookup of such a modalias fails).
    Then, as libkmod's index walk does (libkmod-index.c,
    index_mm_searchwild_node() and index_mm_searchwild_all()), a pattern's
    literal prefix -- up to its first '*', '?' or '[' -- must begin the
    modalias byte for byte (a backslash there is a plain character), and
    glibc's fnmatch() matches the rest of the pattern with the rest of the
    modalias (flags 0, in the C locale as modprobe runs).

    libkmod's walk also follows a '*', '?' or '[' of the modalias itself into
    an index edge of that same character, literally: whether it can depends on
    where the other aliases of the index branch, which no package's own
    patterns tell.  No kernel writes those characters into a modalias but a
    DMI string might; for such a modalias libkmod may find more than this.

    A match also needs room, in libkmod's PATH_MAX buffer, for the modalias,
    the module's name and two bytes more (kmod_module_new_from_alias() in
    libkmod-module.c): when a match has none, libkmod's whole lookup fails
    and finds nothing (kmod_lookup_alias_from_alias_bin()).  MODULE(value)
    names the module of an entry's VALUE (by default the value itself when it
    is a string; None: unknown, taken as fitting).

    Patterns are indexed by their literal prefix, so a modalias is compared
    only with the patterns that can match: its prefixes of the lengths those
    literals have (a few dozen lengths, so the time is linear in the
    modalias's length).
    """

    def __init__(self, entries: Iterable[tuple[str, Any]],
                 module: Callable[[Any], Optional[str]] = _module_itself) -> None:
        by_prefix: dict[bytes, list[tuple[bytes, Any, int]]] = {}
        literal = _LITERAL_PREFIX_BYTES_RE.match
        rooms: dict[Optional[str], int] = {}
        for pattern, value in entries:
            key = alias_key(pattern)
            if key is None:        # depmod leaves it out of the index
                continue
            end = literal(key).end()          # type: ignore[union-attr]
            name = module(value)
            room = rooms.get(name)
            if room is None:       # the longest modalias libkmod can name this module for
                room = rooms[name] = _PATH_MAX - 2 - (len(normalize(name).encode()) if name
                                                      else 0)
            prefix = key[:end]
            if prefix in by_prefix:
                by_prefix[prefix].append((key[end:], value, room))
            else:
                by_prefix[prefix] = [(key[end:], value, room)]
        self._by_prefix = by_prefix
        self._lengths = sorted({len(prefix) for prefix in self._by_prefix})
        self._fnmatch = _glibc_fnmatch()

    def __bool__(self) -> bool:
        return bool(self._by_prefix)

    def match(self, modalias: str) -> list[Any]:
        key = alias_key(modalias)
        if key is None:            # libkmod refuses to look it up
            return []
        found = []
        by_prefix, fnmatch, size = self._by_prefix, self._fnmatch, len(key)
        with _c_locale().active():
            for end in self._lengths:
                if end > size:
                    break
                candidates = by_prefix.get(key[:end])
                if candidates is None:
                    continue
                rest = key[end:]
                for pattern_rest, value, room in candidates:
                    if fnmatch(pattern_rest, rest, 0) == 0 if pattern_rest else not rest:
                        if size > room:
                            return []      # libkmod's lookup fails: nothing at all
                        found.append(value)
        return found


class ModuleIndex:
    """One kernel's module index (/lib/modules/KVER/modules.*.bin) opened with libkmod."""

    def __init__(self, dirname: str, config_paths: Optional[Sequence[str]] = None) -> None:
        if not has_index(dirname):
            raise KmodError('no module index in %s (depmod has not run)' % dirname)
        self.dirname = dirname = os.path.abspath(dirname)
        check_index(dirname)       # before libkmod maps a file that would crash a lookup
        lib = _lib()
        if config_paths is None:
            c_paths = None
        else:
            arr = (ctypes.c_char_p * (len(config_paths) + 1))()
            for i, path in enumerate(config_paths):
                arr[i] = os.fsencode(path)
            arr[len(config_paths)] = None
            c_paths = arr
        self._ctx = lib.kmod_new(os.fsencode(dirname), c_paths)
        if not self._ctx:
            raise KmodError('kmod_new(%s) failed' % dirname)
        lib.kmod_set_log_priority(self._ctx, _LOG_CRIT)
        err = lib.kmod_load_resources(self._ctx)
        if err < 0:
            lib.kmod_unref(self._ctx)
            self._ctx = None
            raise KmodError('cannot load the module index in %s: %s'
                            % (dirname, os.strerror(-err)))
        self._info_cache: dict[str, ModuleInfo] = {}
        self._out = ctypes.c_void_p()              # kmod_module_new_from_lookup()'s list
        self._out_ref = ctypes.byref(self._out)
        self._builtin: Optional[frozenset[str]] = None
        self._in_tree_prefix = os.path.join(dirname, 'kernel') + '/'

    @classmethod
    def for_kernel(cls, root: str, kver: str) -> 'ModuleIndex':
        """KVER's index under ROOT, with ROOT's modprobe.d (kmod's defaults when ROOT is /)."""
        config = None if os.path.realpath(root) == '/' else \
            [os.path.join(root, d) for d in _CONFIG_DIRS]
        return cls(modules_dir(root, kver), config)

    def close(self) -> None:
        if self._ctx:
            _lib().kmod_unref(self._ctx)
            self._ctx = None

    def __enter__(self) -> 'ModuleIndex':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def _lookup(self, modalias: str) -> tuple[str, ...]:
        lib = _lib()
        head = self._out
        err = lib.kmod_module_new_from_lookup(self._ctx, modalias.encode(), self._out_ref)
        if err < 0 or not head.value:
            return ()
        names = []
        entry = head.value
        while entry:
            mod = lib.kmod_module_get_module(entry)
            names.append(lib.kmod_module_get_name(mod).decode())
            lib.kmod_module_unref(mod)
            entry = lib.kmod_list_next(head.value, entry)
        lib.kmod_module_unref_list(head.value)
        head.value = None
        return tuple(names)

    def lookup(self, modalias: str) -> tuple[str, ...]:
        """The module names `modprobe -R MODALIAS` prints, in its order."""
        with _c_locale().active():
            return self._lookup(modalias)

    def lookup_many(self, modaliases: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """lookup() for each distinct alias, in one stretch of the C locale."""
        with _c_locale().active():
            return {alias: self._lookup(alias) for alias in dict.fromkeys(modaliases)}

    def builtin_modules(self) -> frozenset[str]:
        """Names in this kernel's modules.builtin index, as libkmod dumps it.

        Not kmod_module_get_initstate(): kmod 30 falls back to the running
        kernel's /sys/module there, which says nothing about this index.
        """
        if self._builtin is None:
            fd = os.memfd_create('kernelsplit-builtin')
            try:
                if _lib().kmod_dump_index(self._ctx, _KMOD_INDEX_MODULES_BUILTIN, fd) < 0:
                    self._builtin = frozenset()
                else:
                    os.lseek(fd, 0, os.SEEK_SET)
                    with os.fdopen(os.dup(fd), 'rb') as dump:
                        self._builtin = frozenset(
                            normalize(line.split()[0].decode())
                            for line in dump if line.strip())
            finally:
                os.close(fd)
        return self._builtin

    def info(self, name: str) -> ModuleInfo:
        """Whether NAME is built into this kernel, a module file, or unknown to the index."""
        name = normalize(name)
        cached = self._info_cache.get(name)
        if cached is not None:
            return cached
        path = None
        if name in self.builtin_modules():
            result = ModuleInfo(name=name, builtin=True, path=None)
        else:
            lib = _lib()
            mod = ctypes.c_void_p()
            if lib.kmod_module_new_from_name(self._ctx, name.encode(), ctypes.byref(mod)) >= 0 \
                    and mod:
                raw_path = lib.kmod_module_get_path(mod)
                if raw_path:
                    path = os.fsdecode(raw_path)
                lib.kmod_module_unref(mod)
            result = ModuleInfo(name=name, builtin=False, path=path)
        self._info_cache[name] = result
        return result

    def is_out_of_tree(self, name: str) -> bool:
        """A module file the kernel's own build did not install (extra/, updates/, ...)."""
        path = self.info(name).path
        return path is not None and not path.startswith(self._in_tree_prefix)


class ModuleFileReader:
    """Reads the .modinfo of module files as modinfo does: libkmod's
    kmod_module_new_from_path() and kmod_module_get_info(), which decompress a
    .ko.xz / .ko.zst / .ko.gz as far as libkmod was built to.

    One libkmod context per reader, and libkmod contexts are not to be shared
    between threads: one reader per thread.
    """

    def __init__(self) -> None:
        lib = _lib()
        # No index is read: the directory only has to be given.
        self._ctx = lib.kmod_new(b'/nonexistent-kernelsplit', None)
        if not self._ctx:
            raise KmodError('kmod_new() failed')
        lib.kmod_set_log_priority(self._ctx, _LOG_CRIT)

    def info(self, path: str) -> list[tuple[str, str]]:
        """The KEY=VALUE entries of PATH's .modinfo, in order; KmodError when it cannot be read."""
        lib = _lib()
        module = ctypes.c_void_p()
        err = lib.kmod_module_new_from_path(self._ctx, os.fsencode(path), ctypes.byref(module))
        if err < 0 or not module:
            raise KmodError('%s: %s' % (path, os.strerror(-err)))
        entries = ctypes.c_void_p()
        try:
            err = lib.kmod_module_get_info(module, ctypes.byref(entries))
            if err < 0:
                raise KmodError('%s: cannot read its .modinfo (%s)' % (path, os.strerror(-err)))
            found = []
            entry = entries.value
            while entry:
                found.append((lib.kmod_module_info_get_key(entry).decode(errors='replace'),
                              lib.kmod_module_info_get_value(entry).decode(errors='replace')))
                entry = lib.kmod_list_next(entries.value, entry)
            return found
        finally:
            if entries.value:
                lib.kmod_module_info_free_list(entries.value)
            lib.kmod_module_unref(module)

    def close(self) -> None:
        if self._ctx:
            _lib().kmod_unref(self._ctx)
            self._ctx = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass
