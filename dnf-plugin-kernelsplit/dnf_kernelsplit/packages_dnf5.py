"""Package lookup through libdnf5 (dnf5's library): the queries packages.py asks of a lookup.

With packages_dnf4.py, the only place that knows which package manager is
present.  libdnf5's packages are wrapped in Dnf5Package, which gives them the
attributes of hawkey's that packages.py reads.

dnf5 loads no file lists by default (its `optional_metadata_types` is comps
and updateinfo): an available package's files are then empty, and a kernel
release is told from its packages' `*-uname-r = KVER` and `kmod(NAME.ko)`
provides, which Fedora's and RHEL's kernels carry.  open_base(filelists=True)
adds them, as `--setopt=optional_metadata_types=filelists` does for dnf5: the
file lists of a distribution's repositories are tens of megabytes to download
and parse once, then a cached .solvx file per repository.  Installed
packages' files always come from the rpmdb.
"""

from __future__ import annotations

import fnmatch
import itertools

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import libdnf5

from .kmod import ModaliasFilter, select_modalias_provides
from .packages import declared_releases

_GLOB = libdnf5.common.QueryCmp_GLOB


class BackendError(Exception):
    """libdnf5 could not be set up as asked (a bad option, an unusable root); str() says why."""


class NeedsRpmdb(Exception):
    """A lookup opened without the rpmdb was asked what only the rpmdb tells (an installed
    package's files, provides or source package; the packages of an installed build):
    open it again with the rpmdb.  str() says what was asked."""


def _evr_cmp(a: Any, b: Any) -> int:
    """rpm's EVR comparison: epoch as a number, then version and release as rpmvercmp."""
    return (a.epoch > b.epoch) - (a.epoch < b.epoch) or \
        libdnf5.rpm.rpmvercmp(a.version, b.version) or \
        libdnf5.rpm.rpmvercmp(a.release, b.release)


class Provides:
    """A package's provides as rpm prints them ('name = version'), each turned into a
    string the first time it is reached, and kept: a question that stops at the first
    match (a kmod() provide, say) reads only the provides before it.

    Each step through libdnf5's list is a call into the bindings (about 1.3 us with
    the string: 33 ms for the 25,000 provides of a kernel's driver package with
    modalias() provides); indexing the list costs half of iterating it.
    """

    __slots__ = ('_reldeps', '_size', '_strings')

    def __init__(self, reldeps: Any) -> None:
        self._reldeps = reldeps
        self._size = reldeps.size()
        self._strings: list[str] = []

    def __len__(self) -> int:
        return self._size

    @property
    def read(self) -> int:
        """How many have been turned into strings so far."""
        return len(self._strings)

    def __iter__(self) -> Iterator[str]:
        strings = self._strings
        if len(strings) == self._size:
            return iter(strings)
        return self._reading()

    def _reading(self) -> Iterator[str]:
        strings, get = self._strings, self._reldeps.get
        for index in range(self._size):
            if index == len(strings):
                strings.append(str(get(index)))
            yield strings[index]

    def __getitem__(self, index: int) -> str:
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError(index)
        for _ in itertools.islice(self._reading(), index + 1):
            pass
        return self._strings[index]


