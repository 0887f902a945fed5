"""Hardware discovery: the devices present, as libudev (through pyudev) sees them.

Every device that carries a MODALIAS counts, whatever its bus: PCI, virtio,
vmbus, xen, usb, acpi, platform, ...  Nothing here may raise into dnf: no
pyudev, no /sys, a device that vanishes mid-scan or an unreadable attribute
is logged and skipped.

What the kernel and udev hand over is bytes.  A value that is not UTF-8 is
read with each bad byte as U+FFFD, and the device is still judged, with one
warning naming it and the values.  For its modalias that is what kmod would
find too: module alias patterns are ASCII (modpost writes them from the
drivers' ID tables), so none of their literal characters matched the byte,
and a `*` matches U+FFFD as it matched the byte.  Only a `?` or `[...]`
standing for exactly that byte would differ: modpost writes no `?`, and
`[...]` only for ranges of hex digits.  A modalias longer than the kernel
ever writes is not the kernel's: that device is left out, with a warning.

The listing is kept between runs (keep_listing) for as long as the kernel
says nothing changed: every device added or removed, and since Linux 4.14
every driver bound or unbound, is a uevent, and the kernel counts its uevents
in /sys/kernel/uevent_seqnum.  What a Device holds comes from the kernel's
sysfs (its uevent file, the driver links), not from udev's rules, so while
the count and the boot are what they were, listing again finds the same
devices.  Asking libudev takes 40-50 ms for ~400 sysfs devices (and far more
under umockdev); reading the kept listing, under a millisecond.
"""

from __future__ import annotations

import logging
import marshal
import os
import stat
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


