"""A refused removal says, line for line, what it would strand and every way out.

Through the real dnf CLI: `remove` of a driver package a device needs, and
`autoremove` of an old kernel's driver package that dnf found unneeded (marked
with `dnf mark remove`, as a package installed as a dependency and orphaned).
Each way out the message names is then taken, and works.
"""

from harness import Host

SRIOV = Host('baremetal-sriov')
OLD, NEW = '6.8.0-1.x86_64', '6.9.1-1.x86_64'


def stranding_lines(kver):
    return ['  removing kernel-drivers-sriov-%s would leave %s without %s on kernel %s'
            % (kver, device, module, kver)
            for device, module in (('0000:3b:00.0 [8086:1572]', 'i40e'),
                                   ('0000:3b:00.1 [8086:1572]', 'i40e'),
                                   ('0000:3b:02.0 [8086:154c]', 'iavf'),
                                   ('0000:3b:02.1 [8086:154c]', 'iavf'))]


def test_remove_names_the_settings_and_the_one_off_way_out(make_root):
    root = make_root('split')
    root.install('kernel-' + NEW, 'kernel-drivers-sriov-' + NEW)
    before = root.installed()
    result = root.dnf('-y', 'remove', 'kernel-drivers-sriov-' + NEW, host=SRIOV)
    assert result.returncode == 1, result
    conf = root.pluginconfdir / 'kernelsplit.conf'
    assert result.stderr.splitlines() == [
        'Error: kernelsplit: refusing the transaction:',
        *stranding_lines(NEW),
        'To go on anyway, add the devices to ignore_devices or set on_missing=warn in %s,' % conf,
        'or run dnf with --disableplugin=kernelsplit for this one transaction.',
    ], result
    assert root.installed() == before
    # the one-off way out
    assert root.dnf('-y', 'remove', 'kernel-drivers-sriov-' + NEW, '--disableplugin=kernelsplit',
                    host=SRIOV, plugin=False).returncode == 0
    assert 'kernel-drivers-sriov-' + NEW not in root.installed()


def test_on_missing_fail_names_the_one_off_way_out_too(make_root):
    root = make_root('mono-split', plugin_conf={'on_missing': 'fail'})
    root.install('kernel-' + OLD)
    result = root.dnf('-y', 'upgrade', host=SRIOV)
    assert result.returncode == 1, result
    conf = root.pluginconfdir / 'kernelsplit.conf'
    assert result.stderr.splitlines()[-3:] == [
        'Install them in the same transaction (dnf install kernel-drivers-sriov-%s),' % NEW,
        'or add the devices to ignore_devices, or set on_missing=install or on_missing=warn, '
        'in %s,' % conf,
        'or run dnf with --disableplugin=kernelsplit for this one transaction.',
    ], result


def old_kernel_with_an_orphaned_driver_package(make_root):
    root = make_root('split')
    # The new kernel lacks the SR-IOV package: only the old kernel's can be autoremoved.
    root.install('kernel-' + OLD, 'kernel-drivers-sriov-' + OLD, 'kernel-' + NEW)
    root.dnf('mark', 'remove', 'kernel-drivers-sriov', plugin=False, check=True)
    unneeded = root.dnf('--assumeno', 'autoremove', plugin=False)
    assert 'kernel-drivers-sriov' in unneeded.stdout and '6.8.0-1' in unneeded.stdout, unneeded
    return root


def test_autoremove_of_an_old_kernels_driver_package_says_remove_the_whole_kernel(make_root):
    root = old_kernel_with_an_orphaned_driver_package(make_root)
    before = root.installed()
    result = root.dnf('-y', 'autoremove', host=SRIOV)
    assert result.returncode == 1, result
    conf = root.pluginconfdir / 'kernelsplit.conf'
    # the packages that ship into the release; dnf takes the `kernel` metapackage along
    whole = ' '.join('%s-%s' % (name, OLD) for name in ('kernel-core', 'kernel-drivers',
                                                       'kernel-drivers-sriov'))
    assert result.stderr.splitlines() == [
        'Error: kernelsplit: refusing the transaction:',
        *stranding_lines(OLD),
        'autoremove would take kernel-drivers-sriov-%s from kernel %s and leave the rest of '
        'that kernel installed; the clean way is to remove that whole kernel:' % (OLD, OLD),
        '  dnf remove %s' % whole,
        'To keep it instead: dnf mark install kernel-drivers-sriov-%s' % OLD,
        'To go on anyway, add the devices to ignore_devices or set on_missing=warn in %s,' % conf,
        'or run dnf with --disableplugin=kernelsplit for this one transaction.',
    ], result
    assert root.installed() == before
    # the clean way, as printed
    removal = root.dnf('-y', 'remove', *whole.split(), host=SRIOV)
    assert removal.returncode == 0, removal
    assert not any(name.endswith(OLD) for name in root.installed())


def test_autoremove_after_dnf_mark_install_takes_nothing(make_root):
    root = old_kernel_with_an_orphaned_driver_package(make_root)
    root.dnf('mark', 'install', 'kernel-drivers-sriov-' + OLD, plugin=False, check=True)
    result = root.dnf('-y', 'autoremove', host=SRIOV)
    assert result.returncode == 0, result
    assert 'kernel-drivers-sriov-' + OLD in root.installed()
