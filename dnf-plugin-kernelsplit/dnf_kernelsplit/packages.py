"""Package lookup: which package of a kernel release ships which module.

A kernel release (`uname -r`, KVER) is recognised by what its packages ship,
never by their names: files under /lib/modules/KVER/ or a `*-uname-r = KVER`
provide.  The packages of one release are the binary packages built from the
same source package for the same arch that ship into that KVER.  A package's
modules come from its `kmod(NAME.ko)` provides (Fedora's kernel packages carry
them) or, failing those, from its file list.

The queries go through a LOOKUP, the package manager's side: packages_dnf4
(hawkey) or packages_dnf5 (libdnf5), the only modules that know which one is
present.  A lookup answers a few questions -- installed_owners(paths),
owners(paths), siblings(seed), provides_query(pkgs), declaring(pkgs, provide,
glob), declared_releases(pkg) and modalias_provides(pkg, wanted) -- about
packages that have the attributes hawkey's have: name, epoch, version,
release, arch, evr, files, provides, sourcerpm, installed, chksum, evr_cmp().
Everything here is shared.
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
from collections import namedtuple
from types import MappingProxyType

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Any, Iterable, Optional

from .cache import AnswerCache
from .kmod import MODULE_DIRS, AliasMatcher, ModaliasFilter, kernel_release_from_path, \
    module_name_from_path, release_dirs

MODULE_GLOBS = ['/%s/*' % d for d in MODULE_DIRS]
_ENTRY_MODULE = operator.attrgetter('module')
_PAIR_MODULE = operator.itemgetter(1)


class PackageRef(namedtuple('PackageRef', [
        'nevra',            # str
        'name',             # str
        'installed',        # bool: in the rpmdb now
        'present',          # bool: installed once the transaction at hand is done
        ])):
    """A package as the policy sees it."""
    __slots__ = ()

    def __new__(cls, nevra: str, name: str, installed: bool,
                present: Optional[bool] = None) -> 'PackageRef':
        # Without a transaction at hand, present is installed.
        return super().__new__(cls, nevra, name, installed,
                               installed if present is None else present)


class AliasEntry(namedtuple('AliasEntry', [
        'pattern',          # str
        'module',           # str or None
        'package',          # PackageRef
        'via',              # 'exact': a modalias() provide; 'inspect': read in the payload
        ], defaults=('exact',))):
    """One alias PATTERN of a module of a package."""
    __slots__ = ()


class KernelPackages(namedtuple('KernelPackages', [
        'kver',             # str
        'packages',         # tuple[PackageRef, ...]
        'modules',          # Mapping[str, tuple[PackageRef, ...]]: module -> its packages
        'shipping',         # frozenset[str]: NEVRAs of the packages that ship modules
                            # and will not be installed (see below)
        'exact',            # Mapping[str, tuple[AliasEntry, ...]]
        'unread',           # Mapping[str, str]: NEVRA -> why the aliases of that package,
                            # shipping modules and not to be installed, are unknown
        'in_repos',         # bool: an enabled repository carries the release, so
                            # its packages that are not installed are known
        ], defaults=(frozenset(), MappingProxyType({}), MappingProxyType({}), True))):
    """The packages of one kernel release and which of them ship the modules asked about.

    Exact and inspect mode: `exact` maps each modalias the local indexes could
    not resolve to the aliases that match it -- modalias() provides, or read
    inside the package (inspect mode) -- among the packages that are not
    (going to be) installed; `unread` names those of them whose aliases nothing
    could tell, and why.  `shipping` (the packages that ship modules and will
    not be installed) says which packages a device without a driver may be
    waiting for.  All three are only looked for when some modalias is unresolved.
    """
    __slots__ = ()

    @property
    def unread_packages(self) -> tuple[PackageRef, ...]:
        """Those of them whose aliases are unknown: what stops a device being judged."""
        return tuple(p for p in self.packages if p.nevra in self.unread)

    def providers(self, module: str) -> tuple[PackageRef, ...]:
        return self.modules.get(module, ())


def nevra(pkg: Any) -> str:
    """'name-[epoch:]version-release.arch', as dnf prints it."""
    epoch = '%s:' % pkg.epoch if pkg.epoch else ''
    return '%s-%s%s-%s.%s' % (pkg.name, epoch, pkg.version, pkg.release, pkg.arch)


# Files only the kernel itself ships into /lib/modules/KVER/ (Fedora's and RHEL's
# kernel-core): a kmod or a kABI list never does.
KERNEL_FILES = frozenset({'vmlinuz', 'modules.builtin'})


class Shipment(namedtuple('Shipment', [
        'kvers',            # frozenset[str]: the releases a package ships into
        'kernels',          # frozenset[str]: those of them it is the kernel of
        ])):
    """Where one package's files go."""
    __slots__ = ()


