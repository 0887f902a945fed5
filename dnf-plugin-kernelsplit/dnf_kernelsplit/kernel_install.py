"""The kernel-install plugin (50-kernelsplit.install): a safety net for every other way a
kernel arrives.

`rpm -i`, PackageKit, image builders and anything else that installs a kernel
package run its scriptlets, which call `kernel-install add KVER IMAGE`; that
runs /usr/lib/kernel/install.d/*.install in order, this one after
50-depmod.install.  On `add KVER` the release is judged against the devices
present and the installed packages, as `kernelsplit check --kernel KVER`
judges it, and each driver package it lacks is one warning on stderr -- the
device, the module, the package and the command that installs it -- which
reaches whatever log the installing tool keeps.  It never blocks a kernel
install: the exit status is always 0, whatever happens.

Silent when everything is present, in a container, in an installroot or an
image being built in a chroot (unless hardware_in_installroot=yes), and when
the devices cannot be listed (with KERNEL_INSTALL_VERBOSE=1, kernel-install
-v, it says why).  The repositories are read from the package manager's
cache only: no download from inside a scriptlet.

KERNELSPLIT_OPTIONS, in the environment, takes `kernelsplit check`'s options
(--installroot, -c, --setopt, --pluginconfpath, --backend, ...) for image
tooling and tests; kernelsplit.conf is otherwise read from /etc/dnf/plugins.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from typing import Any, Optional, Sequence

logger = logging.getLogger('dnf.plugin')

OPTIONS_VARIABLE = 'KERNELSPLIT_OPTIONS'


def in_chroot() -> Optional[bool]:
    """Whether this process's / is not PID 1's (systemd-detect-virt --chroot's test);
    None when that cannot be told (no /proc, or not allowed to look at PID 1)."""
    try:
        ours, init = os.stat('/'), os.stat('/proc/1/root')
    except OSError:
        return None
    return (ours.st_dev, ours.st_ino) != (init.st_dev, init.st_ino)


def step_aside_reason(config: Any, installroot: str) -> Optional[str]:
    from .host import foreign_root_reason
    reason = foreign_root_reason(config, installroot)
    if reason:
        return reason
    if in_chroot() and not config.hardware_in_installroot:
        return ('running in a chroot (an image being built?), whose kernels are not judged '
                'against this machine\'s hardware; set hardware_in_installroot=yes in %s to '
                'judge them' % config.source)
    return None


def warning_lines(verdict: Any, install: str) -> list[str]:
    """One line per package KVER lacks (and per device whose module no package ships)."""
    from .policy import additions
    from .report import devices_and_modules
    lines = ['kernelsplit: kernel %s lacks %s, the driver for %s; install it with: %s %s'
             % (a.kver, a.package.nevra, devices_and_modules(a.reasons), install,
                a.package.nevra) for a in additions([verdict])]
    for device in verdict.devices:
        if device.absent:
            lines.append('kernelsplit: kernel %s has no package that ships %s, which %s needs '
                         '(`kernelsplit check --kernel %s` shows every device)'
                         % (verdict.kver, ', '.join(device.absent), device.device.label(),
                            verdict.kver))
    return lines


def judge(kver: str, options: Sequence[str]) -> list[str]:
    """The warnings for kernel KVER: what `kernelsplit check --kernel KVER` finds lacking."""
    from . import backends, config as ks_config
    from .cli import build_parser
    from .judge import CannotCheck, check_host
    args = build_parser().parse_args(['check', *options])
    confpath = args.pluginconfpath or None
    settings, _ = ks_config.read(confpath or backends.DEFAULT_PLUGINCONFPATH)
    reason = step_aside_reason(settings, args.installroot)
    if reason:
        logger.debug('kernelsplit: stepping aside: %s', reason)
        return []
    name = backends.choose(args.backend)
    base_options = backends.BaseOptions(args.installroot, args.config_file, tuple(args.setopt),
                                        args.releasever, cacheonly=True)
    try:
        backend = backends.open_backend(name, base_options, confpath)
    except backends.BackendError as exc:
        # no cached metadata: the installed packages alone (what is missing has no name)
        logger.debug('kernelsplit: the repositories\' cache cannot be read (%s); judging '
                     'with the installed packages alone', exc)
        backend = backends.open_backend(name, base_options._replace(load_available=False),
                                        confpath)
    try:
        result = check_host(settings, args.installroot, backend.lookup, backend.cachedir,
                            kernel=kver)
    except CannotCheck as exc:
        logger.debug('kernelsplit: kernel %s not checked: %s', kver, exc)
        return []
    install = 'dnf5 install' if name == backends.DNF5 else 'dnf install'
    return warning_lines(result.judged, install)


def main(argv: Sequence[str]) -> int:
    """kernel-install's call: COMMAND KVER [ENTRY-DIR KERNEL-IMAGE [INITRD...]]. Exits 0."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter('%(message)s'))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if os.environ.get('KERNEL_INSTALL_VERBOSE') == '1'
                    else logging.WARNING)
    logger.propagate = False
    if len(argv) < 2 or argv[0] != 'add':
        return 0
    try:
        options = shlex.split(os.environ.get(OPTIONS_VARIABLE, ''))
        for line in judge(argv[1], options):
            print(line, file=sys.stderr)
    except SystemExit:                  # argparse on a bad KERNELSPLIT_OPTIONS
        logger.warning('kernelsplit: %s is not usable: %r', OPTIONS_VARIABLE,
                       os.environ.get(OPTIONS_VARIABLE))
    except Exception as exc:            # never block a kernel install
        logger.warning('kernelsplit: kernel %s was not checked: %s', argv[1], exc)
    return 0
