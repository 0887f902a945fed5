"""The package manager a standalone front end reads through: which one, and a Base on a root.

The `kernelsplit` command and the kernel-install plugin run outside any dnf
process, so they open the rpmdb and the repositories themselves, with the
package manager's own library: the one the system's `dnf` command is.

The rule (choose()): dnf5 when /usr/bin/dnf is dnf5 (Fedora 41 and later)
and libdnf5's Python bindings import; else dnf 4 when its Python API
(python3-dnf) imports; else dnf5 when /usr/bin/dnf5 exists and libdnf5
imports (a system with dnf5 alone, e.g. Debian with the dnf5 package).  A
Fedora 40 host with dnf5 installed beside dnf 4 reads through dnf 4, as its
`dnf upgrade` does.  `--backend dnf4|dnf5` overrides the rule.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from typing import Any, Optional, Sequence

DNF4, DNF5 = 'dnf4', 'dnf5'
BACKENDS = (DNF4, DNF5)
SYSTEM_DNF = '/usr/bin/dnf'
DNF5_BINARY = '/usr/bin/dnf5'
# kernelsplit.conf's directory when the package manager names none (dnf 4's default
# pluginconfpath, where the dnf 4 plugin reads it too).
DEFAULT_PLUGINCONFPATH = ('/etc/dnf/plugins',)


class BackendError(Exception):
    """The package manager cannot be used as asked; str() says why."""


class BaseOptions(namedtuple('BaseOptions', [
        'installroot',      # str
        'config_file',      # str or None: dnf's -c
        'setopts',          # tuple[(KEY, VALUE), ...]: dnf's --setopt
        'releasever',       # str or None
        'cacheonly',        # bool: dnf's -C
        'load_available',   # bool: the repositories too, not only the rpmdb
        ], defaults=('/', None, (), None, False, True))):
    """What points the package manager at a root, as dnf's own options do."""
    __slots__ = ()


class Backend(namedtuple('Backend', [
        'name',             # DNF4 | DNF5
        'lookup',           # packages_dnf4.Dnf4Lookup | packages_dnf5.Dnf5Lookup
        'installroot',      # str
        'cachedir',         # str: the package manager's cache directory (exact mode's answers)
        'pluginconfpath',   # tuple[str, ...]: where kernelsplit.conf is read
        'command',          # tuple[str, ...]: the package manager's command, with the options
        'handle',           # the dnf.Base or libdnf5 Base, kept open while the lookup is used
        ])):
    """An open package manager."""
    __slots__ = ()


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def dnf5_usable() -> bool:
    return os.access(DNF5_BINARY, os.X_OK) and _importable('libdnf5')


def dnf4_usable() -> bool:
    return _importable('dnf')


def system_dnf_is_dnf5(path: str = SYSTEM_DNF) -> bool:
    """Whether the system's `dnf` command is dnf5 (a link to dnf5, as on Fedora 41+)."""
    return os.path.basename(os.path.realpath(path)).startswith('dnf5')


def choose(requested: str = 'auto') -> str:
    """The backend to read through (see the module's docstring). Raises BackendError."""
    if requested == DNF5:
        if not _importable('libdnf5'):
            raise BackendError('--backend dnf5: libdnf5\'s Python bindings (python3-libdnf5) '
                               'are not installed')
        return DNF5
    if requested == DNF4:
        if not dnf4_usable():
            raise BackendError('--backend dnf4: dnf 4\'s Python API (python3-dnf) is not installed')
        return DNF4
    if system_dnf_is_dnf5() and _importable('libdnf5'):
        return DNF5
    if dnf4_usable():
        return DNF4
    if dnf5_usable():
        return DNF5
    raise BackendError('neither dnf 4 (python3-dnf) nor dnf5 (dnf5 and python3-libdnf5) is '
                       'installed')


def user_cachedir() -> str:
    """Where an ordinary user's libdnf5 metadata goes: ~/.cache/libdnf5, as dnf5 keeps it,
    when that can be written; else a directory of this run under /var/tmp, removed at exit.
    (libdnf5 would put its default one inside the installroot, where a user cannot write.)"""
    home = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    path = os.path.join(home, 'libdnf5')
    try:
        os.makedirs(path, exist_ok=True)
        if os.access(path, os.W_OK | os.X_OK):
            return path
    except OSError:
        pass
    import atexit
    private = tempfile.mkdtemp(prefix='kernelsplit-libdnf5-', dir='/var/tmp')
    atexit.register(shutil.rmtree, private, True)
    return private


