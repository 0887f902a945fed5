"""What this host needs: its devices and the modules they need, per kmod.

The glue between hardware discovery and module resolution, shared by the
`check` command and the transaction hook.  The reference index is the running
kernel's when that kernel is installed in the root, else the newest installed
kernel's that has an index.
"""

from __future__ import annotations

import logging
import os
import re
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Iterable, Optional, Sequence

from . import hardware
from .config import Config
from .kmod import DamagedIndexError, KmodError, ModuleIndex, modules_dir, release_dirs
from .kmod import has_index as kmod_has_index
from .modules import UNCOUNTED, DeviceNeed, device_needs

logger = logging.getLogger('dnf.plugin')

def _first_line(path: str) -> str:
    """PATH's first line, stripped; '' when it is absent, empty or cannot be read."""
    try:
        with open(path, 'rb') as handle:
            return handle.readline().decode('utf-8', 'replace').strip()
    except OSError:
        return ''


def _environ_value(path: str, name: str) -> str:
    """NAME's value in a /proc/PID/environ file; '' when unset or the file cannot be read."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except OSError:         # another user's PID 1: only root (CAP_SYS_PTRACE) may look
        return ''
    prefix = name.encode() + b'='
    for entry in data.split(b'\0'):
        if entry.startswith(prefix):
            return entry[len(prefix):].decode('utf-8', 'replace').strip()
    return ''


def in_container(root: str = '/') -> Optional[str]:
    """The marker that makes ROOT look like a container's, or None.

    systemd-detect-virt's rules (detect_container() in systemd's virt.c), in
    its order: OpenVZ (/proc/vz without /proc/bc), WSL (the kernel release
    says so), what the container manager says (/run/host/container-manager,
    then /run/systemd/container, then PID 1's container= variable, which only
    root may read: otherwise systemd goes on, and so does this), then the
    files podman and docker leave (/run/.containerenv, /.dockerenv).  Left
    out: proot (a tracer) and systemd's last guess, a cgroup namespace.  A
    sandbox or VM that boots its own kernel may still carry /.dockerenv: the
    `container` key overrides the guess.
    """
    def at(path: str) -> str:
        return os.path.join(root, path.lstrip('/'))

    if os.path.exists(at('/proc/vz')) and not os.path.exists(at('/proc/bc')):
        return '/proc/vz without /proc/bc (OpenVZ)'
    release = _first_line(at('/proc/sys/kernel/osrelease'))
    if 'Microsoft' in release or 'WSL' in release:
        return '/proc/sys/kernel/osrelease says %r (WSL)' % release
    for path in ('/run/host/container-manager', '/run/systemd/container'):
        manager = _first_line(at(path))
        if manager:
            return '%s says %r' % (path, manager)
    manager = _environ_value(at('/proc/1/environ'), 'container')
    if manager:
        return "container=%s in PID 1's environment" % manager
    for path, manager in (('/run/.containerenv', 'podman'), ('/.dockerenv', 'docker')):
        if os.path.lexists(at(path)):
            return '%s exists (%s)' % (path, manager)
    return None


def foreign_root_reason(config: Config, installroot: str, root: str = '/') -> Optional[str]:
    """Why INSTALLROOT's kernels are not to be judged against this machine's hardware, or None.

    An installroot other than / is some other system unless the configuration
    says it is one this machine will boot; a container's own root never boots
    (the `container` key, else in_container(ROOT), says whether this is one).
    """
    if os.path.realpath(installroot) != '/':
        if config.hardware_in_installroot:
            return None
        return ('--installroot %s is not this machine; set hardware_in_installroot=yes in %s '
                'to judge its kernels against this machine\'s hardware'
                % (installroot, config.source))
    if config.container:
        return ('container = yes in %s: this is a container, whose kernels are never booted '
                'on this hardware' % config.source)
    if config.container is None:
        marker = in_container(root)
        if marker:
            return ('this looks like a container: %s, and a container\'s kernels are never '
                    'booted on this hardware; if this machine boots its own kernel, set '
                    'container = no in %s' % (marker, config.source))
    return None


def running_release() -> str:
    return os.uname().release


def index_candidates(installed: Sequence[str], running: str) -> list[str]:
    """Kernels to take the module index from, best first: the running one, then newest first."""
    ordered = [running] if running in installed else []
    return ordered + [kver for kver in installed if kver != running]


def has_index(root: str, kver: str) -> bool:
    return kmod_has_index(modules_dir(root, kver))


class IndexChain:
    """The installed kernels' module indexes, best first, consulted as one.

    The first (the reference index) bound this machine's devices, or is the
    newest; a modalias it knows no module for is looked up in the next ones,
    opened only then: a core-only kernel's index cannot know what its driver
    packages ship, while an older kernel installed whole does.
    """

    def __init__(self, root: str, candidates: Sequence[str],
                 damaged: Optional[list[str]] = None) -> None:
        self.root = root
        self._pending = [kver for kver in candidates if has_index(root, kver)]
        self.opened: list[tuple[str, ModuleIndex]] = []
        self.reference: Optional[str] = None
        self.damaged = damaged if damaged is not None else []
        self._open_next()

    def _open_next(self) -> bool:
        while self._pending:
            kver = self._pending.pop(0)
            try:
                self.opened.append((kver, ModuleIndex.for_kernel(self.root, kver)))
            except DamagedIndexError as exc:    # said, and the next kernel's index tried
                logger.warning('kernelsplit: %s', exc)
                self.damaged.append(str(exc))
                continue
            except KmodError as exc:
                logger.debug('kernelsplit: no usable module index for %s: %s', kver, exc)
                continue
            if self.reference is None:
                self.reference = kver
            return True
        return False

    def __bool__(self) -> bool:
        return bool(self.opened)

    def lookup_many(self, modaliases: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Each modalias's modules per the first index that names some."""
        pending = list(dict.fromkeys(modaliases))
        answers: dict[str, tuple[str, ...]] = {}
        position = 0
        while pending and (position < len(self.opened) or self._open_next()):
            found = self.opened[position][1].lookup_many(pending)
            position += 1
            answers.update((alias, names) for alias, names in found.items() if names)
            pending = [alias for alias in pending if alias not in answers]
        answers.update((alias, ()) for alias in pending)
        return answers

    def lookup(self, modalias: str) -> tuple[str, ...]:
        return self.lookup_many([modalias])[modalias]

    def is_out_of_tree(self, name: str) -> bool:
        """Per the first opened index that knows NAME (see ModuleIndex.is_out_of_tree)."""
        for _, index in self.opened:
            if index.info(name).known:
                return index.is_out_of_tree(name)
        return False

    def builtin_modules(self) -> Optional[frozenset[str]]:
        return self.opened[0][1].builtin_modules() if self.opened else None

    def close(self) -> None:
        for _, index in self.opened:
            index.close()
        self.opened = []


