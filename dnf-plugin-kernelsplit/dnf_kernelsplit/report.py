"""Reporting: verdicts as an aligned table, as JSON, and as one-line messages."""

from __future__ import annotations

import json
from types import MappingProxyType

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Any, Iterable, Mapping, Optional, Sequence

from .hardware import Device
from .policy import MISSING, CheckResult, DeviceVerdict, KernelVerdict

_SYS_DEVICES = '/sys/devices/'


def device_short_name(device: Device) -> str:
    if device.slot:
        return device.slot
    path = device.sys_path
    return path[len(_SYS_DEVICES):] if path.startswith(_SYS_DEVICES) else path


def basis(verdict: DeviceVerdict) -> str:
    """On what the device's modules were chosen: the need's basis, or 'exact' / 'inspect'
    when a package's modalias() provides / its modules' aliases matched it."""
    if verdict.exact:
        return 'inspect' if any(e.via == 'inspect' for e in verdict.exact) else 'exact'
    return verdict.need.basis


def device_json(verdict: DeviceVerdict) -> dict[str, Any]:
    device = verdict.need.device
    return {
        'sysfs_path': device.sys_path,
        'modalias': device.modalias,
        'driver': device.driver,
        'modules': list(verdict.modules),
        'packages': [p.nevra for p in verdict.packages],
        'status': verdict.status,
        'reason': verdict.reason,
        # extra keys
        'bus': device.subsystem,
        'slot': device.slot,
        'id': device.ids,
        'class': device.device_class,
        'sriov': device.sriov,
        'passthrough': device.passthrough,
        'basis': basis(verdict),
        'install': [p.nevra for p in verdict.to_install],
        'builtin': list(verdict.builtin),
        'absent': list(verdict.absent),
        'exact': [{'pattern': e.pattern, 'module': e.module, 'package': e.package.nevra,
                   'via': e.via} for e in verdict.exact],
        'judged': verdict.judged,
    }


def check_document(result: CheckResult) -> dict[str, Any]:
    """The check as the JSON document `check --json` prints."""
    boot = result.boot
    return {
        'kernels': [{
            'kernel': v.kver,
            'default': v.default,
            'installed': v.installed,
            'devices': [device_json(d) for d in v.devices],
            'install': [p.nevra for p in v.to_install],
            'not_installed': [p.nevra for p in v.lacking_packages],
        } for v in result.verdicts],
        'default_kernel': boot.kver,
        'default_from': boot.source,
        'default_detail': boot.detail,
        'exit_status': result.exit_status,
        'index_kernel': result.index_kver,
        'inspected': [{'package': i.nevra, 'source': i.source,
                       'fetched_mb': round(i.fetched_bytes / 1e6, 1), 'aliases': i.aliases}
                      for i in result.inspected],
        'fetched_mb': round(result.fetched_bytes / 1e6, 1),
        'fetched_bytes': result.fetched_bytes,
        'ignored': [d.sys_path for d in result.ignored],
        'notes': list(boot.notes) + list(result.notes),
    }


def error_document(message: str, exit_status: int) -> dict[str, Any]:
    """What `check --json` prints when it cannot check: the error, and the exit status."""
    return {'error': message, 'exit_status': exit_status}


FORMATS = ('table', 'json', 'openmetrics')


