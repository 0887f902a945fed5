"""Package lookup through dnf 4's hawkey sack: the queries packages.py asks of a lookup.

With packages_dnf5.py, the only place that knows which package manager is
present.  hawkey's packages already have the attributes packages.py reads.
"""

from __future__ import annotations

import logging
import operator

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Any, Callable, Iterable, Optional, Sequence

from .kmod import ModaliasFilter, select_modalias_provides
from .packages import declared_releases

logger = logging.getLogger('dnf.plugin')
_RELDEP_NAME = operator.attrgetter('name')   # hawkey.Reldep: 'modalias(...)' of 'modalias(...) = m'


class Dnf4Lookup:
    """Queries on a filled hawkey sack (dnf.Base.sack); BASE fetches packages (inspect mode)."""

    def __init__(self, sack: Any, base: Optional[Any] = None) -> None:
        self.sack = sack
        self.base = base

    def local_file(self, pkg: Any) -> Optional[str]:
        """PKG's file when it is whole in dnf's package cache (or a local repository)."""
        import os
        path = pkg.localPkg()
        if not os.path.isfile(path):
            return None
        # A file left half-downloaded is not PKG: dnf checks the same way before reusing one.
        try:
            return path if pkg.verifyLocalPkg() else None
        except Exception:          # libdnf's checksum errors, an unreadable file
            return None

    def fetch(self, pkgs: Sequence[Any]) -> None:
        """Download PKGS into dnf's package cache, as dnf downloads a transaction's packages
        (its mirrors, retries and checksums); the transaction finds them there."""
        if self.base is None:
            raise RuntimeError('no dnf.Base to download with')
        self.base.download_packages(list(pkgs))

    def installed_owners(self, paths: Sequence[str], glob: bool = False) -> list[Any]:
        """Installed packages owning any of PATHS (globs with GLOB: a scan of every file list)."""
        if not glob and self.base is not None:
            owners = self.rpmdb_owners(paths)
            if owners is not None:
                return owners
        installed = self.sack.query().installed()
        return list(installed.filter(file__glob=list(paths)) if glob else
                    installed.filter(file=list(paths)))

    def rpmdb_owners(self, paths: Sequence[str]) -> Optional[list[Any]]:
        """Installed packages owning any of PATHS, by rpm's own index of file names; None
        when that database is not the one dnf's sack was read from, or cannot be read
        (the caller asks hawkey instead).

        The installed packages in dnf's sack are the rpmdb's, so the answer is
        hawkey's; but hawkey's exact file filter walks every installed file list
        (~5 ms on a host of 1,000 packages, on every kernel transaction), where
        rpm's Basenames index answers in ~1 ms, opening the database included.
        rpm opens a database that is not there (another %_dbpath, say) as an
        empty one: an empty answer counts only when the database holds an
        installed package of the sack, and every owner must be one.
        """
        import dnf.rpm.transaction
        installed = self.sack.query().installed()
        try:
            ts = dnf.rpm.transaction.initReadOnlyTransaction(root=self.base.conf.installroot)
            try:
                headers = [(h['name'], h['epoch'] or 0, h['version'], h['release'], h['arch'])
                           for path in paths for h in ts.dbMatch('basenames', path)]
                if not headers:
                    probe = installed.run()[:1]
                    if probe and not any(True for _ in ts.dbMatch('name', probe[0].name)):
                        return None
            finally:
                ts.close()
        except Exception as exc:       # rpm.error, an unreadable database: hawkey knows too
            logger.debug('kernelsplit: cannot read the rpmdb (%s); asking hawkey', exc)
            return None
        owners = []
        for name, epoch, version, release, arch in headers:
            found = installed.filter(name=name, epoch=epoch, version=version, release=release,
                                     arch=arch).run()
            if not found:
                return None
            owners += found
        # in hawkey's order, once each, as its file filter gives them
        return list(installed.filterm(pkg=owners)) if owners else []

    def owners(self, paths: Sequence[str]) -> list[Any]:
        """Packages, installed or available, owning any of PATHS."""
        return list(self.sack.query().filter(file=list(paths)))

    def siblings(self, seed: Any) -> list[Any]:
        """The packages built from SEED's source package, at its EVR, for its arch.

        By EVR first: the cheaper scan, and the subpackages of one build share it.
        """
        return list(self.sack.query().filterm(evr=seed.evr, arch=seed.arch)
                    .filterm(sourcerpm=seed.sourcerpm))

    def declaring(self, pkgs: Optional[Iterable[Any]], provide: str, glob: bool = False
                  ) -> list[Any]:
        """Those of PKGS (None: of every package) with PROVIDE ('name = version'; a glob
        with GLOB); hawkey matches without turning the provides into strings."""
        query = self.sack.query()
        if pkgs is not None:
            query = query.filterm(pkg=list(pkgs))
        return list(query.filter(provides__glob=provide) if glob else
                    query.filter(provides=provide))

    def declared_releases(self, pkg: Any) -> frozenset[str]:
        """The KVERs of PKG's `*-uname-r = KVER` provides."""
        return declared_releases(pkg.provides)

    def provides_query(self, pkgs: Sequence[Any]) -> Callable[[list[str]], list[Any]]:
        """A function: provide strings -> those of PKGS that have one of them."""
        release = self.sack.query().filterm(pkg=list(pkgs))
        return lambda provides: list(release.filter(provides=provides))

    def modalias_provides(self, pkg: Any, wanted: Optional[ModaliasFilter] = None
                          ) -> tuple[bool, list[tuple[str, Optional[str]]]]:
        """PKG's modalias(PATTERN) [= MODULE] provides, decoded: (whether it has any, them).

        WANTED: keep only those that may match its modaliases.
        """
        provides = pkg.provides
        return wanted.select(provides, _RELDEP_NAME) if wanted is not None else \
            select_modalias_provides(map(str, provides))