class HostNeeds(namedtuple('HostNeeds', [
        'needs',            # tuple[DeviceNeed, ...]
        'ignored',          # tuple[Device, ...]
        'index_kver',       # the kernel whose module index resolved the needs first, or None
        'builtin',          # frozenset[str]: that index's built-in modules, or None
        'notes',            # tuple[str, ...]
        'hardware_problem',     # why the devices could not be listed at all, or None
        ], defaults=(None, (), None))):
    """What each present device needs, per the installed kernels' module indexes."""
    __slots__ = ()

    @property
    def wanted_modules(self) -> set[str]:
        """Every module some device may need: what to look up in a kernel's packages."""
        return {module for need in self.needs for module in need.modules} | \
            {need.by_name for need in self.needs if need.by_name}

    @property
    def unresolved_modaliases(self) -> list[str]:
        """Modaliases of devices the local indexes named no module for: exact mode's input."""
        return [need.device.modalias for need in self.needs
                if not need.modules and need.basis != UNCOUNTED]

    @property
    def indexed(self) -> bool:
        return self.index_kver is not None

    def builtin_modules(self, root: str, kver: str) -> Optional[frozenset[str]]:
        """KVER's built-in modules from its own index, else the reference index's (None: no index)."""
        if self.builtin is not None and self.index_kver == kver:
            return self.builtin
        try:
            with ModuleIndex.for_kernel(root, kver) as index:
                return index.builtin_modules()
        except KmodError:
            return self.builtin