def render_check(result: Any, form: str) -> str:
    """RESULT (a CheckResult, or an error document) in FORM, one of FORMATS."""
    doc = result if isinstance(result, dict) else None
    if form == 'table':
        return check_text(result) if doc is None else ''
    if doc is None:
        doc = check_document(result)
    if form == 'openmetrics':
        from .metrics import openmetrics
        return openmetrics(doc).rstrip('\n')
    return json.dumps(doc, indent=2)


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ['  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def install_command(refs: Iterable[Any]) -> str:
    return 'dnf install ' + ' '.join(r.nevra for r in refs)


def kernel_title(verdict: KernelVerdict, boot: Any = None) -> str:
    if verdict.default:
        how = ': %s' % boot.detail if boot is not None else ''
        return 'Kernel %s (default boot kernel%s)' % (verdict.kver, how)
    return 'Kernel %s%s' % (verdict.kver, '' if verdict.installed else ' (not installed)')


def kernel_table(verdict: KernelVerdict, boot: Any = None) -> list[str]:
    rows = [('DEVICE', 'ID', 'CLASS', 'DRIVER', 'MODULES', 'PACKAGES', 'STATUS')]
    unknown: dict[str, list[str]] = {}
    for d in verdict.devices:
        device = d.need.device
        packages = [p.nevra for p in d.packages] or ['-']
        if d.builtin:
            packages = [p for p in packages if p != '-'] + ['(built in)']
        status = d.status
        if d.absent:
            status += ' (no package ships %s)' % ', '.join(d.absent)
        if d.exact:
            status += ' (read in its package)' if basis(d) == 'inspect' else ' (by modalias)'
        if d.reason:
            unknown.setdefault(d.reason, []).append(device_short_name(device))
        rows.append((device_short_name(device), device.ids or device.subsystem,
                     device.device_class or '-', device.driver or '-',
                     ','.join(d.modules) or '-', ','.join(packages), status))
    lines = [kernel_title(verdict, boot)] + _table(rows)
    for reason, names in unknown.items():
        lines.append('%d device(s) cannot be judged (%s): %s'
                     % (len(names), ', '.join(names), reason))
    missing = verdict.to_install
    if missing:
        lines.append('%d device(s) lack their driver package in %s; install with:'
                     % (sum(1 for d in verdict.devices if d.status == MISSING), verdict.kver))
        lines.append('  ' + install_command(missing))
    return lines


def check_text(result: CheckResult) -> str:
    lines: list[str] = []
    for verdict in result.verdicts:
        if lines:
            lines.append('')
        lines += kernel_table(verdict, result.boot)
    ignored = list(result.ignored)
    if ignored:
        lines.append('ignored (ignore_devices): ' +
                     ', '.join(device_short_name(d) for d in ignored))
    if result.index_kver:
        lines.append('modaliases resolved with the module index of %s' % result.index_kver)
    if result.inspected:
        fetched = [i for i in result.inspected if i.fetched_bytes]
        lines.append('inspect mode read the modules of %s%s' % (
            ', '.join(i.nevra for i in result.inspected),
            '; fetched %.1f MB into the package cache' % (result.fetched_bytes / 1e6)
            if fetched else ''))
    lines += ['note: %s' % note for note in list(result.boot.notes) + list(result.notes)]
    return '\n'.join(lines)


# --- the transaction hook's messages ----------------------------------------

def devices_and_modules(reasons: Iterable[tuple[Device, Sequence[str]]]) -> str:
    """'0000:3b:00.0 [8086:1572], 0000:3b:00.1 [8086:1572] (i40e); 0000:3b:02.0 [8086:154c] (iavf)'."""
    grouped: dict[tuple[str, ...], list[str]] = {}
    for device, modules in reasons:
        grouped.setdefault(tuple(modules), []).append(device.label())
    return '; '.join('%s (%s)' % (', '.join(labels), ', '.join(modules))
                     for modules, labels in grouped.items())


def addition_line(addition: Any) -> str:
    return 'kernelsplit: adding %s for %s%s' % (
        addition.package.nevra, devices_and_modules(addition.reasons),
        ' (its modules\' aliases, read by inspect mode)' if addition.inspected else '')


def not_added_line(addition: Any) -> str:
    return ('kernelsplit: not adding %s (on_missing=warn): kernel %s would boot without a '
            'driver for %s' % (addition.package.nevra, addition.kver,
                               devices_and_modules(addition.reasons)))


def shortfall_text(shortfall: Any) -> str:
    return 'no package of kernel %s in the enabled repositories ships %s, needed by %s' % (
        shortfall.kver, ', '.join(shortfall.modules), shortfall.device.label())


def shortfall_line(shortfall: Any) -> str:
    return 'kernelsplit: %s; that kernel will boot without it' % shortfall_text(shortfall)


def unjudged_line(verdict: KernelVerdict) -> str:
    devices = verdict.unjudged
    reasons = dict.fromkeys(d.reason for d in verdict.devices if d.reason)
    return ('kernelsplit: cannot judge %d device(s) without a driver for kernel %s: %s; %s'
            % (len(devices), verdict.kver, ', '.join(d.label() for d in devices),
               '; '.join(reasons)))


def not_added_warning(addition: Any, problem: str) -> str:
    return ('kernelsplit: %s could not be added to the transaction (%s); kernel %s will boot '
            'without a driver for %s; install it by hand once that is resolved'
            % (addition.package.nevra, problem, addition.kver,
               devices_and_modules(addition.reasons)))


def conflict_refusal(refused: Sequence[tuple[Any, str]], config_source: str) -> str:
    """Driver packages that cannot join the transaction, for the kernel that becomes the
    default boot kernel: why not, and the ways out."""
    lines = ['kernelsplit: refusing the transaction:']
    for addition, problem in refused:
        lines.append('  kernel %s becomes the default boot kernel, and %s, which it needs for '
                     '%s, cannot be installed: %s'
                     % (addition.kver, addition.package.nevra,
                        devices_and_modules(addition.reasons), problem))
    lines.append('Resolve the conflict so that %s can be installed, or add the devices to '
                 'ignore_devices or set on_missing=warn in %s, or run dnf once with '
                 '--disableplugin=kernelsplit.'
                 % (' and '.join(a.package.nevra for a, _ in refused), config_source))
    return '\n'.join(lines)


def stranding_line(stranding: Any) -> str:
    running = ' (the running kernel)' if stranding.running else ''
    return ('removing %s would leave %s without %s on kernel %s%s' % (
        stranding.package.nevra, stranding.device.label(), stranding.module,
        stranding.kver, running))


ONE_OFF_WAY_OUT = 'or run dnf with --disableplugin=kernelsplit for this one transaction.'


def autoremove_lines(strandings: Sequence[Any], old_kernels: Mapping[str, Sequence[str]]
                     ) -> list[str]:
    """What to do instead when autoremove would take driver packages devices need.

    OLD_KERNELS: the installed packages of each installed kernel that is
    neither the running nor the newest one, by release.  Such a kernel is
    better removed whole than left without its drivers.
    """
    taken: dict[str, list[str]] = {}
    for stranding in strandings:
        nevras = taken.setdefault(stranding.kver, [])
        if stranding.package.nevra not in nevras:
            nevras.append(stranding.package.nevra)
    lines = []
    for kver, nevras in taken.items():
        if kver in old_kernels:
            lines.append('autoremove would take %s from kernel %s and leave the rest of that '
                         'kernel installed; the clean way is to remove that whole kernel:'
                         % (', '.join(nevras), kver))
            lines.append('  dnf remove ' + ' '.join(old_kernels[kver]))
    kept = [nevra for nevras in taken.values() for nevra in nevras]
    lines.append('To keep %s instead: dnf mark install %s'
                 % ('it' if len(kept) == 1 else 'them', ' '.join(kept)))
    return lines


def refusal_message(plan: Any, config_source: str, command: Optional[str] = None,
                    old_kernels: Mapping[str, Sequence[str]] = MappingProxyType({})) -> str:
    """Why the transaction is refused, and every way out: the settings in CONFIG_SOURCE,
    --disableplugin for this once, and for COMMAND autoremove what to do instead."""
    lines = ['kernelsplit: refusing the transaction:']
    lines += ['  ' + stranding_line(s) for s in plan.strandings]
    if command == 'autoremove' and plan.strandings:
        lines += autoremove_lines(plan.strandings, old_kernels)
    if plan.on_missing == 'fail':
        lines += ['  kernel %s needs %s for %s' % (a.kver, a.package.nevra,
                                                devices_and_modules(a.reasons))
                  for a in plan.additions]
        lines += ['  ' + shortfall_text(s) for s in plan.shortfalls]
        if plan.additions:
            lines.append('Install them in the same transaction (%s),' %
                         install_command(a.package for a in plan.additions))
        lines.append('or add the devices to ignore_devices, or set on_missing=install or '
                     'on_missing=warn, in %s,' % config_source)
    else:
        lines.append('To go on anyway, add the devices to ignore_devices or set on_missing=warn '
                     'in %s,' % config_source)
    lines.append(ONE_OFF_WAY_OUT)
    return '\n'.join(lines)
