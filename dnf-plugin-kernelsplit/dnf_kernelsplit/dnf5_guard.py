"""The dnf5 guard: the transaction hook's policy for dnf5, through dnf5's actions plugin.

dnf5 resolves a transaction once and hands its plugins a read-only result:
no supported interface adds packages to it (a libdnf5 plugin's goal_resolved
gets a const Transaction; the actions plugin can read, log and stop).  So
where dnf 4's hook adds the driver packages a kernel needs, this guard stops
the transaction, naming each package (device, module) and the one dnf5
command that installs the kernel complete.  A removal that strands a device
is refused as dnf 4's hook refuses it.  on_missing=warn only warns.

kernelsplit.actions runs kernelsplit-dnf5-guard at goal_resolved in JSON
mode; that shell gate asks dnf5 whether a kernel may be in the transaction
and starts this module (`python3 -m dnf_kernelsplit.dnf5_guard INSTALLROOT`,
on the same pipes) only when one may be.  The requests and replies are JSON lines on
stdin/stdout; stderr is dnf5's own, where warnings go.  Anything that goes
wrong by accident is a warning and dnf5 carries on (the actions file says
raise_error=0); only a policy decision stops it.

The packages are read through a libdnf5 Base of this process (packages_dnf5):
from dnf5's cache without any download, the repositories the incoming
packages come from (and the command line's .rpm files).  The release's
siblings are looked for there: a kernel build's subpackages are published
together.  The installed packages are asked of dnf5 itself, which has read
the rpmdb already (InstalledByDnf5); this Base reads the rpmdb too only when
packages go out, or when an incoming build is partly installed or a question
needs an installed package's files or provides (packages_dnf5.NeedsRpmdb).
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from typing import Any, Optional, Sequence

# As background._CHILD_CODE: that child, started here with os alone (see spawn_listing).
_LISTING_CODE = ('import sys; sys.path[:] = %r; '
                 'from dnf_kernelsplit.background import _child_main; _child_main()')


def spawn_listing(root: str) -> Optional[tuple[int, int, float]]:
    """Start background.py's device-listing child on ROOT, every bus: (pid, the read end of
    its stdout, its start on the monotonic clock), or None when it would not pay (one
    CPU) or cannot start.

    The listing takes as long as the rest of the guard together (~0.3 s for 210 PCI
    functions under umockdev), so it starts before this module imports anything
    else: logging and json alone take ~55 ms on Python 3.14.
    """
    try:
        if len(os.sched_getaffinity(0)) < 2 or not sys.executable:
            return None
        read, write = os.pipe()
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            started = time.monotonic()
            pid = os.posix_spawn(
                sys.executable, [sys.executable, '-S', '-c', _LISTING_CODE % (sys.path,),
                                 str(os.getpid()), '*', root], os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, write, 1),
                              (os.POSIX_SPAWN_DUP2, devnull, 2)])
        finally:
            os.close(write)
            os.close(devnull)
    except OSError:
        return None
    return pid, read, started


# Started by the gate with dnf5's installroot: the listing first.
EARLY_LISTING = spawn_listing(sys.argv[1]) if __name__ == '__main__' and len(sys.argv) > 1 \
    else None

import json  # noqa: E402
import logging  # noqa: E402

from .config import ConfigValueError, read as read_config  # noqa: E402

logger = logging.getLogger('dnf.plugin')

PLUGINCONFPATH = ('/etc/dnf/plugins',)      # kernelsplit.conf, as for dnf 4's plugin
ONE_OFF_WAY_OUT = ('or run dnf5 with --disable-plugin=actions for this one transaction '
                   '(it turns off every .actions file).')
TRANS_FIELDS = ['nevra', 'action', 'direction', 'repo_id']
SYSTEM, COMMANDLINE = '@System', '@commandline'


class SpawnedChild:
    """The child spawn_listing() started, with what background.BackgroundHost asks of a
    subprocess.Popen: poll(), communicate(timeout), kill() and returncode."""

    def __init__(self, pid: int, stdout: int) -> None:
        self.pid = pid
        self.returncode: Optional[int] = None
        self._stdout: Optional[int] = stdout
        self._read: list[bytes] = []

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            import signal
            os.kill(self.pid, signal.SIGKILL)

    def communicate(self, timeout: Optional[float] = None) -> tuple[bytes, bytes]:
        """(its stdout, b''): read to the end, then reaped.  Raises subprocess.TimeoutExpired."""
        import select
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._stdout is not None:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self._stdout], [], [], wait)[0]:
                import subprocess
                raise subprocess.TimeoutExpired('the device listing', timeout or 0.0)
            chunk = os.read(self._stdout, 1 << 16)
            if chunk:
                self._read.append(chunk)
            else:
                os.close(self._stdout)
                self._stdout = None
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return b''.join(self._read), b''


def adopt_listing(early: tuple[int, int, float]) -> Any:
    """The child spawn_listing() started, as a background.BackgroundHost (stopped at exit
    unless collected)."""
    import atexit
    from .background import BackgroundHost
    pid, stdout, started = early
    handle = BackgroundHost(SpawnedChild(pid, stdout), started)
    atexit.register(handle.cancel)
    return handle


def device_listing(early: Optional[Any], buses: Optional[frozenset[str]], root: str
                   ) -> Optional[Any]:
    """A background.BackgroundHost listing the devices on BUSES for ROOT: EARLY (the
    listing the gate's arguments started: every bus, dnf5's installroot) when that is
    it, else one started now (EARLY is stopped)."""
    if early is not None:
        if buses is None and sys.argv[1:2] == [root]:
            return early
        early.cancel()
    from .background import BackgroundHost
    return BackgroundHost.start(buses, root)


class ProtocolError(Exception):
    """The actions plugin answered with an error, or not at all."""


class Channel:
    """The actions plugin's JSON protocol on stdin/stdout: one request, one reply line."""

    def __init__(self, incoming: Any = None, outgoing: Any = None) -> None:
        self.incoming = incoming or sys.stdin
        self.outgoing = outgoing or sys.stdout

    def _send(self, request: dict) -> None:
        self.outgoing.write(json.dumps(request, separators=(',', ':')) + '\n')
        self.outgoing.flush()

    def ask(self, request: dict) -> Any:
        """REQUEST's 'return' value. Raises ProtocolError."""
        self._send(request)
        line = self.incoming.readline()
        if not line:
            raise ProtocolError('dnf5 closed the channel')
        reply = json.loads(line)
        if reply.get('status') != 'OK':
            raise ProtocolError(reply.get('message') or line.strip())
        return reply.get('return')

    def get(self, domain: str, **args: Any) -> Any:
        return self.ask({'op': 'get', 'domain': domain, 'args': args})

    def conf(self, key: str) -> str:
        """dnf5's value of configuration option KEY (lists are comma-joined)."""
        found = self.get('conf', key=key)
        for item in (found or {}).get('keys_val', ()):
            if item.get('key') == key:
                return item.get('value', '')
        raise ProtocolError('dnf5 has no option %s' % key)

    def conf_items(self, pattern: str) -> dict[str, str]:
        """dnf5's options matching PATTERN ('*.baseurl'), as KEY -> value."""
        found = self.get('conf', key=pattern)
        return {item['key']: item.get('value', '') for item in (found or {}).get('keys_val', ())}

    def stop(self, message: str) -> None:
        """Make dnf5 stop before the transaction (it exits 1 and prints MESSAGE)."""
        self._send({'op': 'stop', 'args': {'message': message}})