def declared_releases(provides: Iterable[Any]) -> frozenset[str]:
    """The KVERs of the `*-uname-r = KVER` among PROVIDES (the kernel build's own
    packages declare them; kmodtool's kmods say kernel-modules-for-kernel instead)."""
    kvers = set()
    for reldep in provides:
        name, sep, version = str(reldep).partition(' = ')
        if sep and name.endswith('-uname-r'):
            kvers.add(version.strip())
    return frozenset(kvers)


def package_shipment(pkg: Any, lookup: Optional[Any] = None) -> Shipment:
    """The KVERs PKG ships into (/lib/modules/KVER/...) or, failing that, declares
    (declared_releases(): asked of LOOKUP, which may know a cheaper way than reading
    every provide; None: read them), and those it is the kernel of (it ships
    KERNEL_FILES there, or has no files and declares it).

    Files first: a kernel package's file list is short next to its provides
    (tens of thousands with kmod() and modalias() ones).
    """
    kvers: set[str] = set()
    kernels: set[str] = set()
    prefix, kver = None, None
    for path in pkg.files:
        if prefix is None or not path.startswith(prefix):
            kver = kernel_release_from_path(path)
            if kver is None:
                continue
            kvers.add(kver)
            prefix = path[:path.index(kver) + len(kver) + 1]
        if path[len(prefix):] in KERNEL_FILES:
            kernels.add(kver)
    if kvers:
        return Shipment(frozenset(kvers), frozenset(kernels))
    declared = lookup.declared_releases(pkg) if lookup is not None else \
        declared_releases(pkg.provides)
    return Shipment(declared, declared)


def package_kernel_releases(pkg: Any, lookup: Optional[Any] = None) -> frozenset[str]:
    """The KVERs PKG ships into or declares (see package_shipment)."""
    return package_shipment(pkg, lookup).kvers


def ships_modules(pkg: Any, kver: str) -> bool:
    """Whether PKG ships any module for KVER (file list, else a kmod() provide)."""
    files = pkg.files
    for path in files:
        if module_name_from_path(path) is not None and kernel_release_from_path(path) == kver:
            return True
    return not files and any(str(r).startswith('kmod(') for r in pkg.provides)


# A module name with more separators than this is looked up in its two uniform
# spellings only (its file may mix them: snd-soc-sof_es8336.ko).
_SPELLED_SEPARATORS = 6


def kmod_provides(module: str) -> list[str]:
    """The kmod() provides that may name MODULE: its file name has '-' or '_' at each
    separator (every mix, up to _SPELLED_SEPARATORS of them), and exact provides
    lookups are indexed where globs scan every package."""
    parts = module.split('_')
    separators = len(parts) - 1
    spellings = itertools.product('_-', repeat=separators) \
        if separators <= _SPELLED_SEPARATORS else [('_',) * separators, ('-',) * separators]
    forms = {parts[0] + ''.join(sep + part for sep, part in zip(seps, parts[1:]))
             for seps in spellings}
    return ['kmod(%s.ko)' % form for form in sorted(forms)]


def modules_in_files(pkg: Any, kver: str) -> frozenset[str]:
    """The modules PKG's file list puts under /lib/modules/KVER/."""
    names = set()
    for path in pkg.files:
        if kernel_release_from_path(path) == kver:
            name = module_name_from_path(path)
            if name is not None:
                names.add(name)
    return frozenset(names)


