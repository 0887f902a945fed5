"""The transaction hook, through the real dnf CLI under emulated hardware."""

import os

import pytest

import kernelrepo
from harness import Host, Installroot

SRIOV, GPU_WS, VFIO, KVM = (Host('baremetal-sriov'), Host('workstation-gpu'), Host('vfio-host'),
                            Host('kvm-guest'))
BOTH, COREONLY = Host('baremetal-sriov-gpu'), Host('baremetal-coreonly')
OLD, NEW = '6.8.0-1.x86_64', '6.9.1-1.x86_64'

SRIOV_LINE = ('kernelsplit: adding kernel-drivers-sriov-%s for 0000:3b:00.0 [8086:1572], '
              '0000:3b:00.1 [8086:1572] (i40e); 0000:3b:02.0 [8086:154c], '
              '0000:3b:02.1 [8086:154c] (iavf)' % NEW)


def transaction_table(result):
    """What dnf printed from 'Dependencies resolved.' on: the transaction, byte for byte."""
    return result.stdout[result.stdout.index('Dependencies resolved.'):]


def added_lines(result):
    return [line for line in result.stdout.splitlines() if line.startswith('kernelsplit: adding')]


def shadowing(tmp_path, module, source):
    """An environment where MODULE (pyudev, sitecustomize) is SOURCE: a fault on purpose."""
    shim = tmp_path / 'shim'
    shim.mkdir(exist_ok=True)
    (shim / ('%s.py' % module)).write_text(source)
    return {'PYTHONPATH': str(shim)}


def upgraded(root, host, *args):
    result = root.dnf('-y', 'upgrade', *args, host=host)
    assert result.returncode == 0, result
    root.depmod()
    return result


# --- monolithic -> split ---------------------------------------------------

@pytest.mark.parametrize('host, extra', [
    (SRIOV, {'kernel-drivers-sriov'}),
    (GPU_WS, {'kernel-drivers-gpu'}),
    (VFIO, {'kernel-drivers-passthrough'}),
    (BOTH, {'kernel-drivers-sriov', 'kernel-drivers-gpu'}),
    (KVM, set()),
])
def test_monolithic_to_split_adds_what_the_hardware_needs(make_root, host, extra):
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    result = upgraded(root, host)
    new = {name.rsplit('-', 2)[0] for name in root.installed() if name.endswith(NEW)}
    assert new == {'kernel', 'kernel-core', 'kernel-drivers'} | extra
    assert len(added_lines(result)) == len(extra)
    assert root.check(host=host).returncode == 0


def test_the_added_line_names_devices_and_modules(make_root):
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    result = upgraded(root, SRIOV)
    assert added_lines(result) == [SRIOV_LINE]


def test_a_vm_gets_byte_for_byte_the_transaction_dnf_makes_alone(make_root):
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    with_plugin = root.dnf('--assumeno', 'upgrade', host=KVM)
    without = root.dnf('--assumeno', 'upgrade', host=KVM, plugin=False)
    assert transaction_table(with_plugin) == transaction_table(without)
    assert 'kernel-core' in transaction_table(without)
    assert 'kernelsplit' not in with_plugin.stdout + with_plugin.stderr
    assert (with_plugin.returncode, with_plugin.stderr) == (without.returncode, without.stderr)


def test_assumeno_shows_the_added_packages_and_installs_nothing(make_root):
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    before = root.installed()
    result = root.dnf('--assumeno', 'upgrade', host=SRIOV)
    assert result.returncode == 1 and 'Operation aborted' in result.stderr
    summary = result.stdout[result.stdout.index('Installing:'):]
    assert 'kernel-drivers-sriov' in summary and 'kernel-drivers-gpu' not in summary
    assert SRIOV_LINE in result.stdout
    assert root.installed() == before


# --- the split deepens ------------------------------------------------------

