"""The core every front end calls: check_host() audits a host, judge_transaction() judges
the packages a transaction brings and takes away.

Front ends -- dnf 4's `kernelsplit` command and transaction hook, the
standalone `kernelsplit` command, dnf5's actions guard -- parse their host's
input, hand over a package lookup (packages_dnf4 or packages_dnf5) and plain
packages, and print or raise in their own voice.  Nothing here imports dnf or
libdnf5.
"""

from __future__ import annotations

import functools
import logging
from collections import namedtuple
from types import MappingProxyType

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Any, Optional, Sequence

from .cache import AnswerCache
from .config import Config
from .packages import declares_kernel, installed_kernels, kernel_packages, nevra, \
    newest_first, release_packages, release_seeds, releases_of

logger = logging.getLogger('dnf.plugin')


class CannotCheck(Exception):
    """Why nothing can be checked: str() says it to the user."""


def inspector(config: Config, lookup: Any, cache: AnswerCache,
              no_fetch: Optional[str] = None) -> Any:
    """Inspect mode for one run, as CONFIG says (see inspection.py)."""
    from .inspection import Inspector
    return Inspector(lookup, cache, config.inspect, config.inspect_max_mb, no_fetch,
                     config.source)


def check_host(config: Config, root: str, lookup: Any, cachedir: Optional[str],
               kernel: Optional[str] = None, all_kernels: bool = False,
               no_fetch: Optional[str] = None) -> Any:
    """policy.CheckResult for the default boot kernel (every installed one with
    ALL_KERNELS; release KERNEL, installed or in the repositories, when given).

    NO_FETCH: why inspect mode may not download anything (None: it may, within
    the budget)."""
    from .boot import default_kernel
    from .host import foreign_root_reason, host_needs
    from .policy import CheckResult, judge_kernel
    reason = foreign_root_reason(config, root)
    if reason:
        raise CannotCheck(reason)
    kernels = installed_kernels(lookup, root)
    boot = default_kernel(root, [k.kver for k in kernels])
    if kernel:
        seeds = next((k.packages for k in kernels if k.kver == kernel), None) or \
            release_seeds(lookup, kernel)
        if not seeds:
            raise CannotCheck('kernel %s is neither installed nor in the enabled '
                              'repositories (installed: %s)'
                              % (kernel, ', '.join(k.kver for k in kernels) or 'none'))
        targets = [(kernel, seeds)]
    elif not kernels:
        raise CannotCheck('no kernel is installed in %s' % root)
    else:
        ordered = sorted(kernels, key=lambda k: k.kver != boot.kver)   # stable: default first
        targets = [(k.kver, k.packages) for k in (ordered if all_kernels else ordered[:1])]
    host = host_needs(config, root, [k.kver for k in kernels])
    if host.hardware_problem:
        raise CannotCheck('cannot list this machine\'s devices: %s' % host.hardware_problem)
    cache = AnswerCache.in_cachedir(cachedir)
    inspecting = inspector(config, lookup, cache, no_fetch)
    verdicts = []
    for kver, seeds in targets:
        builtin = host.builtin_modules(root, kver)
        release = kernel_packages(lookup, kver, release_packages(lookup, kver, seeds),
                                  host.wanted_modules, host.unresolved_modaliases,
                                  builtin=builtin or frozenset(), cache=cache,
                                  inspector=inspecting)
        verdicts.append(judge_kernel(host.needs, release, builtin, default=kver == boot.kver,
                                     indexed=host.indexed))
    return CheckResult(tuple(verdicts), verdicts[0], boot, host.index_kver, host.ignored,
                       host.notes, tuple(inspecting.read), inspecting.fetched_bytes)


class HookResult(namedtuple('HookResult', [
        'plan',             # policy.TransactionPlan, or None: no kernel involved
        'packages',         # NEVRA -> the lookup's package to add
        'incoming',         # KVER -> its newest kernel package, for the kernels coming in
        'installed',        # tuple[packages.InstalledKernel, ...], newest first
        'old_kernels',      # KVER -> installed NEVRAs, for kernels losing packages that are
                            # neither running nor the newest (report.autoremove_lines)
        ], defaults=(None, MappingProxyType({}), MappingProxyType({}), (),
                     MappingProxyType({})))):
    """The plan for a transaction, the packages it adds, and the kernels around."""
    __slots__ = ()

    def default_after(self, root: str) -> Optional[str]:
        """The default boot kernel once the transaction is done (see policy.next_default)."""
        from .boot import default_kernel, updates_default
        from .policy import next_default
        installed = [k.kver for k in self.installed]
        current = default_kernel(root, installed)
        incoming = [kver for kver, _ in sorted(self.incoming.items(), key=functools.cmp_to_key(
            lambda a, b: a[1].evr_cmp(b[1])), reverse=True)]
        newest = incoming[0] if incoming and (
            not self.installed or
            self.incoming[incoming[0]].evr_cmp(self.installed[0].newest) >= 0) \
            else installed[0] if installed else None
        return next_default(incoming, newest, current.kver, current.explicit,
                            updates_default(root))


