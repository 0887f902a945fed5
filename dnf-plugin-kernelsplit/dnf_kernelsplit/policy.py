"""Policy: facts in, verdicts and plans out.  No I/O, no dnf, no udev -- pure functions.

For one kernel release, each device's needed modules are judged:
  present  -- a package of that release that ships it is (or will be) installed;
  built in -- no package ships it and that release has it built in;
  missing  -- a package of that release ships it but is not installed;
  absent   -- nothing of that release ships it and it is not built in.
A device's status:
  ok          -- it needs modules, and every one is present (or built in);
  missing     -- some package would supply what is lacking;
  unsupported -- something it needs is absent from that release;
  unknown     -- it cannot be judged: no bound driver, no module index knows a
                 module for it, and packages of the release whose modules no
                 index knows are not installed and what their modules answer
                 to is unknown (no modalias() provides, not read by inspect
                 mode), or the release's packages are in no enabled
                 repository, or no kernel has a module index at all;
  none        -- it needs no module: its driver is built in, nothing in that
                 release claims it, or it has no driver on a bus where unbound
                 devices are not counted (firmware's, see config.UNBOUND_BUSES).
A device the local module indexes cannot resolve is matched against the
release's modalias() provides instead (exact mode), or against the aliases read
inside its packages (inspect mode).

`check` exits 1 when the judged kernel has a device missing or unsupported,
else 2 when one is unknown, else 0.

For a transaction the plan lists the packages to add, the needed modules no
enabled repository ships (shortfalls) and the removals that would strand a
device (strandings); on_missing decides what each of those does.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Iterable, Optional, Sequence

from .hardware import Device
from .modules import UNCOUNTED, DeviceNeed
from .packages import AliasEntry, KernelPackages, PackageRef

OK, MISSING, UNSUPPORTED, UNKNOWN, NONE = 'ok', 'missing', 'unsupported', 'unknown', 'none'
STATUSES = (OK, MISSING, UNSUPPORTED, UNKNOWN, NONE)
INSTALL, WARN, FAIL = 'install', 'warn', 'fail'
# check's exit status: all ok (or none), something missing or unsupported,
# something unknown, nothing could be looked at.
EXIT_OK, EXIT_LACKING, EXIT_UNKNOWN, EXIT_CANNOT_LOOK = 0, 1, 2, 3


class DeviceVerdict(namedtuple('DeviceVerdict', [
        'need',             # DeviceNeed
        'status',           # one of STATUSES
        'modules',          # tuple[str, ...]: what it needs of this release (the need's
                            # modules, a built-in driver's module the release ships, or
                            # the modules / patterns of the modalias() provides that matched)
        'packages',         # tuple[PackageRef, ...]: shipping what the device needs
        'install',          # ((PackageRef, modules), ...): to install, and the modules each serves
        'builtin',          # tuple[str, ...]: needed modules built in
        'absent',           # tuple[str, ...]: needed modules the release lacks
        'exact',            # tuple[AliasEntry, ...]: modalias() provides that matched
        'reason',           # str: why it is unknown, and what would make it judgeable
        ], defaults=((), (), (), (), (), (), None))):
    """One device judged against one kernel release."""
    __slots__ = ()

    @property
    def device(self) -> Device:
        return self.need.device

    @property
    def to_install(self) -> tuple[PackageRef, ...]:
        return tuple(ref for ref, _ in self.install)

    @property
    def lacking(self) -> bool:
        """The release would leave this device without a module it needs."""
        return bool(self.install or self.absent)

    @property
    def judged(self) -> bool:
        return self.status != UNKNOWN


class KernelVerdict(namedtuple('KernelVerdict', [
        'kver',             # str
        'default',          # bool: the default boot kernel
        'devices',          # tuple[DeviceVerdict, ...]
        'lacking_packages',     # tuple[PackageRef, ...]: whose unknown aliases left devices
                                # unjudged
        'installed',        # bool: some package of the release is installed
        ], defaults=((), True))):
    """Every device judged against one kernel release."""
    __slots__ = ()

    @property
    def lacking(self) -> bool:
        return any(d.lacking for d in self.devices)

    @property
    def to_install(self) -> tuple[PackageRef, ...]:
        seen: dict[str, PackageRef] = {}
        for verdict in self.devices:
            for ref in verdict.to_install:
                seen.setdefault(ref.nevra, ref)
        return tuple(seen[k] for k in sorted(seen))

    @property
    def unjudged(self) -> tuple[Device, ...]:
        return tuple(d.device for d in self.devices if not d.judged)

    @property
    def exit_status(self) -> int:
        """What `check` exits with when this is the kernel it judges."""
        statuses = {d.status for d in self.devices}
        if statuses & {MISSING, UNSUPPORTED}:
            return EXIT_LACKING
        return EXIT_UNKNOWN if UNKNOWN in statuses else EXIT_OK


def _pick(providers: Sequence[PackageRef]) -> PackageRef:
    """One package to install among several shipping the same module: the first by NEVRA."""
    return sorted(providers, key=lambda p: p.nevra)[0]


def _group(pairs: Iterable[tuple[PackageRef, str]]) -> tuple[tuple[PackageRef, tuple[str, ...]], ...]:
    grouped: dict[str, tuple[PackageRef, list[str]]] = {}
    for ref, module in pairs:
        grouped.setdefault(ref.nevra, (ref, []))[1].append(module)
    return tuple((ref, tuple(dict.fromkeys(mods))) for _, (ref, mods) in sorted(grouped.items()))


def needed_modules(need: DeviceNeed, release: KernelPackages) -> tuple[str, ...]:
    """What NEED asks of RELEASE: its modules, and its built-in driver's name when the
    release ships a module so named."""
    by_name = need.by_name
    if by_name and by_name not in need.modules and release.providers(by_name):
        return need.modules + (by_name,)
    return need.modules


def unknown_reason(release: KernelPackages, indexed: bool = True) -> Optional[str]:
    """Why a device without a driver that no module index resolves cannot be judged
    against RELEASE, and what would make it judgeable; None when it can be: nothing
    of the release claims it.  INDEXED: some installed kernel has a module index."""
    if not indexed:
        return ('no installed kernel has a module index to resolve its modalias; run '
                'depmod for the installed kernels')
    unread = release.unread_packages
    if unread:
        return ('no installed module index knows a module for it, and what the modules of '
                '%s (not installed) answer to is unknown: %s'
                % (', '.join(p.nevra for p in unread),
                   '; '.join(dict.fromkeys(release.unread[p.nevra] for p in unread))))
    if not release.in_repos:
        return ('no installed module index knows a module for it, and no enabled repository '
                'carries kernel %s, so its packages that are not installed are unknown; '
                'enable the repository that carries it' % release.kver)
    return None


def judge_device(need: DeviceNeed, release: KernelPackages, builtin: Optional[frozenset[str]],
                 exact: Sequence[AliasEntry] = (), indexed: bool = True) -> DeviceVerdict:
    """NEED's verdict for RELEASE.

    BUILTIN: modules built into that release; None when no module index says
    (a module no package ships is then taken as built in, not as lacking).
    EXACT: the release's modalias() provides matching the device, used when
    the local indexes named no module.  INDEXED: some installed kernel has a
    module index (see unknown_reason).
    """
    modules = needed_modules(need, release)
    if not modules:
        if exact:
            packages = {e.package.nevra: e.package for e in exact}
            install = _group((e.package, e.module or e.pattern) for e in exact
                             if not e.package.present)
            return DeviceVerdict(need, MISSING if install else OK,
                                 tuple(dict.fromkeys(e.module or e.pattern for e in exact)),
                                 tuple(packages[k] for k in sorted(packages)), install,
                                 exact=tuple(exact))
        # A bound device's driver is built in; an uncounted one is not waiting for a driver.
        reason = unknown_reason(release, indexed) \
            if need.device.driver is None and need.basis != UNCOUNTED else None
        return DeviceVerdict(need, UNKNOWN if reason else NONE, reason=reason)
    packages: dict[str, PackageRef] = {}
    install: list[tuple[PackageRef, str]] = []
    built_in, absent = [], []
    for module in modules:
        providers = release.providers(module)
        for ref in providers:
            packages.setdefault(ref.nevra, ref)
        if any(ref.present for ref in providers):
            continue
        if providers:
            install.append((_pick(providers), module))
        elif builtin is None or module in builtin:
            built_in.append(module)
        else:
            absent.append(module)
    status = MISSING if install else UNSUPPORTED if absent else \
        NONE if len(built_in) == len(modules) else OK
    return DeviceVerdict(need, status, modules, tuple(packages[k] for k in sorted(packages)),
                         _group(install), tuple(built_in), tuple(absent))


def judge_kernel(needs: Iterable[DeviceNeed], release: KernelPackages,
                 builtin: Optional[frozenset[str]], default: bool = False,
                 indexed: bool = True) -> KernelVerdict:
    """Every device's verdict for RELEASE (with its exact-mode matches, when it has some)."""
    devices = tuple(judge_device(need, release, builtin,
                                 release.exact.get(need.device.modalias, ())
                                 if not need.modules else (), indexed)
                    for need in needs)
    lacking = release.unread_packages if any(not d.judged for d in devices) else ()
    return KernelVerdict(release.kver, default, devices, lacking,
                         any(p.installed for p in release.packages))


