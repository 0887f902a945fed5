"""Real hardware captures from ../shared/realdata (never copied into the repo)."""

from __future__ import annotations

import os
import re
import tarfile
from pathlib import Path
from typing import Iterator, Optional

ROOT = Path(__file__).resolve().parent.parent
REALDATA = Path(os.environ.get('KERNELSPLIT_REALDATA', ROOT.parent / 'shared' / 'realdata'))

PCI_MODALIAS_RE = re.compile(
    rb'pci:v[0-9A-Fa-f]{8}d[0-9A-Fa-f]{8}sv[0-9A-Fa-f]{8}sd[0-9A-Fa-f]{8}'
    rb'bc[0-9A-Fa-f]{2}sc[0-9A-Fa-f]{2}i[0-9A-Fa-f]{2}')


def available() -> bool:
    return REALDATA.is_dir()


def _blobs(path: Path) -> Iterator[bytes]:
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            for member in archive:
                if member.isfile():
                    handle = archive.extractfile(member)
                    if handle is not None:
                        yield handle.read()
    else:
        yield path.read_bytes()


def pci_modaliases(root: Optional[Path] = None) -> list[str]:
    """Every distinct PCI modalias string in the captures (files and archives)."""
    found: set[bytes] = set()
    for path in sorted((root or REALDATA).rglob('*')):
        if path.is_file():
            for blob in _blobs(path):
                found.update(PCI_MODALIAS_RE.findall(blob))
    return sorted(alias.decode() for alias in found)


def modaliases(root: Optional[Path] = None) -> list[str]:
    """Every distinct modalias in the captures, of every bus: the PCI ones anywhere, the
    udev databases' (E: MODALIAS=) and the sysfs snapshots' (.../modalias files)."""
    found = set(pci_modaliases(root))
    for devices in udevadm_machines(root).values():
        found.update(d['MODALIAS'] for d in devices if d.get('MODALIAS'))
    for path in sorted((root or REALDATA).rglob('*')):
        if path.is_file() and tarfile.is_tarfile(path):
            with tarfile.open(path) as archive:
                for member in archive:
                    handle = archive.extractfile(member) \
                        if member.isfile() and member.name.endswith('/modalias') else None
                    if handle is not None:
                        found.add(handle.read().decode(errors='replace').strip())
    return sorted(found - {''})


def udevadm_machines(root: Optional[Path] = None) -> dict[str, list[dict[str, str]]]:
    """`udevadm info --export-db` dumps: machine -> devices (their E: properties + path)."""
    machines = {}
    for path in sorted(((root or REALDATA) / 'C_udevadm_checkbox').glob('udevadm_*.txt')):
        devices, current = [], None
        for line in path.read_text(errors='replace').splitlines():
            if line.startswith('P: '):
                current = {'DEVPATH': line[3:].strip()}
                devices.append(current)
            elif line.startswith('E: ') and current is not None and '=' in line:
                key, _, value = line[3:].partition('=')
                current[key] = value
        machines[path.stem[len('udevadm_checkbox_'):]] = devices
    return machines


_SKIP_PROPERTIES = frozenset({'DEVNAME', 'DEVLINKS', 'MAJOR', 'MINOR', 'DEVMODE', 'DEVUID',
                              'DEVGID', 'USEC_INITIALIZED', 'TAGS', 'CURRENT_TAGS', 'DEVPATH'})


def umockdev_from_udevadm(devices: list[dict[str, str]],
                          known_module=lambda name: True) -> tuple[str, str]:
    """A real machine's udev records as (umockdev device file, testbed_exec drivers file).

    Every record with a MODALIAS becomes a device with its properties, its
    modalias (and PCI ids) as attributes and a driver link.  A udev database
    does not record the driver's module: the drivers file names the module
    like the driver when KNOWN_MODULE(name) says the kernel has one.
    """
    records, drivers = [], {}
    for device in devices:
        path, subsystem = device.get('DEVPATH', ''), device.get('SUBSYSTEM')
        modalias = device.get('MODALIAS')
        if not path.startswith('/devices/') or not subsystem or not modalias:
            continue
        lines = ['P: %s' % path]
        lines += ['E: %s=%s' % (k, v) for k, v in device.items() if k not in _SKIP_PROPERTIES]
        lines.append('A: modalias=%s' % modalias)
        if subsystem == 'pci' and ':' in device.get('PCI_ID', ''):
            vendor, dev = device['PCI_ID'].split(':', 1)
            lines += ['A: vendor=0x%s' % vendor.lower(), 'A: device=0x%s' % dev.lower(),
                      'A: class=0x%06x' % int(device.get('PCI_CLASS', '0'), 16)]
        driver = device.get('DRIVER')
        if driver:
            up = '../' * path.count('/')
            lines.append('L: driver=%sbus/%s/drivers/%s' % (up, subsystem, driver))
            module = driver.replace('-', '_')
            drivers['%s/%s' % (subsystem, driver)] = module if known_module(module) else '-'
        records.append('\n'.join(lines))
    drivers_text = ''.join('%s %s\n' % kv for kv in sorted(drivers.items()))
    return '\n\n'.join(records) + '\n', drivers_text
