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
