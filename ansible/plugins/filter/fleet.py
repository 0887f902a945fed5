# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernelsplit developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The fleet report's figures, from each host's kernelsplit_check result (controller side).

fleet_summary() turns the results the audit registered into what the report's
templates print: one row per host, the counts per driver package and the
space they take.  Pure functions of plain data, so the templates only lay out.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

# Device statuses that leave a device without its driver on the kernel judged.
STRANDING = ('missing', 'unsupported')
# Host statuses, worst first: the report's order.
HOST_ORDER = ('stranded', 'unknown', 'unreachable', 'cannot check', 'ok')


def package_name(nevra):
    """'kernel-drivers-sriov-6.9.1-1.x86_64' -> 'kernel-drivers-sriov'."""
    parts = nevra.rsplit('-', 2)
    return parts[0] if len(parts) == 3 else nevra


def judged_kernel(doc):
    kernels = doc.get('kernels') or []
    return kernels[0] if kernels else {}


def fix_command(result, packages):
    """The command that installs PACKAGES on the host, as the check was run there.

    dnf's global options (an installroot, a configuration file) are kept, so the
    command is right for that host; the program is spelt `dnf`, which installs
    through dnf 4 and dnf5 alike.
    """
    if not packages:
        return ''
    argv = list(result.get('command') or [])
    if argv and argv[0].rsplit('/', 1)[-1].startswith('kernelsplit'):
        # kernelsplit check --json OPTIONS [--kernel K | --all-kernels]: fix takes the same
        options = [o for o in argv[3:] if o not in ('-C', '--all-kernels')]
        return ' '.join(['kernelsplit', 'fix'] + options)
    options = argv[1:argv.index('kernelsplit')] if 'kernelsplit' in argv else []
    options = [o for o in options if o != '-C']
    return ' '.join(['dnf'] + options + ['install'] + list(packages))


def device_row(device):
    return {
        'slot': device.get('slot') or device.get('sysfs_path') or '',
        'id': device.get('id') or device.get('bus') or '',
        'class': device.get('class') or '',
        'driver': device.get('driver') or '',
        'modules': list(device.get('modules') or []),
        'packages': list(device.get('packages') or []),
        'status': device.get('status') or '',
        'reason': device.get('reason') or '',
    }


def unjudged_groups(devices):
    """Devices that cannot be judged, grouped by the reason the check gives (often one)."""
    groups = {}
    for device in devices:
        if device.get('status') == 'unknown':
            groups.setdefault(device.get('reason') or '', []).append(device_row(device)['slot'])
    return [{'reason': reason, 'slots': slots} for reason, slots in groups.items()]


def unchecked_row(host, result):
    unreachable = bool(result.get('unreachable'))
    return {
        'host': host,
        'status': 'unreachable' if unreachable else 'cannot check',
        'checked': False,
        'error': (result.get('msg') or 'no result').strip(),
        'kernel': '', 'default_kernel': '', 'default_from': '', 'default_detail': '',
        'devices': [], 'unjudged': [], 'install': [], 'command': '', 'notes': [],
        'needed': [], 'installed': {},
    }


def host_row(host, result):
    """One host's row of the report."""
    doc = result.get('kernelsplit') if isinstance(result, dict) else None
    if not isinstance(doc, dict) or result.get('failed') or result.get('unreachable'):
        return unchecked_row(host, result if isinstance(result, dict) else {})
    judged = judged_kernel(doc)
    devices = judged.get('devices') or []
    install = list(judged.get('install') or [])
    sizes = (result.get('installed_packages') or {}).get(judged.get('kernel'), [])
    return {
        'host': host,
        'status': result.get('status') or 'unknown',
        'checked': True,
        'error': '',
        'kernel': judged.get('kernel') or '',
        'judged_default': bool(judged.get('default')),
        'default_kernel': doc.get('default_kernel') or '',
        'default_from': doc.get('default_from') or '',
        'default_detail': doc.get('default_detail') or '',
        'devices': [device_row(d) for d in devices if d.get('status') in STRANDING],
        'unjudged': unjudged_groups(devices),
        'install': install,
        'command': fix_command(result, install),
        'notes': list(doc.get('notes') or []),
        'needed': sorted({package_name(p) for d in devices for p in d.get('packages') or []}),
        'installed': {p['name']: {'size': int(p.get('size') or 0),
                                  'kernel_image': bool(p.get('kernel_image'))}
                      for p in sizes},
        'sizes_known': result.get('installed_packages') is not None,
    }


