# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernelsplit developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What kernelsplit_check and kernelsplit_fix share: running the check on the target.

The check is `kernelsplit check --json` where the standalone command is
installed, else `dnf kernelsplit check --json` through dnf 4 (`dnf-3`: on
Fedora 41 and later `dnf` is dnf5, which loads no Python plugins).  Its exit
status says 0 ok, 1 a device is missing or unsupported, 2 a device cannot be
judged, 3 nothing could be checked; dnf's own failures exit 1 with no JSON, so
the JSON, not the exit status, tells whether the check ran.

Runs on the target's Python (3.6 on RHEL 8's platform-python): no annotations
that need a newer interpreter.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
from collections import namedtuple

EXIT_OK, EXIT_STRANDED, EXIT_UNKNOWN, EXIT_CANNOT_CHECK = 0, 1, 2, 3
STATUS_BY_EXIT = {EXIT_OK: 'ok', EXIT_STRANDED: 'stranded', EXIT_UNKNOWN: 'unknown'}
# Options only dnf's command line takes: with any of them the check runs through dnf.
# dnf 4 first: the kernelsplit subcommand is a dnf 4 plugin.
DNF_NAMES = ('dnf-3', 'dnf4', 'dnf')
# Files that only the kernel image package of a release ships.
KERNEL_IMAGE_FILES = ('vmlinuz', 'modules.builtin')
MODULE_DIRS = ('lib/modules', 'usr/lib/modules')

# The options both modules take, as argument_spec entries.
COMMON_ARGS = dict(
    kernel=dict(type='str'),
    installroot=dict(type='path', default='/'),
    dnf_config=dict(type='path'),
    setopt=dict(type='list', elements='str', default=[]),
    releasever=dict(type='str'),
    cacheonly=dict(type='bool', default=False),
    command=dict(type='str', default='auto', choices=['auto', 'kernelsplit', 'dnf']),
    executable=dict(type='path'),
)

Runner = namedtuple('Runner', ['kind', 'path'])      # kind: 'kernelsplit' | 'dnf'
CheckRun = namedtuple('CheckRun', ['doc', 'rc', 'argv', 'stdout', 'stderr', 'runner'])


class CannotRun(Exception):
    """The check could not run: str() says why; .run is the CheckRun, when it ran at all."""

    def __init__(self, message, run=None):
        super(CannotRun, self).__init__(message)
        self.run = run


def with_prefix(message):
    """'kernelsplit: MESSAGE', once (the check's own errors already start so)."""
    message = str(message)
    return message if message.startswith('kernelsplit:') else 'kernelsplit: %s' % message


def find_runner(module, params):
    """The program that runs the check: the standalone command or dnf 4."""
    choice = params['command']
    if params.get('executable'):
        kind = choice if choice != 'auto' else (
            'kernelsplit' if os.path.basename(params['executable']).startswith('kernelsplit')
            else 'dnf')
        return Runner(kind, params['executable'])
    if choice in ('auto', 'kernelsplit'):
        path = module.get_bin_path('kernelsplit')
        if path:
            return Runner('kernelsplit', path)
        if choice == 'kernelsplit':
            raise CannotRun('the kernelsplit command is not installed on this host')
    for name in DNF_NAMES:
        path = module.get_bin_path(name)
        if path:
            return Runner('dnf', path)
    raise CannotRun('neither the kernelsplit command nor dnf is installed on this host')


def dnf_global_args(params):
    """dnf's options before the subcommand, from the module's parameters."""
    args = []
    if params.get('dnf_config'):
        args += ['-c', params['dnf_config']]
    if params.get('installroot') and params['installroot'] != '/':
        args += ['--installroot', params['installroot']]
    if params.get('releasever'):
        args += ['--releasever', params['releasever']]
    args += ['--setopt=%s' % opt for opt in params.get('setopt') or []]
    if params.get('cacheonly'):
        args.append('-C')
    return args


def check_argv(runner, params, all_kernels=False):
    """The command line of the check."""
    which = []
    if params.get('kernel'):
        which = ['--kernel', params['kernel']]
    elif all_kernels:
        which = ['--all-kernels']
    if runner.kind == 'kernelsplit':
        # the command takes dnf's options as dnf spells them
        return [runner.path, 'check', '--json'] + dnf_global_args(params) + which
    return [runner.path] + dnf_global_args(params) + ['kernelsplit', 'check', '--json'] + which


def parse_report(stdout):
    """The check's JSON document, or None when it printed none (dnf failed first)."""
    text = stdout.strip()
    if not text:
        return None
    start = text.find('{')
    if start < 0:
        return None
    try:
        doc = json.loads(text[start:])
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def last_line(text):
    lines = [line.strip() for line in (text or '').splitlines() if line.strip()]
    return lines[-1] if lines else ''


