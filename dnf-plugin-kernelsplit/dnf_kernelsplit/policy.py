"""Policy: facts in, verdicts out.  No I/O, no dnf, no udev -- pure functions.

For one kernel release, each device's needed modules are judged:
  present  -- a package of that release that ships it is installed, or it is built in;
  missing  -- a package of that release ships it but is not installed;
  absent   -- nothing of that release ships it and it is not built in.
A device is `ok` when every needed module is present, `missing` when some
package would supply what is lacking, `unsupported` otherwise (no module
matches it at all, or what it needs exists nowhere in that release).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from .modules import DeviceNeed
from .packages import KernelPackages, PackageRef

OK, MISSING, UNSUPPORTED = 'ok', 'missing', 'unsupported'


@dataclass(frozen=True)
class DeviceVerdict:
    need: DeviceNeed
    status: str
    packages: tuple[PackageRef, ...]      # packages of the release shipping the needed modules
    to_install: tuple[PackageRef, ...]    # of those, the ones to install
    builtin: tuple[str, ...]              # needed modules built into the release
    absent: tuple[str, ...]               # needed modules the release lacks entirely

    @property
    def lacking(self) -> bool:
        """The release would leave this device without a module it needs."""
        return bool(self.to_install or self.absent)


@dataclass(frozen=True)
class KernelVerdict:
    kver: str
    default: bool
    devices: tuple[DeviceVerdict, ...]

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


def _pick(providers: tuple[PackageRef, ...]) -> PackageRef:
    """One package to install among several shipping the same module: the first by NEVRA."""
    return sorted(providers, key=lambda p: p.nevra)[0]


def judge_device(need: DeviceNeed, release: KernelPackages,
                 builtin: frozenset[str]) -> DeviceVerdict:
    """NEED's verdict for RELEASE; BUILTIN: modules built into that release."""
    packages: dict[str, PackageRef] = {}
    to_install: dict[str, PackageRef] = {}
    built_in, absent = [], []
    for module in need.modules:
        providers = release.providers(module)
        for ref in providers:
            packages.setdefault(ref.nevra, ref)
        if any(ref.installed for ref in providers):
            continue
        if providers:
            ref = _pick(providers)
            to_install.setdefault(ref.nevra, ref)
        elif module in builtin:
            built_in.append(module)
        else:
            absent.append(module)
    if not need.modules:
        status = UNSUPPORTED
    elif to_install:
        status = MISSING
    elif absent:
        status = UNSUPPORTED
    else:
        status = OK
    return DeviceVerdict(need, status,
                         tuple(packages[k] for k in sorted(packages)),
                         tuple(to_install[k] for k in sorted(to_install)),
                         tuple(built_in), tuple(absent))


def judge_kernel(needs: Iterable[DeviceNeed], release: KernelPackages,
                 builtin: frozenset[str], default: bool = False) -> KernelVerdict:
    return KernelVerdict(release.kver, default,
                         tuple(judge_device(need, release, builtin) for need in needs))
