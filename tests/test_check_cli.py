"""`dnf kernelsplit check`: the real dnf CLI, real RPMs in an installroot, hardware under umockdev."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from harness import Host

KVM, SRIOV, GPU_WS, VFIO = (Host('kvm-guest'), Host('baremetal-sriov'), Host('workstation-gpu'),
                            Host('vfio-host'))
NEW = '6.9.1-1.x86_64'


def devices(result, kernel=0):
    return {d['slot'] or d['sysfs_path']: d for d in result.json()['kernels'][kernel]['devices']}


def test_kvm_guest_core_only_is_all_ok(make_root):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    result = root.check('--json', host=KVM)
    assert result.returncode == 0, result
    doc = result.json()
    assert [k['kernel'] for k in doc['kernels']] == [NEW] and doc['kernels'][0]['default']
    rows = devices(result)
    # the virtio PCI functions' driver is built in: they need no package
    assert {d['status'] for d in rows.values()} == {'ok', 'none'}
    assert {d['modules'][0] for d in rows.values() if d['status'] == 'none'} == {'virtio_pci'}
    virtio_net = rows['/sys/devices/pci0000:00/0000:00:03.0/virtio0']
    assert virtio_net['modules'] == ['virtio_net']
    assert virtio_net['packages'] == ['kernel-core-' + NEW]
    assert rows['0000:00:03.0']['modules'] == ['virtio_pci']     # built in: no package
    assert rows['0000:00:03.0']['packages'] == []


def test_json_shape(make_root):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    doc = root.check('--json', host=SRIOV).json()
    assert set(doc) >= {'kernels'}
    kernel = doc['kernels'][0]
    assert set(kernel) >= {'kernel', 'default', 'devices'}
    for device in kernel['devices']:
        assert set(device) >= {'sysfs_path', 'modalias', 'driver', 'modules', 'packages', 'status'}
        assert device['sysfs_path'].startswith('/sys/devices/')
        assert device['status'] in ('ok', 'missing', 'unsupported', 'unknown', 'none')
        assert isinstance(device['modules'], list) and isinstance(device['packages'], list)
        assert device['driver'] is None or isinstance(device['driver'], str)


def test_core_only_bare_metal_is_missing_until_the_named_packages_are_installed(make_root):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    table = root.check(host=SRIOV)
    assert table.returncode == 1, table
    assert 'kernel-drivers-sriov-%s' % NEW in table.stdout
    assert 'dnf install kernel-drivers-%s kernel-drivers-sriov-%s' % (NEW, NEW) in table.stdout
    rows = devices(root.check('--json', host=SRIOV))
    assert rows['0000:3b:00.0']['status'] == 'missing'
    assert rows['0000:3b:00.0']['packages'] == ['kernel-drivers-sriov-' + NEW]
    assert rows['0000:3b:02.0']['modules'] == ['iavf']
    assert rows['0000:18:00.0']['packages'] == ['kernel-drivers-' + NEW]   # megaraid_sas
    assert rows['0000:02:00.0']['status'] == 'ok'                          # nvme is in core
    to_install = root.check('--json', host=SRIOV).json()['kernels'][0]['install']
    assert to_install == ['kernel-drivers-' + NEW, 'kernel-drivers-sriov-' + NEW]
    root.install(*to_install)
    after = root.check('--json', host=SRIOV)
    assert after.returncode == 0, after
    assert {d['status'] for d in devices(after).values()} == {'ok', 'none'}   # none: bridges


def test_full_install_with_sriov_package_is_ok(make_root):
    root = make_root('split')
    root.install('kernel-' + NEW, 'kernel-drivers-sriov-' + NEW)
    result = root.check(host=SRIOV)
    assert result.returncode == 0, result
    assert 'missing' not in result.stdout


def test_workstation_gpu_needs_the_gpu_package(make_root):
    root = make_root('split')
    root.install('kernel-' + NEW)         # the metapackage: core + drivers
    result = root.check('--json', host=GPU_WS)
    assert result.returncode == 1, result
    rows = devices(result)
    assert (rows['0000:01:00.0']['modules'], rows['0000:01:00.0']['status']) == (['nouveau'], 'missing')
    assert rows['0000:01:00.1']['status'] == 'ok'          # HDMI audio: snd_hda_intel
    usb = next(d for d in rows.values() if d['bus'] == 'usb')
    assert (usb['modules'], usb['packages'], usb['status']) == \
        (['usb_storage'], ['kernel-drivers-' + NEW], 'ok')
    root.install('kernel-drivers-gpu-' + NEW)
    assert root.check(host=GPU_WS).returncode == 0


def test_gpu_bound_to_vfio_needs_passthrough_not_nouveau(make_root):
    root = make_root('split')
    root.install('kernel-' + NEW)
    rows = devices(root.check('--json', host=VFIO))
    gpu = rows['0000:01:00.0']
    assert (gpu['driver'], gpu['modules'], gpu['passthrough']) == ('vfio-pci', ['vfio_pci'], True)
    assert gpu['packages'] == ['kernel-drivers-passthrough-' + NEW]
    assert all('nouveau' not in d['modules'] for d in rows.values())
    root.install('kernel-drivers-passthrough-' + NEW)
    assert root.check(host=VFIO).returncode == 0


def test_all_kernels_and_default_kernel_exit_status(make_root):
    root = make_root('split')
    root.install('kernel-6.8.0-1.x86_64', 'kernel-drivers-sriov-6.8.0-1.x86_64',
                 'kernel-core-' + NEW)
    default_only = root.check('--json', host=SRIOV)
    assert default_only.returncode == 1
    assert [k['kernel'] for k in default_only.json()['kernels']] == [NEW]
    every = root.check('--json', '--all-kernels', host=SRIOV)
    assert every.returncode == 1
    kernels = {k['kernel']: k for k in every.json()['kernels']}
    assert set(kernels) == {NEW, '6.8.0-1.x86_64'}
    assert kernels[NEW]['default'] and not kernels['6.8.0-1.x86_64']['default']
    assert {d['status'] for d in kernels['6.8.0-1.x86_64']['devices']} == {'ok', 'none'}
    # the exit status follows the default (newest) kernel only
    root.install('kernel-drivers-%s' % NEW, 'kernel-drivers-sriov-%s' % NEW)
    assert root.check('--all-kernels', host=SRIOV).returncode == 0


@pytest.mark.parametrize('repo', ['fedora', 'split-filelists'])
def test_other_layouts_need_no_configuration(make_root, repo):
    root = make_root(repo)
    kver = '6.9.1-200.fc40.x86_64' if repo == 'fedora' else NEW
    core = ['kernel-core-' + kver] + (['kernel-modules-core-' + kver] if repo == 'fedora' else [])
    root.install(*core)
    result = root.check('--json', host=SRIOV)
    assert result.returncode == 1, result
    pf = devices(result)['0000:3b:00.0']
    expected = 'kernel-modules-extra-' + kver if repo == 'fedora' else 'kernel-drivers-sriov-' + kver
    assert pf['packages'] == [expected] and pf['status'] == 'missing'
    root.install(*result.json()['kernels'][0]['install'])
    assert root.check(host=SRIOV).returncode == 0


def test_other_buses(make_root):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    for host, bus, module in (('hyperv-guest', 'vmbus', 'hv_netvsc'),
                              ('xen-guest', 'xen', 'xen_netfront')):
        result = root.check('--json', host=Host(host))
        assert result.returncode == 0, result
        rows = [d for d in result.json()['kernels'][0]['devices'] if d['bus'] == bus]
        assert module in [m for d in rows for m in d['modules']]
        assert {d['status'] for d in rows} == {'ok'}


def test_ignore_devices_and_buses(make_root):
    root = make_root('split', plugin_conf={
        'ignore_devices': '0000:3b:00.0, 3b:00.1, 8086:154c, 1000:005d, 0000:03:00.0'})
    root.install('kernel-core-' + NEW)
    result = root.check('--json', host=SRIOV)
    assert result.returncode == 0, result
    assert len(result.json()['ignored']) == 6      # 8086:154c is both VFs
    root.write_plugin_conf({'hardware_in_installroot': 'yes', 'buses': 'virtio'})
    rows = root.check('--json', host=KVM).json()['kernels'][0]['devices']
    assert {d['bus'] for d in rows} == {'virtio'}


def test_runs_as_non_root(repos):
    base = Path(tempfile.mkdtemp(prefix='kernelsplit-nonroot-', dir='/var/tmp'))
    try:
        os.chmod(base, 0o755)
        from harness import Installroot
        root = Installroot(base, {'split': repos['split']})
        root.install('kernel-core-' + NEW)
        (root.root / 'var' / 'tmp').mkdir(parents=True, exist_ok=True)
        os.chmod(root.root / 'var' / 'tmp', 0o1777)   # as on any system: dnf's user cache goes there
        for path in [base] + [p for p in base.rglob('*')]:
            if not path.is_symlink():
                os.chmod(path, os.stat(path).st_mode | 0o044 | (0o011 if path.is_dir() else 0))
        as_nobody = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--']
        result = root.dnf('kernelsplit', 'check', '--json', host=SRIOV, prefix=as_nobody)
        assert result.returncode == 1, result
        assert devices(result)['0000:3b:00.0']['status'] == 'missing'
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_installroot_without_hardware_in_installroot_is_refused(make_root):
    root = make_root('split', plugin_conf={'hardware_in_installroot': 'no'})
    root.install('kernel-core-' + NEW)
    result = root.check(host=SRIOV)
    assert result.returncode == 3                   # nothing could be checked
    assert 'hardware_in_installroot=yes' in result.stderr and not result.stdout.strip()


def test_malformed_config_is_a_clear_error(make_root):
    root = make_root('split')
    root.write_plugin_conf({}, raw='[main]\nhardware_in_installroot = yes\nbuses = pci all\n')
    result = root.check(host=SRIOV)
    assert result.returncode != 0
    conf = str(root.pluginconfdir / 'kernelsplit.conf')
    assert conf in result.stderr and "buses = 'pci all'" in result.stderr, result


def test_without_pyudev_check_says_it_cannot_judge(make_root, tmp_path):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    fake = tmp_path / 'nopyudev'
    fake.mkdir()
    (fake / 'pyudev.py').write_text('raise ImportError("no pyudev here")\n')
    result = root.check(host=SRIOV, env={'PYTHONPATH': str(fake)})
    assert result.returncode == 3
    assert 'cannot list this machine\'s devices: pyudev is not available' in result.stderr