def run_check(module, params, all_kernels=False):
    """Run the check on the target; CannotRun when it did not produce a report."""
    runner = find_runner(module, params)
    argv = check_argv(runner, params, all_kernels)
    rc, stdout, stderr = module.run_command(argv, environ_update={'LC_ALL': 'C.UTF-8'})
    doc = parse_report(stdout)
    run = CheckRun(doc, rc, argv, stdout, stderr, runner)
    if doc is None:
        raise CannotRun('%s exited %d without a report: %s'
                        % (os.path.basename(argv[0]), rc,
                           last_line(stderr) or last_line(stdout) or 'no output'), run)
    if 'error' in doc or doc.get('exit_status') == EXIT_CANNOT_CHECK:
        raise CannotRun(doc.get('error') or 'the check could not run', run)
    return run


def judged_kernel(doc):
    """The kernel the exit status follows: the default (or --kernel's), listed first."""
    kernels = doc.get('kernels') or []
    return kernels[0] if kernels else {}


def status_of(doc):
    """ok | stranded | unknown, from the check's exit status."""
    return STATUS_BY_EXIT.get(doc.get('exit_status'), 'unknown')


def release_dirs(root, kver):
    """The directories ROOT holds for kernel release KVER, rpmdb-style ('/lib/modules/K/...')."""
    found = []
    for modules_dir in MODULE_DIRS:
        top = os.path.join(root, modules_dir, kver)
        for path, dirnames, _ in os.walk(top):
            found.append('/' + os.path.relpath(path, root).strip('/') + '/')
    return found


def installed_release_packages(root, kvers):
    """Installed packages shipping files of each kernel release in KVERS, with their sizes.

    {kver: [{'nevra', 'name', 'size' (bytes), 'kernel_image' (ships vmlinuz)}]}, or
    None when rpm's Python bindings are not on this interpreter.  Exact index
    lookups on the rpmdb (one per directory of the release), not a scan of
    every installed package.
    """
    rpm, ts = _open_rpmdb(root)
    if ts is None:
        return None
    result = {}
    for kver in kvers:
        found = {}
        for dirname in release_dirs(root or '/', kver):
            for header in ts.dbMatch('dirnames', dirname):
                nevra = _text(header[rpm.RPMTAG_NEVRA])
                if nevra not in found:
                    found[nevra] = {'nevra': nevra, 'name': _text(header[rpm.RPMTAG_NAME]),
                                    'size': int(header[rpm.RPMTAG_SIZE] or 0),
                                    'kernel_image': False}
        for modules_dir in MODULE_DIRS:
            for name in KERNEL_IMAGE_FILES:
                for header in ts.dbMatch('basenames', '/%s/%s/%s' % (modules_dir, kver, name)):
                    nevra = _text(header[rpm.RPMTAG_NEVRA])
                    if nevra in found:
                        found[nevra]['kernel_image'] = True
        result[kver] = sorted(found.values(), key=lambda p: p['nevra'])
    ts.closeDB()
    return result


def split_nevra(nevra):
    """'kernel-drivers-6.9.1-1.x86_64' -> ('kernel-drivers', '6.9.1-1.x86_64')."""
    name, version, release = nevra.rsplit('-', 2)
    return name, '%s-%s' % (version, release)


def installed_nevras(root, nevras):
    """Which of NEVRAS (name-[epoch:]version-release.arch) are installed in ROOT, or None
    without rpm's Python bindings.  One rpmdb name lookup each."""
    rpm, ts = _open_rpmdb(root)
    if ts is None:
        return None
    present = []
    for nevra in nevras:
        name = split_nevra(nevra)[0]
        for header in ts.dbMatch('name', name):
            plain = '%s-%s-%s.%s' % tuple(_text(header[tag]) for tag in (
                rpm.RPMTAG_NAME, rpm.RPMTAG_VERSION, rpm.RPMTAG_RELEASE, rpm.RPMTAG_ARCH))
            if nevra in (plain, _text(header[rpm.RPMTAG_NEVRA])):
                present.append(nevra)
                break
    ts.closeDB()
    return present


def _open_rpmdb(root):
    """(rpm, a TransactionSet on ROOT's rpmdb that checks no signatures), or (None, None)
    when rpm's Python bindings are not on this interpreter."""
    try:
        import rpm
    except ImportError:
        return None, None
    ts = rpm.TransactionSet(root or '/')
    ts.setVSFlags(getattr(rpm, '_RPMVSF_NOSIGNATURES', 0) | getattr(rpm, '_RPMVSF_NODIGESTS', 0))
    return rpm, ts


def _text(value):
    return value.decode('utf-8', 'replace') if isinstance(value, bytes) else str(value)
