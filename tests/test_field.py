"""Field correctness on hosts shaped like real Fedora and RHEL machines, through the real dnf CLI.

Third-party kmods and kABI lists beside the kernels, the bootloader's own default,
drivers built into the running kernel, what a device's status says, and a driver
package that cannot be added.
"""

import pytest

from harness import Host

NEW, OLD = '6.9.1-1.x86_64', '6.8.0-1.x86_64'
SRIOV, COREONLY, KVM = Host('baremetal-sriov'), Host('baremetal-coreonly'), Host('kvm-guest')
# The SR-IOV + GPU server as a kernel with i40e, iavf and nouveau built in sees it:
# bound drivers without a module link.
BUILTIN_DRIVERS = Host('baremetal-sriov-gpu', 'baremetal-sriov-gpu-builtin')
MACHINE_ID = '4f1a6c0e2b8d4e7f9a3c5d1e0b2f4a6c'


def said(result):
    """What the plugin said, at any level dnf shows without -v."""
    return [line for line in (result.stdout + result.stderr).splitlines() if 'kernelsplit' in line]


def devices(result, kernel=0):
    return {d['slot'] or d['sysfs_path']: d for d in result.json()['kernels'][kernel]['devices']}


def new_packages(root, kver=NEW):
    return {name[:-len(kver) - 1] for name in root.installed() if name.endswith(kver)}


# --- what a kernel release is ---------------------------------------------------

@pytest.mark.parametrize('on_missing', ['install', 'fail'])
def test_a_kmod_for_a_complete_kernel_changes_nothing(make_root, on_missing):
    root = make_root('split', 'thirdparty', plugin_conf={'on_missing': on_missing})
    root.install('kernel-' + NEW, 'kernel-drivers-sriov-' + NEW)
    before = root.installed()
    installing = root.dnf('-y', 'install', 'kmod-foo', host=SRIOV)
    assert installing.returncode == 0, installing
    assert said(installing) == []
    assert root.installed() == before | {'kmod-foo-1.0-1.x86_64'}
    root.depmod()
    removing = root.dnf('-y', 'remove', 'kmod-foo', host=SRIOV)
    assert removing.returncode == 0, removing
    assert said(removing) == []
    assert root.installed() == before


def test_kabi_stablelists_are_not_a_kernel(make_root):
    root = make_root('split', 'thirdparty')
    root.install('kernel-' + NEW, 'kernel-drivers-sriov-' + NEW)
    installing = root.dnf('-y', 'install', 'kernel-abi-stablelists', host=SRIOV)
    assert installing.returncode == 0, installing
    assert said(installing) == []
    assert (root.root / 'lib/modules/kabi-rhel90').is_dir()
    every = root.check('--json', '--all-kernels', host=SRIOV)
    assert every.returncode == 0, every
    assert [k['kernel'] for k in every.json()['kernels']] == [NEW]
    table = root.check(host=SRIOV)
    assert table.returncode == 0, table
    assert 'kabi' not in table.stdout
    assert table.stdout.startswith('Kernel %s (default boot kernel' % NEW)


def test_a_leftover_kmod_does_not_make_a_kernel(make_root):
    root = make_root('split', 'thirdparty')
    root.install('kernel-' + NEW, 'kernel-drivers-sriov-' + NEW)
    # kmod-baz-550.54 for 6.5.0-1, a kernel that is not installed: its version is
    # newer than any kernel's, and it owns /lib/modules/6.5.0-1.x86_64/extra.
    installing = root.dnf('-y', 'install', 'kmod-baz', host=SRIOV)
    assert installing.returncode == 0, installing
    assert said(installing) == []
    every = root.check('--json', '--all-kernels', host=SRIOV)
    assert every.returncode == 0, every
    assert [(k['kernel'], k['default']) for k in every.json()['kernels']] == [(NEW, True)]


# --- the default boot kernel ------------------------------------------------------

def bls_entries(root, *kvers):
    entries = root.root / 'boot/loader/entries'
    entries.mkdir(parents=True, exist_ok=True)
    for kver in kvers:
        (entries / ('%s-%s.conf' % (MACHINE_ID, kver))).write_text(
            'title Fedora Linux (%s)\nversion %s\nlinux /vmlinuz-%s\ninitrd /initramfs-%s.img\n'
            'options root=UUID=0b3c ro\ngrub_users $grub_users\ngrub_class fedora\n'
            % (kver, kver, kver, kver))


def grubenv(root, **values):
    """GRUB's environment block: 1024 bytes, '#'-padded, as grub2-editenv writes it."""
    text = '# GRUB Environment Block\n' + ''.join('%s=%s\n' % kv for kv in values.items())
    path = root.root / 'boot/grub2/grubenv'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + '#' * (1024 - len(text)))
    return path


