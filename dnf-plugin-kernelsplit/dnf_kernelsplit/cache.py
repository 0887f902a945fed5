"""Exact and inspect mode's answers, and inspected packages' alias tables, kept on disk
like dnf keeps its parsed metadata.

Matching a machine's unresolved modaliases against a driver package's
modalias() provides means reading every one of them: ~25,000 for the driver
package of a distribution kernel, ~10 ms inside dnf; reading the aliases
inside a package (inspect mode) means fetching and decompressing it.  Both
depend on nothing but the package's content (and the modaliases), so they are
kept in dnf's cachedir, keyed by the package checksum from the repository
metadata: they never go stale.  A dnf run that asks again -- the next `dnf
upgrade`, `--assumeno` then `-y`, dnf-automatic's download then apply, `dnf
kernelsplit check` -- reads a few hundred bytes instead, and a package is
read at most once per machine.  dnf does the same with its .solv files.

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
# Per kind, where it has moved on: exact and inspect mode's answers are matched as
# libkmod normalises since 2 (an alias table holds the aliases as read: unchanged).
KIND_FORMATS = {'exact': 2, 'inspect': 2}
# Each answer is a few hundred bytes, an alias table up to a megabyte; a new
# kernel release adds a few per driver package not installed.  Past this many
# files of a kind, the oldest go.
MAX_ENTRIES = 256
KINDS = ('exact', 'inspect', 'aliases')


class AnswerCache:
    """In DIRECTORY (None: no cache): (package, modaliases) -> the modalias patterns of the
    package that match them, by exact mode ('exact') or inspect mode ('inspect'); and
    package -> its modules' aliases ('aliases', inspect mode's reading)."""

    def __init__(self, directory: Optional[str]) -> None:
        self.directory = directory
        self.hits = self.misses = 0

    @classmethod
    def in_cachedir(cls, cachedir: Optional[str]) -> 'AnswerCache':
        return cls(os.path.join(cachedir, 'kernelsplit') if cachedir else None)

    def key(self, nevra: str, checksum: Optional[tuple[int, bytes]],
            modaliases: Sequence[str] = (), kind: str = 'exact') -> Optional[str]:
        """The entry of KIND for package NEVRA with CHECKSUM (its metadata's (type,
        digest); None for a local .rpm, say: no entry) and MODALIASES."""
        if self.directory is None or not checksum:
            return None
        digest = hashlib.sha256(('%d\n%s\n%s\n%d\n' % (KIND_FORMATS.get(kind, FORMAT), kind, nevra,
                                                        checksum[0])).encode())
        digest.update(checksum[1])
        digest.update('\n'.join(sorted(set(modaliases))).encode())
        return '%s-%s' % (kind, digest.hexdigest())

    def _load(self, key: str) -> object:
        with open(os.path.join(self.directory, key), 'rb') as stored:
            return marshal.load(stored)

    def get(self, key: Optional[str]) -> Optional[tuple[bool, list[tuple[str, Optional[str]]]]]:
        if key is None:
            return None
        try:
            has_any, matching = self._load(key)
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

    def get_table(self, key: Optional[str]) -> Optional[dict[str, tuple[str, ...]]]:
        """A package's module -> aliases table, or None."""
        if key is None:
            return None
        try:
            stored = self._load(key)
            table = {str(module): tuple(str(alias) for alias in aliases)
                     for module, aliases in stored.items()}   # type: ignore[union-attr]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError, TypeError, AttributeError) as exc:
            logger.debug('kernelsplit: ignoring cache entry %s: %s', key, exc)
            return None
        return table

    def put(self, key: Optional[str],
            answer: tuple[bool, list[tuple[str, Optional[str]]]]) -> None:
        self._store(key, (answer[0], list(answer[1])))

    def put_table(self, key: Optional[str], table: dict[str, tuple[str, ...]]) -> None:
        self._store(key, {module: tuple(aliases) for module, aliases in table.items()})

    def _store(self, key: Optional[str], value: object) -> None:
        if key is None:
            return
        import tempfile
        try:
            os.makedirs(self.directory, exist_ok=True)
            # Written aside and renamed: a concurrent reader sees all of it or nothing.
            fd, scratch = tempfile.mkstemp(dir=self.directory, prefix='.new-')
            try:
                with os.fdopen(fd, 'wb') as new:
                    marshal.dump(value, new)
                os.replace(scratch, os.path.join(self.directory, key))
            except BaseException:
                os.unlink(scratch)
                raise
            self._prune(key.split('-', 1)[0])
        except OSError as exc:
            logger.debug('kernelsplit: cannot cache answers in %s: %s', self.directory, exc)

    def _prune(self, kind: str) -> None:
        entries = [e for e in os.scandir(self.directory)
                   if e.name.startswith(kind + '-') and e.is_file()]
        if len(entries) <= MAX_ENTRIES:
            return
        entries.sort(key=lambda e: e.stat().st_mtime)
        for entry in entries[:len(entries) - MAX_ENTRIES]:
            try:
                os.unlink(entry.path)
            except OSError:
                pass