def test_split_deepens_sriov_moves_out_of_kernel_drivers(make_root):
    root = make_root('deepen')
    root.install('kernel-' + OLD)
    assert {n for n in root.installed()} == {'kernel-' + OLD, 'kernel-core-' + OLD,
                                           'kernel-drivers-' + OLD}
    result = upgraded(root, SRIOV)
    assert added_lines(result) == [SRIOV_LINE]
    assert 'kernel-drivers-sriov-' + NEW in root.installed()
    # a workstation on the same upgrade needs nothing of -sriov
    other = make_root('deepen')
    other.install('kernel-' + OLD)
    assert added_lines(upgraded(other, GPU_WS)) == [
        'kernelsplit: adding kernel-drivers-gpu-%s for 0000:01:00.0 [10de:1e84] (nouveau)' % NEW]


def test_fedora_names_work_the_same(make_root):
    root = make_root('fedora')
    old, new = '6.8.0-200.fc40.x86_64', '6.9.1-200.fc40.x86_64'
    root.install('kernel-' + old)
    result = upgraded(root, SRIOV)
    assert [l.split(' for ')[0] for l in added_lines(result)] == [
        'kernelsplit: adding kernel-modules-extra-' + new]
    assert root.check(host=SRIOV).returncode == 0


# --- core-only: exact mode --------------------------------------------------

def test_core_only_host_exact_mode_adds_by_modalias(make_root):
    root = make_root('exact')
    root.install('kernel-core-' + OLD)
    assert root.check(host=COREONLY).returncode == 1      # exact mode in check too
    result = upgraded(root, COREONLY)
    lines = added_lines(result)
    assert lines == [
        'kernelsplit: adding kernel-drivers-%s for 0000:01:00.1 [10de:10f8] (snd_hda_intel); '
        '0000:03:00.0 [1a03:2000] (ast); 0000:18:00.0 [1000:005d] (megaraid_sas)' % NEW,
        'kernelsplit: adding kernel-drivers-gpu-%s for 0000:01:00.0 [10de:1e84] (nouveau)' % NEW,
        'kernelsplit: adding kernel-drivers-sriov-%s for 0000:3b:00.0 [8086:1572], '
        '0000:3b:00.1 [8086:1572] (i40e)' % NEW,
    ]
    assert 'kernel-drivers-passthrough-' + NEW not in root.installed()
    check = root.check('--json', host=COREONLY)
    assert check.returncode == 0, check


def test_exact_mode_answers_are_read_back_on_the_next_run(make_root):
    """--assumeno, then again: the second run reads the answers the first one kept."""
    root = make_root('exact')
    root.install('kernel-core-' + OLD)
    first = root.dnf('-v', '--assumeno', 'upgrade', host=COREONLY)
    second = root.dnf('-v', '--assumeno', 'upgrade', host=COREONLY)
    cachedir = root.root / 'var/cache/dnf/kernelsplit'
    assert 'kernelsplit: exact mode: 0 answers from %s, 4 computed' % cachedir in first.stdout
    assert 'kernelsplit: exact mode: 4 answers from %s, 0 computed' % cachedir in second.stdout
    assert len(added_lines(first)) == 3 and added_lines(second) == added_lines(first)
    assert transaction_table(second) == transaction_table(first)


def test_install_kernel_core_alone_gets_the_same_drivers(make_root):
    root = make_root('exact')
    root.install('kernel-core-' + OLD)
    result = root.dnf('-y', 'install', 'kernel-core-' + NEW, host=COREONLY)
    assert result.returncode == 0, result
    root.depmod()
    new = {name.rsplit('-', 2)[0] for name in root.installed() if name.endswith(NEW)}
    assert new == {'kernel-core', 'kernel-drivers', 'kernel-drivers-gpu', 'kernel-drivers-sriov'}
    assert root.check(host=COREONLY).returncode == 0


def test_install_kernel_core_alone_from_a_full_kernel(make_root):
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    result = root.dnf('-y', 'install', 'kernel-core-' + NEW, host=SRIOV)
    assert result.returncode == 0, result
    assert {n for n in root.installed() if n.endswith(NEW)} == {
        'kernel-core-' + NEW, 'kernel-drivers-' + NEW, 'kernel-drivers-sriov-' + NEW}


