"""Reporting: verdicts as an aligned table, as JSON, and as one-line messages."""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from .hardware import Device
from .policy import MISSING, DeviceVerdict, KernelVerdict

_SYS_DEVICES = '/sys/devices/'


def device_short_name(device: Device) -> str:
    if device.slot:
        return device.slot
    path = device.sys_path
    return path[len(_SYS_DEVICES):] if path.startswith(_SYS_DEVICES) else path


def device_json(verdict: DeviceVerdict) -> dict[str, Any]:
    device = verdict.need.device
    return {
        'sysfs_path': device.sys_path,
        'modalias': device.modalias,
        'driver': device.driver,
        'modules': list(verdict.need.modules),
        'packages': [p.nevra for p in verdict.packages],
        'status': verdict.status,
        # extra keys
        'bus': device.subsystem,
        'slot': device.slot,
        'id': device.ids,
        'class': device.device_class,
        'sriov': device.sriov,
        'passthrough': device.passthrough,
        'basis': verdict.need.basis,
        'install': [p.nevra for p in verdict.to_install],
        'builtin': list(verdict.builtin),
        'absent': list(verdict.absent),
    }


def kernels_json(verdicts: Sequence[KernelVerdict], index_kver: Any = None,
                 ignored: Iterable[Device] = (), notes: Iterable[str] = ()) -> str:
    doc = {
        'kernels': [{
            'kernel': v.kver,
            'default': v.default,
            'devices': [device_json(d) for d in v.devices],
            'install': [p.nevra for p in v.to_install],
        } for v in verdicts],
        'index_kernel': index_kver,
        'ignored': [d.sys_path for d in ignored],
        'notes': list(notes),
    }
    return json.dumps(doc, indent=2)


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ['  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def install_command(refs: Iterable[Any]) -> str:
    return 'dnf install ' + ' '.join(r.nevra for r in refs)


def kernel_table(verdict: KernelVerdict) -> list[str]:
    title = 'Kernel %s%s' % (verdict.kver, ' (default boot kernel)' if verdict.default else '')
    rows = [('DEVICE', 'ID', 'CLASS', 'DRIVER', 'MODULES', 'PACKAGES', 'STATUS')]
    for d in verdict.devices:
        device = d.need.device
        packages = [p.nevra for p in d.packages] or ['-']
        if d.builtin:
            packages = [p for p in packages if p != '-'] + ['(built in)']
        status = d.status
        if d.absent:
            status += ' (no package ships %s)' % ', '.join(d.absent)
        rows.append((device_short_name(device), device.ids or device.subsystem,
                     device.device_class or '-', device.driver or '-',
                     ','.join(d.need.modules) or '-', ','.join(packages), status))
    lines = [title] + _table(rows)
    missing = verdict.to_install
    if missing:
        lines.append('%d device(s) lack their driver package in %s; install with:'
                     % (sum(1 for d in verdict.devices if d.status == MISSING), verdict.kver))
        lines.append('  ' + install_command(missing))
    return lines


def check_text(verdicts: Sequence[KernelVerdict], index_kver: Any = None,
               ignored: Iterable[Device] = (), notes: Iterable[str] = ()) -> str:
    lines: list[str] = []
    for verdict in verdicts:
        if lines:
            lines.append('')
        lines += kernel_table(verdict)
    ignored = list(ignored)
    if ignored:
        lines.append('ignored (ignore_devices): ' +
                     ', '.join(device_short_name(d) for d in ignored))
    if index_kver:
        lines.append('modaliases resolved with the module index of %s' % index_kver)
    lines += ['note: %s' % note for note in notes]
    return '\n'.join(lines)
