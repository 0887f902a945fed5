"""The check's JSON document as OpenMetrics text, for node_exporter's textfile collector.

A pure renderer: openmetrics(doc) takes the dict `dnf kernelsplit check --json`
prints and returns the exposition; nothing here imports dnf or looks at the
machine.  Every family is a gauge (the textfile collector reads the
Prometheus text format, which knows no OpenMetrics-only types), and the text
ends with `# EOF`, which Prometheus' text parser takes for a comment, so it
is valid in both formats.

Series, per kernel checked (label `default` is "true" for the default boot kernel):

    kernelsplit_devices{kernel, default, status}          devices by status, all five
    kernelsplit_device_status{kernel, default, slot, device, driver, module, package, status}
                                                           1 per device missing, unsupported or unknown
    kernelsplit_missing_packages{kernel, default}          packages to install
    kernelsplit_missing_package{kernel, default, package}  1 per package to install
    kernelsplit_kernel_default{kernel, default_from}       1 for the default boot kernel, else 0
    kernelsplit_exit_status                                0 ok, 1 missing/unsupported, 2 unknown,
                                                           3 nothing could be checked

Devices that are ok or need no module get no series of their own: on a
server with hundreds of PCI functions that would be hundreds of series per
host that never alert; their counts are in kernelsplit_devices.

    dnf kernelsplit check --json | python3 -m dnf_kernelsplit.metrics
"""

from __future__ import annotations

import json
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from typing import Any, Mapping, Sequence

# policy.STATUSES, spelt out: importing policy loads libkmod (tests keep the two equal).
STATUSES = ('ok', 'missing', 'unsupported', 'unknown', 'none')
PROBLEMS = ('missing', 'unsupported', 'unknown')
EXIT_CANNOT_CHECK = 3
_SYS_DEVICES = '/sys/devices/'

# name -> help, in the order they are printed.
FAMILIES = {
    'kernelsplit_exit_status': 'the check\'s exit status: 0 every device has its driver, '
                               '1 a device is missing or unsupported, 2 a device cannot be '
                               'judged, 3 nothing could be checked',
    'kernelsplit_kernel_default': '1 for the default boot kernel, 0 for another kernel checked',
    'kernelsplit_devices': 'devices by status (ok, missing, unsupported, unknown, none) '
                           'for a kernel',
    'kernelsplit_device_status': '1 for each device whose driver the kernel lacks (missing, '
                                 'unsupported) or that cannot be judged (unknown)',
    'kernelsplit_missing_packages': 'packages of a kernel to install for the devices present',
    'kernelsplit_missing_package': '1 for each package of a kernel to install for the '
                                   'devices present',
}


def escape_label(value: str) -> str:
    """A label value as OpenMetrics and Prometheus' text format quote it."""
    return value.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def escape_help(text: str) -> str:
    return text.replace('\\', '\\\\').replace('\n', '\\n')


def sample(name: str, labels: Sequence[tuple[str, str]], value: int) -> str:
    if not labels:
        return '%s %d' % (name, value)
    return '%s{%s} %d' % (name, ','.join('%s="%s"' % (key, escape_label(str(val)))
                                         for key, val in labels), value)


def device_slot(device: Mapping[str, Any]) -> str:
    """The PCI slot, else the sysfs path below /sys/devices/ (as the check's table names it)."""
    if device.get('slot'):
        return device['slot']
    path = device.get('sysfs_path') or ''
    return path[len(_SYS_DEVICES):] if path.startswith(_SYS_DEVICES) else path


def kernel_samples(kernel: Mapping[str, Any], default_from: str) -> dict[str, list[str]]:
    """The samples of one checked kernel, by family."""
    kver = str(kernel.get('kernel') or '')
    default = 'true' if kernel.get('default') else 'false'
    base = (('kernel', kver), ('default', default))
    devices = kernel.get('devices') or []
    counts = {status: 0 for status in STATUSES}
    problems = []
    for device in devices:
        status = device.get('status')
        counts[status] = counts.get(status, 0) + 1
        if status in PROBLEMS:
            problems.append(sample('kernelsplit_device_status', base + (
                ('slot', device_slot(device)),
                ('device', device.get('id') or device.get('bus') or ''),
                ('driver', device.get('driver') or ''),
                ('module', ','.join(device.get('modules') or [])),
                ('package', ','.join(device.get('packages') or [])),
                ('status', status)), 1))
    install = list(kernel.get('install') or [])
    return {
        'kernelsplit_kernel_default': [sample(
            'kernelsplit_kernel_default',
            (('kernel', kver), ('default_from', default_from if kernel.get('default') else '')),
            1 if kernel.get('default') else 0)],
        'kernelsplit_devices': [sample('kernelsplit_devices', base + (('status', s),), n)
                                for s, n in counts.items()],
        'kernelsplit_device_status': problems,
        'kernelsplit_missing_packages': [sample('kernelsplit_missing_packages', base,
                                                len(install))],
        'kernelsplit_missing_package': [sample('kernelsplit_missing_package',
                                               base + (('package', p),), 1) for p in install],
    }


def openmetrics(doc: Mapping[str, Any]) -> str:
    """The exposition of one check's JSON document (an error document too: exit status 3)."""
    samples: dict[str, list[str]] = {name: [] for name in FAMILIES}
    status = doc.get('exit_status')
    samples['kernelsplit_exit_status'].append(sample(
        'kernelsplit_exit_status', (), status if isinstance(status, int) else EXIT_CANNOT_CHECK))
    if 'error' not in doc:
        default_from = str(doc.get('default_from') or '')
        for kernel in doc.get('kernels') or []:
            for name, lines in kernel_samples(kernel, default_from).items():
                samples[name].extend(lines)
    lines = []
    for name, help_text in FAMILIES.items():
        lines.append('# HELP %s %s' % (name, escape_help(help_text)))
        lines.append('# TYPE %s gauge' % name)
        lines.extend(samples[name])
    lines.append('# EOF')
    return '\n'.join(lines) + '\n'


def read_doc(text: str) -> dict[str, Any]:
    """The check's document from its output; an error document when there is none."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return {'error': 'the check printed no JSON: %s' % exc, 'exit_status': EXIT_CANNOT_CHECK}
    if not isinstance(doc, dict):
        return {'error': 'the check printed JSON that is not an object',
                'exit_status': EXIT_CANNOT_CHECK}
    return doc


def main() -> int:
    """Read the check's JSON on stdin, print its OpenMetrics text.

    Output that holds no report becomes kernelsplit_exit_status 3, which is
    what monitoring should see when the check cannot run.
    """
    sys.stdout.write(openmetrics(read_doc(sys.stdin.read())))
    return 0


if __name__ == '__main__':
    sys.exit(main())
