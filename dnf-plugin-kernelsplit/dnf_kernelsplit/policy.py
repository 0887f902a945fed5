"""Policy: facts in, verdicts and plans out.  No I/O, no dnf, no udev -- pure functions.

For one kernel release, each device's needed modules are judged:
  present  -- a package of that release that ships it is (or will be) installed,
              or it is built in;
  missing  -- a package of that release ships it but is not installed;
  absent   -- nothing of that release ships it and it is not built in.
A device is `ok` when every needed module is present, `missing` when some
package would supply what is lacking, `unsupported` otherwise (no module
matches it at all, or what it needs exists nowhere in that release).

A device the local module index cannot resolve (no bound driver, no kmod
match) is matched against the release's modalias() provides instead (exact
mode); without such provides, and with packages of the release not
installed, it cannot be judged and says so.

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
from .modules import DeviceNeed
from .packages import AliasEntry, KernelPackages, PackageRef

OK, MISSING, UNSUPPORTED = 'ok', 'missing', 'unsupported'
INSTALL, WARN, FAIL = 'install', 'warn', 'fail'


class DeviceVerdict(namedtuple('DeviceVerdict', [
        'need',             # DeviceNeed
        'status',           # OK | MISSING | UNSUPPORTED
        'packages',         # tuple[PackageRef, ...]: shipping what the device needs
        'install',          # ((PackageRef, modules), ...): to install, and the modules each serves
        'builtin',          # tuple[str, ...]: needed modules built in
        'absent',           # tuple[str, ...]: needed modules the release lacks
        'exact',            # tuple[AliasEntry, ...]: modalias() provides that matched
        'unjudged',         # bool: cannot be judged (see the module doc)
        ], defaults=((), (), (), False))):
    """One device judged against one kernel release."""
    __slots__ = ()

    @property
    def device(self) -> Device:
        return self.need.device

    @property
    def modules(self) -> tuple[str, ...]:
        if self.need.modules or not self.exact:
            return self.need.modules
        return tuple(dict.fromkeys(e.module or e.pattern for e in self.exact))

    @property
    def to_install(self) -> tuple[PackageRef, ...]:
        return tuple(ref for ref, _ in self.install)

    @property
    def lacking(self) -> bool:
        """The release would leave this device without a module it needs."""
        return bool(self.install or self.absent)


class KernelVerdict(namedtuple('KernelVerdict', [
        'kver',             # str
        'default',          # bool: the default boot kernel
        'devices',          # tuple[DeviceVerdict, ...]
        'lacking_packages',     # tuple[PackageRef, ...]: why devices could not be judged
        ], defaults=((),))):
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
        return tuple(d.device for d in self.devices if d.unjudged)


def _pick(providers: Sequence[PackageRef]) -> PackageRef:
    """One package to install among several shipping the same module: the first by NEVRA."""
    return sorted(providers, key=lambda p: p.nevra)[0]


def _group(pairs: Iterable[tuple[PackageRef, str]]) -> tuple[tuple[PackageRef, tuple[str, ...]], ...]:
    grouped: dict[str, tuple[PackageRef, list[str]]] = {}
    for ref, module in pairs:
        grouped.setdefault(ref.nevra, (ref, []))[1].append(module)
    return tuple((ref, tuple(dict.fromkeys(mods))) for _, (ref, mods) in sorted(grouped.items()))


def judge_device(need: DeviceNeed, release: KernelPackages, builtin: Optional[frozenset[str]],
                 exact: Sequence[AliasEntry] = ()) -> DeviceVerdict:
    """NEED's verdict for RELEASE.

    BUILTIN: modules built into that release; None when no module index says
    (a module no package ships is then taken as built in, not as lacking).
    EXACT: the release's modalias() provides matching the device, used when
    the local index named no module.
    """
    if not need.modules:
        if exact:
            packages = {e.package.nevra: e.package for e in exact}
            install = _group((e.package, e.module or e.pattern) for e in exact
                             if not e.package.present)
            return DeviceVerdict(need, MISSING if install else OK,
                                 tuple(packages[k] for k in sorted(packages)), install,
                                 exact=tuple(exact))
        unjudged = need.device.driver is None and not release.carries_modaliases and \
            bool(release.lacking_packages)
        return DeviceVerdict(need, UNSUPPORTED, (), (), unjudged=unjudged)
    packages: dict[str, PackageRef] = {}
    install: list[tuple[PackageRef, str]] = []
    built_in, absent = [], []
    for module in need.modules:
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
    status = MISSING if install else UNSUPPORTED if absent else OK
    return DeviceVerdict(need, status, tuple(packages[k] for k in sorted(packages)),
                         _group(install), tuple(built_in), tuple(absent))


def judge_kernel(needs: Iterable[DeviceNeed], release: KernelPackages,
                 builtin: Optional[frozenset[str]], default: bool = False) -> KernelVerdict:
    """Every device's verdict for RELEASE (with its exact-mode matches, when it has some)."""
    devices = tuple(judge_device(need, release, builtin,
                                 release.exact.get(need.device.modalias, ()) if not need.modules
                                 else ()) for need in needs)
    lacking = release.lacking_packages if any(d.unjudged for d in devices) else ()
    return KernelVerdict(release.kver, default, devices, lacking)


# --- transactions -----------------------------------------------------------

class Addition(namedtuple('Addition', [
        'package',          # PackageRef
        'kver',             # str
        'reasons',          # ((Device, modules), ...)
        ])):
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
    for kernel in verdicts:
        for verdict in kernel.devices:
            for ref, modules in verdict.install:
                found.setdefault(ref.nevra, (ref, kernel.kver, []))[2].append(
                    (verdict.device, modules))
    return tuple(Addition(ref, kver, tuple(reasons))
                 for _, (ref, kver, reasons) in sorted(found.items()))


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
        for module in need.modules:
            providers = release.providers(module)
            if any(ref.present for ref in providers):
                continue
            for ref in providers:
                if ref.installed:
                    found.append(Stranding(ref, release.kver, need.device, module,
                                           release.kver == running))
    return tuple(found)


def plan_transaction(incoming: Sequence[KernelVerdict], stranded: Sequence[Stranding],
                     on_missing: str) -> TransactionPlan:
    return TransactionPlan(on_missing, additions(incoming), shortfalls(incoming),
                           tuple(stranded), tuple(v for v in incoming if v.unjudged))
