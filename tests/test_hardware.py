"""Hardware discovery through real libudev, on emulated machines (umockdev)."""

import json
import os
import subprocess
import textwrap

import pytest

from harness import PLUGIN_DIR, PYTHON, Host

PRELUDE = textwrap.dedent('''
    import json, os, shutil, sys
    sys.path.insert(0, %r)
    from dnf_kernelsplit import hardware
    def dump(devices):
        print(json.dumps([d._asdict() | {"passthrough": d.passthrough} for d in devices]))
''') % str(PLUGIN_DIR)


def run_in(host: Host, code: str, env=None) -> subprocess.CompletedProcess:
    command = host.wrap([PYTHON, '-c', PRELUDE + textwrap.dedent(code)])
    return subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False)


def discover(host: Host, buses=None) -> dict[str, dict]:
    out = run_in(host, 'dump(hardware.discover(%r).devices)' % (buses,))
    assert out.returncode == 0, out.stderr
    return {d['sys_path']: d for d in json.loads(out.stdout)}


def by_slot(devices, slot):
    return next(d for d in devices.values() if d['slot'] == slot)


def test_pci_fields_sriov_roles_and_module_links():
    devices = discover(Host('baremetal-sriov'))
    pf = by_slot(devices, '0000:3b:00.0')
    assert pf == {**pf, 'subsystem': 'pci', 'driver': 'i40e', 'driver_module': 'i40e',
                  'vendor': '8086', 'device': '1572', 'device_class': '020000',
                  'sriov': 'pf', 'physfn': None, 'passthrough': False,
                  'modalias': 'pci:v00008086d00001572sv00008086sd00000006bc02sc00i00'}
    vf = by_slot(devices, '0000:3b:02.0')
    assert (vf['sriov'], vf['physfn'], vf['driver']) == ('vf', '0000:3b:00.0', 'iavf')
    # sriov_numvfs=0 still makes a PF: the device can spawn VFs
    assert by_slot(devices, '0000:3b:00.1')['sriov'] == 'pf'
    # the xhci_hcd driver lives in the xhci_pci module: the driver's module link says so
    xhci = by_slot(devices, '0000:00:14.0')
    assert (xhci['driver'], xhci['driver_module']) == ('xhci_hcd', 'xhci_pci')
    assert all(d['subsystem'] == 'pci' for d in devices.values())
    assert len(devices) == 11


def test_passthrough_binding_is_seen():
    devices = discover(Host('vfio-host'))
    gpu = by_slot(devices, '0000:01:00.0')
    assert (gpu['driver'], gpu['driver_module'], gpu['passthrough']) == ('vfio-pci', 'vfio_pci', True)
    assert not by_slot(devices, '0000:00:1f.6')['passthrough']


@pytest.mark.parametrize('host, bus, modalias, driver, module', [
    ('kvm-guest', 'virtio', 'virtio:d00000001v00001AF4', 'virtio_net', 'virtio_net'),
    ('hyperv-guest', 'vmbus', 'vmbus:635161f83edfc546913ff2d2f965ed0e', 'hv_netvsc', 'hv_netvsc'),
    ('xen-guest', 'xen', 'xen:vif', 'vif', 'xen_netfront'),
    ('workstation-gpu', 'usb', 'usb:v0781p5581d0100dc00dsc00dp00ic08isc06ip50in00',
     'usb-storage', 'usb_storage'),
])
def test_every_bus_with_a_modalias(host, bus, modalias, driver, module):
    devices = discover(Host(host))
    found = [d for d in devices.values() if d['subsystem'] == bus]
    assert found, devices
    device = next(d for d in found if d['modalias'] == modalias)
    assert (device['driver'], device['driver_module'], device['slot']) == (driver, module, None)


def test_buses_filter():
    devices = discover(Host('kvm-guest'), buses=frozenset({'virtio'}))
    assert {d['subsystem'] for d in devices.values()} == {'virtio'}
    assert len(devices) == 3
    assert len(discover(Host('kvm-guest'))) == 6


def test_device_vanishing_mid_scan_is_skipped():
    out = run_in(Host('baremetal-sriov'), '''
        import pyudev
        enumerated = list(pyudev.Context().list_devices())
        gone = "/devices/pci0000:3a/0000:3a:00.0/0000:3b:02.1"
        shutil.rmtree(os.environ["UMOCKDEV_DIR"] + "/sys" + gone)
        dump(hardware.devices_from_udev(enumerated))
    ''')
    assert out.returncode == 0, out.stderr
    paths = {d['sys_path'] for d in json.loads(out.stdout)}
    assert len(paths) == 10
    assert '/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:02.1' not in paths


def test_unreadable_attribute_is_logged_and_skipped():
    # A directory where a file should be makes read() fail even for root.
    out = run_in(Host('baremetal-sriov'), '''
        base = os.environ["UMOCKDEV_DIR"] + "/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/"
        os.remove(base + "sriov_totalvfs"); os.mkdir(base + "sriov_totalvfs")
        os.remove(base + "vendor"); os.mkdir(base + "vendor")
        dump(hardware.discover().devices)
    ''')
    assert out.returncode == 0, out.stderr
    pf = next(d for d in json.loads(out.stdout) if d['slot'] == '0000:3b:00.0')
    assert pf['sriov'] is None and pf['driver'] == 'i40e' and pf['vendor'] == '8086'


def test_without_pyudev_discovery_reports_why(tmp_path):
    (tmp_path / 'pyudev.py').write_text('raise ImportError("pyudev removed for this test")\n')
    out = run_in(Host('kvm-guest'), '''
        result = hardware.discover()
        print(json.dumps([len(result.devices), result.problem]))
    ''', env={'PYTHONPATH': str(tmp_path)})
    assert out.returncode == 0, out.stderr
    count, problem = json.loads(out.stdout)
    assert count == 0 and 'pyudev is not available' in problem


def test_without_sys_discovery_reports_why(tmp_path):
    # The umockdev preload pointed at a directory with no sys/ at all: no /sys.
    code = PRELUDE + 'r = hardware.discover(); print(json.dumps([len(r.devices), r.problem]))'
    out = subprocess.run([PYTHON, '-c', code], capture_output=True, text=True, check=True,
                         env={**os.environ, 'LD_PRELOAD': 'libumockdev-preload.so.0',
                              'UMOCKDEV_DIR': str(tmp_path)})
    assert json.loads(out.stdout) == [0, '/sys is not mounted']