def test_with_inspect_never_the_hook_says_what_it_cannot_judge(make_root):
    root = make_root('split', plugin_conf={'inspect': 'never'})
    root.install('kernel-core-' + OLD)
    result = upgraded(root, COREONLY)
    assert added_lines(result) == []
    line = next(l for l in result.stdout.splitlines() if 'cannot judge' in l)
    assert line.startswith('kernelsplit: cannot judge 6 device(s) without a driver for kernel '
                           + NEW)
    assert '0000:3b:00.0 [8086:1572]' in line and 'inspect = never' in line
    assert 'kernel-drivers-sriov-' + NEW in line
    check = root.check('--json', host=COREONLY)
    rows = {d['slot']: d for d in check.json()['kernels'][0]['devices']}
    assert rows['0000:3b:00.0']['judged'] is False
    assert rows['0000:02:00.0']['judged'] is True
    assert 'cannot be judged' in root.check(host=COREONLY).stdout


# --- removals ---------------------------------------------------------------

def test_removing_a_needed_subpackage_is_refused(make_root):
    root = make_root('split')
    root.install('kernel-' + NEW, 'kernel-drivers-sriov-' + NEW)
    before = root.installed()
    result = root.dnf('-y', 'remove', 'kernel-drivers-sriov-' + NEW, host=SRIOV)
    assert result.returncode == 1
    message = result.stderr
    assert ('removing kernel-drivers-sriov-%s would leave 0000:3b:00.0 [8086:1572] without i40e '
            'on kernel %s' % (NEW, NEW)) in message
    assert 'ignore_devices' in message and 'on_missing=warn' in message
    assert str(root.pluginconfdir / 'kernelsplit.conf') in message
    assert root.installed() == before


def test_removing_an_unneeded_subpackage_passes_untouched(make_root):
    root = make_root('split')
    root.install('kernel-' + NEW, 'kernel-drivers-sriov-' + NEW, 'kernel-drivers-gpu-' + NEW)
    with_plugin = root.dnf('--assumeno', 'remove', 'kernel-drivers-gpu-' + NEW, host=SRIOV)
    without = root.dnf('--assumeno', 'remove', 'kernel-drivers-gpu-' + NEW, host=SRIOV,
                       plugin=False)
    assert transaction_table(with_plugin) == transaction_table(without)
    assert with_plugin.returncode == without.returncode
    assert root.dnf('-y', 'remove', 'kernel-drivers-gpu-' + NEW, host=SRIOV).returncode == 0
    assert 'kernel-drivers-gpu-' + NEW not in root.installed()


def test_removing_a_whole_old_kernel_passes(make_root):
    root = make_root('split')
    root.install('kernel-' + OLD, 'kernel-drivers-sriov-' + OLD, 'kernel-' + NEW,
                 'kernel-drivers-sriov-' + NEW)
    olds = sorted(n for n in root.installed() if n.endswith(OLD))
    result = root.dnf('-y', 'remove', *olds, host=SRIOV)
    assert result.returncode == 0, result
    assert not any(n.endswith(OLD) for n in root.installed())


def test_removal_on_the_running_kernel_says_so(tmp_path):
    running = os.uname().release
    # this machine's `uname -r` may not be a valid rpm version: no *-uname-r provides
    rel = kernelrepo.split_release('9.9.9', '1', kver=running, uname_r_provides=False)
    repo = kernelrepo.build_repo([rel], tmp_path / 'repo')
    root = Installroot(tmp_path / 'ir', {'r': repo})
    root.install('kernel-9.9.9-1.x86_64', 'kernel-drivers-sriov-9.9.9-1.x86_64')
    result = root.dnf('-y', 'remove', 'kernel-drivers-sriov-9.9.9-1.x86_64', host=SRIOV)
    assert result.returncode == 1
    assert 'without i40e on kernel %s (the running kernel)' % running in result.stderr


# --- on_missing ---------------------------------------------------------------

def test_on_missing_warn_only_says_what_it_would_add(make_root):
    root = make_root('mono-split', plugin_conf={'on_missing': 'warn'})
    root.install('kernel-' + OLD)
    result = upgraded(root, SRIOV)
    assert added_lines(result) == []
    assert ('kernelsplit: not adding kernel-drivers-sriov-%s (on_missing=warn): kernel %s would '
            'boot without a driver for 0000:3b:00.0 [8086:1572]' % (NEW, NEW)) in result.stderr
    assert 'kernel-drivers-sriov-' + NEW not in root.installed()


