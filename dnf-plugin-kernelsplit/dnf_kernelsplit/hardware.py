"""Hardware discovery: the devices present, as libudev (through pyudev) sees them.

Every device that carries a MODALIAS counts, whatever its bus: PCI, virtio,
vmbus, xen, usb, acpi, platform, ...  Nothing here may raise into dnf: no
pyudev, no /sys, a device that vanishes mid-scan or an unreadable attribute
is logged and skipped.
"""

from __future__ import annotations

import logging
import os
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Any, Iterable, Optional

logger = logging.getLogger('dnf.plugin')

# Drivers that hold a device for passthrough to a VM or to userspace: the
# device then needs the stub's module, not the one its modalias would load.
PASSTHROUGH_STUBS = frozenset({'vfio_pci', 'pci_stub', 'uio_pci_generic'})


class Device(namedtuple('Device', [
        'sys_path',         # str
        'subsystem',        # str
        'modalias',         # str
        'driver',           # str or None
        'driver_module',    # the driver's `module` link; None when built in
        'slot',             # PCI: 0000:3b:00.0
        'vendor',           # PCI: '8086'
        'device',           # PCI: '1572'
        'device_class',     # PCI: '020000'
        'sriov',            # 'pf' (has sriov_totalvfs) or 'vf' (has physfn)
        'physfn',           # a VF's parent function (slot)
        ], defaults=(None,) * 8)):
    """One device with a modalias, and what the running kernel bound to it."""
    __slots__ = ()

    @property
    def name(self) -> str:
        """How people refer to the device: the PCI slot, else the sysfs path."""
        return self.slot or self.sys_path

    @property
    def ids(self) -> Optional[str]:
        if self.vendor and self.device:
            return '%s:%s' % (self.vendor, self.device)
        return None

    @property
    def passthrough(self) -> bool:
        return self.driver is not None and \
            self.driver.replace('-', '_') in PASSTHROUGH_STUBS

    def label(self) -> str:
        """'0000:3b:00.0 [8086:1572]' for messages."""
        return '%s [%s]' % (self.name, self.ids) if self.ids else self.name


def _hex_id(value: Optional[str], width: int) -> Optional[str]:
    """'0x8086' / '8086' -> '8086'; anything unparsable -> None."""
    if not value:
        return None
    try:
        return '%0*x' % (width, int(value, 16))
    except ValueError:
        return None


def _link_name(path: str) -> Optional[str]:
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def _attribute(udev_device: Any, name: str) -> Optional[str]:
    try:
        value = udev_device.attributes.get(name)
    except (KeyError, OSError, UnicodeDecodeError):
        return None
    if value is None:
        return None
    return value.decode(errors='replace').strip() if isinstance(value, bytes) else str(value)


def device_from_udev(udev_device: Any) -> Optional[Device]:
    """A Device from a pyudev device; None when it has no modalias or has gone away."""
    sys_path = udev_device.sys_path
    if not os.path.isdir(sys_path):
        return None                      # removed since it was enumerated
    properties = udev_device.properties
    modalias = properties.get('MODALIAS') or _attribute(udev_device, 'modalias')
    if not modalias:
        return None
    driver = udev_device.driver
    driver_module = _link_name(os.path.join(sys_path, 'driver', 'module')) if driver else None
    subsystem = udev_device.subsystem or ''
    slot = vendor = device = device_class = sriov = physfn = None
    if subsystem == 'pci':
        slot = properties.get('PCI_SLOT_NAME') or udev_device.sys_name
        pci_id = properties.get('PCI_ID', '')
        if ':' in pci_id:
            vendor, device = (_hex_id(part, 4) for part in pci_id.split(':', 1))
        else:
            vendor = _hex_id(_attribute(udev_device, 'vendor'), 4)
            device = _hex_id(_attribute(udev_device, 'device'), 4)
        device_class = _hex_id(properties.get('PCI_CLASS') or _attribute(udev_device, 'class'), 6)
        physfn = _link_name(os.path.join(sys_path, 'physfn'))
        if physfn:
            sriov = 'vf'
        elif _attribute(udev_device, 'sriov_totalvfs') not in (None, '', '0'):
            sriov = 'pf'
    return Device(sys_path=sys_path, subsystem=subsystem, modalias=modalias,
                  driver=driver, driver_module=driver_module, slot=slot,
                  vendor=vendor, device=device, device_class=device_class,
                  sriov=sriov, physfn=physfn)


def devices_from_udev(udev_devices: Iterable[Any],
                      buses: Optional[frozenset[str]] = None) -> tuple[Device, ...]:
    """Devices with a modalias among UDEV_DEVICES (optionally only on BUSES)."""
    found = []
    for udev_device in udev_devices:
        try:
            if buses is not None and udev_device.subsystem not in buses:
                continue
            device = device_from_udev(udev_device)
        except Exception as exc:  # pyudev raises a zoo of types for a vanished device
            logger.debug('kernelsplit: skipping %s: %s',
                         getattr(udev_device, 'sys_path', '?'), exc)
            continue
        if device is not None:
            found.append(device)
    return tuple(sorted(found, key=lambda d: d.sys_path))


class Discovery(namedtuple('Discovery', [
        'devices',          # tuple[Device, ...]
        'problem',          # why the hardware could not be listed at all, or None
        ], defaults=(None,))):
    """The devices found, or why none could be listed."""
    __slots__ = ()


def discover(buses: Optional[frozenset[str]] = None) -> Discovery:
    """Every device with a modalias on this machine, or why that cannot be known."""
    try:
        import pyudev
    except ImportError as exc:
        return Discovery((), 'pyudev is not available (%s)' % exc)
    if not os.path.isdir('/sys/bus'):
        return Discovery((), '/sys is not mounted')
    try:
        # libudev filters on the property itself: devices without one never reach Python.
        enumeration = list(pyudev.Context().list_devices().match_property('MODALIAS', '*'))
    except Exception as exc:
        return Discovery((), 'udev cannot list devices (%s)' % exc)
    return Discovery(devices_from_udev(enumeration, buses))