# --- what the transaction holds ------------------------------------------------

def transaction_items(channel: Channel) -> list[dict]:
    return channel.get('trans_packages', output=TRANS_FIELDS).get('trans_packages', [])


def dnf5_command_line() -> list[str]:
    """dnf5's own argv (this process's parent): for the command's name."""
    try:
        with open('/proc/%d/cmdline' % os.getppid(), 'rb') as handle:
            return [a.decode('utf-8', 'replace') for a in handle.read().split(b'\0') if a]
    except OSError:
        return []


def offline_replay(argv: Sequence[str]) -> bool:
    """`dnf5 offline _execute`: the boot-time replay of a transaction checked when it was
    stored (`dnf5 upgrade --offline` resolves, and so runs this guard, then)."""
    return 'offline' in argv and '_execute' in argv


class InstalledByDnf5:
    """The installed packages as the running dnf5 knows them, asked over the pipe: the
    INSTALLED of a packages_dnf5.Dnf5Lookup opened without the rpmdb.  dnf5 has loaded
    the rpmdb already; loading it again here costs 70-120 ms on a system of 1,000
    packages (more on a bigger one), a question ~0.3 ms."""

    OUTPUT = ['name', 'epoch', 'version', 'release', 'arch', 'nevra']

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def _installed(self, *filters: dict) -> list[dict]:
        return self.channel.get('packages', output=self.OUTPUT,
                                filters=[{'key': 'installed'}, *filters]).get('packages', [])

    def owners(self, path: str) -> list[Any]:
        """The installed packages owning PATH (a file, no glob): looked for among the
        install-only ones first -- a kernel's files are theirs, and dnf5 answers among
        them in 0.3 ms, among all in 4.5 (1,000 installed) -- then among all."""
        from .packages_dnf5 import InstalledPackage
        owning = {'key': 'file', 'value': path}
        found = self._installed({'key': 'installonly'}, owning) or self._installed(owning)
        return [InstalledPackage(f['name'], int(f.get('epoch') or 0), f['version'], f['release'],
                                 f['arch'], f['nevra']) for f in found]

    def any_at(self, version: str, release: str, arch: str) -> bool:
        """Whether an installed package is at VERSION-RELEASE.ARCH (a build's packages are)."""
        return bool(self._installed({'key': 'version', 'value': version},
                                    {'key': 'release', 'value': release},
                                    {'key': 'arch', 'value': arch}))


