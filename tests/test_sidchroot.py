"""The Debian sid chroot (tests/sidchroot.py) holds a working dnf5 and emulates hardware."""

import re

from harness import HOSTS, ROOT


def version(text: str, name: str) -> tuple[int, ...]:
    match = re.search(r'%s version (\d+)\.(\d+)\.(\d+)' % name, text)
    assert match, 'no "%s version" in:\n%s' % (name, text)
    return tuple(int(part) for part in match.groups())


def test_dnf5_and_its_python_api(sid):
    result = sid.run(['dnf5', '--version'], check=True)
    assert version(result.stdout, 'dnf5') >= (5, 4, 6)
    # the actions plugin's JSON "stop" request (its 1.4.0) is what a dnf5 hook can refuse with
    actions = re.search(r'name: actions\s+version: (\d+)\.(\d+)', result.stdout)
    assert actions and tuple(map(int, actions.groups())) >= (1, 4), result.stdout
    result = sid.run(['python3', '-c', 'import libdnf5\n'
                      'base = libdnf5.base.Base()\n'
                      'print(base.get_config().get_installroot_option().get_value())'], check=True)
    assert result.stdout == '/\n'


def test_umockdev_and_pyudev_see_an_emulated_host(sid):
    host = HOSTS / 'baremetal-sriov'
    recorded = {'/sys' + path for path, body in
                re.findall(r'^P: (\S+)\n(.*?)(?:\n\n|\Z)', host.with_suffix('.umockdev').read_text(),
                           re.M | re.S)
                if 'E: SUBSYSTEM=pci\n' in body + '\n'}
    listing = ('import pyudev\n'
               'for d in pyudev.Context().list_devices(subsystem="pci"):\n'
               '    print(d.sys_path, d.driver)\n')
    result = sid.run(['umockdev-run', '-d', str(host.with_suffix('.umockdev')), '--',
                      'python3', str(ROOT / 'tests' / 'testbed_exec.py'),
                      str(host.with_suffix('.drivers')), '--', 'python3', '-c', listing], check=True)
    seen = dict(line.split() for line in result.stdout.splitlines())
    assert set(seen) == recorded
    assert seen['/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:02.0'] == 'iavf'


def test_writes_stay_in_the_layer_and_mounts_end_with_the_command(sid, tmp_path):
    shared = tmp_path / 'shared'
    shared.mkdir()
    result = sid.run(['sh', '-c', 'echo from-sid > %s/out; touch /etc/written;'
                      'touch %s/x 2>&1 || echo project read-only' % (shared, ROOT)], rw=[shared])
    assert result.returncode == 0, result
    assert 'project read-only' in result.stdout
    assert (shared / 'out').read_text() == 'from-sid\n'
    assert (sid.upper / 'etc' / 'written').exists()
    assert not (sid.chroot / 'etc' / 'written').exists()
    assert not (ROOT / 'x').exists()
    with open('/proc/self/mountinfo', encoding='utf-8') as mounts:
        leaked = [line for line in mounts if str(sid.scratch) in line or str(sid.chroot) in line]
    assert leaked == []
