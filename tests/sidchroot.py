"""A cached Debian sid chroot with dnf5, and a way to run commands in it.

dnf5 is not in Debian 12; sid has it (with python3-libdnf5).  The chroot is
built once with mmdebstrap and cached under /var/tmp, named by a hash of
everything that goes into it (suite, package list, build options), so
changing PACKAGES or the recipe builds a new one and never reuses a stale
one.  The build goes into a temporary directory renamed into place, under a
lock: a killed build leaves no half chroot, and two test processes racing
build it once.

Every command runs in a private mount namespace (`unshare -m`): an overlay
puts a writable layer (the caller's scratch directory) over the cached
chroot, which nothing ever writes; /proc, /sys, /dev, the project checkout
(read-only, at its own path) and the caller's directories (at their own
paths) are mounted into it, and the command runs there through `chroot`.  The
namespace ends with the command, and its mounts with it: nothing leaks on the
host and there is nothing to clean up.

Needs root, mmdebstrap, apt and Debian's archive keyring (`make deps`
installs them on Debian).  Elsewhere -- Fedora 41+, whose dnf already is dnf5
-- `ensure_built()` raises Unavailable naming what is missing, and the
fixtures skip loudly (or fail, with KERNELSPLIT_REQUIRE_SID=1).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Mapping, Optional, Sequence

import pytest

from harness import ROOT, Result

SUITE = 'sid'
# What the tests need inside the chroot, each for one reason; apt resolves the rest
# (python3, librpm, libkmod2 through kmod, libudev1 through pyudev, ...).
PACKAGES = (
    'dnf5',                                    # the CLI under test; its libdnf5-2 ships the actions plugin
    'python3-libdnf5',                         # the Python API: the package-lookup backend
    'python3-libdnf5-python-plugins-loader',   # loads libdnf5 plugins written in Python (a hook candidate)
    'rpm',                                     # rpm --root: what is installed in an installroot
    'kmod',                                    # depmod for installroots; brings libkmod2 (ctypes)
    'umockdev',                                # umockdev-run: its preload must match the chroot's libc
    'python3-pyudev',                          # device discovery, as on the host
)
# Repositories are built on the host (kernelrepo.py: gcc, rpmbuild, createrepo_c) and
# bind-mounted: dnf5 reads their metadata, so no build tools are needed inside.
MMDEBSTRAP_OPTIONS = (
    '--variant=apt',
    '--mode=root',
    # sid's Release file on the registry can be past its Valid-Until date
    '--aptopt=Acquire::Check-Valid-Until "false"',
    # documentation, manuals and translations: a third of the size, used by no test
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/locale/*',
)
CACHE_DIR = Path('/var/tmp')
STAMP = '.kernelsplit-sid.json'   # written last into a complete chroot, read by the tests
BUILD_TIMEOUT = 900
PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


class Unavailable(Exception):
    """The chroot cannot be built on this machine; the message says why."""


def cache_key() -> str:
    recipe = {'suite': SUITE, 'packages': sorted(PACKAGES), 'options': list(MMDEBSTRAP_OPTIONS)}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def chroot_path() -> Path:
    return CACHE_DIR / ('kernelsplit-sid-%s' % cache_key())


def missing_tools() -> list[str]:
    """What this machine lacks to build and enter the chroot."""
    missing = [tool for tool in ('mmdebstrap', 'apt-get', 'unshare', 'mount', 'chroot')
               if shutil.which(tool, path=PATH) is None]
    if not Path('/usr/share/keyrings/debian-archive-keyring.gpg').exists():
        missing.append('debian-archive-keyring')
    return missing


def ensure_built() -> Path:
    """The cached chroot, built first when absent. Raises Unavailable."""
    final = chroot_path()
    if (final / STAMP).exists():
        return final
    if os.geteuid() != 0:
        raise Unavailable('building and entering the sid chroot needs root')
    missing = missing_tools()
    if missing:
        raise Unavailable('missing %s (`make deps` installs them on Debian; on Fedora 41+ '
                          'the system dnf is dnf5 itself)' % ', '.join(missing))
    with open(str(final) + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # a racing process waits here, then finds it built
        if (final / STAMP).exists():
            return final
        for leftover in CACHE_DIR.glob(final.name + '.tmp-*'):   # a killed build's
            shutil.rmtree(leftover, ignore_errors=True)
        if final.exists():   # no stamp: not ours to trust
            shutil.rmtree(final)
        staging = Path(tempfile.mkdtemp(prefix=final.name + '.tmp-', dir=CACHE_DIR))
        try:
            os.chmod(staging, 0o755)   # apt downloads as _apt into it
            _build(staging)
            staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


def _build(target: Path) -> None:
    start = time.monotonic()
    command = ['mmdebstrap', *MMDEBSTRAP_OPTIONS, '--include=' + ','.join(PACKAGES),
               SUITE, str(target)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Unavailable('mmdebstrap took over %d s' % BUILD_TIMEOUT) from None
    if proc.returncode != 0:
        tail = '\n'.join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise Unavailable('%s exited %d:\n%s' % (shlex.join(command), proc.returncode, tail))
    versions = subprocess.run(
        ['dpkg-query', '--admindir', str(target / 'var/lib/dpkg'), '-W', *PACKAGES],
        capture_output=True, text=True, check=True).stdout
    stamp = {'command': command, 'seconds': round(time.monotonic() - start, 1),
             'built': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
             'versions': dict(line.split('\t', 1) for line in versions.splitlines())}
    (target / STAMP).write_text(json.dumps(stamp, indent=1) + '\n')


def stamp(chroot: Path) -> dict:
    return json.loads((chroot / STAMP).read_text())


class SidRoot:
    """The cached chroot seen through a writable layer kept in SCRATCH.

    What commands write (dnf5's cache, files under /etc, mount points) lands in
    SCRATCH and lasts across the run() calls of one SidRoot; the cache stays clean.
    """

    def __init__(self, chroot: Path, scratch: Path) -> None:
        self.chroot = chroot
        self.scratch = scratch
        for name in ('upper', 'work', 'merged'):
            (scratch / name).mkdir(parents=True, exist_ok=True)

    @property
    def upper(self) -> Path:
        """Where files written inside the chroot land (e.g. upper/etc/dnf/...)."""
        return self.scratch / 'upper'

    def command(self, command: Sequence[str], ro: Sequence[Path] = (), rw: Sequence[Path] = (),
                env: Optional[Mapping[str, str]] = None, cwd: str = '/') -> list[str]:
        """The host command line that runs COMMAND inside, as root.

        RO and RW are host directories mounted at the same path inside; the
        project checkout always is, read-only.
        """
        merged = self.scratch / 'merged'
        for path in (self.chroot, self.scratch, *ro, *rw):
            if any(c in str(path) for c in ',:\n'):   # overlay options and mount paths
                raise ValueError('unusable path for the sid chroot: %r' % str(path))
        q = shlex.quote
        lines = [
            'mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s' % (
                q(str(self.chroot)), q(str(self.upper)), q(str(self.scratch / 'work')), q(str(merged))),
            'mount -t proc proc %s/proc' % q(str(merged)),
            'mount --rbind /sys %s/sys' % q(str(merged)),
            'mount --rbind /dev %s/dev' % q(str(merged)),
        ]
        for path, writable in [(ROOT, False)] + [(Path(p), False) for p in ro] + \
                [(Path(p), True) for p in rw]:
            inside = q(str(merged) + str(Path(path).resolve()))
            lines.append('mkdir -p %s && mount --bind %s %s' % (inside, q(str(path)), inside))
            if not writable:
                lines.append('mount -o remount,bind,ro %s' % inside)
        variables = {'PATH': PATH, 'HOME': '/root', 'LC_ALL': 'C.UTF-8', **(env or {})}
        lines.append('exec chroot %s /usr/bin/env -i -C %s %s "$@"' % (
            q(str(merged)), q(cwd), ' '.join(q('%s=%s' % kv) for kv in variables.items())))
        return [shutil.which('unshare', path=PATH), '--mount', '--propagation', 'private', '--',
                '/bin/sh', '-euc', '\n'.join(lines), 'sidchroot', *command]

    def run(self, command: Sequence[str], ro: Sequence[Path] = (), rw: Sequence[Path] = (),
            env: Optional[Mapping[str, str]] = None, cwd: str = '/', input: Optional[str] = None,
            check: bool = False, timeout: int = 300) -> Result:
        # its own process group: on a timeout everything in the namespace is killed, so a
        # hung command (a nested dnf5 waiting for the rpmdb lock) leaves no process or mount
        proc = subprocess.Popen(self.command(command, ro=ro, rw=rw, env=env, cwd=cwd),
                                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={'PATH': PATH, 'LC_ALL': 'C.UTF-8'}, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        result = Result(proc.returncode, stdout, stderr)
        if check and proc.returncode != 0:
            raise AssertionError('in the sid chroot: %s\n%s' % (shlex.join(command), result))
        return result


@pytest.fixture(scope='session')
def sid_chroot() -> Path:
    """The cached sid chroot; built when absent (30-60 s), else the test is skipped loudly."""
    try:
        return ensure_built()
    except Unavailable as exc:
        message = 'Debian sid chroot with dnf5 unavailable, dnf5 tests skipped: %s' % exc
        if os.environ.get('KERNELSPLIT_REQUIRE_SID') == '1':
            pytest.fail(message)
        warnings.warn(message)
        pytest.skip(message)


@pytest.fixture
def sid(sid_chroot, tmp_path) -> SidRoot:
    """A SidRoot with its own writable layer, for one test."""
    return SidRoot(sid_chroot, tmp_path / 'sid')