def test_the_default_boot_kernel_comes_from_the_bootloader(make_root):
    root = make_root('split')
    root.install('kernel-' + OLD, 'kernel-drivers-sriov-' + OLD, 'kernel-core-' + NEW)
    newest = root.check('--json', host=SRIOV)
    assert newest.returncode == 1, newest
    assert (newest.json()['default_kernel'], newest.json()['default_from']) == (NEW, 'newest')

    bls_entries(root, OLD, NEW)
    env = grubenv(root, saved_entry='%s-%s' % (MACHINE_ID, OLD), boot_success='1')
    pinned = root.check('--json', host=SRIOV)
    assert pinned.returncode == 0, pinned
    doc = pinned.json()
    assert (doc['default_kernel'], doc['default_from']) == (OLD, 'bls')
    assert [(k['kernel'], k['default']) for k in doc['kernels']] == [(OLD, True)]
    table = root.check(host=SRIOV)
    assert table.stdout.startswith('Kernel %s (default boot kernel: bootloader entry %s-%s)'
                                   % (OLD, MACHINE_ID, OLD)), table
    every = root.check('--json', '--all-kernels', host=SRIOV)
    assert every.returncode == 0, every
    assert [(k['kernel'], k['default']) for k in every.json()['kernels']] == \
        [(OLD, True), (NEW, False)]

    # systemd-boot: loader.conf's default, a glob over the entries
    env.unlink()
    (root.root / 'boot/loader/loader.conf').write_text('timeout 3\ndefault %s-6.8*\n' % MACHINE_ID)
    sdboot = root.check('--json', host=SRIOV)
    assert (sdboot.json()['default_kernel'], sdboot.json()['default_from']) == (OLD, 'bls')
    assert sdboot.returncode == 0, sdboot


def test_a_bootloader_default_that_is_not_installed_falls_back_to_the_newest(make_root):
    root = make_root('split')
    root.install('kernel-' + OLD, 'kernel-drivers-sriov-' + OLD, 'kernel-core-' + NEW)
    bls_entries(root, OLD, NEW, '5.14.0-1.x86_64')
    grubenv(root, saved_entry='%s-5.14.0-1.x86_64' % MACHINE_ID)
    result = root.check('--json', host=SRIOV)
    doc = result.json()
    assert (doc['default_kernel'], doc['default_from']) == (NEW, 'newest')
    assert any('5.14.0-1.x86_64' in note and 'not installed' in note for note in doc['notes'])
    assert result.returncode == 1


def test_check_kernel_judges_the_chosen_release(make_root):
    root = make_root('split')
    root.install('kernel-' + OLD, 'kernel-drivers-sriov-' + OLD, 'kernel-core-' + NEW)
    old = root.check('--json', '--kernel', OLD, host=SRIOV)
    assert old.returncode == 0, old
    assert [(k['kernel'], k['default']) for k in old.json()['kernels']] == [(OLD, False)]
    new = root.check('--kernel', NEW, host=SRIOV)
    assert new.returncode == 1, new
    assert 'dnf install kernel-drivers-%s kernel-drivers-sriov-%s' % (NEW, NEW) in new.stdout


def test_check_kernel_on_a_release_that_is_only_in_the_repositories(make_root):
    root = make_root('split')
    root.install('kernel-' + OLD, 'kernel-drivers-sriov-' + OLD)
    ahead = root.check('--json', '--kernel', NEW, host=SRIOV)
    assert ahead.returncode == 1, ahead
    kernel = ahead.json()['kernels'][0]
    assert (kernel['kernel'], kernel['default'], kernel['installed']) == (NEW, False, False)
    assert kernel['install'] == ['kernel-core-' + NEW, 'kernel-drivers-' + NEW,
                                 'kernel-drivers-sriov-' + NEW]


def test_check_kernel_that_nothing_knows_is_an_error(make_root):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    result = root.check('--json', '--kernel', '1.2.3-4.x86_64', host=SRIOV)
    assert result.returncode == 3, result
    error = result.json()['error']
    assert '1.2.3-4.x86_64' in error and NEW in error


# --- what a device needs ------------------------------------------------------------

def test_drivers_built_into_the_running_kernel_are_needs(make_root):
    root = make_root('split')
    root.install('kernel-core-' + OLD)
    before = root.check('--json', host=BUILTIN_DRIVERS)
    nic = devices(before)['0000:3b:00.0']
    assert (nic['driver'], nic['modules'], nic['status']) == ('i40e', ['i40e'], 'missing')
    result = root.dnf('-y', 'upgrade', host=BUILTIN_DRIVERS)
    assert result.returncode == 0, result
    root.depmod()
    assert new_packages(root) == {'kernel-core', 'kernel-drivers', 'kernel-drivers-sriov',
                                  'kernel-drivers-gpu'}
    after = root.check('--json', host=BUILTIN_DRIVERS)
    assert after.returncode == 0, after
    bridge = devices(after)['0000:00:1d.0']        # pcieport: built in, no package
    assert bridge['status'] == 'none'