class CheckResult(namedtuple('CheckResult', [
        'verdicts',         # tuple[KernelVerdict, ...]: the kernels checked, the default first
        'judged',           # KernelVerdict: the one the exit status follows
        'boot',             # boot.BootDefault
        'index_kver',       # the kernel whose module index resolved the needs first, or None
        'ignored',          # tuple[Device, ...]
        'notes',            # tuple[str, ...]
        'inspected',        # tuple[inspection.Inspected, ...]: packages inspect mode read
        'fetched_bytes',    # what inspect mode downloaded
        ], defaults=((), 0))):
    """What `check` found on one host."""
    __slots__ = ()

    @property
    def exit_status(self) -> int:
        return self.judged.exit_status


# --- transactions -----------------------------------------------------------

class Addition(namedtuple('Addition', [
        'package',          # PackageRef
        'kver',             # str
        'reasons',          # ((Device, modules), ...)
        'inspected',        # bool: inspect mode found it, reading the package's modules
        ], defaults=(False,))):
    """A package to add to the transaction, and for which devices and modules."""
    __slots__ = ()


class Shortfall(namedtuple('Shortfall', [
        'kver',             # str
        'device',           # Device
        'modules',          # tuple[str, ...]
        ])):
    """A needed module that no package of an incoming kernel in the enabled repos ships."""
    __slots__ = ()


