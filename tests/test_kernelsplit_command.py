"""The standalone `kernelsplit` command on this host's dnf 4 (hawkey): the same table, JSON
and exit status as `dnf kernelsplit check`, and `kernelsplit fix` through dnf.

Its dnf5 side (libdnf5, in the sid chroot) is in test_dnf5.py.
"""

import os
import shutil
import tempfile
from pathlib import Path

from harness import AS_NOBODY, PLUGIN_DIR, PYTHON, Host, Installroot, run
from standalone import KERNELSPLIT, kernelsplit, root_options

SRIOV, COREONLY, KVM = Host('baremetal-sriov'), Host('baremetal-coreonly'), Host('kvm-guest')
OLD, NEW = '6.8.0-1.x86_64', '6.9.1-1.x86_64'
# The exec'd dnf loads the plugin from the checkout, as the tests' dnf always does.
PLUGIN = ['--setopt', 'pluginpath=%s' % PLUGIN_DIR]


def test_check_prints_what_dnf_kernelsplit_check_prints(make_root):
    root = make_root('split')
    root.install('kernel-' + OLD, 'kernel-core-' + NEW)
    for args in ([], ['--json'], ['--all-kernels'], ['--json', '--kernel', OLD]):
        ours = kernelsplit(root, 'check', *args, host=SRIOV)
        dnfs = root.check(*args, host=SRIOV)
        assert ours.returncode == dnfs.returncode == 1, (args, ours, dnfs)
        assert ours.stdout == dnfs.stdout, args
    table = kernelsplit(root, 'check', host=SRIOV).stdout
    assert 'dnf install kernel-drivers-%s kernel-drivers-sriov-%s' % (NEW, NEW) in table


def test_exit_status_follows_the_default_kernel(make_root):
    root = make_root('split', plugin_conf={'inspect': 'never'})
    root.install('kernel-core-' + OLD)
    assert kernelsplit(root, 'check', host=COREONLY).returncode == 2      # unknown
    assert kernelsplit(root, 'check', host=KVM).returncode == 0
    assert kernelsplit(root, 'check', host=SRIOV).returncode == 1
    unknown = kernelsplit(root, 'check', '--kernel', '9.9.9-1.x86_64', host=SRIOV)
    assert unknown.returncode == 3 and unknown.stdout == ''
    assert 'kernel 9.9.9-1.x86_64 is neither installed nor in the enabled repositories' \
        in unknown.stderr


def test_nothing_checked_is_3_with_the_reason(make_root):
    root = make_root('split', plugin_conf={'hardware_in_installroot': 'no'})
    root.install('kernel-core-' + NEW)
    text = kernelsplit(root, 'check', host=SRIOV)
    assert text.returncode == 3 and text.stdout == ''
    assert 'hardware_in_installroot=yes' in text.stderr
    doc = kernelsplit(root, 'check', '--json', host=SRIOV)
    assert doc.returncode == 3
    assert doc.json()['exit_status'] == 3 and 'hardware_in_installroot=yes' in doc.json()['error']


def test_bad_input_is_3_and_names_it(make_root):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    root.write_plugin_conf({}, raw='[main]\nhardware_in_installroot = yes\non_missing = maybe\n')
    bad_conf = kernelsplit(root, 'check', host=SRIOV)
    assert bad_conf.returncode == 3, bad_conf
    assert str(root.pluginconfdir / 'kernelsplit.conf') in bad_conf.stderr
    assert "on_missing = 'maybe'" in bad_conf.stderr
    assert 'Traceback' not in bad_conf.stderr
    usage = kernelsplit(root, 'check', '--kernel', host=SRIOV)
    assert usage.returncode == 3 and 'expected one argument' in usage.stderr
    bad_setopt = kernelsplit(root, 'check', '--setopt', 'no_such_option=1', host=SRIOV)
    assert bad_setopt.returncode == 3 and 'no_such_option' in bad_setopt.stderr
    missing = kernelsplit(root, 'check', options=['--installroot', str(root.root), '-c',
                                                  str(root.base / 'nowhere.conf')], host=SRIOV)
    assert missing.returncode == 3 and 'nowhere.conf' in missing.stderr


