# kernelsplit: keep a split kernel's driver subpackages in step with the hardware.
#
# Only the dnf.Plugin subclass and the command registration live here: dnf
# imports every .py file in its plugin path, so the logic is in the
# dnf_kernelsplit package.

import dnf
import dnf.exceptions

from dnf_kernelsplit import config as ks_config
from dnf_kernelsplit.command import KernelsplitCommand


class Kernelsplit(dnf.Plugin):
    """Adds the driver subpackages present hardware needs to kernel transactions."""

    name = 'kernelsplit'

    def __init__(self, base, cli):
        super().__init__(base, cli)
        self.settings = ks_config.Config()
        if cli is not None:
            cli.register_command(KernelsplitCommand)

    def config(self):
        files = ks_config.config_files(self.base.conf.pluginconfpath, self.name)
        try:
            self.settings = ks_config.load(self.read_config(self.base.conf), files)
        except ks_config.ConfigValueError as exc:
            raise dnf.exceptions.ConfigError('kernelsplit: %s' % exc) from None
        command = getattr(self.cli, 'command', None)
        if isinstance(command, KernelsplitCommand):
            command.plugin_config = self.settings