def _evr_cmp(a: Any, b: Any) -> int:
    return a.evr_cmp(b)


def newest_first(pkgs: Iterable[Any]) -> list[Any]:
    return sorted(pkgs, key=functools.cmp_to_key(_evr_cmp), reverse=True)


class Shipped(namedtuple('Shipped', [
        'packages',         # list of hawkey packages shipping into one KVER
        'kernel',           # bool: one of them is that kernel itself
        ])):
    """Packages of one release among a set (a transaction's, say)."""
    __slots__ = ()


def releases_of(pkgs: Iterable[Any], lookup: Optional[Any] = None) -> dict[str, Shipped]:
    """KVER -> the packages among PKGS that ship into it, and whether one is its kernel
    (LOOKUP: see package_shipment)."""
    found: dict[str, Shipped] = {}
    for pkg in pkgs:
        shipment = package_shipment(pkg, lookup)
        for kver in shipment.kvers:
            shipped = found.setdefault(kver, Shipped([], False))
            shipped.packages.append(pkg)
            if kver in shipment.kernels and not shipped.kernel:
                found[kver] = Shipped(shipped.packages, True)
    return found


def declares_kernel(lookup: Any, pkgs: Iterable[Any], kver: str) -> bool:
    """Whether one of PKGS says it belongs to kernel KVER's own build by its provides:
    installonlypkg(kernel), or *-uname-r = KVER.  For packages whose files do not
    say so (no file lists, or a kernel that keeps vmlinuz elsewhere); the lookup
    answers without turning every provide into a string."""
    pkgs = list(pkgs)
    return bool(lookup.declaring(pkgs, 'installonlypkg(kernel)') or
                lookup.declaring(pkgs, '*-uname-r = %s' % kver, glob=True))


class InstalledKernel(namedtuple('InstalledKernel', [
        'kver',             # str
        'packages',         # installed hawkey packages of KVER's kernel: seeds for
                            # release_packages()
        ])):
    """A kernel release installed in the root."""
    __slots__ = ()

    @property
    def newest(self) -> Any:
        """Its newest kernel package: what orders kernels (never a kmod's version)."""
        return newest_first(self.packages)[0]


def _kernel_files(modules_dir: str, kver: str) -> list[str]:
    return ['/%s/%s/%s' % (modules_dir, kver, name) for name in sorted(KERNEL_FILES)]


def installed_kernels(lookup: Any, root: str = '/') -> list[InstalledKernel]:
    """Installed kernel releases, newest first by their kernel package's EVR.

    A directory ROOT/lib/modules/KVER (or usr/lib/modules/KVER) is an installed
    kernel when an installed package is that kernel: it owns vmlinuz or
    modules.builtin there, or owns something there and declares itself the
    kernel (declares_kernel).  Not kABI lists (/lib/modules/kabi-rhel90), nor
    a kmod left behind for a kernel that is gone.  Exact file lookups, which
    libsolv answers quickly, where a glob over every file list in the sack
    costs tens of milliseconds on a distribution-sized host.
    """
    kernels: dict[str, list[Any]] = {}
    for modules_dir, kver in release_dirs(root):
        found = lookup.installed_owners(_kernel_files(modules_dir, kver))
        if found:
            kernels.setdefault(kver, []).extend(found)
            continue
        owners = _first_owners(lookup, root, modules_dir, kver)
        if owners and declares_kernel(lookup, owners, kver):
            kernels.setdefault(kver, []).extend(owners)
    if not kernels:
        # Nothing on disk (an rpmdb without payload): the slow, complete search.
        for kver, shipped in releases_of(lookup.installed_owners(MODULE_GLOBS, glob=True),
                                         lookup).items():
            if shipped.kernel or declares_kernel(lookup, shipped.packages, kver):
                kernels[kver] = shipped.packages
    found_kernels = [InstalledKernel(kver, tuple(pkgs)) for kver, pkgs in kernels.items()]
    return sorted(found_kernels, key=functools.cmp_to_key(
        lambda a, b: _evr_cmp(a.newest, b.newest) or (a.kver > b.kver) - (a.kver < b.kver)),
        reverse=True)