def test_fix_installs_what_the_default_kernel_lacks_through_dnf(make_root):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    assert kernelsplit(root, 'check', host=SRIOV).returncode == 1
    fix = kernelsplit(root, 'fix', '-y', *PLUGIN, host=SRIOV)
    assert fix.returncode == 0, fix
    # its own lines, then dnf's normal transaction summary
    assert ('kernelsplit: installing kernel-drivers-sriov-%s for 0000:3b:00.0 [8086:1572], '
            '0000:3b:00.1 [8086:1572] (i40e); 0000:3b:02.0 [8086:154c], 0000:3b:02.1 '
            '[8086:154c] (iavf)' % NEW) in fix.stdout
    assert 'Installing:' in fix.stdout and 'Complete!' in fix.stdout
    assert {'kernel-drivers-' + NEW, 'kernel-drivers-sriov-' + NEW} <= root.installed()
    root.depmod()
    assert kernelsplit(root, 'check', host=SRIOV).returncode == 0
    again = kernelsplit(root, 'fix', '-y', *PLUGIN, host=SRIOV)
    assert again.returncode == 0, again
    assert 'nothing to install' in again.stdout and 'Installing:' not in again.stdout


def test_fix_assumeno_shows_the_summary_and_installs_nothing(make_root):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    before = root.installed()
    fix = kernelsplit(root, 'fix', '--assumeno', *PLUGIN, host=SRIOV)
    assert fix.returncode == 1 and 'Operation aborted' in fix.stderr, fix
    assert ' kernel-drivers-sriov ' in fix.stdout[fix.stdout.index('Installing:'):]
    assert root.installed() == before


def test_check_runs_as_non_root(repos):
    base = Path(tempfile.mkdtemp(prefix='kernelsplit-nonroot-', dir='/var/tmp'))
    try:
        os.chmod(base, 0o755)
        root = Installroot(base, {'split': repos['split']})
        root.install('kernel-core-' + NEW)
        root.open_to_all()
        result = kernelsplit(root, 'check', '--json', host=SRIOV, prefix=AS_NOBODY)
        assert result.returncode == 1, result
        rows = {d['slot']: d for d in result.json()['kernels'][0]['devices']}
        assert rows['0000:3b:00.0']['status'] == 'missing'
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_kernelsplit_conf_comes_from_dnfs_pluginconfpath_or_the_option(make_root, tmp_path):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    # dnf 4's pluginconfpath, from the dnf.conf given, as the plugin reads it
    assert kernelsplit(root, 'check', host=SRIOV,
                       options=root_options(root, pluginconfpath=False)).returncode == 1
    other = tmp_path / 'conf.d'
    other.mkdir()
    (other / 'kernelsplit.conf').write_text('[main]\nhardware_in_installroot = no\n')
    refused = kernelsplit(root, 'check', '--pluginconfpath', str(other), host=SRIOV,
                          options=root_options(root, pluginconfpath=False))
    assert refused.returncode == 3 and str(other / 'kernelsplit.conf') in refused.stderr


def test_a_copy_of_the_checkout_runs_without_pythonpath(make_root, tmp_path):
    copy = tmp_path / 'elsewhere' / 'dnf-plugin-kernelsplit'
    shutil.copytree(PLUGIN_DIR, copy, ignore=shutil.ignore_patterns('__pycache__'))
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    assert 'PYTHONPATH' not in root.env
    result = run(SRIOV.wrap([PYTHON, str(copy / 'kernelsplit'), 'check', '--json', '-v',
                             *root_options(root)]), root.env)
    assert result.returncode == 1, result
    assert 'kernelsplit: package manager: dnf4' in result.stderr
    assert str(copy / 'dnf_kernelsplit') in result.stderr       # the copy's package ran
    assert os.access(KERNELSPLIT, os.X_OK)