def test_every_installed_kernels_index_is_consulted(make_root):
    # 6.8.0-1 has every driver this host needs; 6.9.1-1, the newest, lacks -sriov and -gpu.
    # Its index cannot know i40e or nouveau: the old kernel's can.
    root = make_root('split')
    root.install('kernel-' + OLD, 'kernel-drivers-sriov-' + OLD, 'kernel-drivers-gpu-' + OLD,
                 'kernel-' + NEW)
    result = root.check('--json', host=COREONLY)
    assert result.returncode == 1, result
    rows = devices(result)
    assert (rows['0000:3b:00.0']['modules'], rows['0000:3b:00.0']['status'],
            rows['0000:3b:00.0']['packages']) == (['i40e'], 'missing',
                                                  ['kernel-drivers-sriov-' + NEW])
    assert rows['0000:01:00.0']['modules'] == ['nouveau']
    assert result.json()['kernels'][0]['install'] == ['kernel-drivers-gpu-' + NEW,
                                                      'kernel-drivers-sriov-' + NEW]


# --- statuses and exit codes ---------------------------------------------------------

def test_statuses_say_what_each_device_needs(make_root):
    # inspect mode off: the packages without modalias() provides stay unread
    root = make_root('split', plugin_conf={'inspect': 'never'})
    root.install('kernel-core-' + NEW)
    vm = root.check('--json', host=KVM)
    assert vm.returncode == 0, vm
    rows = devices(vm)
    assert rows['0000:00:03.0']['status'] == 'none'           # virtio-pci: built in
    assert rows['/sys/devices/pci0000:00/0000:00:03.0/virtio0']['status'] == 'ok'

    # a core-only bare-metal host on repos without modalias() provides
    core = root.check('--json', host=COREONLY)
    assert core.returncode == 2, core
    rows = devices(core)
    nic = rows['0000:3b:00.0']
    assert nic['status'] == 'unknown'
    assert 'kernel-drivers-sriov-' + NEW in nic['reason'] and 'inspect = never' in nic['reason']
    assert rows['0000:00:1d.0']['status'] == 'none'            # a bridge
    assert rows['0000:02:00.0']['status'] == 'ok'              # nvme, in kernel-core
    table = root.check(host=COREONLY)
    assert table.returncode == 2
    assert 'unsupported' not in table.stdout
    assert 'unknown' in next(line for line in table.stdout.splitlines()
                             if line.startswith('0000:3b:00.0'))


def test_a_driver_no_enabled_repository_has_is_unsupported(make_root):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    result = root.check('--json', '--disablerepo=*', host=SRIOV)
    assert result.returncode == 1, result
    nic = devices(result)['0000:3b:00.0']
    assert (nic['status'], nic['absent']) == ('unsupported', ['i40e'])


def test_a_check_that_cannot_look_exits_3_with_a_json_error(make_root):
    root = make_root('split', plugin_conf={'hardware_in_installroot': 'no'})
    root.install('kernel-core-' + NEW)
    result = root.check('--json', host=SRIOV)
    assert result.returncode == 3, result
    assert 'hardware_in_installroot' in result.json()['error']
    plain = root.check(host=SRIOV)
    assert plain.returncode == 3 and 'hardware_in_installroot' in plain.stderr


# --- a needed package that cannot be added ---------------------------------------------

def test_a_conflicting_driver_package_refuses_when_its_kernel_becomes_the_default(make_root):
    root = make_root('mono-split', 'thirdparty')
    root.install('kernel-' + OLD, 'vendor-i40e')
    before = root.installed()
    result = root.dnf('-y', 'upgrade', host=SRIOV)
    assert result.returncode == 1, result
    message = result.stderr
    assert 'kernel-drivers-sriov-' + NEW in message and 'vendor-i40e' in message
    assert '0000:3b:00.0 [8086:1572]' in message and 'i40e' in message
    assert 'default boot kernel' in message
    assert '--disableplugin=kernelsplit' in message and 'on_missing=warn' in message
    assert root.installed() == before


def test_a_conflicting_driver_package_only_warns_under_warn(make_root):
    root = make_root('mono-split', 'thirdparty', plugin_conf={'on_missing': 'warn'})
    root.install('kernel-' + OLD, 'vendor-i40e')
    result = root.dnf('-y', 'upgrade', host=SRIOV)
    assert result.returncode == 0, result
    assert 'kernel-' + NEW in root.installed()


def test_a_conflict_on_a_kernel_that_does_not_become_the_default_warns(make_root):
    root = make_root('mono-split', 'thirdparty')
    root.install('kernel-' + OLD, 'vendor-i40e')
    # Fedora's /etc/sysconfig/kernel: new kernels do not become the default entry,
    # and GRUB's saved entry stays on the old kernel.
    (root.root / 'etc/sysconfig').mkdir(parents=True, exist_ok=True)
    (root.root / 'etc/sysconfig/kernel').write_text('UPDATEDEFAULT=no\nDEFAULTKERNEL=kernel-core\n')
    bls_entries(root, OLD)
    grubenv(root, saved_entry='%s-%s' % (MACHINE_ID, OLD))
    result = root.dnf('-y', 'upgrade', host=SRIOV)
    assert result.returncode == 0, result
    assert 'kernel-' + NEW in root.installed()
    assert any('kernel-drivers-sriov-' + NEW in line and 'could not be added' in line
               for line in said(result)), result
