"""What each device needs, decided on a real kmod index (fixture kernel + an out-of-tree module)."""

import shutil
import subprocess

import pytest

import kernelrepo
from dnf_kernelsplit.hardware import Device
from dnf_kernelsplit.kmod import ModuleIndex
from dnf_kernelsplit.modules import device_need, device_needs

GPU = 'pci:v000010DEd00001E84sv00001458sd00004008bc03sc00i00'
X710 = 'pci:v00008086d00001572sv00008086sd00000006bc02sc00i00'
BRIDGE = 'pci:v00008086d0000A330sv00000000sd00000000bc06sc04i00'
XHCI = 'pci:v00008086d0000A36Dsv00008086sd00007270bc0Csc03i30'


@pytest.fixture(scope='module')
def index(full_index_root, tmp_path_factory):
    """The fixture kernel's index plus an out-of-tree nvidia.ko in extra/."""
    root, kver = full_index_root
    copy = tmp_path_factory.mktemp('needs-root')
    shutil.copytree(root / 'lib', copy / 'lib', symlinks=True)
    module = kernelrepo.Module('nvidia', ('pci:v000010DEd*sv*sd*bc03sc00i00*',), subdir='extra')
    kernelrepo.build_module(module, kver, copy / 'lib' / 'modules' / kver, tmp_path_factory.mktemp('w'))
    subprocess.run(['depmod', '-b', str(copy), kver], check=True)
    with ModuleIndex.for_kernel(str(copy), kver) as opened:
        yield opened


def pci(modalias, driver=None, module=None, slot='0000:01:00.0'):
    return Device(sys_path='/sys/devices/pci0000:00/' + slot, subsystem='pci', modalias=modalias,
                  driver=driver, driver_module=module, slot=slot)


@pytest.mark.parametrize('device, modules, basis', [
    # a GPU handed to VMs needs vfio_pci, not nouveau
    (pci(GPU, 'vfio-pci', 'vfio_pci'), ('vfio_pci',), 'passthrough'),
    (pci(GPU, 'vfio-pci', None), ('vfio_pci',), 'passthrough'),
    (pci(GPU, 'pci-stub', 'pci_stub'), ('pci_stub',), 'passthrough'),
    (pci(X710, 'uio_pci_generic', 'uio_pci_generic'), ('uio_pci_generic',), 'passthrough'),
    # bound: the driver's module link wins, even when the driver is named otherwise
    (pci(XHCI, 'xhci_hcd', 'xhci_pci'), ('xhci_pci',), 'driver'),
    (pci(GPU, 'nouveau', 'nouveau'), ('nouveau',), 'driver'),
    # bound, no module link: the kmod match named like the driver
    (pci(GPU, 'nouveau', None), ('nouveau',), 'driver'),
    # built-in driver with its module link: needs the built-in, no package
    (pci(BRIDGE, 'pcieport', 'pcieport'), ('pcieport',), 'driver'),
    # out-of-tree driver: every in-kernel kmod match, as a safety net (nvidia left out)
    (pci(GPU, 'nvidia', 'nvidia'), ('nouveau',), 'safety-net'),
    (pci(GPU, 'nvidia', None), ('nouveau',), 'safety-net'),
    # unbound: every in-kernel module kmod would load
    (pci(GPU), ('nouveau',), 'modalias'),
    (pci(X710), ('i40e',), 'modalias'),
    (pci(BRIDGE), (), 'modalias'),
    # a module the index does not know (a core-only kernel) is still needed
    (pci(X710, 'i40e', 'i40e_from_elsewhere'), ('i40e_from_elsewhere',), 'driver'),
])
def test_device_need(index, device, modules, basis):
    need = device_need(device, index)
    assert (need.modules, need.basis) == (modules, basis)


def test_needs_agree_with_one_at_a_time_lookups(index):
    devices = [pci(GPU), pci(X710, 'i40e', 'i40e'), pci(GPU, 'nvidia', None), pci(BRIDGE)]
    assert device_needs(devices, index) == tuple(device_need(d, index) for d in devices)


def test_without_an_index_bound_drivers_still_count():
    assert device_need(pci(X710, 'i40e', 'i40e'), None).modules == ('i40e',)
    assert device_need(pci(X710), None).modules == ()