def test_on_missing_warn_lets_a_stranding_removal_through_loudly(make_root):
    root = make_root('split', plugin_conf={'on_missing': 'warn'})
    root.install('kernel-core-' + NEW, 'kernel-drivers-sriov-' + NEW)
    removal = root.dnf('-y', 'remove', 'kernel-drivers-sriov-' + NEW, host=SRIOV)
    assert removal.returncode == 0, removal
    assert ('kernelsplit: removing kernel-drivers-sriov-%s would leave 0000:3b:00.0 [8086:1572] '
            'without i40e on kernel %s (on_missing=warn)' % (NEW, NEW)) in removal.stderr
    assert root.installed() == {'kernel-core-' + NEW}


def test_on_missing_fail_refuses_with_the_list(make_root):
    root = make_root('mono-split', plugin_conf={'on_missing': 'fail'})
    root.install('kernel-' + OLD)
    before = root.installed()
    result = root.dnf('-y', 'upgrade', host=BOTH)
    assert result.returncode == 1
    assert 'kernel %s needs kernel-drivers-gpu-%s for 0000:01:00.0 [10de:1e84] (nouveau)' % (
        NEW, NEW) in result.stderr
    assert 'dnf install kernel-drivers-gpu-%s kernel-drivers-sriov-%s' % (NEW, NEW) in result.stderr
    assert root.installed() == before
    # the way out works: install them in the same transaction
    ok = root.dnf('-y', 'install', 'kernel-' + NEW, 'kernel-drivers-gpu-' + NEW,
                  'kernel-drivers-sriov-' + NEW, host=BOTH)
    assert ok.returncode == 0, ok


@pytest.mark.parametrize('policy, status', [('install', 0), ('fail', 1)])
def test_needed_package_missing_from_the_repos(make_root, policy, status):
    root = make_root('mono-split', plugin_conf={'on_missing': policy})
    root.install('kernel-' + OLD)
    result = root.dnf('-y', 'upgrade', '--exclude=kernel-drivers-sriov', host=SRIOV)
    assert result.returncode == status, result
    text = result.stderr
    assert ('no package of kernel %s in the enabled repositories ships i40e, needed by '
            '0000:3b:00.0 [8086:1572]' % NEW) in text
    assert ('kernel-' + NEW in root.installed()) == (policy == 'install')


# --- where it steps aside -------------------------------------------------------

def test_installroot_without_hardware_in_installroot_is_untouched(make_root):
    root = make_root('mono-split', plugin_conf={'hardware_in_installroot': 'no'})
    root.install('kernel-' + OLD)
    with_plugin = root.dnf('--assumeno', 'upgrade', host=SRIOV)
    without = root.dnf('--assumeno', 'upgrade', host=SRIOV, plugin=False)
    assert transaction_table(with_plugin) == transaction_table(without)
    assert 'kernel-drivers-sriov' not in with_plugin.stdout


def without_pyudev(tmp_path):
    return SRIOV, shadowing(tmp_path, 'pyudev', 'raise ImportError("not here")\n')


def without_sys(tmp_path):
    # the umockdev preload pointed at a directory with no sys/ in it
    (tmp_path / 'nosys').mkdir()
    return None, {'LD_PRELOAD': 'libumockdev-preload.so.0', 'UMOCKDEV_DIR': str(tmp_path / 'nosys')}


@pytest.mark.parametrize('machine, problem', [(without_pyudev, 'pyudev is not available'),
                                              (without_sys, '/sys is not mounted')])
def test_without_hardware_the_transaction_goes_on(make_root, tmp_path, machine, problem):
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    host, env = machine(tmp_path)
    result = root.dnf('-y', 'upgrade', host=host, env=env)
    assert result.returncode == 0, result
    assert problem in result.stderr
    assert 'kernel-' + NEW in root.installed()