def package_rows(rows):
    """Per driver package name: hosts needing it, lacking it, carrying it unneeded, sizes."""
    checked = [r for r in rows if r['checked']]
    kernel_images = {name for r in checked for name, p in r['installed'].items()
                     if p['kernel_image']}
    names = sorted({n for r in checked for n in r['needed']} |
                   {package_name(p) for r in checked for p in r['install']} |
                   {n for r in checked for n in r['installed']})
    packages = []
    for name in names:
        if name in kernel_images:
            continue      # the kernel image: every host carries it, none saves it
        need = [r['host'] for r in checked if name in r['needed']]
        lack = [r['host'] for r in checked if name in {package_name(p) for p in r['install']}]
        unneeded = [r for r in checked if name in r['installed'] and name not in r['needed']]
        sizes = [r['installed'][name]['size'] for r in checked if name in r['installed']]
        size = max(sizes) if sizes else None
        # a host whose devices cannot all be judged may need it: no saving counted there
        neither = [r['host'] for r in checked if r.get('sizes_known') and
                   r['status'] != 'unknown' and
                   name not in r['needed'] and name not in r['installed']]
        packages.append({
            'name': name,
            'needed': len(need), 'needed_hosts': need,
            'lacking': len(lack), 'lacking_hosts': lack,
            'unneeded': len(unneeded), 'unneeded_hosts': [r['host'] for r in unneeded],
            'size': size,
            'unneeded_bytes': sum(r['installed'][name]['size'] for r in unneeded),
            'saved': len(neither),
            'saved_bytes': size * len(neither) if size is not None else None,
        })
    return packages


def fleet_summary(hostvars, hosts, register='kernelsplit_result'):
    """The report's figures for HOSTS, from their results registered as REGISTER."""
    rows = []
    for host in hosts:
        try:
            result = hostvars[host].get(register)
        except (KeyError, AttributeError):
            result = None
        if result is None:
            continue
        rows.append(host_row(host, result))
    rows.sort(key=lambda r: (HOST_ORDER.index(r['status']) if r['status'] in HOST_ORDER
                             else len(HOST_ORDER), r['host']))
    packages = package_rows(rows)
    totals = {status: sum(1 for r in rows if r['status'] == status) for status in HOST_ORDER}
    totals['hosts'] = len(rows)
    totals['unchecked'] = totals['unreachable'] + totals['cannot check']
    return {
        'hosts': rows,
        'totals': totals,
        'packages': packages,
        'stranded_hosts': [r['host'] for r in rows if r['status'] == 'stranded'],
        'unchecked_hosts': [r['host'] for r in rows if not r['checked']],
        'unneeded_bytes': sum(p['unneeded_bytes'] for p in packages),
        'saved_bytes': sum(p['saved_bytes'] or 0 for p in packages),
        'sizes_unknown': [p['name'] for p in packages if p['size'] is None],
    }


def human_size(size):
    """Bytes as people read them: '812 B', '7.9 kB', '104.9 MB', '1.2 GB' (decimal units)."""
    if size is None:
        return 'unknown'
    size = float(size)
    for unit in ('B', 'kB', 'MB'):
        if size < 1000:
            return '%d %s' % (size, unit) if unit == 'B' else '%.1f %s' % (size, unit)
        size /= 1000
    return '%.1f GB' % size


def md_cell(value):
    """Text safe in a Markdown table cell: no pipes, no line breaks."""
    return str(value).replace('\\', '\\\\').replace('|', '\\|').replace('\n', ' ')


class FilterModule(object):
    def filters(self):
        return {
            'fleet_summary': fleet_summary,
            'human_size': human_size,
            'md_cell': md_cell,
        }
