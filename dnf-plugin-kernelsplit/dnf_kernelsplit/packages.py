"""Package lookup: which package of a kernel release ships which module.

A kernel release (`uname -r`, KVER) is recognised by what its packages ship,
never by their names: files under /lib/modules/KVER/ or a `*-uname-r = KVER`
provide.  The packages of one release are the binary packages built from the
same source package for the same arch that ship into that KVER.  A package's
modules come from its `kmod(NAME.ko)` provides (Fedora's kernel packages carry
them) or, failing those, from its file list.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

from .kmod import MODULE_DIRS, AliasMatcher, kernel_release_from_path, modalias_from_provide, \
    module_name_from_kmod_provide, module_name_from_path

_MODULE_GLOBS = ['/%s/*' % d for d in MODULE_DIRS]


@dataclass(frozen=True)
class PackageRef:
    """A package as the policy sees it.

    installed: in the rpmdb now; present: installed once the transaction at
    hand is done (the same as installed when there is no transaction).
    """
    nevra: str
    name: str
    installed: bool
    present: Optional[bool] = None

    def __post_init__(self) -> None:
        if self.present is None:
            object.__setattr__(self, 'present', self.installed)


@dataclass(frozen=True)
class AliasEntry:
    """One modalias(PATTERN) [= MODULE] provide of a package."""
    pattern: str
    module: Optional[str]
    package: PackageRef


@dataclass(frozen=True)
class KernelPackages:
    """The packages of one kernel release, the modules each ships and their modalias provides."""
    kver: str
    packages: tuple[PackageRef, ...]
    modules: Mapping[str, tuple[PackageRef, ...]] = field(hash=False, compare=False)
    aliases: tuple[AliasEntry, ...] = ()
    shipping: frozenset[str] = frozenset()   # NEVRAs of the packages that ship modules

    @property
    def installed(self) -> bool:
        return any(p.installed for p in self.packages)

    @property
    def lacking_packages(self) -> tuple[PackageRef, ...]:
        """Packages shipping modules that will not be installed: what a local index cannot know."""
        return tuple(p for p in self.packages if p.nevra in self.shipping and not p.present)

    def providers(self, module: str) -> tuple[PackageRef, ...]:
        return self.modules.get(module, ())


def nevra(pkg: Any) -> str:
    """'name-[epoch:]version-release.arch', as dnf prints it."""
    epoch = '%s:' % pkg.epoch if pkg.epoch else ''
    return '%s-%s%s-%s.%s' % (pkg.name, epoch, pkg.version, pkg.release, pkg.arch)


def package_kernel_releases(pkg: Any) -> frozenset[str]:
    """The KVERs PKG ships into (/lib/modules/KVER/...) or declares (*-uname-r = KVER)."""
    kvers = set()
    for reldep in pkg.provides:
        name, sep, version = str(reldep).partition(' = ')
        if sep and name.endswith('-uname-r'):
            kvers.add(version.strip())
    for path in pkg.files:
        kver = kernel_release_from_path(path)
        if kver is not None:
            kvers.add(kver)
    return frozenset(kvers)


def package_modules(pkg: Any, kver: str) -> frozenset[str]:
    """Modules PKG ships for KVER: its kmod() provides, else its .ko files."""
    from_provides = {module_name_from_kmod_provide(str(r)) for r in pkg.provides}
    from_provides.discard(None)
    if from_provides:
        return frozenset(from_provides)  # type: ignore[arg-type]
    names = set()
    for path in pkg.files:
        if kernel_release_from_path(path) == kver:
            name = module_name_from_path(path)
            if name is not None:
                names.add(name)
    return frozenset(names)


def package_modaliases(pkg: Any) -> list[tuple[str, Optional[str]]]:
    """PKG's modalias(PATTERN) [= MODULE] provides, decoded."""
    found = []
    for reldep in pkg.provides:
        text = str(reldep)
        if text.startswith('modalias('):
            parsed = modalias_from_provide(text)
            if parsed is not None:
                found.append(parsed)
    return found


def _evr_cmp(a: Any, b: Any) -> int:
    return a.evr_cmp(b)