class Dnf5Package:
    """A libdnf5.rpm.Package with the attributes of hawkey's that packages.py reads.

    Two wrappers of the same package (same solvable id) are equal and hash
    alike, as hawkey's packages do.  Files and provides are read once, when asked.
    """

    __slots__ = ('pkg', 'id', 'name', 'epoch', 'version', 'release', 'arch', '_files',
                 '_provides')

    def __init__(self, pkg: Any) -> None:
        self.pkg = pkg
        self.id = pkg.get_id().id
        self.name = pkg.get_name()
        self.epoch = int(pkg.get_epoch() or 0)
        self.version = pkg.get_version()
        self.release = pkg.get_release()
        self.arch = pkg.get_arch()
        self._files: Optional[list[str]] = None
        self._provides: Optional[Provides] = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dnf5Package) and other.id == self.id

    def __hash__(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return '<Dnf5Package %s%s>' % (self.nevra, ' installed' if self.installed else '')

    @property
    def nevra(self) -> str:
        return self.pkg.get_nevra()

    @property
    def evr(self) -> str:
        return self.pkg.get_evr()

    @property
    def files(self) -> list[str]:
        if self._files is None:
            self._files = list(self.pkg.get_files())
        return self._files

    @property
    def provides(self) -> Provides:
        """The provides as rpm prints them ('name = version'), read as far as asked, once:
        packages.py reads them a few times per package."""
        if self._provides is None:
            self._provides = Provides(self.pkg.get_provides())
        return self._provides

    @property
    def sourcerpm(self) -> str:
        return self.pkg.get_sourcerpm()

    @property
    def installed(self) -> bool:
        return self.pkg.is_installed()

    @property
    def repo_id(self) -> str:
        return self.pkg.get_repo_id()

    @property
    def downloadsize(self) -> int:
        return self.pkg.get_download_size()

    @property
    def chksum(self) -> Optional[tuple[int, bytes]]:
        """(type, digest) from the repository metadata; None for an installed package (the
        rpmdb keeps only a header digest) or a local file."""
        checksum = self.pkg.get_checksum()
        if checksum.get_type() == libdnf5.rpm.Checksum.Type_UNKNOWN:
            return None
        try:
            return checksum.get_type(), bytes.fromhex(checksum.get_checksum())
        except ValueError:
            return None

    def evr_cmp(self, other: 'Dnf5Package') -> int:
        return _evr_cmp(self, other)


class InstalledPackage:
    """An installed package as the running dnf5 describes it (its actions plugin's JSON
    pipe): its NEVRA and nothing else -- its files, provides or source package raise
    NeedsRpmdb.  What a lookup without the rpmdb answers about installed packages."""

    __slots__ = ('name', 'epoch', 'version', 'release', 'arch', 'nevra')
    installed = True
    chksum = None
    downloadsize = 0

    def __init__(self, name: str, epoch: int, version: str, release: str, arch: str,
                 nevra: str) -> None:
        self.name, self.epoch, self.version, self.release, self.arch, self.nevra = \
            name, epoch, version, release, arch, nevra

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InstalledPackage) and other.nevra == self.nevra

    def __hash__(self) -> int:
        return hash(self.nevra)

    def __repr__(self) -> str:
        return '<InstalledPackage %s>' % self.nevra

    @property
    def evr(self) -> str:
        return '%s%s-%s' % ('%d:' % self.epoch if self.epoch else '', self.version, self.release)

    def _rpmdb(self, what: str) -> Any:
        raise NeedsRpmdb('the %s of installed %s' % (what, self.nevra))

    files = property(lambda self: self._rpmdb('files'))
    provides = property(lambda self: self._rpmdb('provides'))
    sourcerpm = property(lambda self: self._rpmdb('source package'))

    def evr_cmp(self, other: Any) -> int:
        return _evr_cmp(self, other)


