"""dnf-plugins-core's system-upgrade plugin, for the offline-upgrade tests.

Fedora ships it (python3-dnf-plugins-core); Debian 12's dnf-plugins-core
leaves it out, so it is taken from Debian 13's package of the same upstream
project, fetched with apt from Debian's archive into a cache outside the repo.
Returns a directory holding system_upgrade.py (alone, so no other plugin of
that package loads) and, beside it, a python path with dnfpluginscore.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get('KERNELSPLIT_DNFPLUGINS_CACHE', '/var/tmp/kernelsplit-dnf-plugins-core'))


class Unavailable(Exception):
    pass


@dataclass(frozen=True)
class SystemUpgrade:
    plugin_dir: Path     # holds system_upgrade.py only
    python_path: Path    # holds dnfpluginscore/


def _from_system() -> Path | None:
    import dnf.const
    for path in [dnf.const.PLUGINPATH] + glob.glob('/usr/lib/python3*/site-packages/dnf-plugins'):
        if os.path.isfile(os.path.join(path, 'system_upgrade.py')):
            return Path(path)
    return None


def _from_debian(work: Path) -> Path:
    if shutil.which('apt-get') is None:
        raise Unavailable('system_upgrade.py is not installed and apt-get is not available')
    (work / 'lists' / 'partial').mkdir(parents=True, exist_ok=True)
    (work / 'cache' / 'archives' / 'partial').mkdir(parents=True, exist_ok=True)
    (work / 'sources.list').write_text('deb http://deb.debian.org/debian trixie main\n')
    options = ['-q', '-o', 'Dir::Etc::SourceList=%s' % (work / 'sources.list'),
               '-o', 'Dir::Etc::SourceParts=/dev/null', '-o', 'Dir::State::Lists=%s' % (work / 'lists'),
               '-o', 'Dir::Cache=%s' % (work / 'cache'), '-o', 'APT::Get::List-Cleanup=0']
    for args in (['update'], ['download', 'dnf-plugins-core']):
        done = subprocess.run(['apt-get'] + options + args, cwd=work, capture_output=True, text=True)
        if done.returncode != 0:
            raise Unavailable('apt-get %s failed: %s' % (args[0], done.stderr.strip()))
    deb = next(work.glob('dnf-plugins-core_*.deb'))
    subprocess.run(['dpkg-deb', '-x', str(deb), str(work / 'unpacked')], check=True)
    return next((work / 'unpacked').rglob('dnf-plugins')).parent


def system_upgrade(cache: Path = CACHE) -> SystemUpgrade:
    ready = cache / 'plugin' / 'system_upgrade.py'
    if not ready.exists():
        installed = _from_system()
        if installed is not None:
            site = installed.parent
        else:
            work = cache / 'download'
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            site = _from_debian(work)
        (cache / 'plugin').mkdir(parents=True, exist_ok=True)
        shutil.copy2(site / 'dnf-plugins' / 'system_upgrade.py', ready)
        shutil.rmtree(cache / 'python', ignore_errors=True)
        shutil.copytree(site / 'dnfpluginscore', cache / 'python' / 'dnfpluginscore')
    return SystemUpgrade(cache / 'plugin', cache / 'python')
