"""`dnf kernelsplit check`: does the default boot kernel carry the drivers this hardware needs?

Exit status: 0 every device is ok (or needs nothing); 1 a device is missing a
driver package or its driver is absent from the kernel; 2 a device cannot be
judged; 3 nothing could be checked (the report is then an error, in JSON an
object with an `error` key).
"""

from __future__ import annotations

import logging
import traceback

import dnf.cli
import dnf.exceptions

from .config import Config

logger = logging.getLogger('dnf.plugin')


class CannotCheck(Exception):
    """Why nothing can be checked: str() says it to the user."""


class KernelsplitCommand(dnf.cli.Command):
    aliases = ('kernelsplit',)
    summary = 'check that installed kernels carry the drivers this hardware needs'

    # Set by the plugin's config() hook, which reads the configuration once.
    plugin_config: Config = Config()

    @staticmethod
    def set_argparser(parser) -> None:
        parser.add_argument('subcommand', nargs=1, choices=['check'],
                            help='check: list each device, the modules it needs and the '
                                 'package of the kernel that ships them')
        parser.add_argument('--json', action='store_true',
                            help='print the report as JSON')
        which = parser.add_mutually_exclusive_group()
        which.add_argument('--all-kernels', action='store_true',
                           help='check every installed kernel, not only the default boot kernel')
        which.add_argument('--kernel', metavar='KVER',
                           help='check this kernel release (as uname -r names it), installed '
                                'or in the enabled repositories')

    def configure(self) -> None:
        demands = self.cli.demands
        demands.sack_activation = True
        demands.available_repos = True     # to name packages that are not installed
        demands.root_user = False
        # The report is this command's output; dnf's chatter goes to stderr.
        self.cli.redirect_logger(stdout=logging.WARNING, stderr=logging.INFO)
        self.cli.redirect_repo_progress()

    def run(self) -> None:
        {'check': self.check}[self.opts.subcommand[0]]()

    def check(self) -> None:
        # Imported here: every dnf run loads this module, few run the check.
        from . import report
        try:
            result = self._check()
        except CannotCheck as exc:
            self._cannot_check(str(exc))
            return
        except Exception as exc:   # a bug: still an answer a fleet's tooling can read
            logger.debug('%s', traceback.format_exc())
            self._cannot_check('internal error: %s' % exc)
            return
        print(report.check_json(result) if self.opts.json else report.check_text(result))
        self.cli.demands.success_exit_status = result.exit_status

    def _cannot_check(self, message: str) -> None:
        from . import report
        from .policy import EXIT_CANNOT_LOOK
        if self.opts.json:
            print(report.error_json('kernelsplit: %s' % message, EXIT_CANNOT_LOOK))
        logger.critical('Error: kernelsplit: %s', message)
        self.cli.demands.success_exit_status = EXIT_CANNOT_LOOK

    def _check(self):
        from .boot import default_kernel
        from .cache import ExactModeCache
        from .host import foreign_root_reason, host_needs
        from .packages import installed_kernels, kernel_packages, release_packages, release_seeds
        from .packages_dnf4 import Dnf4Lookup
        from .policy import CheckResult, judge_kernel
        config = self.plugin_config
        root = self.base.conf.installroot
        lookup = Dnf4Lookup(self.base.sack)
        reason = foreign_root_reason(config, root)
        if reason:
            raise CannotCheck(reason)
        kernels = installed_kernels(lookup, root)
        boot = default_kernel(root, [k.kver for k in kernels])
        if self.opts.kernel:
            kver = self.opts.kernel
            seeds = next((k.packages for k in kernels if k.kver == kver), None) or \
                release_seeds(lookup, kver)
            if not seeds:
                raise CannotCheck('kernel %s is neither installed nor in the enabled '
                                  'repositories (installed: %s)'
                                  % (kver, ', '.join(k.kver for k in kernels) or 'none'))
            targets = [(kver, seeds)]
        elif not kernels:
            raise CannotCheck('no kernel is installed in %s' % root)
        else:
            ordered = sorted(kernels, key=lambda k: k.kver != boot.kver)   # stable: default first
            targets = [(k.kver, k.packages) for k in
                       (ordered if self.opts.all_kernels else ordered[:1])]
        host = host_needs(config, root, [k.kver for k in kernels])
        if host.hardware_problem:
            raise CannotCheck('cannot list this machine\'s devices: %s' % host.hardware_problem)
        cache = ExactModeCache.in_cachedir(self.base.conf.cachedir)
        verdicts = []
        for kver, seeds in targets:
            builtin = host.builtin_modules(root, kver)
            release = kernel_packages(lookup, kver, release_packages(lookup, kver, seeds),
                                      host.wanted_modules, host.unresolved_modaliases,
                                      builtin=builtin or frozenset(), cache=cache)
            verdicts.append(judge_kernel(host.needs, release, builtin, default=kver == boot.kver,
                                         indexed=host.indexed))
        return CheckResult(tuple(verdicts), verdicts[0], boot, host.index_kver, host.ignored,
                           host.notes)