def test_without_libkmod_bound_drivers_still_count(make_root, tmp_path):
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    result = root.dnf('-y', 'upgrade', host=SRIOV, env=shadowing(tmp_path, 'sitecustomize', (
        'import ctypes\n'
        'class NoKmod(ctypes.CDLL):\n'
        '    def __init__(self, name, *args, **kw):\n'
        '        if name and "kmod" in str(name):\n'
        '            raise OSError("%s: cannot open shared object file" % name)\n'
        '        super().__init__(name, *args, **kw)\n'
        'ctypes.CDLL = NoKmod\n')))
    assert result.returncode == 0, result
    assert added_lines(result) == [SRIOV_LINE]          # from the drivers' module links
    assert 'pcieport' not in result.stderr               # no index: built-ins are not lacking


def test_an_internal_error_does_not_break_dnf(make_root, tmp_path):
    # A fault injected into the plugin's own code stands for a bug.
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    # Injected when the plugin imports the module (from where dnf loaded it), not before.
    result = root.dnf('-y', 'upgrade', host=SRIOV, env=shadowing(tmp_path, 'sitecustomize', (
        'import importlib.machinery, sys\n'
        'def broken(*args): raise RuntimeError("injected fault")\n'
        'class Inject:\n'
        '    def find_spec(self, name, path, target=None):\n'
        '        if name != "dnf_kernelsplit.packages":\n'
        '            return None\n'
        '        spec = importlib.machinery.PathFinder.find_spec(name, path)\n'
        '        load = spec.loader.exec_module\n'
        '        def exec_module(module):\n'
        '            load(module)\n'
        '            module.installed_kernels = broken\n'
        '        spec.loader.exec_module = exec_module\n'
        '        return spec\n'
        'sys.meta_path.insert(0, Inject())\n')))
    assert result.returncode == 0, result
    assert 'kernelsplit: internal error, the driver packages of this transaction were not ' \
           'checked: injected fault' in result.stderr
    assert 'kernel-' + NEW in root.installed()


def test_the_re_resolve_keeps_what_weak_dependencies_may_not_pull_in(make_root, repos, tmp_path):
    # app recommends helper; the admin removed helper.  dnf remembers that across an
    # upgrade of app (exclude_from_weak_autodetect); the plugin's re-resolve, which
    # skips recomputing it, must too.
    apps = kernelrepo.plain_repo([('app', '1', ['Recommends: helper']),
                                  ('app', '2', ['Recommends: helper']),
                                  ('helper', '1', [])], tmp_path / 'apps')
    root = Installroot(tmp_path / 'ir', {'mono-split': repos['mono-split'], 'apps': apps},
                       dnf_conf={'install_weak_deps': 'True'})
    root.install('kernel-' + OLD, 'app-1')
    root.dnf('-y', 'remove', 'helper', plugin=False, check=True)
    result = root.dnf('--assumeno', 'upgrade', host=SRIOV)
    table = transaction_table(result)
    assert SRIOV_LINE in result.stdout
    assert 'kernel-drivers-sriov' in table and 'app' in table
    assert 'helper' not in table
    # Without that memory, dnf itself would bring helper back: the check above can fail.
    forgetful = root.dnf('--assumeno', '--setopt=exclude_from_weak_autodetect=False',
                         'upgrade', host=SRIOV)
    assert 'helper' in transaction_table(forgetful)


@pytest.mark.parametrize('command, prefix, listed', [
    # an upgrade: the devices are listed while dnf loads its metadata (from config())
    (('upgrade',), (), 'in the background'),
    # a command that resolves but is not known to bring kernels: from sack() on
    (('repository-packages', 'mono-split', 'upgrade'), (), 'in the background'),
    # one CPU: a child would only take turns with dnf
    (('upgrade',), ('taskset', '-c', '0'), 'in-process'),
])
def test_where_the_devices_are_listed(make_root, command, prefix, listed):
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    result = root.dnf('-v', '--assumeno', *command, host=SRIOV, prefix=prefix)
    assert 'kernelsplit: devices listed %s' % listed in result.stdout, result
    ahead = 'kernelsplit: device needs resolved in the background (index: %s)' % OLD
    assert (ahead in result.stdout) is (listed == 'in the background'), result
    assert SRIOV_LINE in result.stdout
