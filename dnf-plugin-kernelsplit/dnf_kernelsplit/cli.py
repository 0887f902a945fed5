"""`kernelsplit check` and `kernelsplit fix`: the standalone command, for dnf 4 and dnf5 alike.

`check` prints what `dnf kernelsplit check` prints -- the same table, JSON and
exit status: 0 every device is ok (or needs nothing), 1 a device lacks a
driver package or its driver is absent from the kernel, 2 a device cannot be
judged, 3 nothing could be checked.  Bad options, an unusable configuration
file and a package manager that cannot be opened are "nothing could be
checked" too: 3, with the reason on stderr (and in JSON with --json).

`fix` runs the package manager's own `install` for the packages the default
boot kernel (or --kernel's) lacks, so the user sees its normal transaction
summary and answers its prompt; its exit status is the package manager's.

The rpmdb and the repositories are read through the package manager the
system's `dnf` command is (backends.choose()), pointed at a root with dnf's
own options (--installroot, -c, --setopt, --releasever, -C), which `fix`
passes on to it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from typing import Any, Optional, Sequence

logger = logging.getLogger('dnf.plugin')

EXIT_CANNOT_LOOK = 3     # policy.EXIT_CANNOT_LOOK, without importing the policy for --help


class UsageError(Exception):
    """Bad command-line input; str() says what."""


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors exit 3 (nothing was checked), not its own 2 (= unknown)."""

    def error(self, message: str) -> None:      # type: ignore[override]
        raise UsageError('%s: %s' % (self.prog, message))


def _setopt(text: str) -> tuple[str, str]:
    key, sep, value = text.partition('=')
    if not sep or not key:
        raise argparse.ArgumentTypeError('expected KEY=VALUE, got %r' % text)
    return key.strip(), value.strip()


def _directories(text: str) -> list[str]:
    """A comma-separated list of directories, as dnf's pluginconfpath."""
    return [d for d in text.split(',') if d]


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--installroot', metavar='DIR', default='/',
                        help='the root to check, as dnf\'s --installroot (its kernels are '
                             'judged against this machine\'s hardware only with '
                             'hardware_in_installroot=yes)')
    parser.add_argument('-c', '--config', metavar='FILE', dest='config_file',
                        help='the package manager\'s configuration file, as dnf\'s -c')
    parser.add_argument('--setopt', metavar='KEY=VALUE', action='append', type=_setopt,
                        default=[], help='set a package manager option, as dnf\'s --setopt '
                                         '(REPO.KEY=VALUE for a repository)')
    parser.add_argument('--releasever', metavar='VER', help='as dnf\'s --releasever')
    parser.add_argument('-C', '--cacheonly', action='store_true',
                        help='use only the package manager\'s cached metadata, as dnf -C')
    parser.add_argument('--pluginconfpath', metavar='DIR', action='extend', type=_directories,
                        help='read kernelsplit.conf from DIR (repeatable; default: dnf 4\'s '
                             'pluginconfpath, /etc/dnf/plugins)')
    parser.add_argument('--backend', choices=('auto', 'dnf4', 'dnf5'), default='auto',
                        help='read packages through dnf 4 or dnf5 (default: the one the '
                             'system\'s dnf command is)')
    parser.add_argument('-v', '--verbose', action='store_true',
                        help='also print debugging messages on stderr')


def _which_kernel(parser: argparse.ArgumentParser, all_kernels: bool) -> None:
    which = parser.add_mutually_exclusive_group()
    if all_kernels:
        which.add_argument('--all-kernels', action='store_true',
                           help='check every installed kernel, not only the default boot kernel')
    which.add_argument('--kernel', metavar='KVER',
                       help='this kernel release (as uname -r names it), installed or in the '
                            'enabled repositories, instead of the default boot kernel')


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog='kernelsplit',
                     description='Check that a kernel carries the driver packages this '
                                 'machine\'s hardware needs, and install the missing ones.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND', parser_class=_Parser)
    commands.required = True
    check = commands.add_parser(
        'check', help='list each device, the modules it needs and the package of the kernel '
                      'that ships them', description='Exit status: 0 all present, 1 '
                      'something missing or unsupported, 2 something cannot be judged, '
                      '3 nothing could be checked.')
    check.add_argument('--json', action='store_const', dest='format', const='json',
                       default='table', help='print the report as JSON (--format=json)')
    check.add_argument('--format', choices=('table', 'json', 'openmetrics', 'prometheus'),
                       default='table', help='table (the default), json, or openmetrics '
                       '(Prometheus text for node_exporter\'s textfile collector; prometheus '
                       'is the same)')
    check.add_argument('--no-download', action='store_true',
                       help='inspect mode reads only packages already in the package cache; '
                            'it fetches nothing')
    _which_kernel(check, all_kernels=True)
    _common_options(check)
    fix = commands.add_parser(
        'fix', help='install the driver packages the default boot kernel lacks, with the '
                    'package manager')
    answer = fix.add_mutually_exclusive_group()
    answer.add_argument('-y', '--assumeyes', action='store_true',
                        help='answer yes to the package manager\'s question')
    answer.add_argument('--assumeno', action='store_true',
                        help='show the package manager\'s summary, install nothing')
    _which_kernel(fix, all_kernels=False)
    _common_options(fix)
    return parser


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter('%(message)s'))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logger.propagate = False