def base_options(channel: Channel, items: Sequence[dict], installroot: str) -> dict[str, Any]:
    """packages_dnf5.open_base()'s arguments for a Base on dnf5's root, INSTALLROOT, with,
    from dnf5's cache, the repositories of the incoming packages, as dnf5 has them set up."""
    needed = sorted({i['repo_id'] for i in items if i.get('direction') == 'IN'
                     and i.get('repo_id') not in (SYSTEM, COMMANDLINE, None)})
    setopts = [('reposdir', channel.conf('reposdir'))]
    for key in ('excludepkgs', 'includepkgs'):
        value = channel.conf(key)
        if value:
            setopts.append((key, value))
    # dnf5's baseurl of each (--repofrompath, --setopt may have set it): it names the cache
    baseurls = {repo: channel.conf_items('%s.baseurl' % repo).get('%s.baseurl' % repo, '')
                for repo in needed}
    variables = {v['name']: v['value'] for v in channel.get('vars', name='*').get('vars', ())}
    filelists = 'filelists' in channel.conf('optional_metadata_types').split(',')
    rpms: list[str] = []
    if any(i.get('repo_id') == COMMANDLINE for i in items):
        rpms = list(channel.get('cmdline_packages_paths').get('cmdline_packages_paths', ()))
    return dict(installroot=installroot, setopts=setopts, cacheonly=True, only_repos=needed,
                filelists=filelists, cmdline_rpms=rpms, cachedir=channel.conf('cachedir'),
                variables=variables, baseurls=baseurls)


def open_lookup(options: dict[str, Any], channel: Optional[Channel] = None) -> Any:
    """A packages_dnf5.Dnf5Lookup on a Base of this process (OPTIONS: base_options()); with
    CHANNEL, without the rpmdb: dnf5 answers for the installed packages."""
    from . import packages_dnf5
    base = packages_dnf5.open_base(load_system=channel is None, **options)
    return packages_dnf5.Dnf5Lookup(base, None if channel is None else InstalledByDnf5(channel))


