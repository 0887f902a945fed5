"""Policy is pure: table tests on facts, no dnf, no udev."""

import pytest

from dnf_kernelsplit.hardware import Device
from dnf_kernelsplit.modules import DeviceNeed
from dnf_kernelsplit.packages import KernelPackages, PackageRef
from dnf_kernelsplit.policy import (MISSING, NONE, OK, UNKNOWN, UNSUPPORTED, judge_device,
                                    judge_kernel)

CORE = PackageRef('kernel-core-6.9.1-1.x86_64', 'kernel-core', True)
SRIOV = PackageRef('kernel-drivers-sriov-6.9.1-1.x86_64', 'kernel-drivers-sriov', False)
GPU = PackageRef('kernel-drivers-gpu-6.9.1-1.x86_64', 'kernel-drivers-gpu', False)
GPU_INSTALLED = PackageRef(GPU.nevra, GPU.name, True)
RELEASE = KernelPackages('6.9.1-1.x86_64', (CORE, SRIOV, GPU), {
    'nvme': (CORE,), 'i40e': (SRIOV,), 'iavf': (SRIOV,), 'nouveau': (GPU,),
}, shipping=frozenset({CORE.nevra, SRIOV.nevra, GPU.nevra}),
   unread={SRIOV.nevra: 'inspect = never in kernelsplit.conf',
           GPU.nevra: 'inspect = never in kernelsplit.conf'})
BUILTIN = frozenset({'pcieport', 'virtio_pci'})


def need(*modules, basis='driver'):
    device = Device('/sys/devices/pci0000:00/0000:3b:00.0', 'pci', 'pci:v...', slot='0000:3b:00.0')
    return DeviceNeed(device, tuple(modules), basis)


@pytest.mark.parametrize('modules, status, to_install, builtin, absent', [
    (('nvme',), OK, (), (), ()),
    (('pcieport',), NONE, (), ('pcieport',), ()),          # built in: needs no package
    (('nvme', 'pcieport'), OK, (), ('pcieport',), ()),
    (('i40e',), MISSING, (SRIOV,), (), ()),
    (('i40e', 'iavf'), MISSING, (SRIOV,), (), ()),
    (('nvme', 'nouveau'), MISSING, (GPU,), (), ()),
    (('bochs',), UNSUPPORTED, (), (), ('bochs',)),
    (('i40e', 'bochs'), MISSING, (SRIOV,), (), ('bochs',)),
    ((), UNKNOWN, (), (), ()),                      # unbound, unresolved, sriov + gpu not installed
])
def test_judge_device(modules, status, to_install, builtin, absent):
    verdict = judge_device(need(*modules), RELEASE, BUILTIN)
    assert (verdict.status, verdict.to_install, verdict.builtin, verdict.absent) == \
        (status, to_install, builtin, absent)
    assert verdict.lacking == bool(to_install or absent)


def test_a_package_shipping_a_builtin_module_is_preferred_over_the_builtin():
    # the module became =m in this release: it must be installed, built-in or not
    verdict = judge_device(need('nouveau'), RELEASE, frozenset({'nouveau'}))
    assert verdict.status == MISSING and verdict.to_install == (GPU,)


def test_installed_provider_among_several_is_enough():
    release = KernelPackages('k', (SRIOV, GPU_INSTALLED), {'i40e': (SRIOV, GPU_INSTALLED)})
    assert judge_device(need('i40e'), release, frozenset()).status == OK


def test_kernel_verdict_collects_packages_once():
    verdict = judge_kernel([need('i40e'), need('iavf'), need('nouveau'), need()], RELEASE, BUILTIN,
                           default=True)
    assert verdict.to_install == (GPU, SRIOV)
    assert verdict.lacking and verdict.default
    assert not judge_kernel([need('nvme'), need()], RELEASE, BUILTIN).lacking


# --- exact mode, unjudged devices, builtin knowledge ---------------------------

from dnf_kernelsplit.packages import AliasEntry  # noqa: E402
from dnf_kernelsplit.policy import (FAIL, INSTALL, WARN, Addition, Shortfall, TransactionPlan,  # noqa: E402
                                    plan_transaction, strandings)


def unbound():
    device = Device('/sys/devices/pci0000:3a/0000:3b:00.0', 'pci', 'pci:v00008086d00001572...',
                    slot='0000:3b:00.0', vendor='8086', device='1572')
    return DeviceNeed(device, (), 'modalias')


def test_exact_matches_decide_an_unresolved_device():
    entry = AliasEntry('pci:v00008086d00001572sv*sd*bc*sc*i*', 'i40e', SRIOV)
    verdict = judge_device(unbound(), RELEASE, BUILTIN, exact=[entry])
    assert (verdict.status, verdict.modules, verdict.to_install) == (MISSING, ('i40e',), (SRIOV,))
    present = AliasEntry(entry.pattern, None, GPU_INSTALLED)
    verdict = judge_device(unbound(), RELEASE, BUILTIN, exact=[present])
    assert (verdict.status, verdict.modules) == (OK, (entry.pattern,))   # no module name: the pattern


