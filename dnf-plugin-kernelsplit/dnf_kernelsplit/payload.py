"""Inspect mode's reading: the aliases of every kernel module inside a package file.

rpm's own payload reader (rpm2cpio: whatever compressor the payload has,
zstd on Fedora) streams the package's archive in the SVR4 "newc" cpio format;
each .ko, .ko.xz, .ko.zst or .ko.gz in it goes, through a memfd, to libkmod
(kmod.ModuleFileReader), which decompresses it and reads its .modinfo as
modinfo does.  (rpm's Python archive reader is not used: with rpm 6, as dnf5
systems have it, it reads the payload from the wrong place on a fresh
transaction set; rpm2cpio behaves the same on rpm 4 and 6.)  libkmod runs without Python's lock, so the modules are read
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
    from typing import Any, Iterator, Optional

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


_NEWC_MAGICS = (b'070701', b'070702')
_NEWC_HEADER = 110
_TRAILER = 'TRAILER!!!'
_REGULAR = 0o100000


def _cpio_entries(stream: Any) -> Iterator[tuple[str, Optional[bytes]]]:
    """(path, contents) of each entry of a newc cpio STREAM (contents None for what is not
    a regular file, or a hard link whose data comes with a later entry).  ValueError when
    the archive is not whole."""
    def exactly(count: int) -> bytes:
        data = stream.read(count)
        if len(data) != count:
            raise ValueError('the archive ends inside an entry')
        return data

    while True:
        header = exactly(_NEWC_HEADER)
        if header[:6] not in _NEWC_MAGICS:
            raise ValueError('no cpio entry where one should begin (%r)' % header[:6])
        fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        name = exactly(name_size)[:-1].decode(errors='replace')
        exactly((-(_NEWC_HEADER + name_size)) % 4)
        if name == _TRAILER:
            return
        data = exactly(size)
        exactly((-size) % 4)
        yield name.lstrip('.'), data if mode & 0o170000 == _REGULAR and size else None


def package_aliases(package_file: str, threads: Optional[int] = None) -> ModuleAliases:
    """The aliases of every module in the RPM PACKAGE_FILE; PayloadError when it cannot
    be read whole."""
    import concurrent.futures
    import subprocess
    threads = threads or min(4, len(os.sched_getaffinity(0)) or 1)
    try:
        size = os.path.getsize(package_file)
        reader = subprocess.Popen(['rpm2cpio', package_file], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise PayloadError('%s cannot be read: %s' % (package_file, exc)) from None
    pending = []
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        try:
            for path, data in _cpio_entries(reader.stdout):
                name = module_name_from_path(path)
                if name is not None and data is not None:
                    pending.append((name, pool.submit(module_aliases, path, data)))
            problem = None
        except ValueError as exc:
            problem = str(exc)
        finally:
            reader.stdout.close()
            err = reader.stderr.read().decode(errors='replace').strip()
            status = reader.wait()
        if problem or status != 0:
            for _, job in pending:
                job.cancel()
            raise PayloadError('%s is truncated or corrupt: %s' % (
                package_file, '; '.join(filter(None, [err, problem])) or
                'rpm2cpio exited %d' % status))
        found: dict[str, tuple[str, ...]] = {}
        for name, job in pending:
            try:
                found[name] = found.get(name, ()) + job.result()
            except PayloadError as exc:
                raise PayloadError('%s: %s' % (package_file, exc)) from None
    return ModuleAliases(found, size)
