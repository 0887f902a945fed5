"""`make rpm` builds the noarch RPMs -- the shared core, the dnf 4 plugin, the dnf5 guard,
the kernelsplit command, the kernel-install plugin, the rpm generators -- and their
installed copies work: the dnf 4 plugin and the command on this host, the dnf5 guard in
the sid chroot."""

import shlex
import subprocess
from pathlib import Path

import pytest

from harness import ROOT, Host, Installroot, run
from standalone import Dnf5Root

RPMS = ROOT / 'build' / 'rpmbuild' / 'RPMS' / 'noarch'
SUBPACKAGES = ('python3-kernelsplit', 'python3-dnf-plugin-kernelsplit', 'kernelsplit-dnf5',
               'kernelsplit', 'kernelsplit-kernel-install', 'kernelsplit-rpm-generators',
               'kernelsplit-metrics', 'ansible-collection-kernelsplit-fleet')


@pytest.fixture(scope='module')
def built():
    """Subpackage name -> its RPM."""
    subprocess.run(['make', '-s', 'rpm'], cwd=ROOT, check=True, capture_output=True)
    found = {}
    for rpm in RPMS.glob('*.noarch.rpm'):
        name = query(rpm, '--qf', '%{NAME}')[0]
        assert name not in found, name
        found[name] = rpm
    assert set(found) == set(SUBPACKAGES)
    return found


@pytest.fixture(scope='module')
def built_rpm(built):
    return built['python3-dnf-plugin-kernelsplit']