def judge_transaction(config: Config, root: str, lookup: Any, forward: Sequence[Any],
                      backward: Sequence[Any], cachedir: Optional[str],
                      background: Optional[Any] = None, no_fetch: Optional[str] = None
                      ) -> HookResult:
    """The plan for a transaction installing FORWARD and taking away BACKWARD (the
    lookup's packages); an empty result when no kernel is involved.

    BACKGROUND: a background.BackgroundHost started earlier; collected only
    when a kernel is involved, stopped otherwise.  NO_FETCH: as for check_host().
    """
    def no_kernel() -> HookResult:
        if background is not None:
            background.cancel()
        return HookResult()

    incoming, outgoing = releases_of(forward, lookup), releases_of(backward, lookup)
    if not incoming and not outgoing:
        return no_kernel()
    # Only transactions with a kernel get this far; the rest never import these.
    from .host import host_needs, running_release
    from .policy import judge_kernel, plan_transaction, strandings
    running = running_release()
    installed = installed_kernels(lookup, root)
    installed_by_kver = {k.kver: k.packages for k in installed}

    def kernel(kver: str, shipped: Any) -> bool:
        # kABI lists, a kmod for a kernel that is neither installed nor coming: no kernel
        return shipped.kernel or kver in installed_by_kver or \
            declares_kernel(lookup, shipped.packages, kver)

    incoming = {kver: s for kver, s in incoming.items() if kernel(kver, s)}
    outgoing = {kver: s for kver, s in outgoing.items() if kernel(kver, s)}
    if not incoming and not outgoing:
        return no_kernel()
    listing = background.result() if background is not None else None
    discovery, ahead = listing if listing is not None else (None, None)
    host = host_needs(config, root, [k.kver for k in installed], running, discovery, ahead)
    logger.debug('kernelsplit: devices listed %s',
                 'in the background' if discovery is not None else 'in-process')
    if host.hardware_problem:
        logger.warning('kernelsplit: cannot list this machine\'s devices (%s); the driver '
                       'packages of the kernels in this transaction were not checked',
                       host.hardware_problem)
        return HookResult()
    added = frozenset(nevra(p) for p in forward)
    removed = frozenset(nevra(p) for p in backward)
    # An incoming kernel has no index yet: what is built in is taken from the reference one.
    builtin = host.builtin
    known_builtin = builtin or frozenset()
    unresolved, wanted = host.unresolved_modaliases, host.wanted_modules
    verdicts, candidates = [], {}
    cache = AnswerCache.in_cachedir(cachedir)
    inspecting = inspector(config, lookup, cache, no_fetch)
    for kver, shipped in sorted(incoming.items()):
        # Judged against all of the release, installed or coming: a kmod for an
        # installed kernel brings none of that kernel's own packages.
        pkgs = release_packages(lookup, kver, list(shipped.packages) +
                                list(installed_by_kver.get(kver, ())))
        candidates.update((nevra(p), p) for p in pkgs if not p.installed)
        release = kernel_packages(lookup, kver, pkgs, wanted, unresolved, added, removed,
                                  known_builtin, cache, inspecting)
        verdicts.append(judge_kernel(host.needs, release, builtin, indexed=host.indexed))
    if cache.hits or cache.misses:
        logger.debug('kernelsplit: exact mode: %d answers from %s, %d computed',
                     cache.hits, cache.directory, cache.misses)
    if inspecting.read or inspecting.unread:
        logger.debug('kernelsplit: inspect mode: %d packages read (%.1f MB fetched), %d unread',
                     len(inspecting.read), inspecting.fetched_bytes / 1e6,
                     len(inspecting.unread))
    stranded, old_kernels = [], {}
    for kver, shipped in sorted(outgoing.items()):
        pkgs = release_packages(lookup, kver, list(shipped.packages) +
                                list(installed_by_kver.get(kver, ())))
        release = kernel_packages(lookup, kver, pkgs, wanted, (), added, removed, known_builtin)
        stranded += strandings(host.needs, release, running)
        if kver != running and installed and kver != installed[0].kver:
            old_kernels[kver] = tuple(sorted(p.nevra for p in release.packages if p.installed))
    plan = plan_transaction(verdicts, stranded, config.on_missing)
    newest = {kver: newest_first(shipped.packages)[0] for kver, shipped in incoming.items()}
    return HookResult(plan, {a.package.nevra: candidates[a.package.nevra]
                             for a in plan.install if a.package.nevra in candidates},
                      newest, tuple(installed), old_kernels)