def _dnf_command(name: str, options: BaseOptions) -> tuple[str, ...]:
    """The package manager's own command line for the same root, repositories and settings."""
    if name == DNF5:
        program = shutil.which('dnf5') or DNF5_BINARY
    else:
        # dnf 4 itself, also where /usr/bin/dnf is dnf5 (Fedora 41+ keeps dnf-3)
        program = next((p for p in (shutil.which('dnf-3'), shutil.which('dnf4')) if p), None) \
            or (shutil.which('dnf') or SYSTEM_DNF)
    command = [program]
    if options.config_file:
        command += ['-c', options.config_file]
    if os.path.realpath(options.installroot) != '/':
        command.append('--installroot=%s' % options.installroot)
    if options.releasever:
        command.append('--releasever=%s' % options.releasever)
    if options.cacheonly:
        command.append('-C')
    command += ['--setopt=%s=%s' % kv for kv in options.setopts]
    return tuple(command)


def open_backend(name: str, options: BaseOptions,
                 pluginconfpath: Optional[Sequence[str]] = None) -> Backend:
    """The package manager NAME on OPTIONS' root, its rpmdb (and repositories) loaded.

    PLUGINCONFPATH: where to read kernelsplit.conf (None: dnf 4's pluginconfpath,
    or DEFAULT_PLUGINCONFPATH for dnf5).  Raises BackendError.
    """
    if name == DNF5:
        from . import packages_dnf5
        try:
            base = packages_dnf5.open_base(
                options.installroot, options.config_file, options.setopts, options.releasever,
                options.cacheonly, options.load_available,
                user_cachedir=user_cachedir() if os.geteuid() != 0 else None)
        except packages_dnf5.BackendError as exc:
            raise BackendError(str(exc)) from None
        return Backend(DNF5, packages_dnf5.Dnf5Lookup(base), options.installroot,
                       packages_dnf5.cachedir_of(base),
                       tuple(pluginconfpath or DEFAULT_PLUGINCONFPATH),
                       _dnf_command(DNF5, options), base)
    base = _dnf4_base(options)
    from .packages_dnf4 import Dnf4Lookup
    return Backend(DNF4, Dnf4Lookup(base.sack, base), base.conf.installroot, base.conf.cachedir,
                   tuple(pluginconfpath or base.conf.pluginconfpath),
                   _dnf_command(DNF4, options), base)


class _RepoSetopts(namedtuple('_RepoSetopts', ['repo_setopts'])):
    """What dnf.conf.read.RepoReader reads of dnf's parsed options: --setopt=REPO.KEY=VALUE."""
    __slots__ = ()


def _dnf4_base(options: BaseOptions) -> Any:
    """A dnf.Base set up as dnf 4's command line sets up its own for the same options
    (dnf.cli.Cli._read_conf_file, whose steps this follows), its sack filled."""
    import dnf
    import dnf.conf
    import dnf.exceptions
    import dnf.rpm
    commandline = dnf.conf.PRIO_COMMANDLINE
    try:
        base = dnf.Base()
        conf = base.conf
        conf._set_value('installroot', options.installroot, commandline)
        if options.config_file:
            if not os.path.isfile(options.config_file):
                raise BackendError('config file "%s" does not exist' % options.config_file)
            conf._set_value('config_file_path', options.config_file, commandline)
        conf._search_inside_installroot('config_file_path')
        conf.read(priority=dnf.conf.PRIO_MAINCONFIG)
        repo_setopts: dict[str, dict[str, list[str]]] = {}
        for key, value in options.setopts:
            repo, dot, option = key.rpartition('.')
            if dot:
                repo_setopts.setdefault(repo, {}).setdefault(option, []).append(value)
            elif not hasattr(conf, key):
                raise BackendError('--setopt=%s=%s: dnf has no option %r' % (key, value, key))
            else:
                conf.set_or_append_opt_value(key, value, commandline)
        if options.cacheonly:           # as dnf -C: the system's cache, never a download
            conf.cacheonly = True
            conf._set_value('cachedir', conf.system_cachedir, dnf.conf.PRIO_DEFAULT)
        from_root = conf._search_inside_installroot('reposdir')
        conf.substitutions.update_from_etc(from_root, varsdir=conf._get_value('varsdir'))
        if options.releasever:
            conf.releasever = options.releasever
        elif conf.releasever is None:
            conf.releasever = dnf.rpm.detect_releasever(conf.installroot)
        for name in ('cachedir', 'logdir', 'persistdir'):
            conf.prepend_installroot(name)
        base.read_all_repos(_RepoSetopts(repo_setopts))
        base.fill_sack(load_system_repo=True, load_available_repos=options.load_available)
    except BackendError:
        raise
    except (dnf.exceptions.Error, RuntimeError, OSError) as exc:   # libdnf's bindings, the rpmdb
        raise BackendError(str(exc)) from None
    return base