def transaction_packages(lookup: Any, items: Sequence[dict]) -> tuple[list[Any], list[Any]]:
    """(forward, backward): the lookup's packages for the transaction's IN and OUT items."""
    wrap = lookup.wrap
    incoming = [i for i in items if i.get('direction') == 'IN']
    outgoing = [i for i in items if i.get('direction') == 'OUT']
    forward, backward = [], []
    if incoming:
        query = lookup.query()
        query.filter_nevra([i['nevra'] for i in incoming])
        found = {(p.nevra, p.repo_id): p for p in wrap(query)}
        for item in incoming:
            pkg = found.get((item['nevra'], item.get('repo_id')))
            if pkg is None:
                logger.debug('kernelsplit: %s from %s is not in the repositories read',
                             item['nevra'], item.get('repo_id'))
            else:
                forward.append(pkg)
    if outgoing:
        query = lookup.query()
        query.filter_installed()
        query.filter_nevra([i['nevra'] for i in outgoing])
        backward = wrap(query)
    return forward, backward


# --- what to say -----------------------------------------------------------------

def package_line(addition: Any) -> str:
    from .report import devices_and_modules
    return '%s for %s' % (addition.package.nevra, devices_and_modules(addition.reasons))


def complete_kernel_packages(lookup: Any, forward: Sequence[Any],
                             additions: Sequence[Any]) -> list[str]:
    """What `dnf5 install` must name to bring the incoming kernels complete: the incoming
    packages of those releases that no other of them requires (the metapackage brings
    its dependencies), and the packages to add.  Naming a subpackage alone would bring
    that subpackage and kernel-core, not the rest of the release."""
    from .packages import package_kernel_releases
    kvers = {a.kver for a in additions}
    builds = {(p.sourcerpm, p.arch) for p in forward
              if package_kernel_releases(p, lookup) & kvers}
    coming = [p for p in forward if (p.sourcerpm, p.arch) in builds]
    # what one of them requires is not named: the package requiring it brings it
    required = set()
    for pkg in coming:
        query = lookup.only(coming)
        query.filter_provides(pkg.pkg.get_requires())
        required.update(p.get_id().id for p in query if p.get_id().id != pkg.id)
    top = [pkg.nevra for pkg in coming if pkg.id not in required]
    names = list(dict.fromkeys(top + [a.package.nevra for a in additions]))
    return names


def completion_message(plan: Any, command: Sequence[str], source: str) -> str:
    """on_missing=install or fail: the packages the incoming kernels lack, one line each,
    and the dnf5 command that brings the kernels complete."""
    kvers = sorted({a.kver for a in plan.additions})
    lines = ['kernelsplit: refusing the transaction: kernel %s would boot without driver '
             'packages this machine needs:' % ', '.join(kvers)]
    lines += ['  ' + package_line(a) for a in plan.additions]
    lines += ['  ' + shortfall for shortfall in _shortfall_texts(plan) if plan.on_missing == 'fail']
    lines.append('dnf5 cannot add packages to a transaction it has resolved; install the '
                 'kernel complete in one transaction, then run this command again:')
    lines.append('  dnf5 install ' + ' '.join(command))
    lines.append('To go on without them, add the devices to ignore_devices or set '
                 'on_missing=warn in %s,' % source)
    lines.append(ONE_OFF_WAY_OUT)
    return '\n'.join(lines)


def _shortfall_texts(plan: Any) -> list[str]:
    from .report import shortfall_text
    return [shortfall_text(s) for s in plan.shortfalls]


def dnf5_words(message: str) -> str:
    """A message of report.py (written for dnf 4) with dnf5's commands and way out."""
    from .report import ONE_OFF_WAY_OUT as DNF4_WAY_OUT
    lines = []
    for line in message.split('\n'):
        if line == DNF4_WAY_OUT:
            line = ONE_OFF_WAY_OUT
        line = line.replace('  dnf remove ', '  dnf5 remove ') \
            .replace(': dnf mark install ', ': dnf5 mark user ') \
            .replace('(dnf install ', '(dnf5 install ')
        lines.append(line)
    return '\n'.join(lines)


def warn_lines(plan: Any, command: Sequence[str]) -> list[str]:
    """on_missing=warn: what the transaction leaves out, as warnings."""
    from .report import stranding_line
    lines = ['kernelsplit: %s (on_missing=warn)' % stranding_line(s) for s in plan.strandings]
    lines += ['kernelsplit: kernel %s will boot without %s (on_missing=warn)'
              % (a.kver, package_line(a)) for a in plan.additions]
    if plan.additions:
        lines.append('kernelsplit: to install the kernel complete: dnf5 install %s'
                     % ' '.join(command))
    return lines