def query(rpm: Path, *fmt: str) -> list[str]:
    out = subprocess.run(['rpm', '-qp', *fmt, str(rpm)], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def modules(rpm: Path) -> set[str]:
    return {Path(f).name for f in query(rpm, '-l') if '/dnf_kernelsplit/' in f and f.endswith('.py')}


def requires(rpm: Path) -> set[str]:
    return {r for r in query(rpm, '--requires') if not r.startswith('rpmlib(')}


def test_rpm_metadata(built, built_rpm):
    for rpm in built.values():
        assert query(rpm, '--qf', '%{ARCH}') == ['noarch']
    assert 'dnf-command(kernelsplit)' in query(built_rpm, '--provides')
    assert any(f.endswith('/dnf-plugins/kernelsplit.py') for f in query(built_rpm, '-l'))
    core = built['python3-kernelsplit']
    assert 'policy.py' in modules(core) and 'packages_dnf5.py' in modules(core)
    assert query(core, '-c') == ['/etc/dnf/plugins/kernelsplit.conf']
    # every module is shipped, by exactly one package
    owners = [name for rpm in built.values() for name in modules(rpm)]
    assert sorted(owners) == sorted(
        p.name for p in (ROOT / 'dnf-plugin-kernelsplit' / 'dnf_kernelsplit').glob('*.py'))


def test_each_package_requires_what_it_uses(built):
    core = requires(built['python3-kernelsplit'])
    assert 'python3-pyudev' in core
    assert not {r for r in core if 'dnf' in r}            # neither dnf 4 nor dnf5
    assert {'python3-dnf', 'python3-kernelsplit = 0.1.0-1'} <= \
        requires(built['python3-dnf-plugin-kernelsplit'])
    dnf5 = requires(built['kernelsplit-dnf5'])
    assert {'dnf5', 'python3-libdnf5', 'libdnf5-plugin-actions'} <= dnf5
    assert 'python3-dnf' not in dnf5
    for name in ('kernelsplit', 'kernelsplit-kernel-install'):
        assert '(python3-dnf or python3-libdnf5)' in requires(built[name])
    assert query(built['kernelsplit'], '-l') == ['/usr/bin/kernelsplit',
                                                  '/usr/share/man/man1/kernelsplit.1']
    assert '/usr/lib/kernel/install.d/50-kernelsplit.install' in \
        query(built['kernelsplit-kernel-install'], '-l')
    assert query(built['kernelsplit-dnf5'], '-c') == [
        '/etc/dnf/libdnf5-plugins/actions.d/kernelsplit.actions']


def test_generator_subpackage_ships_the_fileattr(built_rpm):
    rpms = sorted((ROOT / 'build' / 'rpmbuild' / 'RPMS' / 'noarch').glob(
        'kernelsplit-rpm-generators-*.noarch.rpm'))
    assert len(rpms) == 1
    files = query(rpms[0], '-l')
    assert any(f.endswith('/fileattrs/modalias.attr') for f in files)
    assert any(f.endswith('/modalias.prov') for f in files)


def test_installed_rpm_runs_the_check(built, built_rpm, tmp_path, repos):
    unpacked = tmp_path / 'unpacked'
    unpacked.mkdir()
    subprocess.run(['rpm', '--root', str(unpacked), '--dbpath', '/var/lib/rpm', '-i', '--nodeps',
                    str(built_rpm), str(built['python3-kernelsplit'])],
                   check=True, capture_output=True)
    plugin = next(unpacked.rglob('dnf-plugins/kernelsplit.py')).parent
    root = Installroot(tmp_path / 'ir', {'split': repos['split']})
    root.install('kernel-core-6.9.1-1.x86_64')
    command = root.dnf_command('kernelsplit', 'check', '--json')
    command[command.index('--setopt=pluginpath=%s' % (ROOT / 'dnf-plugin-kernelsplit'))] = \
        '--setopt=pluginpath=%s' % plugin
    env = {**root.env, 'PYTHONPATH': str(plugin.parent)}
    result = run(Host('baremetal-sriov').wrap(command), env)
    assert result.returncode == 1, result
    assert str(plugin.parent) in run([
        '/usr/bin/python3', '-c', 'import dnf_kernelsplit; print(dnf_kernelsplit.__file__)'],
        env).stdout
    assert 'kernel-drivers-sriov-6.9.1-1.x86_64' in result.stdout


def test_the_man_pages_are_shipped_and_render(built, tmp_path):
    for name, page in (('python3-dnf-plugin-kernelsplit', '/usr/share/man/man8/dnf-kernelsplit.8'),
                       ('python3-kernelsplit', '/usr/share/man/man5/kernelsplit.conf.5'),
                       ('kernelsplit', '/usr/share/man/man1/kernelsplit.1')):
        files = query(built[name], '-l')
        shipped = [f for f in files if f == page or f.startswith(page + '.')]   # maybe compressed
        assert len(shipped) == 1, (page, files)
        assert shipped[0] in query(built[name], '-d')                        # marked as docs
    unpacked = tmp_path / 'unpacked'
    unpacked.mkdir()
    subprocess.run(['rpm', '--root', str(unpacked), '--dbpath', '/var/lib/rpm', '-i', '--nodeps',
                    *map(str, built.values())], check=True, capture_output=True)
    pages = sorted((unpacked / 'usr/share/man').rglob('*.[158]*'))
    assert len(pages) == 3, pages
    for page in pages:
        shown = subprocess.run(['man', '--warnings', '-l', str(page)], capture_output=True,
                               text=True, env={'MANWIDTH': '80', 'PATH': '/usr/bin:/bin'})
        assert shown.returncode == 0 and shown.stderr == '', (page, shown.stderr)
        assert 'kernelsplit' in shown.stdout


def test_installed_command_and_kernel_install_plugin_run(built, tmp_path, make_root):
    """Every package installed into a root: /usr/bin/kernelsplit and the kernel-install
    plugin run from there, reading the package from its site-packages."""
    unpacked = tmp_path / 'unpacked'
    unpacked.mkdir()
    subprocess.run(['rpm', '--root', str(unpacked), '--dbpath', '/var/lib/rpm', '-i', '--nodeps',
                    *map(str, built.values())], check=True, capture_output=True)
    site = next(unpacked.rglob('dnf_kernelsplit/policy.py')).parent.parent
    root = make_root('split')
    root.install('kernel-core-6.9.1-1.x86_64')
    env = {**root.env, 'PYTHONPATH': str(site)}
    options = ['--installroot', str(root.root), '-c', str(root.conf), '--releasever', '1']
    check = run(Host('baremetal-sriov').wrap([str(unpacked / 'usr/bin/kernelsplit'), 'check',
                                              '-v', *options]), env)
    assert check.returncode == 1, check
    assert str(site / 'dnf_kernelsplit') in check.stderr
    plugin = unpacked / 'usr/lib/kernel/install.d/50-kernelsplit.install'
    warned = run(Host('baremetal-sriov').wrap([str(plugin), 'add', '6.9.1-1.x86_64', '/entry',
                                               '/vmlinuz']),
                 {**env, 'KERNELSPLIT_OPTIONS': shlex.join(
                     options + ['--pluginconfpath', str(root.pluginconfdir)])})
    assert warned.returncode == 0
    assert 'kernelsplit: kernel 6.9.1-1.x86_64 lacks kernel-drivers-sriov-6.9.1-1.x86_64' \
        in warned.stderr, warned


def test_installed_dnf5_guard_stops_dnf5(built, sid, tmp_path, repos):
    """The RPMs installed into the sid chroot (its own rpm, in the test's layer): dnf5 reads
    the actions file from /etc/dnf/libdnf5-plugins/actions.d and runs the guard from
    /usr/libexec with the package from site-packages."""
    root = Dnf5Root(sid, tmp_path / 'r', {'mono-split': repos['mono-split']})
    root.install('kernel-6.8.0-1.x86_64')
    rpms = [built[name] for name in ('python3-kernelsplit', 'kernelsplit-dnf5', 'kernelsplit')]
    installed = sid.run(['rpm', '-i', '--nodeps', *map(str, rpms)], ro=[RPMS])
    assert installed.returncode == 0, installed
    assert (sid.upper / 'etc/dnf/libdnf5-plugins/actions.d/kernelsplit.actions').exists()
    result = root.dnf5('-y', 'upgrade', host=Host('baremetal-sriov'))
    assert result.returncode == 1, result
    assert 'Action calls for stop: kernelsplit: refusing the transaction' in result.stderr
    assert '  dnf5 install kernel-6.9.1-1.x86_64 kernel-drivers-sriov-6.9.1-1.x86_64' \
        in result.stderr
    check = root.run(['kernelsplit', 'check', *root.ks_options()], host=Host('baremetal-sriov'))
    assert check.returncode == 0, check        # the old, monolithic kernel is complete


def test_metrics_subpackage_ships_the_units_and_the_writer(built):
    rpms = [built['kernelsplit-metrics']]
    files = set(query(rpms[0], '-l'))
    assert {'/usr/lib/systemd/system/kernelsplit-metrics.service',
            '/usr/lib/systemd/system/kernelsplit-metrics.timer',
            '/usr/lib/systemd/system/kernelsplit-metrics.path',
            '/usr/libexec/kernelsplit/kernelsplit-metrics'} <= files
    assert any(f.endswith('/kernelsplit-alerts.yml') for f in files)
    assert query(rpms[0], '-c') == ['/etc/sysconfig/kernelsplit-metrics']
    # the check it runs: the kernelsplit command, on dnf 4 or dnf5
    assert any(r.startswith('kernelsplit = ') for r in query(rpms[0], '--requires'))


def test_collection_subpackage_installs_where_ansible_finds_it(built, tmp_path):
    rpms = [built['ansible-collection-kernelsplit-fleet']]
    subprocess.run(['rpm', '--root', str(tmp_path), '--dbpath', '/var/lib/rpm', '-i', '--nodeps',
                    str(rpms[0])], check=True, capture_output=True)
    collections = tmp_path / 'usr/share/ansible/collections'
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'ANSIBLE_COLLECTIONS_PATH': str(collections)}
    listed = subprocess.run(['ansible-doc', '-l', 'kernelsplit.fleet'], env=env,
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert {line.split()[0] for line in listed.stdout.splitlines() if line.strip()} == \
        {'kernelsplit.fleet.kernelsplit_check', 'kernelsplit.fleet.kernelsplit_fix'}