def test_unknown_only_while_packages_not_installed_have_unknown_aliases():
    verdict = judge_device(unbound(), RELEASE, BUILTIN)                   # sriov, gpu unread
    assert verdict.status == UNKNOWN and 'kernel-drivers-sriov-6.9.1-1.x86_64' in verdict.reason
    assert 'inspect = never' in verdict.reason                            # why, and the way out
    everything = KernelPackages('k', (CORE,), {'nvme': (CORE,)}, shipping=frozenset({CORE.nevra}))
    assert judge_device(unbound(), everything, BUILTIN).status == NONE    # the index is complete
    read = RELEASE._replace(unread={})
    assert judge_device(unbound(), read, BUILTIN).status == NONE          # exact/inspect had a say
    bound = DeviceNeed(Device('/sys/devices/x', 'pci', 'm', driver='foo'), (), 'safety-net')
    assert judge_device(bound, RELEASE, BUILTIN).status == NONE
    elsewhere = KernelPackages('k', (CORE,), {'nvme': (CORE,)}, in_repos=False)
    verdict = judge_device(unbound(), elsewhere, BUILTIN)                  # not in any repository
    assert verdict.status == UNKNOWN and 'no enabled repository carries kernel k' in verdict.reason
    verdict = judge_device(unbound(), everything, BUILTIN, indexed=False)  # no index at all
    assert verdict.status == UNKNOWN and 'depmod' in verdict.reason


def test_a_built_in_driver_is_needed_where_a_release_ships_it():
    device = Device('/sys/devices/pci0000:3a/0000:3b:00.0', 'pci', 'pci:v00008086d00001572...',
                    driver='i40e', slot='0000:3b:00.0')
    verdict = judge_device(DeviceNeed(device, (), 'driver', 'i40e'), RELEASE, BUILTIN)
    assert (verdict.status, verdict.modules, verdict.to_install) == (MISSING, ('i40e',), (SRIOV,))
    bridge = DeviceNeed(device._replace(driver='pcieport'), (), 'driver', 'pcieport')
    assert judge_device(bridge, RELEASE, BUILTIN).status == NONE


def test_without_an_index_unshipped_modules_are_not_called_lacking():
    verdict = judge_device(need('pcieport', 'i40e'), RELEASE, None)
    assert verdict.builtin == ('pcieport',) and verdict.absent == ()
    assert verdict.to_install == (SRIOV,)


# --- transactions -------------------------------------------------------------

def ref(name, installed, present):
    return PackageRef('%s-6.9.1-1.x86_64' % name, name, installed, present)


def test_strandings_only_for_a_kernel_that_stays():
    core, sriov = ref('kernel-core', True, True), ref('kernel-drivers-sriov', True, False)
    release = KernelPackages('6.9.1-1.x86_64', (core, sriov), {'i40e': (sriov,), 'nvme': (core,)})
    found = strandings([need('i40e'), need('nvme')], release, running='6.9.1-1.x86_64')
    assert [(s.package, s.module, s.running) for s in found] == [(sriov, 'i40e', True)]
    gone = KernelPackages('6.9.1-1.x86_64', (ref('kernel-core', True, False), sriov),
                          {'i40e': (sriov,)})
    assert strandings([need('i40e')], gone, running='other') == ()
    replaced = KernelPackages('6.9.1-1.x86_64', (core, sriov, ref('kernel-modules-extra', False, True)),
                              {'i40e': (sriov, ref('kernel-modules-extra', False, True))})
    assert strandings([need('i40e')], replaced, running='other') == ()


@pytest.mark.parametrize('on_missing, additions, shortfalls, strandings_, refuse, install', [
    (INSTALL, 1, 0, 0, False, 1),
    (INSTALL, 1, 1, 0, False, 1),      # a shortfall only warns
    (INSTALL, 0, 0, 1, True, 0),       # stranding: refused
    (WARN, 1, 1, 1, False, 0),         # warn never refuses, never adds
    (FAIL, 1, 0, 0, True, 0),
    (FAIL, 0, 1, 0, True, 0),
    (FAIL, 0, 0, 0, False, 0),
])
def test_plan_decisions(on_missing, additions, shortfalls, strandings_, refuse, install):
    device = need('i40e').device
    plan = TransactionPlan(on_missing,
                           (Addition(SRIOV, 'k', ((device, ('i40e',)),)),) * additions,
                           (Shortfall('k', device, ('bochs',)),) * shortfalls,
                           ('stranding',) * strandings_)
    assert plan.refuse == refuse and len(plan.install) == install


def test_plan_groups_one_package_for_many_devices():
    a, b = need('i40e'), need('iavf')
    verdict = judge_kernel([a, b, need('nouveau')], RELEASE, BUILTIN)
    plan = plan_transaction([verdict], [], INSTALL)
    assert [(x.package, [m for _, m in x.reasons]) for x in plan.additions] == [
        (GPU, [('nouveau',)]), (SRIOV, [('i40e',), ('iavf',)])]
