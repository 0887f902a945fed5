"""Policy is pure: table tests on facts, no dnf, no udev."""

import pytest

from dnf_kernelsplit.hardware import Device
from dnf_kernelsplit.modules import DeviceNeed
from dnf_kernelsplit.packages import KernelPackages, PackageRef
from dnf_kernelsplit.policy import MISSING, OK, UNSUPPORTED, judge_device, judge_kernel

CORE = PackageRef('kernel-core-6.9.1-1.x86_64', 'kernel-core', True)
SRIOV = PackageRef('kernel-drivers-sriov-6.9.1-1.x86_64', 'kernel-drivers-sriov', False)
GPU = PackageRef('kernel-drivers-gpu-6.9.1-1.x86_64', 'kernel-drivers-gpu', False)
GPU_INSTALLED = PackageRef(GPU.nevra, GPU.name, True)
RELEASE = KernelPackages('6.9.1-1.x86_64', (CORE, SRIOV, GPU), {
    'nvme': (CORE,), 'i40e': (SRIOV,), 'iavf': (SRIOV,), 'nouveau': (GPU,),
})
BUILTIN = frozenset({'pcieport', 'virtio_pci'})


def need(*modules, basis='driver'):
    device = Device('/sys/devices/pci0000:00/0000:3b:00.0', 'pci', 'pci:v...', slot='0000:3b:00.0')
    return DeviceNeed(device, tuple(modules), basis)


@pytest.mark.parametrize('modules, status, to_install, builtin, absent', [
    (('nvme',), OK, (), (), ()),
    (('pcieport',), OK, (), ('pcieport',), ()),
    (('i40e',), MISSING, (SRIOV,), (), ()),
    (('i40e', 'iavf'), MISSING, (SRIOV,), (), ()),
    (('nvme', 'nouveau'), MISSING, (GPU,), (), ()),
    (('bochs',), UNSUPPORTED, (), (), ('bochs',)),
    (('i40e', 'bochs'), MISSING, (SRIOV,), (), ('bochs',)),
    ((), UNSUPPORTED, (), (), ()),
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
