"""The transaction hook: what every kernel entering the transaction needs, and what removals strand.

Called from the plugin's resolved().  Cheap when no kernel is involved: the
hardware is only looked at when the transaction installs or removes a package
that ships into /lib/modules/KVER/ (or declares *-uname-r).  Anything that goes
wrong here by accident is logged and dnf carries on; only a policy decision
raises dnf.exceptions.Error.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import namedtuple
from types import MappingProxyType

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Any, Optional

import dnf.exceptions
import dnf.transaction

from .cache import ExactModeCache
from .config import Config
from .packages import installed_kernels, kernel_packages, kernels_of, nevra, release_packages

logger = logging.getLogger('dnf.plugin')

# system-upgrade and its offline siblings (dnf-plugins-core): the reboot phase
# replays a transaction that was resolved, and checked by us, at download time.
_OFFLINE_COMMANDS = frozenset({'system-upgrade', 'fedup', 'offline-upgrade', 'offline-distrosync'})
_BACKWARD = frozenset(dnf.transaction.BACKWARD_ACTIONS) | {dnf.transaction.PKG_REINSTALLED}


def step_aside_reason(base: Any, cli: Any, config: Config) -> Optional[str]:
    """Why the hook must leave this transaction alone, or None."""
    from .host import foreign_root_reason
    reason = foreign_root_reason(config, base.conf.installroot)
    if reason:
        return reason
    command = getattr(cli, 'command', None)
    opts = getattr(command, 'opts', None)
    if getattr(opts, 'command', None) in _OFFLINE_COMMANDS:
        phase = (getattr(opts, 'tid', None) or ['?'])[0]
        if phase != 'download':
            return '%s %s replays a transaction checked at download time' % (opts.command, phase)
    return None


class HookResult(namedtuple('HookResult', [
        'plan',             # policy.TransactionPlan, or None: no kernel involved
        'packages',         # NEVRA -> hawkey package to add
        'old_kernels',      # KVER -> installed NEVRAs, for kernels losing packages that are
                            # neither running nor the newest (report.autoremove_lines)
        ], defaults=(None, MappingProxyType({}), MappingProxyType({})))):
    """The plan for a transaction and the hawkey packages it adds."""
    __slots__ = ()


def start_discovery(base: Any, cli: Any, config: Config) -> Optional[Any]:
    """Start listing the devices and their needs in the background, unless the hook
    will step aside anyway."""
    if step_aside_reason(base, cli, config):
        return None
    from .background import BackgroundHost
    return BackgroundHost.start(config.buses, base.conf.installroot)


def plan_for(base: Any, config: Config, running: Optional[str] = None,
             background: Optional[Any] = None) -> HookResult:
    """The plan for base.transaction; an empty result when no kernel is involved.

    BACKGROUND: a background.BackgroundHost started earlier; collected only
    when a kernel is involved, stopped otherwise.
    """
    transaction = base.transaction
    if not transaction:
        if background is not None:
            background.cancel()
        return HookResult()
    forward, backward = [], []
    for item in transaction:
        if item.action in dnf.transaction.FORWARD_ACTIONS:
            forward.append(item.pkg)
        elif item.action in _BACKWARD:
            backward.append(item.pkg)
    incoming, outgoing = kernels_of(forward), kernels_of(backward)
    if not incoming and not outgoing:
        if background is not None:
            background.cancel()
        return HookResult()
    # Only transactions with a kernel get this far; the rest never import these.
    from .host import host_needs, running_release
    from .policy import judge_kernel, plan_transaction, strandings
    running = running or running_release()
    root = base.conf.installroot
    installed = installed_kernels(base.sack, root)
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
    cache = ExactModeCache.in_cachedir(base.conf.cachedir)
    for kver, seeds in sorted(incoming.items()):
        pkgs = release_packages(base.sack, kver, seeds)
        candidates.update((nevra(p), p) for p in pkgs if not p.installed)
        release = kernel_packages(base.sack, kver, pkgs, wanted, unresolved, added, removed,
                                  known_builtin, cache)
        verdicts.append(judge_kernel(host.needs, release, builtin))
    if cache.hits or cache.misses:
        logger.debug('kernelsplit: exact mode: %d answers from %s, %d computed',
                     cache.hits, cache.directory, cache.misses)
    installed_by_kver = {k.kver: k.packages for k in installed}
    stranded, old_kernels = [], {}
    for kver, seeds in sorted(outgoing.items()):
        pkgs = release_packages(base.sack, kver, list(seeds) + list(installed_by_kver.get(kver, ())))
        release = kernel_packages(base.sack, kver, pkgs, wanted, (), added, removed, known_builtin)
        stranded += strandings(host.needs, release, running)
        if kver != running and installed and kver != installed[0].kver:
            old_kernels[kver] = tuple(sorted(p.nevra for p in release.packages if p.installed))
    plan = plan_transaction(verdicts, stranded, config.on_missing)
    return HookResult(plan, {a.package.nevra: candidates[a.package.nevra]
                             for a in plan.install if a.package.nevra in candidates},
                      old_kernels)


def packages_to_add(base: Any, cli: Any, config: Config,
                    background: Optional[Any] = None) -> list[Any]:
    """Report the plan for base.transaction and return the packages to add.

    BACKGROUND: see plan_for().  Raises dnf.exceptions.Error when the policy
    refuses the transaction.
    """
    reason = step_aside_reason(base, cli, config)
    if reason:
        logger.debug('kernelsplit: stepping aside: %s', reason)
        return []
    started = time.monotonic()
    try:
        result = plan_for(base, config, background=background)
    except dnf.exceptions.Error:
        raise
    except Exception as exc:   # never break dnf by accident
        logger.warning('kernelsplit: internal error, the driver packages of this transaction '
                       'were not checked: %s', exc)
        logger.debug('%s', traceback.format_exc())
        return []
    plan = result.plan
    if plan is None:
        return []
    logger.debug('kernelsplit: planned in %.0f ms', (time.monotonic() - started) * 1000)
    from . import report
    if plan.refuse:
        command = (getattr(getattr(cli, 'command', None), 'aliases', None) or (None,))[0]
        raise dnf.exceptions.Error(report.refusal_message(plan, config.source, command,
                                                          result.old_kernels))
    for stranding in plan.strandings:           # on_missing=warn
        logger.warning('kernelsplit: %s (on_missing=warn)', report.stranding_line(stranding))
    for verdict in plan.unjudged:
        logger.info('%s', report.unjudged_line(verdict))
    for shortfall in plan.shortfalls:
        logger.warning('%s', report.shortfall_line(shortfall))
    if not plan.install:                        # on_missing=warn
        for addition in plan.additions:
            logger.warning('%s', report.not_added_line(addition))
        return []
    for addition in plan.install:
        logger.info('%s', report.addition_line(addition))
    return list(result.packages.values())


# dnf's resolve() begins by recomputing which packages weak dependencies must
# not pull in (Goal.exclude_from_weak_autodetect: a pass over every package in
# the sack, ~20 ms of a ~24 ms resolve on a distribution-sized host).  The
# re-resolve follows dnf's own resolve at once, on the same installed packages
# and configuration, so the pass would only recompute the set the goal already
# holds: it is skipped by shadowing both steps on the goal object for the one
# call.  Both or neither: skipping only the reset would be harmless, skipping
# only the recomputation would lose the set.  When the goal does not take the
# shadows, dnf simply does the work.
_WEAK_EXCLUDE_STEPS = ('reset_exclude_from_weak', 'exclude_from_weak_autodetect')


def _unchanged(*args: Any) -> None:
    return None


def resolve_again(base: Any, allow_erasing: bool) -> bool:
    """base.resolve(ALLOW_ERASING), keeping the goal's weak-dependency excludes.

    Returns whether they were kept (False: dnf recomputed them).
    """
    goal = getattr(base, '_goal', None)
    shadowed: list[str] = []
    try:
        for name in _WEAK_EXCLUDE_STEPS:
            if not callable(getattr(goal, name, None)):
                raise AttributeError(name)
            setattr(goal, name, _unchanged)
            shadowed.append(name)
    except (AttributeError, TypeError):
        _unshadow(goal, shadowed)
        shadowed = []
    try:
        base.resolve(allow_erasing)
    finally:
        _unshadow(goal, shadowed)
    return bool(shadowed)


def _unshadow(goal: Any, names: list[str]) -> None:
    for name in names:
        try:
            delattr(goal, name)
        except AttributeError:
            pass


def report_not_added(base: Any, wanted: list[Any]) -> None:
    """After the re-resolve: say which of the packages asked for did not make it in."""
    transaction = base.transaction
    got = {nevra(item.pkg) for item in transaction} if transaction else set()
    for pkg in wanted:
        if nevra(pkg) not in got:
            logger.warning('kernelsplit: %s could not be added to the transaction '
                           '(dependency problem); install it by hand', nevra(pkg))
