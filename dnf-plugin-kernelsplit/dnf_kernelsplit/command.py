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
        parser.add_argument('--json', action='store_const', dest='format', const='json',
                            default='table', help='print the report as JSON (--format=json)')
        parser.add_argument('--format', choices=('table', 'json', 'openmetrics', 'prometheus'),
                            default='table',
                            help='table (the default), json, or openmetrics (Prometheus text, '
                                 'for node_exporter\'s textfile collector; prometheus is the '
                                 'same)')
        which = parser.add_mutually_exclusive_group()
        which.add_argument('--all-kernels', action='store_true',
                           help='check every installed kernel, not only the default boot kernel')
        which.add_argument('--kernel', metavar='KVER',
                           help='check this kernel release (as uname -r names it), installed '
                                'or in the enabled repositories')
        parser.add_argument('--no-download', action='store_true',
                            help='inspect mode reads only packages already in the package '
                                 'cache; it fetches nothing')

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
        from .judge import CannotCheck
        try:
            result = self._check()
        except CannotCheck as exc:
            self._cannot_check(str(exc))
            return
        except Exception as exc:   # a bug: still an answer a fleet's tooling can read
            logger.debug('%s', traceback.format_exc())
            self._cannot_check('internal error: %s' % exc)
            return
        print(report.render_check(result, self._format()))
        self.cli.demands.success_exit_status = result.exit_status

    def _format(self) -> str:
        return 'openmetrics' if self.opts.format == 'prometheus' else self.opts.format

    def _cannot_check(self, message: str) -> None:
        from . import report
        from .policy import EXIT_CANNOT_LOOK
        if self._format() != 'table':
            print(report.render_check(report.error_document('kernelsplit: %s' % message,
                                                            EXIT_CANNOT_LOOK), self._format()))
        logger.critical('Error: kernelsplit: %s', message)
        self.cli.demands.success_exit_status = EXIT_CANNOT_LOOK

    def _check(self):
        from .judge import check_host
        from .packages_dnf4 import Dnf4Lookup
        conf = self.base.conf
        no_fetch = 'dnf runs from its cache only (-C); run the check without -C to judge ' \
            'them' if conf.cacheonly else '--no-download was given; run the check without ' \
            'it to judge them' if self.opts.no_download else None
        return check_host(self.plugin_config, conf.installroot,
                          Dnf4Lookup(self.base.sack, self.base), conf.cachedir,
                          kernel=self.opts.kernel, all_kernels=self.opts.all_kernels,
                          no_fetch=no_fetch)
