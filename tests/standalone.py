"""Drive the standalone `kernelsplit` command from the checkout, on the host (dnf 4) and in
the Debian sid chroot (dnf5), on installroots made by harness.Installroot or Dnf5Root.

The command runs as dnf-plugin-kernelsplit/kernelsplit, without PYTHONPATH, as
/usr/bin/kernelsplit runs when installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Optional, Sequence

from harness import PLUGIN_DIR, PYTHON, ROOT, TESTBED_EXEC, Host, Installroot, Result, run

KERNELSPLIT = PLUGIN_DIR / 'kernelsplit'
GUARD = PLUGIN_DIR / 'kernelsplit-dnf5-guard'
ACTIONS = ROOT / 'etc' / 'dnf' / 'libdnf5-plugins' / 'actions.d' / 'kernelsplit.actions'
INSTALLED_GUARD = '/usr/libexec/kernelsplit/dnf5-guard'


def root_options(root: Installroot, pluginconfpath: bool = True) -> list[str]:
    """What points `kernelsplit` at ROOT: the root, its dnf.conf, repos and kernelsplit.conf.

    The repository directory is given on the command line, where both package
    managers take it as a host path (dnf5 reads the one in a -c file inside the root).
    """
    options = ['--installroot', str(root.root), '-c', str(root.conf), '--releasever', '1',
               '--setopt', 'reposdir=%s' % root.reposdir]
    if pluginconfpath:
        options += ['--pluginconfpath', str(root.pluginconfdir)]
    return options


def kernelsplit(root: Installroot, *args: str, host: Optional[Host] = None,
                backend: str = 'dnf4', env: Optional[Mapping[str, str]] = None,
                prefix: Sequence[str] = (), options: Optional[Sequence[str]] = None) -> Result:
    """`kernelsplit ARGS` on the host for ROOT (the subcommand first in ARGS)."""
    command = [PYTHON, str(KERNELSPLIT), *args, '--backend', backend,
               *(root_options(root) if options is None else options)]
    if host is not None:
        command = host.wrap(command)
    return run(list(prefix) + command, {**root.env, **(env or {})})


class Dnf5Root:
    """An installroot driven by dnf5 in the sid chroot (tests/sidchroot.py).

    Its dnf5.conf and repos.d are host paths mounted at the same place inside.
    The chroot is the machine: its /etc/dnf/plugins/kernelsplit.conf (in the
    test's own layer) is the configuration the guard reads, and the actions
    file, when installed, goes to its /etc/dnf/libdnf5-plugins/actions.d/.
    """

    def __init__(self, sid, base: Path, repos: Mapping[str, Path],
                 plugin_conf: Optional[Mapping[str, str]] = None) -> None:
        self.sid = sid
        self.base = base
        self.root = base / 'root'
        self.reposdir = base / 'repos.d'
        self.pluginconfdir = sid.upper / 'etc' / 'dnf' / 'plugins'
        for d in (self.root, self.reposdir, self.pluginconfdir):
            d.mkdir(parents=True, exist_ok=True)
        self.repos = dict(repos)
        for name, path in repos.items():
            (self.reposdir / ('%s.repo' % name)).write_text(
                '[%s]\nname=%s\nbaseurl=file://%s\ngpgcheck=0\nmetadata_expire=0\n'
                % (name, name, path))
        self.conf = base / 'dnf5.conf'
        self.conf.write_text('[main]\ngpgcheck=0\ninstall_weak_deps=0\nkeepcache=0\n')
        self.write_plugin_conf({'hardware_in_installroot': 'yes', **(plugin_conf or {})})

    def write_plugin_conf(self, values: Mapping[str, str]) -> None:
        (self.pluginconfdir / 'kernelsplit.conf').write_text(
            '[main]\n' + ''.join('%s = %s\n' % kv for kv in values.items()))

    def install_guard(self, actions_text: Optional[str] = None) -> Path:
        """The shipped kernelsplit.actions, in the chroot's actions.d, running the checkout's guard."""
        text = actions_text if actions_text is not None else \
            ACTIONS.read_text().replace(INSTALLED_GUARD, str(GUARD))
        target = self.sid.upper / 'etc' / 'dnf' / 'libdnf5-plugins' / 'actions.d' / \
            'kernelsplit.actions'
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def remove_guard(self) -> None:
        target = self.sid.upper / 'etc' / 'dnf' / 'libdnf5-plugins' / 'actions.d' / \
            'kernelsplit.actions'
        if target.exists():
            target.unlink()

    @property
    def mounts(self) -> dict:
        return {'rw': [self.base], 'ro': sorted(set(p.parent for p in self.repos.values()))}

    def options(self) -> list[str]:
        # reposdir on the command line: dnf5 reads the one of a -c file inside the root
        return ['--installroot=%s' % self.root, '-c', str(self.conf),
                '--setopt=reposdir=%s' % self.reposdir]

    def run(self, command: Sequence[str], host: Optional[Host] = None,
            env: Optional[Mapping[str, str]] = None, check: bool = False,
            timeout: int = 300) -> Result:
        if host is not None:
            command = wrap_inside(host, command)
        result = self.sid.run(list(command), env=env, timeout=timeout, **self.mounts)
        if check and result.returncode != 0:
            raise AssertionError('in the sid chroot: %s\n%s' % (' '.join(command), result))
        return result

    def dnf5(self, *args: str, host: Optional[Host] = None, check: bool = False,
             env: Optional[Mapping[str, str]] = None) -> Result:
        return self.run(['dnf5', *self.options(), *args], host=host, check=check, env=env)

    def install(self, *specs: str) -> Result:
        """Install SPECS without the guard's judgement (it is not in place yet) and run depmod."""
        result = self.dnf5('-y', '--disableplugin=actions', 'install', *specs, check=True)
        self.depmod()
        return result

    def depmod(self) -> None:
        modules = self.root / 'lib' / 'modules'
        for kver_dir in sorted(modules.glob('*')) if modules.is_dir() else ():
            if (kver_dir / 'modules.order').is_file():
                self.run(['depmod', '-b', str(self.root), kver_dir.name], check=True)

    def installed(self) -> set[str]:
        out = self.run(['rpm', '--root', str(self.root), '-qa', '--qf',
                        '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n'], check=True).stdout
        return {line for line in out.splitlines() if line}

    def kernelsplit(self, *args: str, host: Optional[Host] = None, backend: str = 'dnf5',
                    options: Optional[Sequence[str]] = None) -> Result:
        command = ['python3', str(KERNELSPLIT), *args, '--backend', backend,
                   *(self.ks_options() if options is None else options)]
        return self.run(command, host=host)

    def ks_options(self) -> list[str]:
        return ['--installroot', str(self.root), '-c', str(self.conf),
                '--setopt', 'reposdir=%s' % self.reposdir]


def wrap_inside(host: Host, command: Sequence[str]) -> list[str]:
    """HOST's emulated hardware around COMMAND, inside the chroot (its umockdev and python3)."""
    return ['umockdev-run', '-d', str(host.umockdev), '--', 'python3', str(TESTBED_EXEC),
            str(host.drivers), '--', *command]


def in_sid_for(sid, root: Installroot) -> dict:
    """Mounts that let the chroot see a host Installroot and its repositories."""
    repos = [Path(line.split('file://', 1)[1].strip())
             for repo in root.reposdir.glob('*.repo') for line in repo.read_text().splitlines()
             if line.startswith('baseurl=file://')]
    return {'rw': [root.base], 'ro': sorted({p.parent for p in repos})}


def json_doc(result: Result) -> dict:
    return json.loads(result.stdout)

