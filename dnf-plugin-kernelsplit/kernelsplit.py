# kernelsplit: keep a split kernel's driver subpackages in step with the hardware.
#
# Only the dnf.Plugin subclass and the command registration live here: dnf
# imports every .py file in its plugin path, so the logic is in the
# dnf_kernelsplit package.

import logging
import os
import sys

import dnf
import dnf.exceptions


def _beside_this_file() -> None:
    """Let a checkout's dnf_kernelsplit/, next to this file, be imported.

    dnf imports this file by path and puts no directory on sys.path.  Installed,
    the package is in site-packages and dnf-plugins/ holds this file alone; from
    a checkout, --setopt=pluginpath=<checkout>/dnf-plugin-kernelsplit is all it
    takes.  First on sys.path, so the checkout's code is the code that runs, and
    so the background child (started with dnf's sys.path) finds it too.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.isfile(os.path.join(here, 'dnf_kernelsplit', '__init__.py')) \
            and here not in sys.path:
        sys.path.insert(0, here)


_beside_this_file()

from dnf_kernelsplit import config as ks_config  # noqa: E402
from dnf_kernelsplit.command import KernelsplitCommand  # noqa: E402

logger = logging.getLogger('dnf.plugin')


class Kernelsplit(dnf.Plugin):
    """Adds the driver subpackages present hardware needs to kernel transactions."""

    name = 'kernelsplit'

    # (pluginconfpath, Config, raw values): kernelsplit.conf as read_config() read it.
    _read = None

    # Commands whose transaction may bring or take away a kernel (dnf's and
    # dnf-plugins-core's names).  For these the devices are listed, and their
    # needs resolved, in the background from config() on, while dnf loads its
    # metadata; any other command that resolves starts that in sack(); a
    # library caller's hook does it in resolved().
    TRANSACTION_COMMANDS = frozenset({
        'install', 'upgrade', 'upgrade-minimal', 'distro-sync', 'reinstall', 'downgrade',
        'remove', 'autoremove', 'swap', 'system-upgrade', 'offline-upgrade',
        'offline-distrosync'})

    def __init__(self, base, cli):
        super().__init__(base, cli)
        self.settings = ks_config.Config()
        self._resolving = False
        self._discovery = None       # background.BackgroundHost, see TRANSACTION_COMMANDS
        self._discovery_tried = False
        if cli is not None:
            cli.register_command(KernelsplitCommand)

    @classmethod
    def read_config(cls, conf):
        """kernelsplit.conf, read strictly (see dnf_kernelsplit.config), as dnf's API has it.

        dnf calls this before it makes the plugin, to see whether `enabled` is
        off, and reads `enabled` from the parser returned: a bad file must stop
        dnf here, with a message, not with a traceback there.
        """
        return ks_config.as_parser(cls._settings(conf)[1])

    @classmethod
    def _settings(cls, conf):
        """(Config, raw values), read once per run and pluginconfpath."""
        key = tuple(conf.pluginconfpath)
        if cls._read is None or cls._read[0] != key:
            try:
                config, values = ks_config.read(key, cls.name)
            except ks_config.ConfigValueError as exc:
                raise dnf.exceptions.ConfigError('kernelsplit: %s' % exc) from None
            cls._read = (key, config, values)
        return cls._read[1:]

    def config(self):
        self.settings = self._settings(self.base.conf)[0]
        command = getattr(self.cli, 'command', None)
        if isinstance(command, KernelsplitCommand):
            command.plugin_config = self.settings
        aliases = getattr(command, 'aliases', None)
        if aliases and aliases[0] in self.TRANSACTION_COMMANDS:
            self._start_discovery()

    def sack(self):
        if self.cli is not None and self.cli.demands.resolving:
            self._start_discovery()

    def _start_discovery(self):
        """List the devices in the background, in case a kernel turns up in the transaction."""
        if self._discovery_tried:
            return
        self._discovery_tried = True
        # Imported here, not at plugin load: most dnf runs never resolve a kernel.
        from dnf_kernelsplit import transaction
        try:
            self._discovery = transaction.start_discovery(self.base, self.cli, self.settings)
        except Exception as exc:     # never break dnf by accident: resolved() lists them itself
            logger.debug('kernelsplit: cannot list devices in the background: %s', exc)

    def resolved(self):
        if self._resolving:          # our own re-resolve below
            return
        from dnf_kernelsplit import transaction
        result = transaction.packages_to_add(self.base, self.cli, self.settings,
                                             self._discovery)
        if not result.packages:
            return
        for pkg in result.packages.values():
            self.base.package_install(pkg, strict=False)
        # As the command line asked; a library caller's choice is not kept by dnf.
        allow_erasing = self.cli.demands.allow_erasing if self.cli is not None \
            else getattr(self.base, '_allow_erasing', False)
        self._resolving = True
        try:
            transaction.resolve_again(self.base, allow_erasing)
        except dnf.exceptions.DepsolveError as exc:
            # The transaction dnf resolved before stays as it was.
            logger.warning('kernelsplit: the driver packages could not be added: %s', exc)
        finally:
            self._resolving = False
        transaction.report_not_added(self.base, result, self.settings, allow_erasing)