class Dnf5Lookup:
    """Queries on a libdnf5 Base whose repositories are loaded (see open_base).

    Each package is wrapped once (wrap()): its files and provides, once read,
    serve every later question about it.

    INSTALLED: for a Base opened without the rpmdb, where the installed packages are
    asked about -- an object whose owners(path) and any_at(version, release, arch)
    answer as the running dnf5 does (see dnf5_guard).  Questions it cannot settle
    raise NeedsRpmdb: the packages of a build some of which are installed, or
    anything about an InstalledPackage but its NEVRA.
    """

    def __init__(self, base: Any, installed: Optional[Any] = None) -> None:
        self.base = base
        self.installed = installed
        self._wrapped: dict[int, Dnf5Package] = {}

    def wrap(self, pkgs: Iterable[Any]) -> list[Dnf5Package]:
        """Dnf5Package for each of PKGS (libdnf5 packages), the same object for the same one."""
        found = []
        wrapped = self._wrapped
        for pkg in pkgs:
            key = pkg.get_id().id
            known = wrapped.get(key)
            if known is None:
                known = wrapped[key] = Dnf5Package(pkg)
            found.append(known)
        return found

    def query(self) -> Any:
        return libdnf5.rpm.PackageQuery(self.base)

    def only(self, pkgs: Iterable[Dnf5Package]) -> Any:
        """A query holding exactly PKGS."""
        package_set = libdnf5.rpm.PackageSet(self.base)
        for pkg in pkgs:
            if isinstance(pkg, InstalledPackage):
                raise NeedsRpmdb('a query on installed %s' % pkg.nevra)
            package_set.add(pkg.pkg)
        return libdnf5.rpm.PackageQuery(package_set)

    def _without_rpmdb(self, what: str) -> None:
        if self.installed is not None:
            raise NeedsRpmdb(what)

    def installed_owners(self, paths: Sequence[str], glob: bool = False) -> list[Any]:
        """Installed packages owning any of PATHS (globs with GLOB: a scan of every file list)."""
        if self.installed is not None:
            if glob:        # dnf5 answers a glob in ~0.2 s: the rpmdb is quicker
                raise NeedsRpmdb('the owners of %s' % ', '.join(paths))
            return list({pkg: None for path in paths for pkg in self.installed.owners(path)})
        query = self.query()
        query.filter_installed()
        if glob:
            query.filter_file(list(paths), _GLOB)
        else:
            query.filter_file(list(paths))
        return self.wrap(query)

    def owners(self, paths: Sequence[str]) -> list[Dnf5Package]:
        """Packages, installed or available, owning any of PATHS (available ones only when
        file lists are loaded)."""
        self._without_rpmdb('the owners of %s' % ', '.join(paths))
        query = self.query()
        query.filter_file(list(paths))
        return self.wrap(query)

    def siblings(self, seed: Dnf5Package) -> list[Dnf5Package]:
        """The packages built from SEED's source package, at its EVR, for its arch."""
        query = self.query()
        query.filter_evr([seed.evr])
        query.filter_arch([seed.arch])
        query.filter_sourcerpm([seed.sourcerpm])
        # without the rpmdb: none of that build may be installed (dnf5 says which are at
        # its version, release and arch), else they would be missing here
        if self.installed is not None and \
                self.installed.any_at(seed.version, seed.release, seed.arch):
            raise NeedsRpmdb('installed packages at %s.%s' % (seed.evr, seed.arch))
        return self.wrap(query)

    def declaring(self, pkgs: Optional[Iterable[Dnf5Package]], provide: str, glob: bool = False
                  ) -> list[Dnf5Package]:
        """Those of PKGS (None: of every package) with PROVIDE ('name = version'; a glob
        with GLOB); libsolv matches without turning the provides into strings."""
        if pkgs is None:
            self._without_rpmdb('every package providing %s' % provide)
        query = self.query() if pkgs is None else self.only(pkgs)
        if glob:
            query.filter_provides([provide], _GLOB)
        else:
            query.filter_provides([provide])
        return self.wrap(query)

    # From this many provides on, two queries cost less than reading them (~0.1 ms
    # against ~1.3 ms): a kernel's driver packages carry tens of thousands.
    DECLARED_BY_QUERY = 1000

    def declared_releases(self, pkg: Dnf5Package) -> frozenset[str]:
        """The KVERs of PKG's `*-uname-r = KVER` provides.

        A kernel build's package declares its own release, VERSION-RELEASE.ARCH, as
        NAME-uname-r.  When a big package's NAME-uname-r provides are that version and
        no other -- it matches, and no lower, higher or release-less version does
        (libsolv compares them as rpm does; a version without a release would match
        any) -- that is the answer, without turning 25,000 provides into strings.
        Anything else (a flavour's '+debug' suffix, another name) is read from the
        provides.  Not seen that way: a further *-uname-r under another name beside
        the package's own, which no kernel build makes.
        """
        if len(pkg.provides) >= self.DECLARED_BY_QUERY:
            own = '%s-%s.%s' % (pkg.version, pkg.release, pkg.arch)
            name = '%s-uname-r' % pkg.name
            if self._providing([pkg], ['%s = %s' % (name, own)]) and \
                    not self._providing([pkg], ['%s < %s' % (name, own),
                                                '%s > %s' % (name, own),
                                                '%s = %s~' % (name, own)]):
                return frozenset({own})
        return declared_releases(pkg.provides)

    def _providing(self, pkgs: Iterable[Dnf5Package], provides: list[str]) -> bool:
        query = self.only(pkgs)
        query.filter_provides(provides)
        return not query.empty()

    def provides_query(self, pkgs: Sequence[Dnf5Package]) -> Callable[[list[str]], list[Any]]:
        """A function: provide strings -> those of PKGS that have one of them."""
        by_id = {pkg.id: pkg for pkg in pkgs}

        def providing(provides: list[str]) -> list[Dnf5Package]:
            query = self.only(by_id.values())
            query.filter_provides(provides)
            return [by_id[p.get_id().id] for p in query]
        return providing

    def modalias_provides(self, pkg: Dnf5Package, wanted: Optional[ModaliasFilter] = None
                          ) -> tuple[bool, list[tuple[str, Optional[str]]]]:
        """PKG's modalias(PATTERN) [= MODULE] provides, decoded: (whether it has any, them).

        WANTED: keep only those that may match its modaliases.
        """
        provides = pkg.provides
        return wanted.select(provides) if wanted is not None else \
            select_modalias_provides(provides)

    # --- inspect mode: the package files themselves ---------------------------

    def local_file(self, pkg: Dnf5Package) -> Optional[str]:
        """Where PKG's file is when it is already in dnf5's package cache (or is a local
        file), else None."""
        if pkg.installed:
            return None
        try:
            if pkg.pkg.is_available_locally():
                return pkg.pkg.get_package_path()
        except Exception:       # libdnf5 raises for a repository without a cache
            return None
        return None

    def fetch(self, pkgs: Iterable[Dnf5Package]) -> None:
        """Download PKGS into dnf5's package cache (where local_file() finds them).

        Raises FetchError, whose str() names the packages and why.
        """
        wanted = [p for p in pkgs if not p.installed and self.local_file(p) is None]
        if not wanted:
            return
        downloader = libdnf5.repo.PackageDownloader(self.base)
        for pkg in wanted:
            downloader.add(pkg.pkg)
        try:
            downloader.download()
        except Exception as exc:
            raise FetchError('cannot download %s: %s'
                             % (', '.join(p.nevra for p in wanted), _message(exc))) from None
        missing = [p.nevra for p in wanted if self.local_file(p) is None]
        if missing:
            raise FetchError('cannot download %s: not in the package cache after the download'
                             % ', '.join(missing))


