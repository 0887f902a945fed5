"""Inspect mode's reading: the aliases of every kernel module inside a package file.

rpm's own payload reader (rpm.files(header).archive()) walks the package's
archive; each .ko, .ko.xz, .ko.zst or .ko.gz in it goes, through a memfd, to
libkmod (kmod.ModuleFileReader), which decompresses it and reads its .modinfo
as modinfo does.  libkmod runs without Python's lock, so the modules are read
by a thread per CPU: decompressing them is the whole cost.  A compression
libkmod was built without (Debian 12's has no zlib) is undone by Python's own
module first.

A package that cannot be read whole -- a truncated or corrupt file, a module
that does not decompress -- is a PayloadError naming the package and why:
its aliases are not to be trusted in part.
"""

from __future__ import annotations

import os
import threading
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Optional

from .kmod import KmodError, ModuleFileReader, module_name_from_path


class PayloadError(Exception):
    """A package file that cannot be read whole; str() names it and says why."""


class ModuleAliases(namedtuple('ModuleAliases', [
        'modules',          # dict[str, tuple[str, ...]]: module name -> its aliases
        'payload_bytes',    # the size of the package file
        ])):
    """What one package file's modules answer to."""
    __slots__ = ()


_local = threading.local()


def _reader() -> ModuleFileReader:
    reader = getattr(_local, 'reader', None)
    if reader is None:
        reader = _local.reader = ModuleFileReader()
    return reader


def _python_decompress(path: str, data: bytes) -> Optional[bytes]:
    if path.endswith('.ko.xz'):
        import lzma
        return lzma.decompress(data)
    if path.endswith('.ko.gz'):
        import gzip
        return gzip.decompress(data)
    return None


def _aliases_in(reader: ModuleFileReader, data: bytes) -> tuple[str, ...]:
    fd = os.memfd_create('kernelsplit-module', os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        return tuple(value for key, value in reader.info('/proc/self/fd/%d' % fd)
                     if key == 'alias')
    finally:
        os.close(fd)


def module_aliases(path: str, data: bytes) -> tuple[str, ...]:
    """The aliases of the module file PATH (in a payload) whose bytes are DATA."""
    reader = _reader()
    try:
        return _aliases_in(reader, data)
    except KmodError as first:
        try:
            plain = _python_decompress(path, data)
        except Exception as exc:             # lzma.LZMAError, OSError, EOFError, ...
            raise PayloadError('%s does not decompress: %s' % (path, exc)) from None
        if plain is None:
            raise PayloadError('%s cannot be read: %s' % (path, first)) from None
        try:
            return _aliases_in(reader, plain)
        except KmodError as exc:
            raise PayloadError('%s cannot be read: %s' % (path, exc)) from None


def package_aliases(package_file: str, threads: Optional[int] = None) -> ModuleAliases:
    """The aliases of every module in the RPM PACKAGE_FILE; PayloadError when it cannot
    be read whole."""
    import concurrent.futures

    import rpm
    threads = threads or min(4, len(os.sched_getaffinity(0)) or 1)
    try:
        size = os.path.getsize(package_file)
        # dnf checked the file against the repository's checksum when it
        # fetched it; the header's own digests are checked here.
        ts = rpm.TransactionSet('/', rpm._RPMVSF_NOSIGNATURES)
        fd = rpm.fd.open(package_file)
    except (OSError, rpm.error) as exc:
        raise PayloadError('%s cannot be opened: %s' % (package_file, exc)) from None
    try:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            pending = []
            try:
                header = ts.hdrFromFdno(fd)
                archive = rpm.files(header).archive(
                    rpm.fd.open(fd, flags=header['payloadcompressor']))
                for entry in archive:
                    name = module_name_from_path(entry.name)
                    if name is None or not archive.hascontent():
                        continue
                    pending.append((name, pool.submit(module_aliases, entry.name,
                                                      archive.read())))
            except (OSError, rpm.error, ValueError, TypeError) as exc:
                for _, job in pending:
                    job.cancel()
                raise PayloadError('%s is truncated or corrupt: %s' % (package_file, exc)) \
                    from None
            found: dict[str, tuple[str, ...]] = {}
            for name, job in pending:
                try:
                    found[name] = found.get(name, ()) + job.result()
                except PayloadError as exc:
                    raise PayloadError('%s: %s' % (package_file, exc)) from None
    finally:
        fd.close()
    return ModuleAliases(found, size)
