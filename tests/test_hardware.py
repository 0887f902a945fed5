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


# --- what a real udev database may hold: see oddhosts.py ---------------------------------

LOG_WARNINGS = textwrap.dedent('''
    import logging
    warnings = []
    class Keep(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                warnings.append(record.getMessage())
    logging.getLogger('dnf.plugin').addHandler(Keep())
''')


def test_bytes_that_are_not_utf8_are_read_as_replacement_characters(tmp_path):
    import oddhosts
    out = run_in(oddhosts.garbled(tmp_path), LOG_WARNINGS + textwrap.dedent('''
        devices = hardware.discover().devices
        print(json.dumps([[d._asdict() for d in devices], warnings]))
    '''))
    assert out.returncode == 0, out.stderr
    found, warnings = json.loads(out.stdout)
    devices = {d['slot']: d for d in found}
    assert len(devices) == 14                       # none left out
    gpu = devices[oddhosts.GPU]
    # PCI_ID is garbled: the ids come from sysfs instead
    assert (gpu['vendor'], gpu['device'], gpu['device_class']) == ('10de', '1e84', '030000')
    assert gpu['modalias'] == oddhosts.GARBLED_GPU_MODALIAS.decode(errors='replace')
    assert gpu['modalias'].count('\ufffd') == 2
    assert devices[oddhosts.AUDIO]['driver'] is None
    assert [d['sriov'] for d in (devices[oddhosts.PF0], devices[oddhosts.PF1])] == [None, None]
    assert sorted(warnings) == [
        'kernelsplit: 0000:01:00.0 [10de:1e84]: MODALIAS, PCI_ID: bytes that are not UTF-8, '
        'read as U+FFFD',
        'kernelsplit: 0000:01:00.1 [10de:10f8]: MODALIAS: bytes that are not UTF-8, '
        'read as U+FFFD',
        'kernelsplit: 0000:3b:00.0 [8086:1572]: sriov_totalvfs: bytes that are not UTF-8, '
        'read as U+FFFD']


@pytest.mark.parametrize('over', [0, 1])
def test_a_modalias_longer_than_a_page_is_left_out(tmp_path, over):
    """The kernel keeps at most PAGE_SIZE - 1 bytes of a sysfs attribute, its newline included."""
    import oddhosts
    length = os.sysconf('SC_PAGE_SIZE') - 2 + over
    out = run_in(oddhosts.long_modalias(tmp_path, length), LOG_WARNINGS + textwrap.dedent('''
        devices = hardware.discover().devices
        print(json.dumps([[len(d.modalias) for d in devices], warnings]))
    '''))
    assert out.returncode == 0, out.stderr
    lengths, warnings = json.loads(out.stdout)
    assert (length in lengths, len(lengths)) == ((True, 12) if not over else (False, 11))
    assert warnings == ([] if not over else [
        'kernelsplit: leaving out /sys%s: its modalias is %d bytes long, and the kernel '
        'writes at most %d' % (oddhosts.LONG_PATH, length, length - 1)])


def test_a_sysfs_path_that_is_not_utf8_is_left_out_with_a_warning():
    """No .umockdev file can name such a device: it is added to the testbed by hand."""
    out = run_in(Host('kvm-guest'), LOG_WARNINGS + textwrap.dedent('''
        sysfs = os.environ["UMOCKDEV_DIR"].encode() + b"/sys"
        device = sysfs + b"/devices/platform/odd\\xff0"
        os.makedirs(device)
        with open(device + b"/uevent", "wb") as uevent:
            uevent.write(b"MODALIAS=platform:odd\\nSUBSYSTEM=platform\\n")
        os.makedirs(sysfs + b"/bus/platform/devices", exist_ok=True)
        os.symlink(b"../../../bus/platform", device + b"/subsystem")
        os.symlink(b"../../../devices/platform/odd\\xff0",
                   sysfs + b"/bus/platform/devices/odd\\xff0")
        result = hardware.discover()
        print(json.dumps([len(result.devices), result.problem, warnings]))
    '''))
    assert out.returncode == 0, out.stderr
    count, problem, warnings = json.loads(out.stdout)
    assert (count, problem) == (6, None)
    assert warnings == ['kernelsplit: leaving out /sys/devices/platform/odd\ufffd0: its sysfs '
                        'path holds bytes that are not UTF-8']
