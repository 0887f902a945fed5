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
    from typing import Optional, Sequence

from . import hardware
from .config import Config
from .kmod import DamagedIndexError, KmodError, ModuleIndex, release_dirs
from .modules import DeviceNeed, device_needs

logger = logging.getLogger('dnf.plugin')

_CONTAINER_MARKERS = ('/run/.containerenv', '/.dockerenv', '/run/systemd/container')


def in_container() -> Optional[str]:
    """Why this looks like a container (its kernel and hardware are the host's), or None."""
    if os.environ.get('container'):
        return 'container=%s in the environment' % os.environ['container']
    for marker in _CONTAINER_MARKERS:
        if os.path.exists(marker):
            return '%s exists' % marker
    return None


def foreign_root_reason(config: Config, installroot: str) -> Optional[str]:
    """Why ROOT's kernels are not to be judged against this machine's hardware, or None.

    An installroot other than / is some other system unless the configuration
    says it is one this machine will boot; a container's own root never boots.
    """
    if os.path.realpath(installroot) != '/':
        if config.hardware_in_installroot:
            return None
        return ('--installroot %s is not this machine; set hardware_in_installroot=yes in %s '
                'to judge its kernels against this machine\'s hardware'
                % (installroot, config.source))
    container = in_container()
    if container:
        return ('this looks like a container (%s): its kernels are never booted on this '
                'hardware' % container)
    return None


def running_release() -> str:
    return os.uname().release


def index_candidates(installed: Sequence[str], running: str) -> list[str]:
    """Kernels to take the module index from, best first: the running one, then newest first."""
    ordered = [running] if running in installed else []
    return ordered + [kver for kver in installed if kver != running]


def open_index(root: str, candidates: Sequence[str], damaged: Optional[list[str]] = None
               ) -> tuple[Optional[str], Optional[ModuleIndex]]:
    """The first of CANDIDATES' indexes that opens; a damaged one is said (and noted in
    DAMAGED), and the next one tried."""
    for kver in candidates:
        try:
            return kver, ModuleIndex.for_kernel(root, kver)
        except DamagedIndexError as exc:
            logger.warning('kernelsplit: %s', exc)
            if damaged is not None:
                damaged.append(str(exc))
        except KmodError as exc:
            logger.debug('kernelsplit: no usable module index for %s: %s', kver, exc)
    return None, None


class HostNeeds(namedtuple('HostNeeds', [
        'needs',            # tuple[DeviceNeed, ...]
        'ignored',          # tuple[Device, ...]
        'index_kver',       # the kernel whose module index resolved the needs, or None
        'builtin',          # frozenset[str]: that index's built-in modules, or None
        'notes',            # tuple[str, ...]
        'hardware_problem',     # why the devices could not be listed at all, or None
        ], defaults=(None, (), None))):
    """What each present device needs, per the reference module index."""
    __slots__ = ()

    @property
    def wanted_modules(self) -> set[str]:
        """Every module some device needs: what to look up in a kernel's packages."""
        return {module for need in self.needs for module in need.modules}

    @property
    def unresolved_modaliases(self) -> list[str]:
        """Modaliases of devices the local index named no module for: exact mode's input."""
        return [need.device.modalias for need in self.needs if not need.modules]

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
        'tried',            # tuple[str, ...]: the kernels whose index was tried, in order
        'index_kver',       # the last of them when its index opened, else None
        'needs',            # tuple[(modules, basis), ...], one per device listed
        'builtin',          # frozenset[str] or None, as HostNeeds.builtin
        ])):
    """The devices' needs worked out ahead, alongside dnf, before the installed
    kernels are known for sure (see resolve_ahead)."""
    __slots__ = ()

    def holds_for(self, candidates: Sequence[str], devices: Sequence[hardware.Device]) -> bool:
        """Whether host_needs() with these index CANDIDATES and DEVICES would find the same."""
        candidates = tuple(candidates)
        same_index = candidates[:len(self.tried)] == self.tried and \
            (self.index_kver is not None or candidates == self.tried)
        return same_index and len(self.needs) == len(devices)


def resolve_ahead(root: str, devices: Sequence[hardware.Device],
                  running: Optional[str] = None) -> Resolution:
    """What DEVICES need, per the index host_needs() will most likely pick.

    Without dnf's package database the installed kernels are guessed from
    ROOT's module directories, newest version first; host_needs() uses the
    answer only when its own candidates begin with the ones tried here.
    """
    found = {kver for _, kver in release_dirs(root)}
    candidates = index_candidates(sorted(found, key=_version_key, reverse=True),
                                  running or running_release())
    kver, needs, builtin = _resolve(root, candidates, devices)
    tried = candidates[:candidates.index(kver) + 1] if kver is not None else candidates
    return Resolution(tuple(tried), kver, tuple((n.modules, n.basis) for n in needs), builtin)


def _resolve(root: str, candidates: Sequence[str], devices: Sequence[hardware.Device],
             damaged: Optional[list[str]] = None
             ) -> tuple[Optional[str], tuple[DeviceNeed, ...], Optional[frozenset[str]]]:
    """(index kernel, DEVICES' needs, its built-ins) with the first of CANDIDATES' indexes."""
    kver, index = open_index(root, candidates, damaged)
    try:
        return kver, device_needs(devices, index), \
            index.builtin_modules() if index is not None else None
    finally:
        if index is not None:
            index.close()


def _version_key(kver: str) -> list[tuple[int, object]]:
    """'6.10.0-1.x86_64' sorts after '6.9.1-1.x86_64'."""
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in re.split(r'(\d+)', kver) if part]


def host_needs(config: Config, root: str, installed: Sequence[str],
               running: Optional[str] = None,
               discovery: Optional[hardware.Discovery] = None,
               ahead: Optional[Resolution] = None) -> HostNeeds:
    """Devices present (minus ignored ones) and what each needs, per the reference index.

    DISCOVERY: the devices as already listed (in the background), else listed now.
    AHEAD: their needs as resolve_ahead() found them, used when it holds for INSTALLED.
    """
    if discovery is None:
        discovery = hardware.discover(config.buses)
    ignored = tuple(d for d in discovery.devices if config.ignores(d))
    candidates = index_candidates(installed, running or running_release())
    damaged: list[str] = []
    if ahead is not None and ahead.holds_for(candidates, discovery.devices):
        logger.debug('kernelsplit: device needs resolved in the background (index: %s)',
                     ahead.index_kver)
        kver, builtin = ahead.index_kver, ahead.builtin
        needs = tuple(DeviceNeed(device, *need) for device, need
                      in zip(discovery.devices, ahead.needs) if not config.ignores(device))
    else:
        if ahead is not None:
            logger.debug('kernelsplit: device needs resolved again: the background tried '
                         'the index of %s, the installed kernels are %s',
                         ', '.join(ahead.tried) or 'no kernel', ', '.join(installed) or 'none')
        kept = tuple(d for d in discovery.devices if not config.ignores(d))
        kver, needs, builtin = _resolve(root, candidates, kept, damaged)
    notes = damaged
    if kver is None:
        notes.append('no installed kernel has a %smodule index (run depmod); devices '
                     'without a bound driver cannot be judged' % ('usable ' if damaged else ''))
    return HostNeeds(needs, ignored, kver, builtin, tuple(notes), discovery.problem)
