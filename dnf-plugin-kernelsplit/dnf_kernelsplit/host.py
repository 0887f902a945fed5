"""What this host needs: its devices and the modules they need, per kmod.

The glue between hardware discovery and module resolution, shared by the
`check` command and the transaction hook.  The reference index is the running
kernel's when that kernel is installed in the root, else the newest installed
kernel's that has an index.
"""

from __future__ import annotations

import logging
import os
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Optional, Sequence

from . import hardware
from .config import Config
from .kmod import KmodError, ModuleIndex
from .modules import device_needs

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


def open_index(root: str, candidates: Sequence[str]) -> tuple[Optional[str], Optional[ModuleIndex]]:
    for kver in candidates:
        try:
            return kver, ModuleIndex.for_kernel(root, kver)
        except KmodError as exc:
            logger.debug('kernelsplit: no usable module index for %s: %s', kver, exc)
    return None, None


class HostNeeds(namedtuple('HostNeeds', [
        'needs',            # tuple[DeviceNeed, ...]
        'ignored',          # tuple[Device, ...]
        'index_kver',       # the kernel whose module index resolved the needs, or None
        'index',            # that ModuleIndex, or None
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
        if self.index is not None and self.index_kver == kver:
            return self.index.builtin_modules()
        try:
            with ModuleIndex.for_kernel(root, kver) as index:
                return index.builtin_modules()
        except KmodError:
            return self.index.builtin_modules() if self.index is not None else None


def host_needs(config: Config, root: str, installed: Sequence[str],
               running: Optional[str] = None,
               discovery: Optional[hardware.Discovery] = None) -> HostNeeds:
    """Devices present (minus ignored ones) and what each needs, per the reference index.

    DISCOVERY: the devices as already listed (in the background), else listed now.
    """
    if discovery is None:
        discovery = hardware.discover(config.buses)
    ignored = tuple(d for d in discovery.devices if config.ignores(d))
    kept = tuple(d for d in discovery.devices if not config.ignores(d))
    kver, index = open_index(root, index_candidates(installed, running or running_release()))
    notes = []
    if index is None:
        notes.append('no installed kernel has a module index (run depmod); devices '
                     'without a bound driver cannot be judged')
    return HostNeeds(device_needs(kept, index), ignored, kver, index, tuple(notes),
                     discovery.problem)