class Resolution(namedtuple('Resolution', [
        'candidates',       # tuple[str, ...]: the kernels with an index, in the order consulted
        'index_kver',       # the reference: the first whose index opened, else None
        'needs',            # tuple[(modules, basis, by_name), ...], one per device listed
        'builtin',          # frozenset[str] or None, as HostNeeds.builtin
        ])):
    """The devices' needs worked out ahead, alongside dnf, before the installed
    kernels are known for sure (see resolve_ahead)."""
    __slots__ = ()

    def holds_for(self, root: str, candidates: Sequence[str],
                  devices: Sequence[hardware.Device]) -> bool:
        """Whether host_needs() with these index CANDIDATES and DEVICES would find the same."""
        return tuple(k for k in candidates if has_index(root, k)) == self.candidates and \
            len(self.needs) == len(devices)


def resolve_ahead(root: str, devices: Sequence[hardware.Device],
                  running: Optional[str] = None) -> Resolution:
    """What DEVICES need, per the indexes host_needs() will most likely consult.

    Without dnf's package database the installed kernels are guessed from
    ROOT's module directories, newest version first; host_needs() uses the
    answer only when its own candidates are the same.
    """
    found = {kver for _, kver in release_dirs(root)}
    candidates = index_candidates(sorted(found, key=_version_key, reverse=True),
                                  running or running_release())
    kver, needs, builtin = _resolve(root, candidates, devices)
    return Resolution(tuple(k for k in candidates if has_index(root, k)), kver,
                      tuple((n.modules, n.basis, n.by_name) for n in needs), builtin)


def _resolve(root: str, candidates: Sequence[str], devices: Sequence[hardware.Device],
             damaged: Optional[list[str]] = None
             ) -> tuple[Optional[str], tuple[DeviceNeed, ...], Optional[frozenset[str]]]:
    """(reference kernel, DEVICES' needs, its built-ins) with CANDIDATES' indexes; a
    damaged index is said, noted in DAMAGED, and passed over."""
    chain = IndexChain(root, candidates, damaged)
    try:
        if not chain:
            return None, device_needs(devices, None), None
        return chain.reference, device_needs(devices, chain), chain.builtin_modules()
    finally:
        chain.close()


def _version_key(kver: str) -> list[tuple[int, object]]:
    """'6.10.0-1.x86_64' sorts after '6.9.1-1.x86_64'."""
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in re.split(r'(\d+)', kver) if part]


def host_needs(config: Config, root: str, installed: Sequence[str],
               running: Optional[str] = None,
               discovery: Optional[hardware.Discovery] = None,
               ahead: Optional[Resolution] = None) -> HostNeeds:
    """Devices present (minus ignored ones) and what each needs, per the installed
    kernels' module indexes (IndexChain).

    DISCOVERY: the devices as already listed (in the background), else listed now.
    AHEAD: their needs as resolve_ahead() found them, used when it holds for INSTALLED.
    """
    if discovery is None:
        discovery = hardware.discover(config.buses)
    ignored = tuple(d for d in discovery.devices if config.ignores(d))
    candidates = index_candidates(installed, running or running_release())
    damaged: list[str] = []
    if ahead is not None and ahead.holds_for(root, candidates, discovery.devices):
        logger.debug('kernelsplit: device needs resolved in the background (index: %s)',
                     ahead.index_kver)
        kver, builtin = ahead.index_kver, ahead.builtin
        needs = tuple(DeviceNeed(device, *need) for device, need
                      in zip(discovery.devices, ahead.needs) if not config.ignores(device))
    else:
        if ahead is not None:
            logger.debug('kernelsplit: device needs resolved again: the background consulted '
                         'the indexes of %s, the installed kernels are %s',
                         ', '.join(ahead.candidates) or 'no kernel',
                         ', '.join(installed) or 'none')
        kept = tuple(d for d in discovery.devices if not config.ignores(d))
        kver, needs, builtin = _resolve(root, candidates, kept, damaged)
    needs = tuple(need if need.device.driver is not None or config.counts_unbound(need.device)
                  else DeviceNeed(need.device, (), UNCOUNTED) for need in needs)
    notes = damaged
    if kver is None:
        notes.append('no installed kernel has a %smodule index (run depmod); devices '
                     'without a bound driver cannot be judged' % ('usable ' if damaged else ''))
    return HostNeeds(needs, ignored, kver, builtin, tuple(notes), discovery.problem)
