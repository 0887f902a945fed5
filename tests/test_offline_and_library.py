"""system-upgrade's two phases, dnf-automatic, and dnf as a library (cli is None)."""

import json
import textwrap

import pytest

import dnfplugins
from harness import DBPATH, PLUGIN_DIR, PYTHON, Host, run

SRIOV, BOTH = Host('baremetal-sriov'), Host('baremetal-sriov-gpu')
OLD, NEW = '6.8.0-1.x86_64', '6.9.1-1.x86_64'


@pytest.fixture(scope='module')
def system_upgrade():
    try:
        return dnfplugins.system_upgrade()
    except dnfplugins.Unavailable as exc:
        pytest.skip(str(exc))


def test_system_upgrade_download_acts_and_the_offline_phase_is_left_alone(make_root,
                                                                          system_upgrade):
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    env = {**root.env, 'DNF_SYSTEM_UPGRADE_NO_REBOOT': '1',
           'PYTHONPATH': str(system_upgrade.python_path)}    # dnfpluginscore, for system_upgrade.py

    def dnf(*args, host):
        command = root.dnf_command(*args)
        command[command.index('--setopt=pluginpath=%s' % PLUGIN_DIR)] = \
            '--setopt=pluginpath=%s,%s' % (PLUGIN_DIR, system_upgrade.plugin_dir)
        result = run(host.wrap(command), env)
        assert result.returncode == 0, result
        return result

    download = dnf('-y', 'system-upgrade', 'download', '--releasever', '2', host=SRIOV)
    assert 'kernelsplit: adding kernel-drivers-sriov-%s' % NEW in download.stdout
    saved = json.loads((root.root / 'var/lib/dnf/system-upgrade/'
                        'system-upgrade-transaction.json').read_text())
    assert 'kernel-drivers-sriov-' + NEW in {p['nevra'] for p in saved['rpms']}
    dnf('-y', 'system-upgrade', 'reboot', host=SRIOV)
    # The machine that boots into the offline phase now also has a GPU: had the
    # plugin acted there, it would add kernel-drivers-gpu to a replayed transaction.
    offline = dnf('system-upgrade', 'upgrade', host=BOTH)
    assert 'kernelsplit:' not in offline.stdout + offline.stderr
    installed = root.installed()
    assert 'kernel-drivers-sriov-' + NEW in installed
    assert 'kernel-drivers-gpu-' + NEW not in installed


def test_dnf_automatic_adds_the_driver_packages(make_root, tmp_path):
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    conf = tmp_path / 'automatic.conf'
    conf.write_text(textwrap.dedent('''\
        [commands]
        upgrade_type = default
        random_sleep = 0
        network_online_timeout = 0
        download_updates = yes
        apply_updates = yes
        [emitters]
        emit_via = stdio
        [base]
        installroot = %s
        cachedir = %s
        reposdir = %s
        pluginpath = %s
        pluginconfpath = %s
        gpgcheck = 0
        install_weak_deps = 0
        ''' % (root.root, root.root / 'var/cache/dnf', root.reposdir, PLUGIN_DIR,
               root.pluginconfdir)))
    command = [PYTHON, '-c', 'import sys, dnf.automatic.main as m; sys.exit(m.main(sys.argv[1:]))',
               str(conf)]
    # dnf-automatic reads the release version before [base]: no system-release here
    result = run(SRIOV.wrap(command), {**root.env, 'DNF_VAR_releasever': '1'})
    assert result.returncode == 0, result
    assert 'kernel-drivers-sriov-' + NEW in root.installed()
    assert 'kernel-drivers-gpu-' + NEW not in root.installed()


def test_dnf_as_a_library_without_cli(make_root):
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    script = textwrap.dedent('''
        import dnf, rpm
        rpm.addMacro('_dbpath', %r)
        with dnf.Base() as base:
            base.conf.read(%r)
            base.conf.installroot = %r
            base.conf.releasever = '1'
            base.conf.cachedir = %r
            base.conf.pluginpath = [%r]
            base.init_plugins(cli=None)
            base.read_all_repos()
            base.configure_plugins()
            base.fill_sack()
            base.upgrade_all()
            base.resolve()
            print(sorted(str(p) for p in base.transaction.install_set))
            base.download_packages(base.transaction.install_set)
            base.do_transaction()
    ''') % (DBPATH, str(root.conf), str(root.root), str(root.root / 'var/cache/dnf'),
            str(PLUGIN_DIR))
    result = run(SRIOV.wrap([PYTHON, '-c', script]), root.env)
    assert result.returncode == 0, result
    assert 'kernel-drivers-sriov-' + NEW in result.stdout
    assert 'kernel-drivers-sriov-' + NEW in root.installed()


def test_resolve_again_keeps_the_goal_and_leaves_it_as_it_was(make_root):
    # The shortcut in transaction.resolve_again() must engage on this dnf, and
    # leave nothing of itself on the goal.
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    script = textwrap.dedent('''
        import json, sys
        sys.path[:0] = [%r, %r]
        from harness import Installroot, dnf_base
        from dnf_kernelsplit.transaction import resolve_again
        root = Installroot.__new__(Installroot)
        root.base = __import__('pathlib').Path(%r)
        root.root, root.conf = root.base / 'root', root.base / 'dnf.conf'
        base = dnf_base(root)
        base.upgrade_all()
        base.resolve()
        before = sorted(str(p) for p in base.transaction.install_set)
        kept = resolve_again(base, False)
        after = sorted(str(p) for p in base.transaction.install_set)
        print(json.dumps([kept, before == after, sorted(vars(base._goal))]))
    ''') % (str(PLUGIN_DIR.parent / 'tests'), str(PLUGIN_DIR), str(root.base))
    result = run([PYTHON, '-c', script], root.env)
    assert result.returncode == 0, result
    kept, same, leftovers = json.loads(result.stdout.splitlines()[-1])
    assert kept and same
    assert not any('weak' in name for name in leftovers)
