"""Which kernel modules each device needs, decided on kmod's answers.

- bound to a passthrough stub (vfio-pci, pci-stub, uio_pci_generic): that stub's
  module only -- a GPU handed to VMs needs vfio_pci, not nouveau;
- bound to any other driver: that driver's module (its `module` link, else the
  kmod match named like the driver); when neither names an in-kernel module
  (an out-of-tree nvidia, say) every in-kernel kmod match, as a safety net;
  and a driver built into the running kernel (no `module` link) also needs the
  module named like it in any release that ships one (`by_name`: the next
  kernel may build i40e as a module where this one has it built in);
- unbound: every in-kernel module kmod would load for the modalias -- on the
  buses the configuration counts unbound devices on (config.UNBOUND_BUSES);
  elsewhere nothing (basis UNCOUNTED).

Out-of-tree modules (installed outside /lib/modules/KVER/kernel/) are left out:
no kernel subpackage can ship them.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Iterable, Optional

from .hardware import Device
from .kmod import ModuleIndex, normalize


UNCOUNTED = 'uncounted'


class DeviceNeed(namedtuple('DeviceNeed', [
        'device',           # Device
        'modules',          # tuple[str, ...]: normalised names; may include built-ins
        'basis',            # passthrough | driver | safety-net | modalias | uncounted
        'by_name',          # a built-in driver's normalised name, needed by a release
                            # only when one of its packages ships a module so named
        ], defaults=(None,))):
    """The modules one device needs, and on what basis they were chosen."""
    __slots__ = ()


def device_need(device: Device, index: Optional[ModuleIndex],
                matches: Optional[tuple[str, ...]] = None) -> DeviceNeed:
    """What DEVICE needs; MATCHES: kmod's answer for its modalias, when already looked up."""
    def in_kernel(names: Iterable[str]) -> tuple[str, ...]:
        if index is None:
            return tuple(names)
        return tuple(n for n in names if not index.is_out_of_tree(n))

    def kmod_matches() -> tuple[str, ...]:
        if index is None:
            return ()
        return in_kernel(matches if matches is not None else index.lookup(device.modalias))

    if device.driver is None:
        return DeviceNeed(device, kmod_matches(), 'modalias')
    driver = normalize(device.driver)
    if device.passthrough:
        return DeviceNeed(device, (normalize(device.driver_module or driver),), 'passthrough')
    if device.driver_module and in_kernel([normalize(device.driver_module)]):
        return DeviceNeed(device, (normalize(device.driver_module),), 'driver')
    found = kmod_matches()
    if driver in found:
        return DeviceNeed(device, (driver,), 'driver')
    # No module link: the running kernel has the driver built in.
    by_name = driver if device.driver_module is None else None
    return DeviceNeed(device, found, 'safety-net' if found or by_name is None else 'driver',
                      by_name)


def device_needs(devices: Iterable[Device], index: Optional[ModuleIndex]) -> tuple[DeviceNeed, ...]:
    devices = tuple(devices)
    lookups = index.lookup_many(d.modalias for d in devices) if index is not None else {}
    return tuple(device_need(d, index, lookups.get(d.modalias)) for d in devices)
