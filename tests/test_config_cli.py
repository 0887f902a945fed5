"""A bad kernelsplit.conf, through the real dnf CLI: one clear error, never a traceback.

Each error names the file (and the line, key and value where there is one),
says `--disableplugin=kernelsplit` gets dnf going, and stops dnf before it
does anything: the plugin never runs on settings other than the file's.
"""

import shutil
import tempfile
from pathlib import Path

import pytest

from harness import AS_NOBODY, Host, Installroot

SRIOV = Host('baremetal-sriov')
OLD, NEW = '6.8.0-1.x86_64', '6.9.1-1.x86_64'
WAY_OUT = 'fix the file or run dnf with --disableplugin=kernelsplit'


def refused(result, *expected):
    """RESULT is dnf refusing to start with one message holding EXPECTED, and no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, result
    assert 'Traceback' not in output, result
    assert not result.stdout.strip(), result
    lines = [line for line in result.stderr.splitlines() if line.startswith('Error: kernelsplit: ')]
    assert len(lines) == 1, result
    for part in expected + (WAY_OUT,):
        assert part in lines[0], result
    return lines[0]


@pytest.fixture
def root(make_root):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    return root


@pytest.mark.parametrize('command', [('kernelsplit', 'check'), ('-y', 'upgrade')])
def test_enabled_perhaps_is_an_error_not_a_traceback(root, command):
    root.write_plugin_conf({'hardware_in_installroot': 'yes', 'enabled': 'perhaps'})
    result = root.dnf(*command, host=SRIOV)
    conf = str(root.pluginconfdir / 'kernelsplit.conf')
    refused(result, conf, "enabled = 'perhaps'", 'expected yes or no')
    # the way out it names works
    assert root.dnf('-y', 'upgrade', '--disableplugin=kernelsplit', host=SRIOV,
                    plugin=False).returncode == 0


@pytest.mark.parametrize('enabled, loaded', [('no', False), ('0', False), ('yes', True),
                                             ('"on"', True)])
def test_enabled_turns_the_plugin_off_and_on(root, enabled, loaded):
    root.write_plugin_conf({'hardware_in_installroot': 'yes', 'enabled': enabled})
    result = root.dnf('kernelsplit', 'check', host=SRIOV)
    if loaded:
        assert result.returncode == 1 and 'kernel-drivers-sriov-' + NEW in result.stdout, result
    else:   # no plugin: no such command
        assert 'No such command: kernelsplit' in result.stderr, result


@pytest.mark.parametrize('text, line, shown', [
    (b'[main]\nhardware_in_installroot = yes\nbu\xffses = pci\n', 3, r"'bu\xffses = pci'"),
    (b'[main]\nignore_devices = 3b:00.0 \xe9\n', 2, r"'ignore_devices = 3b:00.0 \xe9'"),
])
def test_a_byte_that_is_not_utf8_is_an_error_naming_the_line(root, text, line, shown):
    conf = root.pluginconfdir / 'kernelsplit.conf'
    conf.write_bytes(text)
    line_text = refused(root.check(host=SRIOV), '%s, line %d' % (conf, line), 'UTF-8', shown)
    assert 'byte 0x' in line_text


def test_a_directory_in_place_of_the_file_is_an_error(root):
    conf = root.pluginconfdir / 'kernelsplit.conf'
    conf.unlink()
    conf.mkdir()
    refused(root.check(host=SRIOV), str(conf), 'is a directory')


def test_a_file_the_user_cannot_read_is_an_error_for_that_user(repos):
    # root reads a mode-000 file; another user cannot, as with a file only root may read.
    base = Path(tempfile.mkdtemp(prefix='kernelsplit-conf-', dir='/var/tmp'))
    try:
        base.chmod(0o755)
        root = Installroot(base, {'split': repos['split']},
                           plugin_conf={'on_missing': 'warn'})
        root.install('kernel-core-' + NEW)
        root.open_to_all()
        conf = root.pluginconfdir / 'kernelsplit.conf'
        conf.chmod(0o600)
        result = root.dnf('kernelsplit', 'check', host=SRIOV, prefix=AS_NOBODY)
        refused(result, str(conf), 'cannot be read', 'Permission denied')
        conf.chmod(0o644)
        readable = root.dnf('kernelsplit', 'check', host=SRIOV, prefix=AS_NOBODY)
        assert readable.returncode == 1 and 'kernel-drivers-sriov-' + NEW in readable.stdout, \
            readable
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize('text, expected', [
    ('[main]\nhardware_in_installroot = yes\nbuses pci\n', ("line 3", "'buses pci'")),
    ('hardware_in_installroot = yes\n', ('line 1', 'settings go under [main]')),
    ('[mian]\nhardware_in_installroot = yes\n', ("unknown section [mian]",)),
    ('[main]\nhardware_in_installroot = yes\nBuses = pci\n', ("unknown key 'Buses'",)),
])
def test_a_malformed_file_is_an_error_naming_the_line(root, text, expected):
    root.write_plugin_conf({}, raw=text)
    refused(root.check(host=SRIOV), str(root.pluginconfdir / 'kernelsplit.conf'), *expected)


def test_a_duplicate_key_warns_and_the_last_wins(make_root):
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    root.write_plugin_conf({}, raw='[main]\nhardware_in_installroot = yes\non_missing = fail\n'
                                   '\n# later on\non_missing = warn\n')
    result = root.dnf('-y', 'upgrade', host=SRIOV)
    assert result.returncode == 0, result           # warn, not fail
    conf = root.pluginconfdir / 'kernelsplit.conf'
    warnings = [line for line in result.stderr.splitlines() if 'more than once' in line]
    assert warnings == ["kernelsplit: %s: [main] on_missing is set more than once ('fail', "
                        "then 'warn'); the last one, 'warn', counts" % conf], result
    assert 'kernelsplit: not adding kernel-drivers-sriov-%s (on_missing=warn)' % NEW \
        in result.stderr
    assert 'kernel-drivers-sriov-' + NEW not in root.installed()


def test_an_override_file_later_in_pluginconfpath_wins_and_names_itself(make_root, tmp_path):
    # dnf reads NAME.conf from every pluginconfpath directory, later ones winning.
    override = tmp_path / 'override'
    override.mkdir()
    root = make_root('split', dnf_conf={'pluginconfpath': '%s,%s' % (tmp_path / 'root0' /
                                                                      'plugins.d', override)})
    root.install('kernel-core-' + NEW)
    (override / 'kernelsplit.conf').write_text('[main]\nbuses = pci all\n')
    refused(root.check(host=SRIOV), str(override / 'kernelsplit.conf'), "buses = 'pci all'")
    (override / 'kernelsplit.conf').write_text('[main]\nhardware_in_installroot = no\n')
    result = root.check(host=SRIOV)
    assert 'set hardware_in_installroot=yes in %s' % (override / 'kernelsplit.conf') \
        in result.stderr, result
