"""The kernel-install plugin, run by systemd's real kernel-install (Debian 12's, systemd 252)
on an installroot, under emulated hardware; and by the same call in the sid chroot, where
it reads packages through libdnf5 and finds itself in a chroot."""

import shlex
import shutil

import pytest

from harness import PLUGIN_DIR, Host, run
from standalone import Dnf5Root, root_options, wrap_inside

PLUGIN = PLUGIN_DIR / '50-kernelsplit.install'
SRIOV, KVM = Host('baremetal-sriov'), Host('kvm-guest')
NEW = '6.9.1-1.x86_64'
KERNEL_INSTALL = shutil.which('kernel-install')

pytestmark = pytest.mark.skipif(KERNEL_INSTALL is None, reason='no kernel-install (systemd)')

SRIOV_WARNING = ('kernelsplit: kernel %s lacks kernel-drivers-sriov-%s, the driver for '
                 '0000:3b:00.0 [8086:1572], 0000:3b:00.1 [8086:1572] (i40e); 0000:3b:02.0 '
                 '[8086:154c], 0000:3b:02.1 [8086:154c] (iavf); install it with: dnf install '
                 'kernel-drivers-sriov-%s' % (NEW, NEW, NEW))


def kernel_install(root, tmp_path, *args, host=SRIOV, options=None, env=None):
    """`kernel-install add KVER IMAGE` with only this plugin, its /boot in TMP_PATH, and the
    plugin pointed at ROOT through KERNELSPLIT_OPTIONS."""
    boot, conf = tmp_path / 'boot', tmp_path / 'kernel-conf'
    boot.mkdir(exist_ok=True)
    conf.mkdir(exist_ok=True)
    variables = {
        'KERNEL_INSTALL_PLUGINS': str(PLUGIN),
        'KERNEL_INSTALL_CONF_ROOT': str(conf),     # not this machine's install.conf
        'BOOT_ROOT': str(boot),
        'MACHINE_ID': '0123456789abcdef0123456789abcdef',
        'KERNELSPLIT_OPTIONS': shlex.join(options if options is not None else
                                          ['--backend', 'dnf4', *root_options(root)]),
        **(env or {}),
    }
    image = root.root / 'lib' / 'modules' / NEW / 'vmlinuz'
    return run(host.wrap([KERNEL_INSTALL, *args, 'add', NEW, str(image)]),
               {**root.env, **variables})


def test_warns_once_per_lacking_package_naming_the_command(make_root, tmp_path):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    result = kernel_install(root, tmp_path)
    assert result.returncode == 0, result
    lines = result.stderr.splitlines()
    assert SRIOV_WARNING in lines
    assert [l for l in lines if l.startswith('kernelsplit:')] == [
        'kernelsplit: kernel %s lacks kernel-drivers-%s, the driver for 0000:03:00.0 '
        '[1a03:2000] (ast); 0000:18:00.0 [1000:005d] (megaraid_sas); install it with: dnf '
        'install kernel-drivers-%s'
        % (NEW, NEW, NEW), SRIOV_WARNING]


def test_silent_when_everything_is_present(make_root, tmp_path):
    root = make_root('split')
    root.install('kernel-' + NEW, 'kernel-drivers-sriov-' + NEW)
    result = kernel_install(root, tmp_path)
    assert (result.returncode, result.stderr) == (0, ''), result
    vm = make_root('split')
    vm.install('kernel-core-' + NEW)
    assert kernel_install(vm, tmp_path, host=KVM).stderr == ''


def test_silent_in_an_installroot_without_hardware_in_installroot(make_root, tmp_path):
    root = make_root('split', plugin_conf={'hardware_in_installroot': 'no'})
    root.install('kernel-core-' + NEW)
    result = kernel_install(root, tmp_path)
    assert (result.returncode, result.stderr) == (0, ''), result
    verbose = kernel_install(root, tmp_path, '-v')
    assert verbose.returncode == 0
    assert 'kernelsplit: stepping aside: ' in verbose.stdout + verbose.stderr


def test_never_blocks_a_kernel_install(make_root, tmp_path):
    root = make_root('split', plugin_conf={'on_missing': 'perhaps'})
    root.install('kernel-core-' + NEW)
    bad_conf = kernel_install(root, tmp_path)
    assert bad_conf.returncode == 0
    assert "on_missing = 'perhaps' is not valid" in bad_conf.stderr
    good = make_root('split')
    good.install('kernel-core-' + NEW)
    no_pyudev = tmp_path / 'nopyudev'
    no_pyudev.mkdir()
    (no_pyudev / 'pyudev.py').write_text('raise ImportError("no pyudev here")\n')
    assert kernel_install(good, tmp_path, env={'PYTHONPATH': str(no_pyudev)}) \
        .returncode == 0
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'dnf_kernelsplit').mkdir()   # an installation missing its modules
    shutil.copy(PLUGIN, broken / PLUGIN.name)
    (broken / 'dnf_kernelsplit' / '__init__.py').write_text('')
    result = run(SRIOV.wrap([str(broken / PLUGIN.name), 'add', NEW, '/nowhere', '/vmlinuz']),
                 good.env)
    assert result.returncode == 0 and 'cannot run' in result.stderr, result


def test_through_libdnf5_in_the_sid_chroot(sid, tmp_path, repos):
    """Packages read through libdnf5; silent in what looks like a container."""
    root = Dnf5Root(sid, tmp_path / 'r', {'split': repos['split']})
    root.install('kernel-core-' + NEW)
    image = root.root / 'lib' / 'modules' / NEW / 'vmlinuz'
    call = ['python3', str(PLUGIN), 'add', NEW, str(tmp_path / 'entry'), str(image)]
    options = shlex.join(['--backend', 'dnf5', *root.ks_options()])
    result = root.run(wrap_inside(SRIOV, call), env={'KERNELSPLIT_OPTIONS': options})
    assert result.returncode == 0, result
    assert SRIOV_WARNING.replace('dnf install', 'dnf5 install') in result.stderr.splitlines()
    # the chroot's own root, with podman's marker: a container's kernels are never booted
    (sid.upper / 'run').mkdir(exist_ok=True)
    (sid.upper / 'run' / '.containerenv').write_text('')
    quiet = root.run(wrap_inside(SRIOV, call))
    assert (quiet.returncode, quiet.stderr) == (0, ''), quiet
    verbose = root.run(wrap_inside(SRIOV, call), env={'KERNEL_INSTALL_VERBOSE': '1'})
    assert 'kernelsplit: stepping aside: this looks like a container: /run/.containerenv ' \
        'exists (podman)' in verbose.stderr, verbose


def test_an_image_built_in_a_chroot_is_left_alone(sid, tmp_path):
    """A chroot's / is not PID 1's: systemd-detect-virt --chroot's test."""
    probe = sid.run(['python3', '-c', 'import os; os.stat("/proc/1/root")'])
    if probe.returncode != 0:
        pytest.skip('this machine hides /proc/1/root from root (systemd-detect-virt --chroot '
                    'cannot tell either): %s' % probe.stderr.strip().splitlines()[-1])
    call = ['python3', str(PLUGIN), 'add', NEW, str(tmp_path / 'entry'), '/vmlinuz']
    result = sid.run(wrap_inside(SRIOV, call), env={'KERNEL_INSTALL_VERBOSE': '1'})
    assert result.returncode == 0
    assert 'kernelsplit: stepping aside: running in a chroot' in result.stderr, result