def _first_owners(lookup: Any, root: str, modules_dir: str, kver: str) -> list[Any]:
    """Installed packages owning ROOT/MODULES_DIR/KVER or the first entry in it that has one.

    Each exact lookup costs about a millisecond: one owner is enough to tell.
    """
    try:
        entries = sorted(os.listdir(os.path.join(root, modules_dir, kver)))
    except OSError:
        return []
    for name in [''] + entries:
        path = '/%s/%s' % (modules_dir, kver) + ('/%s' % name if name else '')
        found = lookup.installed_owners([path])
        if found:
            return found
    return []


def release_seeds(lookup: Any, kver: str) -> list[Any]:
    """Packages (installed or available) that are kernel KVER, found by exact lookups:
    seeds for release_packages() when nothing else names the release."""
    found = {pkg: None for modules_dir in MODULE_DIRS
             for pkg in lookup.owners(_kernel_files(modules_dir, kver))}
    found.update((pkg, None) for pkg in lookup.declaring(None, '*-uname-r = %s' % kver,
                                                          glob=True))
    return list(found)


def release_packages(lookup: Any, kver: str, seeds: Iterable[Any]) -> list[Any]:
    """Every package (installed or available) of release KVER, found from SEEDS.

    SEEDS ship into KVER.  Siblings are the packages built from a seed's source
    package for its arch (kernel.spec builds the whole split at once); of
    those, the ones that ship into KVER belong to it -- a -debug flavour from
    the same source does not.
    """
    seeds = list(seeds)
    known = set(seeds)            # their file lists need no second reading
    found: dict[Any, None] = {}   # packages hash by solvable: an ordered set
    searched = set()
    for seed in seeds:
        # A search scans the whole sack: once per source package and arch.
        if seed.sourcerpm and (seed.sourcerpm, seed.arch) in searched:
            continue
        searched.add((seed.sourcerpm, seed.arch))
        for pkg in lookup.siblings(seed) if seed.sourcerpm else [seed]:
            if pkg not in found and (pkg in known or
                                     kver in package_kernel_releases(pkg, lookup)):
                found[pkg] = None
    return list(found)