def _text(value: bytes, name: str, garbled: list[str]) -> str:
    """VALUE as text; NAME noted in GARBLED when it is not UTF-8 (bad bytes as U+FFFD)."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        garbled.append(name)
        return value.decode(errors='replace')


def _property(properties: Any, name: str, garbled: list[str]) -> Optional[str]:
    """The udev property NAME among PROPERTIES (a pyudev device's; see _text)."""
    try:
        return properties.get(name)
    except UnicodeDecodeError as exc:    # pyudev decodes strictly; the error holds the bytes
        return _text(bytes(exc.object), name, garbled)


def _attribute(udev_device: Any, name: str, garbled: list[str]) -> Optional[str]:
    """The sysfs attribute NAME, stripped (see _text); None when absent or unreadable."""
    try:
        value = udev_device.attributes.get(name)
    except (KeyError, OSError, UnicodeDecodeError):
        return None
    if value is None:
        return None
    return _text(value, name, garbled).strip() if isinstance(value, bytes) else str(value)


def _count(text: Optional[str]) -> int:
    """A sysfs count ('64'); 0 for anything else."""
    try:
        return int(text or '')
    except ValueError:
        return 0


def modalias_limit() -> int:
    """The longest modalias the running kernel writes, in bytes.

    A sysfs attribute's show() writes into one page and the kernel keeps at most
    PAGE_SIZE - 1 bytes of it, its newline included (fs/sysfs/file.c,
    sysfs_kf_seq_show); the MODALIAS uevent variable is shorter still, all
    variables of an event sharing UEVENT_BUFFER_SIZE (2048) bytes
    (include/linux/kobject.h).  The page size is the bound that can never drop
    a real modalias: 4 KiB on x86, up to 64 KiB on arm64 and ppc64.
    """
    try:
        return os.sysconf('SC_PAGE_SIZE') - 2
    except (ValueError, OSError):
        return 4096 - 2


def device_from_udev(udev_device: Any, limit: Optional[int] = None) -> Optional[Device]:
    """A Device from a pyudev device; None when it has no modalias, has gone away,
    or its modalias is longer than LIMIT bytes (modalias_limit())."""
    try:
        sys_path = udev_device.sys_path
    except UnicodeDecodeError as exc:    # a path that cannot be named cannot be judged
        logger.warning('kernelsplit: leaving out %s: its sysfs path holds bytes that are not '
                       'UTF-8', bytes(exc.object).decode(errors='replace'))
        return None
    if not os.path.isdir(sys_path):
        return None                      # removed since it was enumerated
    garbled: list[str] = []
    properties = udev_device.properties
    modalias = _property(properties, 'MODALIAS', garbled) or \
        _attribute(udev_device, 'modalias', garbled)
    if not modalias:
        return None
    length, limit = len(modalias.encode()), limit or modalias_limit()
    if length > limit:
        logger.warning('kernelsplit: leaving out %s: its modalias is %d bytes long, and the '
                       'kernel writes at most %d', sys_path, length, limit)
        return None
    driver = udev_device.driver
    driver_module = _link_name(os.path.join(sys_path, 'driver', 'module')) if driver else None
    subsystem = udev_device.subsystem or ''
    slot = vendor = device = device_class = sriov = physfn = None
    if subsystem == 'pci':
        # Identifiers from the udev properties, else (absent or garbled) from sysfs.
        slot = _property(properties, 'PCI_SLOT_NAME', garbled)
        if not slot or '\ufffd' in slot:
            slot = udev_device.sys_name
        pci_id = _property(properties, 'PCI_ID', garbled) or ''
        if ':' in pci_id:
            vendor, device = (_hex_id(part, 4) for part in pci_id.split(':', 1))
        if vendor is None or device is None:
            vendor = _hex_id(_attribute(udev_device, 'vendor', garbled), 4)
            device = _hex_id(_attribute(udev_device, 'device', garbled), 4)
        device_class = _hex_id(_property(properties, 'PCI_CLASS', garbled), 6) or \
            _hex_id(_attribute(udev_device, 'class', garbled), 6)
        physfn = _link_name(os.path.join(sys_path, 'physfn'))
        if physfn:
            sriov = 'vf'
        elif _count(_attribute(udev_device, 'sriov_totalvfs', garbled)) > 0:
            sriov = 'pf'
    found = Device(sys_path=sys_path, subsystem=subsystem, modalias=modalias,
                   driver=driver, driver_module=driver_module, slot=slot,
                   vendor=vendor, device=device, device_class=device_class,
                   sriov=sriov, physfn=physfn)
    if garbled:
        logger.warning('kernelsplit: %s: %s: bytes that are not UTF-8, read as U+FFFD',
                       found.label() if found.slot else sys_path, ', '.join(garbled))
    return found


def devices_from_udev(udev_devices: Iterable[Any],
                      buses: Optional[frozenset[str]] = None) -> tuple[Device, ...]:
    """Devices with a modalias among UDEV_DEVICES (optionally only on BUSES)."""
    found = []
    limit = modalias_limit()
    for udev_device in udev_devices:
        try:
            if buses is not None and udev_device.subsystem not in buses:
                continue
            device = device_from_udev(udev_device, limit)
        except Exception as exc:  # pyudev raises a zoo of types for a vanished device
            logger.debug('kernelsplit: skipping %s: %s', _device_path(udev_device), exc)
            continue
        if device is not None:
            found.append(device)
    return tuple(sorted(found, key=lambda d: d.sys_path))


def _device_path(udev_device: Any) -> str:
    """UDEV_DEVICE's sysfs path for a message, whatever it holds."""
    try:
        return str(udev_device.sys_path)
    except Exception:
        return repr(udev_device)


class Discovery(namedtuple('Discovery', [
        'devices',          # tuple[Device, ...]
        'problem',          # why the hardware could not be listed at all, or None
        ], defaults=(None,))):
    """The devices found, or why none could be listed."""
    __slots__ = ()


def discover(buses: Optional[frozenset[str]] = None) -> Discovery:
    """Every device with a modalias on this machine (optionally only on BUSES), or why
    that cannot be known; the listing kept from a run before while it holds."""
    key = listing_key()
    directory = listing_directory() if key else None
    if directory:
        kept = read_listing(directory, key)
        if kept is not None:
            devices, messages = kept
            for level, text in messages:
                logger.log(level, '%s', text)
            logger.debug('kernelsplit: %d devices as listed before, kept in %s (uevent %s)',
                         len(devices), os.path.join(directory, LISTING_FILE), key[-1])
            return Discovery(on_buses(devices, buses))
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
    if not directory:
        return Discovery(devices_from_udev(enumeration, buses))
    said = Said()
    logger.addHandler(said)
    try:
        devices = devices_from_udev(enumeration)      # every bus: the listing is kept whole
    finally:
        logger.removeHandler(said)
    if keep_listing(directory, key, devices, said.messages):
        logger.debug('kernelsplit: %d devices listed, kept in %s (uevent %s)', len(devices),
                     os.path.join(directory, LISTING_FILE), key[-1])
    return Discovery(on_buses(devices, buses))


def on_buses(devices: tuple[Device, ...], buses: Optional[frozenset[str]]) -> tuple[Device, ...]:
    return devices if buses is None else tuple(d for d in devices if d.subsystem in buses)


# --- the listing kept between runs -----------------------------------------------------

# Bump when Device, or what discover() puts in one, changes.
LISTING_FORMAT = 1
LISTING_FILE = 'devices'
_LISTING_MAX_BYTES = 16 << 20      # ~300 bytes a device
# Since 4.14 the kernel sends a uevent when a driver is bound to a device or unbound
# from it (KOBJ_BIND, KOBJ_UNBIND); before, only devices added and removed counted.
_BIND_UEVENTS_SINCE = (4, 14)


class Said(logging.Handler):
    """Log messages and their levels, kept to be logged again: what listing the devices
    said, when the listing is reused; what background.py's child said, in dnf."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.messages: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelno, record.getMessage()))


def _release(text: str) -> tuple[int, ...]:
    """'6.1.0-27-amd64' -> (6, 1); anything else -> ()."""
    parts = []
    for part in text.split('-', 1)[0].split('.')[:2]:
        if not part.isdigit():
            return ()
        parts.append(int(part))
    return tuple(parts)


def _first_line(path: str) -> str:
    with open(path, 'rb') as handle:
        return handle.readline().decode('ascii').strip()


def listing_key() -> Optional[tuple]:
    """What says the devices are as they were: the boot, the sysfs mounted, and the
    kernel's count of uevents.  None when one of them cannot be read, or the kernel does
    not count binding: the listing is then not kept.  The sysfs counts for a /sys that
    is not the kernel's own, umockdev's emulated machines (each a new directory)."""
    if _release(os.uname().release) < _BIND_UEVENTS_SINCE:
        return None
    try:
        boot = _first_line('/proc/sys/kernel/random/boot_id')
        seqnum = int(_first_line('/sys/kernel/uevent_seqnum'))
        sysfs = os.stat('/sys/devices')
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return (LISTING_FORMAT, boot, sysfs.st_dev, sysfs.st_ino, sysfs.st_ctime_ns, seqnum)


def listing_directory() -> Optional[str]:
    """Where this user keeps the listing: /run/kernelsplit for root (gone at the next
    boot, as the listing is), $XDG_RUNTIME_DIR/kernelsplit for anyone else, None
    without one."""
    if os.geteuid() == 0:
        return '/run/kernelsplit'
    runtime = os.environ.get('XDG_RUNTIME_DIR', '')
    return os.path.join(runtime, 'kernelsplit') if os.path.isabs(runtime) else None


def _ours(status: os.stat_result) -> bool:
    """Written by this user and by nobody else: only such a listing is believed."""
    return status.st_uid == os.geteuid() and not status.st_mode & 0o022



def read_listing(directory: str, key: tuple) -> Optional[tuple[tuple[Device, ...],
                                                               list[tuple[int, str]]]]:
    """(devices, what listing them said) as kept in DIRECTORY under KEY; None when there
    is none, it is another key's, or it is not this user's alone or not intact."""
    try:
        if not _ours(os.stat(directory)):
            return None
        # O_NONBLOCK: a FIFO in its place would otherwise wait for a writer forever
        fd = os.open(os.path.join(directory, LISTING_FILE),
                     os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        status = os.fstat(fd)
        if not _ours(status) or not stat.S_ISREG(status.st_mode) or \
                status.st_size > _LISTING_MAX_BYTES:
            return None
        data = os.read(fd, status.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        kept = marshal.loads(data)
        if kept['key'] != key:
            return None
        devices = tuple(Device(*fields) for fields in kept['devices'])
        messages = [(int(level), str(text)) for level, text in kept['messages']]
    except (ValueError, EOFError, TypeError, KeyError):
        logger.debug('kernelsplit: %s is damaged: listing the devices',
                     os.path.join(directory, LISTING_FILE))
        return None
    return devices, messages


def keep_listing(directory: str, key: tuple, devices: tuple[Device, ...],
                 messages: list[tuple[int, str]]) -> bool:
    """Keep DEVICES under KEY in DIRECTORY (made this user's alone), replacing what is
    there at once; anything in the way is logged, and the listing is not kept (False)."""
    path = os.path.join(directory, LISTING_FILE)
    partial = '%s.%d' % (path, os.getpid())
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not _ours(os.stat(directory)):
            logger.debug('kernelsplit: not keeping the device listing: %s is not this '
                         'user\'s alone', directory)
            return False
        data = marshal.dumps({'key': key, 'devices': [tuple(d) for d in devices],
                              'messages': messages})
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW |
                     os.O_CLOEXEC | os.O_NONBLOCK, 0o600)
        with open(fd, 'wb') as out:
            out.write(data)
        os.replace(partial, path)
        return True
    except (OSError, ValueError) as exc:
        logger.debug('kernelsplit: not keeping the device listing in %s: %s', directory, exc)
        try:
            os.unlink(partial)
        except OSError:
            pass
        return False
