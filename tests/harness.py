"""Drive the real dnf CLI in an --installroot, under emulated hardware.

rpm and dnf must agree on where the rpmdb of the installroot lives: Debian's
rpm defaults %_dbpath to ~/.rpmdb, Fedora's to /var/lib/rpm.  Every command
here runs with a HOME whose .rpmmacros sets %_dbpath /var/lib/rpm, so
`rpm --root R` and `dnf --installroot R` read the same R/var/lib/rpm.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = ROOT / 'dnf-plugin-kernelsplit'
HOSTS = ROOT / 'tests' / 'hosts'
TESTBED_EXEC = ROOT / 'tests' / 'testbed_exec.py'
PYTHON = '/usr/bin/python3'
DBPATH = '/var/lib/rpm'
# dnf 4's own script: on Fedora 41+ /usr/bin/dnf is dnf5, which loads no Python plugins.
DNF = '/usr/bin/dnf-3'


@dataclass(frozen=True)
class Host:
    """Emulated hardware: an umockdev device file and its driver -> module links.

    DRIVERS: another .drivers file for the same devices (say, with drivers built in).
    UEVENT_SEQNUM: the kernel's uevent counter (/sys/kernel/uevent_seqnum, which every
    real kernel has) to start the testbed with; None leaves it out, as a kernel before
    4.14 or a sysfs without it would (the device listing is then never kept).
    """
    name: str
    drivers_name: Optional[str] = None
    uevent_seqnum: Optional[int] = None

    @property
    def umockdev(self) -> Path:
        return HOSTS / ('%s.umockdev' % self.name)

    @property
    def drivers(self) -> Path:
        return HOSTS / ('%s.drivers' % (self.drivers_name or self.name))

    def wrap(self, command: Sequence[str]) -> list[str]:
        seqnum = [] if self.uevent_seqnum is None else ['--uevent-seqnum=%d' % self.uevent_seqnum]
        return ['umockdev-run', '-d', str(self.umockdev), '--',
                PYTHON, str(TESTBED_EXEC), *seqnum, str(self.drivers), '--'] + list(command)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return 'exit %d\n--- stdout\n%s\n--- stderr\n%s' % (self.returncode, self.stdout, self.stderr)


# dnf's words when a plugin's module cannot be imported: dnf then goes on without it,
# so a test that sees them would be testing dnf without the plugin.
PLUGIN_NOT_LOADED = 'Failed loading plugin'

# Drop to an unprivileged user, as `dnf kernelsplit check` may be run.
AS_NOBODY = ('setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--')


def run(command: Sequence[str], env: Mapping[str, str], check: bool = False,
        timeout: int = 300) -> Result:
    proc = subprocess.run(list(command), capture_output=True, text=True, env=dict(env),
                          timeout=timeout)
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    if PLUGIN_NOT_LOADED in proc.stdout + proc.stderr:
        raise AssertionError('a plugin did not load: %s\n%s' % (' '.join(command), result))
    if check and proc.returncode != 0:
        raise AssertionError('%s\n%s' % (' '.join(command), result))
    return result


class Installroot:
    """An installroot with fixture repos, the plugin from the source tree and its config."""

    def __init__(self, base: Path, repos: Mapping[str, Path],
                 plugin_conf: Optional[Mapping[str, str]] = None,
                 dnf_conf: Optional[Mapping[str, str]] = None) -> None:
        self.base = base
        self.root = base / 'root'
        self.home = base / 'home'
        self.reposdir = base / 'repos.d'
        self.pluginconfdir = base / 'plugins.d'
        for d in (self.root, self.home, self.reposdir, self.pluginconfdir):
            d.mkdir(parents=True, exist_ok=True)
        (self.home / '.rpmmacros').write_text('%%_dbpath %s\n' % DBPATH)
        for name, path in repos.items():
            self.add_repo(name, path)
        self.write_plugin_conf({'hardware_in_installroot': 'yes', **(plugin_conf or {})})
        main = {'reposdir': str(self.reposdir), 'pluginconfpath': str(self.pluginconfdir),
                'install_weak_deps': 'False', 'gpgcheck': 'False', 'keepcache': 'False',
                'metadata_expire': '0'}
        main.update(dnf_conf or {})
        self.conf = base / 'dnf.conf'
        self.conf.write_text('[main]\n' + ''.join('%s=%s\n' % kv for kv in main.items()))

    def add_repo(self, name: str, path, enabled: bool = True) -> None:
        """PATH: a directory (a file:// repository), or a URL."""
        url = path if isinstance(path, str) and '://' in path else 'file://%s' % path
        (self.reposdir / ('%s.repo' % name)).write_text(
            '[%s]\nname=%s\nbaseurl=%s\nenabled=%d\ngpgcheck=0\nmetadata_expire=0\n'
            % (name, name, url, int(enabled)))

    def write_plugin_conf(self, values: Mapping[str, str], raw: Optional[str] = None) -> None:
        text = raw if raw is not None else \
            '[main]\n' + ''.join('%s = %s\n' % kv for kv in values.items())
        (self.pluginconfdir / 'kernelsplit.conf').write_text(text)

    @property
    def env(self) -> dict[str, str]:
        # No PYTHONPATH: dnf finds the plugin through --setopt=pluginpath alone, as
        # anyone running dnf from a checkout would (a test that shims a module sets
        # PYTHONPATH to the shim only).
        env = {k: v for k, v in os.environ.items() if k not in ('container', 'PYTHONPATH')}
        env.update(HOME=str(self.home), LC_ALL='C.UTF-8', PYTHONDONTWRITEBYTECODE='1')
        return env

    def dnf_command(self, *args: str, plugin: bool = True) -> list[str]:
        command = [PYTHON, DNF, '-c', str(self.conf), '--installroot', str(self.root),
                   '--releasever', '1', '--setopt=pluginpath=%s' % PLUGIN_DIR]
        if not plugin:
            command.append('--disableplugin=kernelsplit')
        return command + list(args)

    def dnf(self, *args: str, host: Optional[Host] = None, plugin: bool = True,
            check: bool = False, env: Optional[Mapping[str, str]] = None,
            prefix: Sequence[str] = ()) -> Result:
        command = self.dnf_command(*args, plugin=plugin)
        if host is not None:
            command = host.wrap(command)
        return run(list(prefix) + command, {**self.env, **(env or {})}, check=check)

    def install(self, *specs: str, host: Optional[Host] = None, plugin: bool = False) -> Result:
        """Install SPECS (the plugin off unless asked) and run the kernel's depmod step."""
        result = self.dnf('-y', 'install', *specs, host=host, plugin=plugin, check=True)
        self.depmod()
        return result

    def depmod(self) -> None:
        """What the kernel packages' %posttrans does on a real system.

        The installroot has no shell or depmod for scriptlets to run, so the
        harness runs the host's depmod against the root after a transaction.
        """
        for kver_dir in sorted(glob.glob(str(self.root / 'lib/modules/*'))):
            if os.path.isfile(os.path.join(kver_dir, 'modules.order')):
                run(['depmod', '-b', str(self.root), os.path.basename(kver_dir)], os.environ,
                    check=True)

    def rpm(self, *args: str, check: bool = True) -> Result:
        return run(['rpm', '--root', str(self.root), '--dbpath', DBPATH] + list(args),
                   self.env, check=check)

    def installed(self) -> set[str]:
        out = self.rpm('-qa', '--qf', '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n').stdout
        return {line for line in out.splitlines() if line}

    def check(self, *args: str, host: Host, **kw) -> Result:
        return self.dnf('kernelsplit', 'check', *args, host=host, **kw)

    def open_to_all(self) -> None:
        """Make the whole tree readable by any user (see AS_NOBODY), as / is.

        Only a world-readable base (e.g. under /var/tmp) lets another user in.
        """
        (self.root / 'var' / 'tmp').mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / 'var' / 'tmp', 0o1777)   # as on any system: dnf's user cache
        for path in [self.base] + list(self.base.rglob('*')):
            if not path.is_symlink():
                os.chmod(path, os.stat(path).st_mode | 0o044 | (0o011 if path.is_dir() else 0))


def dnf_base(installroot: Installroot, load_available: bool = True):
    """A dnf.Base (the Python API, in this process) on INSTALLROOT, its sack filled."""
    import dnf
    import rpm
    base = dnf.Base()
    # What .rpmmacros says for the CLI runs; after dnf.Base(), whose first
    # construction in a process has rpm read its configuration again (a macro
    # added before it is gone, and that first Base saw an empty rpmdb).
    rpm.addMacro('_dbpath', DBPATH)
    base.conf.read(str(installroot.conf))
    base.conf.installroot = str(installroot.root)
    base.conf.releasever = '1'
    base.conf.cachedir = str(installroot.base / 'cache')
    base.conf.substitutions['releasever'] = '1'
    base.read_all_repos()
    base.fill_sack(load_system_repo=True, load_available_repos=load_available)
    return base