def kernel_packages(lookup: Any, kver: str, pkgs: Iterable[Any], wanted: Iterable[str] = (),
                    unresolved: Iterable[str] = (), added: frozenset[str] = frozenset(),
                    removed: frozenset[str] = frozenset(),
                    builtin: frozenset[str] = frozenset(),
                    cache: Optional[AnswerCache] = None,
                    inspector: Optional[Any] = None) -> KernelPackages:
    """Release KVER made of PKGS: which of them ships each WANTED module, and which
    aliases match each UNRESOLVED modalias (exact mode, then inspect mode).

    A module's packages are those with its kmod(NAME.ko) provide (a whatprovides
    lookup); failing those, those whose kmod() provides or file list name it
    with other separators (globs).  BUILTIN modules (per the local index) skip that
    slower search: no package ships them.  ADDED / REMOVED: NEVRAs the
    transaction at hand installs / takes away; a package is `present` when
    installed and not removed, or added.  CACHE: where the answers are kept
    between runs (see cache.py).  INSPECTOR: an inspection.Inspector, to read
    the aliases inside packages that carry no modalias() provides (None: those
    stay unread).
    """
    pkgs = list(pkgs)
    refs: dict[str, PackageRef] = {}
    for pkg in pkgs:
        key = nevra(pkg)
        installed = bool(pkg.installed) or (key in refs and refs[key].installed)
        refs[key] = PackageRef(key, pkg.name, installed,
                               (installed and key not in removed) or key in added)
    providing = lookup.provides_query(pkgs)
    scanned: Optional[dict[str, set[str]]] = None
    modules: dict[str, tuple[PackageRef, ...]] = {}
    with_kmod_provides = False
    for module in sorted(set(wanted)):
        found = {nevra(p) for p in providing(kmod_provides(module))}
        with_kmod_provides = with_kmod_provides or bool(found)
        if not found and module not in builtin and not with_kmod_provides:
            # No kmod() provides so far (file lists only): the modules the file lists
            # name, read once.
            if scanned is None:
                scanned = {}
                for pkg in pkgs:
                    for name in modules_in_files(pkg, kver):
                        scanned.setdefault(name, set()).add(nevra(pkg))
            found = scanned.get(module, set())
        modules[module] = tuple(refs[k] for k in sorted(found))
    unresolved = list(dict.fromkeys(unresolved))
    if not unresolved:
        return KernelPackages(kver, tuple(refs[k] for k in sorted(refs)), modules,
                              in_repos=any(not pkg.installed for pkg in pkgs))
    # Exact and inspect mode only look where the local indexes cannot: packages not
    # installed, for the modaliases they named no module for.
    absent = [pkg for pkg in sorted(pkgs, key=nevra) if not refs[nevra(pkg)].present]
    shipping = frozenset(nevra(p) for p in absent if ships_modules(p, kver))
    entries: dict[AliasEntry, None] = {}
    without_provides = []
    wanted_aliases = None
    for pkg in absent:
        key = cache.key(nevra(pkg), pkg.chksum, unresolved) if cache is not None else None
        answer = cache.get(key) if key is not None else None
        if answer is None:
            if wanted_aliases is None:
                wanted_aliases = ModaliasFilter(unresolved)
            answer = lookup.modalias_provides(pkg, wanted_aliases)
            if key is not None:
                cache.put(key, answer)
        has_any, matching = answer
        if not has_any and nevra(pkg) in shipping:
            without_provides.append(pkg)
        for pattern, module in matching:
            entries.setdefault(AliasEntry(pattern, module, refs[nevra(pkg)]), None)
    matcher = AliasMatcher(((entry.pattern, entry) for entry in entries), _ENTRY_MODULE)
    exact = {alias: matcher.match(alias) for alias in unresolved} if matcher else {}
    unread = _inspect(without_provides, [a for a in unresolved if not exact.get(a)], refs,
                      exact, cache, inspector)
    return KernelPackages(kver, tuple(refs[k] for k in sorted(refs)), modules, shipping,
                          {a: tuple(m) for a, m in exact.items() if m}, unread,
                          any(not pkg.installed for pkg in pkgs))


def _inspect(candidates: list[Any], pending: list[str], refs: dict[str, PackageRef],
             exact: dict[str, list[AliasEntry]], cache: Optional[AnswerCache],
             inspector: Optional[Any]) -> dict[str, str]:
    """Inspect mode: match PENDING modaliases with the aliases inside CANDIDATES, adding
    to EXACT; the candidates left unread, and why.

    The smallest packages first (the most judged per MB of the budget), and no
    further once every pending modalias is answered.
    """
    unread: dict[str, str] = {}
    for pkg in sorted(candidates, key=lambda p: (int(getattr(p, 'downloadsize', 0) or 0),
                                                 nevra(p))):
        name = nevra(pkg)
        if not pending:
            break
        key = cache.key(name, pkg.chksum, pending, kind='inspect') \
            if cache is not None else None
        answer = cache.get(key) if key is not None else None
        if answer is None:
            table = inspector.table(pkg, name) if inspector is not None else None
            if table is None:
                unread[name] = inspector.unread.get(name, 'it was not read') \
                    if inspector is not None else 'inspect mode does not run here'
                continue
            found = AliasMatcher(((pattern, (pattern, module)) for module, aliases in table.items()
                                  for pattern in aliases), _PAIR_MODULE)
            answer = True, list(dict.fromkeys(match for alias in pending
                                              for match in found.match(alias)))
            if key is not None:
                cache.put(key, answer)
        matcher = AliasMatcher(((pattern, AliasEntry(pattern, module, refs[name], 'inspect'))
                                for pattern, module in answer[1]), _ENTRY_MODULE)
        for alias in pending:
            exact.setdefault(alias, []).extend(matcher.match(alias) if matcher else ())
        pending = [alias for alias in pending if not exact.get(alias)]
    return unread


