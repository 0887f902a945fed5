"""`make rpm` builds a noarch RPM whose installed copy of the plugin works."""

import subprocess
from pathlib import Path

import pytest

from harness import ROOT, Host, Installroot, run


@pytest.fixture(scope='module')
def built_rpm():
    subprocess.run(['make', '-s', 'rpm'], cwd=ROOT, check=True, capture_output=True)
    rpms = sorted((ROOT / 'build' / 'rpmbuild' / 'RPMS' / 'noarch').glob(
        'python3-dnf-plugin-kernelsplit-*.noarch.rpm'))
    assert len(rpms) == 1
    return rpms[0]


def query(rpm: Path, *fmt: str) -> list[str]:
    out = subprocess.run(['rpm', '-qp', *fmt, str(rpm)], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_rpm_metadata(built_rpm):
    assert query(built_rpm, '--qf', '%{ARCH}') == ['noarch']
    provides = query(built_rpm, '--provides')
    assert 'dnf-command(kernelsplit)' in provides
    files = query(built_rpm, '-l')
    assert any(f.endswith('/dnf-plugins/kernelsplit.py') for f in files)
    assert any(f.endswith('/dnf_kernelsplit/policy.py') for f in files)
    assert query(built_rpm, '-c') == ['/etc/dnf/plugins/kernelsplit.conf']
    # every module of the package is shipped
    shipped = {Path(f).name for f in files if '/dnf_kernelsplit/' in f and f.endswith('.py')}
    assert shipped == {p.name for p in (ROOT / 'dnf-plugin-kernelsplit' / 'dnf_kernelsplit').glob('*.py')}


def test_generator_subpackage_ships_the_fileattr(built_rpm):
    rpms = sorted((ROOT / 'build' / 'rpmbuild' / 'RPMS' / 'noarch').glob(
        'kernelsplit-rpm-generators-*.noarch.rpm'))
    assert len(rpms) == 1
    files = query(rpms[0], '-l')
    assert any(f.endswith('/fileattrs/modalias.attr') for f in files)
    assert any(f.endswith('/modalias.prov') for f in files)


def test_installed_rpm_runs_the_check(built_rpm, tmp_path, repos):
    unpacked = tmp_path / 'unpacked'
    unpacked.mkdir()
    subprocess.run(['rpm', '--root', str(unpacked), '--dbpath', '/var/lib/rpm', '-i', '--nodeps',
                    str(built_rpm)], check=True, capture_output=True)
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


def test_the_man_pages_are_shipped_and_render(built_rpm, tmp_path):
    files = query(built_rpm, '-l')
    for page in ('/usr/share/man/man8/dnf-kernelsplit.8', '/usr/share/man/man5/kernelsplit.conf.5'):
        shipped = [f for f in files if f == page or f.startswith(page + '.')]   # maybe compressed
        assert len(shipped) == 1, (page, files)
        assert shipped[0] in query(built_rpm, '-d')                          # marked as docs
    unpacked = tmp_path / 'unpacked'
    unpacked.mkdir()
    subprocess.run(['rpm', '--root', str(unpacked), '--dbpath', '/var/lib/rpm', '-i', '--nodeps',
                    str(built_rpm)], check=True, capture_output=True)
    pages = sorted((unpacked / 'usr/share/man').rglob('*.[58]*'))
    assert len(pages) == 2, pages
    for page in pages:
        shown = subprocess.run(['man', '--warnings', '-l', str(page)], capture_output=True,
                               text=True, env={'MANWIDTH': '80', 'PATH': '/usr/bin:/bin'})
        assert shown.returncode == 0 and shown.stderr == '', (page, shown.stderr)
        assert 'kernelsplit' in shown.stdout


def test_metrics_subpackage_ships_the_units_and_the_writer(built_rpm):
    rpms = sorted(built_rpm.parent.glob('kernelsplit-metrics-*.noarch.rpm'))
    assert len(rpms) == 1
    files = set(query(rpms[0], '-l'))
    assert {'/usr/lib/systemd/system/kernelsplit-metrics.service',
            '/usr/lib/systemd/system/kernelsplit-metrics.timer',
            '/usr/lib/systemd/system/kernelsplit-metrics.path',
            '/usr/libexec/kernelsplit/kernelsplit-metrics'} <= files
    assert any(f.endswith('/kernelsplit-alerts.yml') for f in files)
    assert query(rpms[0], '-c') == ['/etc/sysconfig/kernelsplit-metrics']
    assert any(r.startswith('python3-dnf-plugin-kernelsplit') for r in query(rpms[0], '--requires'))


def test_collection_subpackage_installs_where_ansible_finds_it(built_rpm, tmp_path):
    rpms = sorted(built_rpm.parent.glob('ansible-collection-kernelsplit-fleet-*.noarch.rpm'))
    assert len(rpms) == 1
    subprocess.run(['rpm', '--root', str(tmp_path), '--dbpath', '/var/lib/rpm', '-i', '--nodeps',
                    str(rpms[0])], check=True, capture_output=True)
    collections = tmp_path / 'usr/share/ansible/collections'
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'ANSIBLE_COLLECTIONS_PATH': str(collections)}
    listed = subprocess.run(['ansible-doc', '-l', 'kernelsplit.fleet'], env=env,
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert {line.split()[0] for line in listed.stdout.splitlines() if line.strip()} == \
        {'kernelsplit.fleet.kernelsplit_check', 'kernelsplit.fleet.kernelsplit_fix'}