def newest_first(pkgs: Iterable[Any]) -> list[Any]:
    return sorted(pkgs, key=functools.cmp_to_key(_evr_cmp), reverse=True)


@dataclass(frozen=True)
class InstalledKernel:
    kver: str
    packages: tuple[Any, ...] = field(hash=False, compare=False)  # installed hawkey packages


def installed_kernels(sack: Any) -> list[InstalledKernel]:
    """Installed kernel releases, the newest (the default boot entry) first."""
    installed = sack.query().installed()
    candidates = installed.filter(file__glob=_MODULE_GLOBS).union(
        installed.filter(provides__glob='*-uname-r'))
    kernels = [InstalledKernel(kver, tuple(pkgs)) for kver, pkgs in kernels_of(candidates).items()]

    def newest(kernel: InstalledKernel) -> Any:
        return newest_first(kernel.packages)[0]

    return sorted(kernels, key=functools.cmp_to_key(
        lambda a, b: _evr_cmp(newest(a), newest(b)) or (a.kver > b.kver) - (a.kver < b.kver)),
        reverse=True)


def release_packages(sack: Any, kver: str, seeds: Iterable[Any]) -> list[Any]:
    """Every package (installed or available) of release KVER, found from SEEDS.

    Siblings are the packages built from a seed's source package for its arch
    (kernel.spec builds the whole split at once); of those, the ones that ship
    into KVER belong to it -- a -debug flavour from the same source does not.
    """
    found: dict[Any, None] = {}   # hawkey packages hash by solvable: an ordered set
    for seed in seeds:
        siblings = sack.query().filter(sourcerpm=seed.sourcerpm, arch=seed.arch) \
            if seed.sourcerpm else [seed]
        for pkg in siblings:
            if pkg not in found and kver in package_kernel_releases(pkg):
                found[pkg] = None
    return list(found)


def kernel_packages(kver: str, pkgs: Iterable[Any], added: frozenset[str] = frozenset(),
                    removed: frozenset[str] = frozenset()) -> KernelPackages:
    """The module -> package map of release KVER made of PKGS (hawkey packages).

    ADDED / REMOVED: NEVRAs the transaction at hand installs / takes away; a
    package is `present` when installed and not removed, or added.
    """
    refs: dict[str, PackageRef] = {}
    shipped: dict[str, set[str]] = {}
    aliases: dict[str, list[tuple[str, Optional[str]]]] = {}
    for pkg in pkgs:
        key = nevra(pkg)
        installed = bool(pkg.installed) or (key in refs and refs[key].installed)
        refs[key] = PackageRef(key, pkg.name, installed,
                               (installed and key not in removed) or key in added)
        shipped.setdefault(key, set()).update(package_modules(pkg, kver))
        aliases.setdefault(key, package_modaliases(pkg))
    modules: dict[str, list[PackageRef]] = {}
    for key in sorted(refs):
        for module in shipped[key]:
            modules.setdefault(module, []).append(refs[key])
    return KernelPackages(
        kver, tuple(refs[k] for k in sorted(refs)),
        {m: tuple(p) for m, p in modules.items()},
        tuple(AliasEntry(pattern, module, refs[key])
              for key in sorted(refs) for pattern, module in aliases[key]),
        frozenset(k for k, names in shipped.items() if names))


def kernels_of(pkgs: Iterable[Any]) -> dict[str, list[Any]]:
    """KVER -> the packages among PKGS that ship into it."""
    found: dict[str, list[Any]] = {}
    for pkg in pkgs:
        for kver in package_kernel_releases(pkg):
            found.setdefault(kver, []).append(pkg)
    return found


def modalias_matches(release: KernelPackages,
                     modaliases: Iterable[str]) -> dict[str, tuple[AliasEntry, ...]]:
    """Exact mode: each MODALIAS matched against RELEASE's modalias() provides."""
    if not release.aliases:
        return {}
    matcher = AliasMatcher((entry.pattern, entry) for entry in release.aliases)
    return {alias: tuple(matcher.match(alias)) for alias in dict.fromkeys(modaliases)}
