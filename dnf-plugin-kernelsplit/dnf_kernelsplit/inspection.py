"""Inspect mode: when nothing local can say which package of a release serves a device,
read the aliases inside the candidate packages themselves.

A core-only host's devices have no driver bound and no installed module index
knows them; distributions' kernel packages carry kmod() provides and file
lists, nothing that maps a modalias to a package.  So the candidate packages
(of the release being judged, not installed, shipping modules, without
modalias() provides) are fetched through the package manager's own download
machinery into its own package cache -- the very files it downloads if they
are added, so an added package comes down once -- and each module's .modinfo
is read (payload.py).  A package's alias table is kept in the plugin's cache
by its checksum: it is read at most once per machine.

Each run (a transaction, a check) has a download budget (inspect_max_mb).
A package past it, one the package manager may not fetch (-C, --no-download,
offline) or one that cannot be read is left unread, with the reason: the
devices it might serve are `unknown`, and the reason says what would judge
them.
"""

from __future__ import annotations

import logging
import time
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Any, Optional

from .cache import AnswerCache
from .payload import PayloadError, package_aliases

logger = logging.getLogger('dnf.plugin')

AUTO, NEVER = 'auto', 'never'
MODES = (AUTO, NEVER)
MB = 1000 * 1000


class Inspected(namedtuple('Inspected', [
        'nevra',            # str
        'source',           # cache (the alias table) | local (the package file was there) | fetched
        'fetched_bytes',    # what was downloaded for it
        'fetch_seconds',    # downloading it
        'read_seconds',     # reading its modules' aliases
        'aliases',          # how many aliases its modules have
        ])):
    """One package whose modules' aliases inspect mode knows."""
    __slots__ = ()


class Inspector:
    """Inspect mode for one run: which packages it read, which it could not, what it fetched.

    LOOKUP: the package manager's side (fetch(pkgs), local_file(pkg)).
    MODE: AUTO or NEVER.  BUDGET_MB: what may be downloaded in this run.
    NO_FETCH: why nothing may be downloaded at all (-C, --no-download), or None.
    WAY_OUT: how to judge what stays unread, for the reasons (a command line).
    """

    def __init__(self, lookup: Any, cache: AnswerCache, mode: str = AUTO,
                 budget_mb: int = 128, no_fetch: Optional[str] = None,
                 config_source: str = 'kernelsplit.conf') -> None:
        self.lookup = lookup
        self.cache = cache
        self.mode = mode
        self.budget = budget_mb * MB
        self.no_fetch = no_fetch
        self.config_source = config_source
        self.fetched_bytes = 0
        self.read: list[Inspected] = []
        self.unread: dict[str, str] = {}

    def table(self, pkg: Any, nevra: str) -> Optional[dict[str, tuple[str, ...]]]:
        """PKG's module -> aliases; None when it cannot be had (self.unread says why)."""
        key = self.cache.key(nevra, pkg.chksum, kind='aliases')
        table = self.cache.get_table(key)
        if table is not None:
            self.read.append(Inspected(nevra, 'cache', 0, 0.0, 0.0,
                                       sum(len(a) for a in table.values())))
            return table
        if self.mode == NEVER:
            return self._unread(nevra, 'inspect = never in %s' % self.config_source)
        started = time.monotonic()
        path = self.lookup.local_file(pkg)
        fetched = 0
        if path is None:
            size = int(getattr(pkg, 'downloadsize', 0) or 0)
            if self.no_fetch:
                return self._unread(nevra, '%s, and no copy of it is in the package cache'
                                    % self.no_fetch)
            if self.fetched_bytes + size > self.budget:
                return self._unread(nevra, 'fetching it (%.1f MB) would pass the download '
                                    'budget, inspect_max_mb = %d in %s (%.1f MB fetched already)'
                                    % (size / MB, self.budget // MB, self.config_source,
                                       self.fetched_bytes / MB))
            try:
                self.lookup.fetch([pkg])
            except Exception as exc:       # offline, a mirror error, a full disk
                logger.warning('kernelsplit: cannot fetch %s to read its modules: %s; left out '
                               'of inspect mode', nevra, str(exc).strip())
                return self._unread(nevra, 'it cannot be fetched: %s' % str(exc).strip())
            self.fetched_bytes += size
            fetched = size
            path = self.lookup.local_file(pkg)
            if path is None:
                return self._unread(nevra, 'it was fetched, but is not in the package cache')
        reading = time.monotonic()
        try:
            found = package_aliases(path)
        except PayloadError as exc:
            logger.warning('kernelsplit: %s; left out of inspect mode', exc)
            return self._unread(nevra, 'its payload cannot be read (%s)' % exc)
        read_seconds = time.monotonic() - reading
        count = sum(len(a) for a in found.modules.values())
        self.read.append(Inspected(nevra, 'fetched' if fetched else 'local', fetched,
                                   reading - started, read_seconds, count))
        logger.debug('kernelsplit: inspect: read %s (%.1f MB %s in %.0f ms) in %.0f ms: '
                     '%d modules, %d aliases', nevra, found.payload_bytes / MB,
                     'fetched' if fetched else 'from the package cache',
                     (reading - started) * 1000, read_seconds * 1000, len(found.modules),
                     count)
        self.cache.put_table(key, found.modules)
        return found.modules

    def _unread(self, nevra: str, reason: str) -> None:
        self.unread[nevra] = reason
        return None
