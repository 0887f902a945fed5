"""Emulated machines with what a real udev database may hold but the test hosts do not:
bytes that are not UTF-8, a modalias longer than any the kernel writes, garbage where a
number belongs.  Each is a test host (tests/hosts/) with some devices changed, written
to a directory of the test's.

umockdev's record format takes raw bytes only in `H:` lines (a binary sysfs
attribute, as hex); `E:` properties must be UTF-8.  libudev reads a device's
properties from its sysfs `uevent` attribute, and umockdev writes the binary
attributes after making `uevent` from the `E:` lines, so a device whose udev
properties hold such bytes is described as `E: SUBSYSTEM=...` plus
`H: uevent=<every property, as bytes>`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from harness import Host


@dataclass(frozen=True)
class MadeHost(Host):
    """A host whose .umockdev and .drivers files live in DIRECTORY."""
    directory: Path = Path('.')

    @property
    def umockdev(self) -> Path:
        return self.directory / ('%s.umockdev' % self.name)

    @property
    def drivers(self) -> Path:
        return self.directory / ('%s.drivers' % self.name)


class Device:
    """One paragraph of a .umockdev file: its path, properties, attributes and links."""

    def __init__(self, paragraph: str) -> None:
        lines = paragraph.strip('\n').splitlines()
        self.path = lines[0][len('P: '):]
        self.properties: dict[str, bytes] = {}
        self.attributes: dict[str, bytes] = {}
        self.links: dict[str, str] = {}
        for line in lines[1:]:
            kind, _, rest = line.partition(': ')
            key, _, value = rest.partition('=')
            if kind == 'E':
                self.properties[key] = value.encode()
            elif kind == 'A':
                self.attributes[key] = value.encode()
            elif kind == 'L':
                self.links[key] = value
            else:
                raise ValueError('unexpected line %r in %s' % (line, self.path))

    def unbind(self) -> None:
        self.properties.pop('DRIVER', None)
        self.links.pop('driver', None)

    def text(self) -> str:
        out = ['P: ' + self.path, 'E: SUBSYSTEM=' + self.properties['SUBSYSTEM'].decode()]
        if all(value.isascii() for value in self.properties.values()):
            out += ['E: %s=%s' % (key, value.decode()) for key, value in self.properties.items()
                    if key != 'SUBSYSTEM']
        else:
            uevent = b''.join(b'%s=%s\n' % (key.encode(), value)
                              for key, value in self.properties.items())
            out.append('H: uevent=' + uevent.hex().upper())
        for key, value in self.attributes.items():
            if value.isascii() and b'\\' not in value:
                out.append('A: %s=%s' % (key, value.decode()))
            else:
                out.append('H: %s=%s' % (key, (value + b'\n').hex().upper()))
        out += ['L: %s=%s' % item for item in self.links.items()]
        return '\n'.join(out) + '\n'


def derive(base: str, directory: Path, name: str,
           change: Callable[[dict[str, Device]], None],
           extra_drivers: Mapping[str, str] = {}) -> MadeHost:
    """Host BASE with CHANGE applied to its devices (by sysfs path, /devices/...)."""
    source = Host(base)
    devices = {d.path: d for d in map(Device, source.umockdev.read_text().split('\n\n'))
               if d.path}
    change(devices)
    host = MadeHost(name, directory=directory)
    host.umockdev.write_text('\n'.join(d.text() for d in devices.values()))
    shutil.copyfile(source.drivers, host.drivers)
    with open(host.drivers, 'a', encoding='utf-8') as drivers:
        drivers.writelines('%s %s\n' % item for item in extra_drivers.items())
    return host


def pci(devices: Mapping[str, Device], slot: str) -> Device:
    return next(d for d in devices.values() if d.path.endswith('/' + slot))


# --- the machines -----------------------------------------------------------------

GPU, AUDIO = '0000:01:00.0', '0000:01:00.1'
PF0, PF1 = '0000:3b:00.0', '0000:3b:00.1'
# Where the kernel writes hex digits: a byte that is not UTF-8 there is no real
# kernel's doing, but it takes the path any such byte takes (an of: or acpi:
# modalias carries strings from the firmware).
GARBLED_GPU_MODALIAS = b'pci:v000010DEd00001E84sv0000\xff\xfe58sd00004008bc03sc00i00'
GARBLED_AUDIO_MODALIAS = b'pci:v000010DEd000010F8sv0000\xe9458sd00004008bc04sc03i00'


def garbled(directory: Path) -> MadeHost:
    """baremetal-sriov-gpu, where:
    - the GPU (bound to nouveau) has bytes that are not UTF-8 in two udev properties
      (MODALIAS, PCI_ID) and in its modalias attribute;
    - its HDMI audio function is unbound, and its modalias has such a byte where
      snd_hda_intel's alias has a wildcard;
    - one SR-IOV PF's sriov_totalvfs holds bytes that are not UTF-8, the other's
      holds ASCII garbage: neither is a number, so neither is a PF."""
    def change(devices: dict[str, Device]) -> None:
        gpu = pci(devices, GPU)
        gpu.properties['MODALIAS'] = gpu.attributes['modalias'] = GARBLED_GPU_MODALIAS
        gpu.properties['PCI_ID'] = b'10DE:1E\xff4'
        audio = pci(devices, AUDIO)
        audio.unbind()
        audio.properties['MODALIAS'] = audio.attributes['modalias'] = GARBLED_AUDIO_MODALIAS
        pci(devices, PF0).attributes['sriov_totalvfs'] = b'\xff\xfe'
        pci(devices, PF1).attributes['sriov_totalvfs'] = b'lots'
    return derive('baremetal-sriov-gpu', directory, 'garbled', change)


LONG_PATH = '/devices/platform/i8042/serio0/input/input3'


def long_modalias(directory: Path, length: int = 65536) -> MadeHost:
    """baremetal-sriov plus an input device whose modalias is LENGTH bytes long."""
    head = b'input:b0011v0001p0001eAB41-e0,1,4,11,14,k'
    modalias = (head + b','.join(b'%d' % (71 + n % 700) for n in range(length)))[:length]

    def change(devices: dict[str, Device]) -> None:
        keyboard = Device('P: ' + LONG_PATH + '\nE: SUBSYSTEM=input\n')
        keyboard.properties['MODALIAS'] = keyboard.attributes['modalias'] = modalias
        devices[LONG_PATH] = keyboard
    return derive('baremetal-sriov', directory, 'long-modalias', change)