# --- the guard ----------------------------------------------------------------------

def guard(channel: Channel, early: Optional[Any] = None) -> None:
    """Judge the transaction dnf5 resolved; stop it when the policy says so.

    EARLY: the device listing started before the imports (adopt_listing())."""
    argv = dnf5_command_line()
    if offline_replay(argv):
        logger.debug('kernelsplit: stepping aside: dnf5 offline _execute replays a transaction '
                     'checked when it was stored')
        return
    config, _ = read_config(PLUGINCONFPATH)
    if not config.enabled:
        return
    installroot = channel.conf('installroot') or '/'
    if os.path.realpath(installroot) != '/' and not config.hardware_in_installroot:
        logger.debug('kernelsplit: stepping aside: --installroot %s is not this machine',
                     installroot)
        return
    # Devices listed and resolved in a child while libdnf5 loads here.
    background = device_listing(early, config.buses, installroot)
    try:
        from .host import foreign_root_reason
        reason = foreign_root_reason(config, installroot)
        if reason:
            logger.debug('kernelsplit: stepping aside: %s', reason)
            return
        items = transaction_items(channel)
        options = base_options(channel, items, installroot)
        cachedir = options['cachedir']
        from .judge import judge_transaction
        from .packages_dnf5 import NeedsRpmdb
        # The rpmdb is left to dnf5 unless packages go out (their files and provides are
        # read) or a question needs it.
        outgoing = any(i.get('direction') == 'OUT' for i in items)
        lookup = open_lookup(options, None if outgoing else channel)
        try:
            forward, backward = transaction_packages(lookup, items)
            result = judge_transaction(config, installroot, lookup, forward, backward,
                                       cachedir, background=background)
        except NeedsRpmdb as exc:
            logger.debug('kernelsplit: reading the rpmdb: %s', exc)
            lookup = open_lookup(options)
            forward, backward = transaction_packages(lookup, items)
            result = judge_transaction(config, installroot, lookup, forward, backward,
                                       cachedir, background=background)
    finally:
        if background is not None:
            background.cancel()
    plan = result.plan
    if plan is None:
        return
    from . import report
    command = complete_kernel_packages(lookup, forward, plan.additions) if plan.additions else []
    if plan.refuse and plan.strandings:
        name = 'autoremove' if 'autoremove' in argv else None
        channel.stop(dnf5_words(report.refusal_message(plan, config.source, name,
                                                       result.old_kernels)))
        return
    if plan.additions and plan.on_missing in ('install', 'fail'):
        channel.stop(completion_message(plan, command, config.source))
        return
    if plan.refuse:         # on_missing=fail: a needed module no package ships
        channel.stop(dnf5_words(report.refusal_message(plan, config.source)))
        return
    for verdict in plan.unjudged:
        logger.info('%s', report.unjudged_line(verdict))
    for shortfall in plan.shortfalls:
        logger.warning('%s', report.shortfall_line(shortfall))
    for line in warn_lines(plan, command):
        logger.warning('%s', line)


def main() -> int:
    handler = logging.StreamHandler(sys.stderr)     # dnf5's stderr: the user sees it
    handler.setFormatter(logging.Formatter('%(message)s'))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    channel = Channel()
    try:
        guard(channel, adopt_listing(EARLY_LISTING) if EARLY_LISTING is not None else None)
    except ConfigValueError as exc:
        # as dnf 4's plugin: never judge on settings other than the file's
        channel.stop('kernelsplit: %s' % str(exc).replace(
            'run dnf with --disableplugin=kernelsplit', 'run dnf5 with --disable-plugin=actions'))
    except (ProtocolError, BrokenPipeError) as exc:
        logger.warning('kernelsplit: cannot talk to dnf5\'s actions plugin, the driver packages '
                       'of this transaction were not checked: %s', exc)
    except Exception as exc:        # never break dnf5 by accident
        logger.warning('kernelsplit: internal error, the driver packages of this transaction '
                       'were not checked: %s', exc)
        import traceback
        logger.debug('%s', traceback.format_exc())
    return 0


if __name__ == '__main__':
    sys.exit(main())