class FetchError(Exception):
    """Packages could not be downloaded; str() names them and says why."""


def _message(exc: BaseException) -> str:
    """EXC's message and those of the exceptions nested in it (libdnf5 nests the cause:
    'Failed to download packages: Librepo error: Cannot download X.rpm: ...')."""
    parts: list[str] = []
    current: Optional[BaseException] = exc
    while current is not None and len(parts) < 8:
        text = str(current).strip()
        if text and text not in parts:
            parts.append(text)
        rethrow, current = getattr(current, 'rethrow_if_nested', None), None
        if rethrow is not None:
            try:
                rethrow()
            except Exception as inner:      # the nested one
                current = inner
    return ': '.join(parts) or type(exc).__name__


# --- a Base as dnf5 would set it up ------------------------------------------

def _apply_setopt(config: Any, key: str, value: str) -> None:
    try:
        config.opt_binds().at(key).new_string(libdnf5.conf.Option.Priority_COMMANDLINE, value)
    except Exception as exc:
        raise BackendError('--setopt=%s=%s: %s' % (key, value, _message(exc))) from None


def open_base(installroot: str = '/', config_file: Optional[str] = None,
              setopts: Sequence[tuple[str, str]] = (), releasever: Optional[str] = None,
              cacheonly: bool = False, load_available: bool = True, load_system: bool = True,
              only_repos: Optional[Iterable[str]] = None, filelists: bool = False,
              cmdline_rpms: Sequence[str] = (), cachedir: Optional[str] = None,
              variables: Optional[dict[str, str]] = None,
              baseurls: Optional[dict[str, str]] = None,
              user_cachedir: Optional[str] = None) -> Any:
    """A libdnf5 Base on INSTALLROOT with its repositories loaded, set up as the dnf5 CLI
    sets up its own for the same options.

    CONFIG_FILE: as dnf5's -c (a host path); else dnf.conf of the installroot.
    SETOPTS: (KEY, VALUE) as --setopt: 'key' for the main configuration, 'REPO.key'
    (REPO a glob) for repositories.  CACHEONLY: only what is cached, no download
    (what dnf5 has just loaded, in its guard).  LOAD_AVAILABLE, LOAD_SYSTEM: load
    the repositories, the rpmdb (libdnf5 loads once: what is left out stays out).
    ONLY_REPOS: enable only these repository ids (None: as configured).  FILELISTS:
    load the repositories' file lists too.  CMDLINE_RPMS: local .rpm files, as on
    dnf5's command line.
    CACHEDIR: dnf5's cache directory as dnf5 reports it (already inside the root).
    VARIABLES: substitution variables ($releasever, ...) as dnf5 has them.
    BASEURLS: repository id -> baseurl as dnf5 has it (comma-separated): a repository
    the configuration lacks (dnf5's --repofrompath) is made, one whose baseurl
    differs (--setopt=ID.baseurl) takes it, so that the cache directory, named by
    it, is dnf5's.
    USER_CACHEDIR: where this Base downloads metadata, outside the root (an ordinary
    user's cache; the system's stays where it is).
    No libdnf5 plugin is loaded: this Base is a reader.
    """
    base = libdnf5.base.Base()
    config = base.get_config()
    try:
        config.installroot = installroot
        if config_file:
            config.config_file_path = config_file
        config.plugins = False
        main_setopts = [(k, v) for k, v in setopts if '.' not in k]
        repo_setopts = [(k, v) for k, v in setopts if '.' in k]
        base.load_config()
        for key, value in main_setopts:
            _apply_setopt(config, key, value)
        if filelists:
            config.optional_metadata_types = ['filelists']   # appended to dnf5's list
        if cacheonly:
            config.cacheonly = 'all'
        if cachedir:
            config.cachedir = cachedir
            config.system_cachedir = cachedir
        elif user_cachedir:
            config.cachedir = user_cachedir
        for name, value in (variables or {}).items():
            base.get_vars().set(name, value)
        if releasever:
            base.get_vars().set('releasever', releasever)
        base.setup()
        repo_sack = base.get_repo_sack()
        repo_sack.create_repos_from_system_configuration()
        known = {repo.get_id() for repo in libdnf5.repo.RepoQuery(base)}
        for repo_id, url in (baseurls or {}).items():
            repo = repo_sack.create_repo(repo_id) if repo_id not in known else \
                next(r for r in libdnf5.repo.RepoQuery(base) if r.get_id() == repo_id)
            if ','.join(repo.get_config().baseurl) != url:
                _apply_setopt(repo.get_config(), 'baseurl', url)
        for repo in libdnf5.repo.RepoQuery(base):
            if only_repos is not None and repo.get_id() not in set(only_repos):
                repo.disable()
                continue
            for key, value in repo_setopts:
                pattern, _, option = key.rpartition('.')
                if fnmatch.fnmatchcase(repo.get_id(), pattern):
                    _apply_setopt(repo.get_config(), option, value)
        if cmdline_rpms:
            repo_sack.add_cmdline_packages(list(cmdline_rpms))
        if load_available and load_system:
            repo_sack.load_repos()
        elif load_available:
            repo_sack.load_repos(libdnf5.repo.Repo.Type_AVAILABLE)
        else:
            repo_sack.load_repos(libdnf5.repo.Repo.Type_SYSTEM)
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(_message(exc)) from None
    return base


def cachedir_of(base: Any) -> str:
    """Where this Base keeps its cache (the installroot's), for exact mode's answers."""
    return base.get_config().cachedir