class Stranding(namedtuple('Stranding', [
        'package',          # PackageRef: the package removed
        'kver',             # str
        'device',           # Device
        'module',           # str
        'running',          # bool: KVER is the running kernel
        ])):
    """A removal that leaves a device without the module it uses, on a kernel that stays."""
    __slots__ = ()


class TransactionPlan(namedtuple('TransactionPlan', [
        'on_missing',       # install | warn | fail
        'additions',        # tuple[Addition, ...]
        'shortfalls',       # tuple[Shortfall, ...]
        'strandings',       # tuple[Stranding, ...]
        'unjudged',         # tuple[KernelVerdict, ...]: incoming kernels with devices not judged
        ], defaults=((), (), (), ()))):
    """What the hook does to one transaction."""
    __slots__ = ()

    @property
    def install(self) -> tuple[Addition, ...]:
        """What to add to the transaction (nothing unless on_missing=install)."""
        return self.additions if self.on_missing == INSTALL else ()

    @property
    def refuse(self) -> bool:
        """Abort the transaction: a removal strands a device, or on_missing=fail has work."""
        if self.on_missing == WARN:
            return False
        return bool(self.strandings) or (self.on_missing == FAIL and
                                          bool(self.additions or self.shortfalls))


def additions(verdicts: Iterable[KernelVerdict]) -> tuple[Addition, ...]:
    found: dict[str, tuple[PackageRef, str, list[tuple[Device, tuple[str, ...]]]]] = {}
    inspected = set()
    for kernel in verdicts:
        for verdict in kernel.devices:
            for ref, modules in verdict.install:
                found.setdefault(ref.nevra, (ref, kernel.kver, []))[2].append(
                    (verdict.device, modules))
            inspected.update(e.package.nevra for e in verdict.exact if e.via == 'inspect')
    return tuple(Addition(ref, kver, tuple(reasons), nevra in inspected)
                 for nevra, (ref, kver, reasons) in sorted(found.items()))


def shortfalls(verdicts: Iterable[KernelVerdict]) -> tuple[Shortfall, ...]:
    return tuple(Shortfall(kernel.kver, verdict.device, verdict.absent)
                 for kernel in verdicts for verdict in kernel.devices if verdict.absent)


def strandings(needs: Iterable[DeviceNeed], release: KernelPackages,
               running: str) -> tuple[Stranding, ...]:
    """Modules present hardware uses that RELEASE has installed now and will not have after.

    Only for a release that stays installed: removing a whole kernel strands nothing.
    """
    if not any(ref.present for ref in release.packages):
        return ()
    found = []
    for need in needs:
        for module in needed_modules(need, release):
            providers = release.providers(module)
            if any(ref.present for ref in providers):
                continue
            for ref in providers:
                if ref.installed:
                    found.append(Stranding(ref, release.kver, need.device, module,
                                           release.kver == running))
    return tuple(found)


def next_default(incoming: Sequence[str], newest: Optional[str], current: Optional[str],
                 explicit: bool, update_default: Optional[bool]) -> Optional[str]:
    """The default boot kernel once a transaction brings INCOMING kernels (newest first).

    NEWEST: the newest kernel after it.  CURRENT: the default now; EXPLICIT: the
    bootloader names it (else the newest kernel boots).  UPDATE_DEFAULT: Fedora's
    UPDATEDEFAULT, whether a kernel installed becomes the default entry (None: not said).
    """
    if incoming and update_default is True:
        return incoming[0]
    if explicit and current is not None:
        return current
    return newest


def plan_transaction(incoming: Sequence[KernelVerdict], stranded: Sequence[Stranding],
                     on_missing: str) -> TransactionPlan:
    return TransactionPlan(on_missing, additions(incoming), shortfalls(incoming),
                           tuple(stranded), tuple(v for v in incoming if v.unjudged))