def _open(args: Any) -> tuple[Any, Any]:
    """(backends.Backend, config.Config) for ARGS. Raises backends.BackendError or
    config.ConfigValueError."""
    from . import backends, config
    name = backends.choose(args.backend)
    logger.debug('kernelsplit: package manager: %s; dnf_kernelsplit from %s', name,
                 os.path.dirname(os.path.abspath(__file__)))
    options = backends.BaseOptions(args.installroot, args.config_file, tuple(args.setopt),
                                   args.releasever, args.cacheonly)
    backend = backends.open_backend(name, options, args.pluginconfpath or None)
    settings, _ = config.read(backend.pluginconfpath)
    return backend, settings


def _check_result(args: Any, backend: Any, settings: Any) -> Any:
    from .judge import check_host
    no_fetch = '-C was given; run without it to judge them' if args.cacheonly else \
        '--no-download was given; run without it to judge them' \
        if getattr(args, 'no_download', False) else None
    return check_host(settings, backend.installroot, backend.lookup, backend.cachedir,
                      kernel=args.kernel, all_kernels=getattr(args, 'all_kernels', False),
                      no_fetch=no_fetch)


def _format(args: Any) -> str:
    form = getattr(args, 'format', 'table')
    return 'openmetrics' if form == 'prometheus' else form


def _cannot(args: Any, message: str) -> int:
    from .report import error_document, render_check
    if _format(args) != 'table':
        print(render_check(error_document('kernelsplit: %s' % message, EXIT_CANNOT_LOOK),
                           _format(args)))
    print('kernelsplit: error: %s' % message, file=sys.stderr)
    return EXIT_CANNOT_LOOK


def check(args: Any) -> int:
    from . import report
    result = _check_result(args, *_open(args))
    print(report.render_check(result, _format(args)))
    return result.exit_status


def install_lines(verdict: Any) -> list[str]:
    """'kernelsplit: installing PKG for DEVICES (MODULES)', one per package VERDICT lacks."""
    from .policy import additions
    from .report import devices_and_modules
    return ['kernelsplit: installing %s for %s' % (a.package.nevra, devices_and_modules(a.reasons))
            for a in additions([verdict])]


def fix(args: Any) -> int:
    backend, settings = _open(args)
    result = _check_result(args, backend, settings)
    verdict = result.judged
    missing = verdict.to_install
    if not missing:
        status = result.exit_status
        why = {0: 'every device has its driver', 1: 'no package of it ships what some device '
               'needs (kernelsplit check shows which)', 2: 'some devices cannot be judged '
               '(kernelsplit check says why)'}.get(status, '')
        print('kernelsplit: kernel %s: nothing to install; %s' % (verdict.kver, why))
        return status
    for line in install_lines(verdict):
        print(line)
    command = list(backend.command) + ['install']
    command += ['-y'] if args.assumeyes else ['--assumeno'] if args.assumeno else []
    command += [ref.nevra for ref in missing]
    logger.debug('kernelsplit: running %s', ' '.join(command))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
    return 1   # not reached


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print('%s\n%s' % (parser.format_usage().rstrip(), exc), file=sys.stderr)
        return EXIT_CANNOT_LOOK
    _setup_logging(args.verbose)
    from .backends import BackendError
    from .config import ConfigValueError
    from .judge import CannotCheck
    try:
        return {'check': check, 'fix': fix}[args.command](args)
    except (BackendError, ConfigValueError, CannotCheck) as exc:
        return _cannot(args, str(exc))
    except OSError as exc:          # fix: the package manager could not be run
        return _cannot(args, str(exc))
    except Exception as exc:        # a bug: still an answer a fleet's tooling can read
        logger.debug('%s', traceback.format_exc())
        return _cannot(args, 'internal error: %s' % exc)
