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

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Any, Optional

import dnf.exceptions
import dnf.transaction

from .config import Config
from .judge import HookResult, judge_transaction
from .packages import nevra
from .packages_dnf4 import Dnf4Lookup

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


def start_discovery(base: Any, cli: Any, config: Config) -> Optional[Any]:
    """Start listing the devices and their needs in the background, unless the hook
    will step aside anyway."""
    if step_aside_reason(base, cli, config):
        return None
    from .background import BackgroundHost
    return BackgroundHost.start(config.buses, base.conf.installroot)


def plan_for(base: Any, config: Config, background: Optional[Any] = None) -> HookResult:
    """The plan for base.transaction; an empty result when no kernel is involved.

    BACKGROUND: a background.BackgroundHost started earlier; collected only
    when a kernel is involved, stopped otherwise.
    """
    forward, backward = [], []
    for item in base.transaction or ():
        if item.action in dnf.transaction.FORWARD_ACTIONS:
            forward.append(item.pkg)
        elif item.action in _BACKWARD:
            backward.append(item.pkg)
    no_fetch = 'dnf runs from its cache only (-C); run it without -C to judge them' \
        if base.conf.cacheonly else None
    return judge_transaction(config, base.conf.installroot, Dnf4Lookup(base.sack, base),
                             forward, backward, base.conf.cachedir, background, no_fetch)


def packages_to_add(base: Any, cli: Any, config: Config,
                    background: Optional[Any] = None) -> HookResult:
    """Report the plan for base.transaction; its `packages` are the ones to add.

    BACKGROUND: see plan_for().  Raises dnf.exceptions.Error when the policy
    refuses the transaction.
    """
    reason = step_aside_reason(base, cli, config)
    if reason:
        logger.debug('kernelsplit: stepping aside: %s', reason)
        return HookResult()
    started = time.monotonic()
    try:
        result = plan_for(base, config, background=background)
    except dnf.exceptions.Error:
        raise
    except Exception as exc:   # never break dnf by accident
        logger.warning('kernelsplit: internal error, the driver packages of this transaction '
                       'were not checked: %s', exc)
        logger.debug('%s', traceback.format_exc())
        return HookResult()
    plan = result.plan
    if plan is None:
        return result
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
        return HookResult()
    for addition in plan.install:
        logger.info('%s', report.addition_line(addition))
    return result


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


def report_not_added(base: Any, result: HookResult, config: Config,
                     allow_erasing: bool = False) -> None:
    """After the re-resolve: what of RESULT's packages did not make it in.

    A kernel that becomes the default boot kernel without a driver package it
    needs is refused (on_missing=install; warn never adds, fail refused
    before), naming what conflicts; for another kernel it is a warning.
    """
    transaction = base.transaction
    got = {nevra(item.pkg) for item in transaction} if transaction else set()
    lost = [a for a in result.plan.install if a.package.nevra not in got] \
        if result.plan is not None else []
    if not lost:
        return
    from . import report
    try:
        default = result.default_after(base.conf.installroot)
    except Exception as exc:   # never break dnf by accident: say so, refuse nothing
        logger.warning('kernelsplit: internal error, cannot tell the next default boot '
                       'kernel: %s', exc)
        logger.debug('%s', traceback.format_exc())
        default = None
    refused = []
    for addition in lost:
        problem = _why_not_installable(base, result.packages[addition.package.nevra],
                                       allow_erasing)
        if addition.kver == default:
            refused.append((addition, problem))
        else:
            logger.warning('%s', report.not_added_warning(addition, problem))
    if refused:
        raise dnf.exceptions.Error(report.conflict_refusal(refused, config.source))


def _why_not_installable(base: Any, pkg: Any, allow_erasing: bool) -> str:
    """What stops PKG from joining the transaction, as the solver puts it.

    The packages were added as optional jobs (dnf skips what cannot go in);
    the goal's copy with PKG required gives the solver's account of why not.
    """
    import copy
    try:
        probe = copy.deepcopy(base._goal)
        probe.install(pkg)
        if probe.run(allow_uninstall=allow_erasing, force_best=base.conf.best,
                     ignore_weak_deps=not base.conf.install_weak_deps):
            return 'the solver left it out'
        return '; '.join(dict.fromkeys(rule for rules in probe.problem_rules()
                                       for rule in rules))
    except Exception as exc:   # only the explanation is lost
        logger.debug('kernelsplit: cannot ask the solver about %s: %s', nevra(pkg), exc)
        return 'a dependency problem'
