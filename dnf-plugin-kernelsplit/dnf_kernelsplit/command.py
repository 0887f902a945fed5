"""`dnf kernelsplit check`: does each installed kernel carry the drivers this hardware needs?"""

from __future__ import annotations

import logging

import dnf.cli
import dnf.exceptions

from .config import Config

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
        parser.add_argument('--all-kernels', action='store_true',
                            help='check every installed kernel, not only the default boot kernel')

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
        from .cache import ExactModeCache
        from .host import foreign_root_reason, host_needs
        from .packages import installed_kernels, kernel_packages, release_packages
        from .policy import judge_kernel
        config = self.plugin_config
        root = self.base.conf.installroot
        reason = foreign_root_reason(config, root)
        if reason:
            raise dnf.exceptions.Error('kernelsplit: %s' % reason)
        kernels = installed_kernels(self.base.sack, root)
        if not kernels:
            raise dnf.exceptions.Error('kernelsplit: no kernel is installed in %s' % root)
        host = host_needs(config, root, [k.kver for k in kernels])
        if host.hardware_problem:
            raise dnf.exceptions.Error('kernelsplit: cannot list this machine\'s devices: %s'
                                       % host.hardware_problem)
        targets = kernels if self.opts.all_kernels else kernels[:1]
        cache = ExactModeCache.in_cachedir(self.base.conf.cachedir)
        verdicts = []
        for kernel in targets:
            builtin = host.builtin_modules(root, kernel.kver)
            release = kernel_packages(self.base.sack, kernel.kver,
                                      release_packages(self.base.sack, kernel.kver, kernel.packages),
                                      host.wanted_modules, host.unresolved_modaliases,
                                      builtin=builtin or frozenset(), cache=cache)
            verdicts.append(judge_kernel(host.needs, release, builtin,
                                         default=kernel is kernels[0]))
        render = report.kernels_json if self.opts.json else report.check_text
        print(render(verdicts, host.index_kver, host.ignored, host.notes))
        if verdicts[0].lacking:
            raise dnf.exceptions.Error()  # exit status 1, the report said why
