"""Exact mode's answers, kept on disk like dnf keeps its parsed metadata.

Matching a machine's unresolved modaliases against a driver package's
modalias() provides means reading every one of them: ~25,000 for the driver
package of a distribution kernel, ~10 ms inside dnf.  The answer depends on
nothing but the package's content and those modaliases, so it is kept in
dnf's cachedir, keyed by the package checksum from the repository metadata
and the modaliases: it never goes stale, and a dnf run that asks again -- the
next `dnf upgrade`, `--assumeno` then `-y`, dnf-automatic's download then
apply, `dnf kernelsplit check` -- reads a few hundred bytes instead.  dnf does
the same with its .solv files.

Anything wrong with the cache (unwritable, unreadable, corrupt) only means the
answer is computed again.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Optional, Sequence

logger = logging.getLogger('dnf.plugin')

# Bump when what is stored, or how it is computed, changes.
FORMAT = 1
# Each answer is a few hundred bytes; a new kernel release adds one per driver
# package not installed.  Past this many files, the oldest go.
MAX_ENTRIES = 256


class ExactModeCache:
    """(package, modaliases) -> package_modaliases() answer, in DIRECTORY (None: no cache)."""

    def __init__(self, directory: Optional[str]) -> None:
        self.directory = directory
        self.hits = self.misses = 0

    @classmethod
    def in_cachedir(cls, cachedir: Optional[str]) -> 'ExactModeCache':
        return cls(os.path.join(cachedir, 'kernelsplit') if cachedir else None)

    def key(self, nevra: str, checksum: Optional[tuple[int, bytes]],
            modaliases: Sequence[str]) -> Optional[str]:
        """The entry for package NEVRA with CHECKSUM (its metadata's (type, digest); None
        for a local .rpm, say: no entry) and MODALIASES."""
        if self.directory is None or not checksum:
            return None
        digest = hashlib.sha256(('%d\n%s\n%d\n' % (FORMAT, nevra, checksum[0])).encode())
        digest.update(checksum[1])
        digest.update('\n'.join(sorted(set(modaliases))).encode())
        return 'exact-%s' % digest.hexdigest()

    def get(self, key: Optional[str]) -> Optional[tuple[bool, list[tuple[str, Optional[str]]]]]:
        if key is None:
            return None
        try:
            with open(os.path.join(self.directory, key), 'rb') as stored:
                has_any, matching = marshal.load(stored)
            answer = bool(has_any), [(str(pattern), None if module is None else str(module))
                                     for pattern, module in matching]
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError, EOFError, TypeError) as exc:
            logger.debug('kernelsplit: ignoring cache entry %s: %s', key, exc)
            self.misses += 1
            return None
        self.hits += 1
        return answer

    def put(self, key: Optional[str],
            answer: tuple[bool, list[tuple[str, Optional[str]]]]) -> None:
        if key is None:
            return
        import tempfile
        try:
            os.makedirs(self.directory, exist_ok=True)
            # Written aside and renamed: a concurrent reader sees all of it or nothing.
            fd, scratch = tempfile.mkstemp(dir=self.directory, prefix='.new-')
            try:
                with os.fdopen(fd, 'wb') as new:
                    marshal.dump((answer[0], list(answer[1])), new)
                os.replace(scratch, os.path.join(self.directory, key))
            except BaseException:
                os.unlink(scratch)
                raise
            self._prune()
        except OSError as exc:
            logger.debug('kernelsplit: cannot cache exact-mode answers in %s: %s',
                         self.directory, exc)

    def _prune(self) -> None:
        entries = [e for e in os.scandir(self.directory)
                   if e.name.startswith('exact-') and e.is_file()]
        if len(entries) <= MAX_ENTRIES:
            return
        entries.sort(key=lambda e: e.stat().st_mtime)
        for entry in entries[:len(entries) - MAX_ENTRIES]:
            try:
                os.unlink(entry.path)
            except OSError:
                pass
