"""Configuration: defaults, every key, and errors that name file, key and value."""

import re

import pytest

from dnf_kernelsplit.config import (Config, ConfigValueError, as_parser, config_from_values,
                                    parse_text, read, read_text, repeated_key_line)
from dnf_kernelsplit.hardware import Device


def parse(**values):
    return config_from_values(values, '/etc/dnf/plugins/kernelsplit.conf')


def test_defaults():
    config = parse()
    assert config == Config(source='/etc/dnf/plugins/kernelsplit.conf')
    assert (config.enabled, config.ignore_devices, config.buses, config.hardware_in_installroot,
            config.on_missing) == (True, frozenset(), None, False, 'install')


@pytest.mark.parametrize('values, expected', [
    ({'enabled': 'no'}, {'enabled': False}),
    ({'enabled': 'True'}, {'enabled': True}),
    ({'hardware_in_installroot': '1'}, {'hardware_in_installroot': True}),
    ({'buses': 'all'}, {'buses': None}),
    ({'buses': ''}, {'buses': None}),
    ({'buses': 'pci, virtio vmbus'}, {'buses': frozenset({'pci', 'virtio', 'vmbus'})}),
    ({'ignore_devices': '0000:3B:00.0, 10de:1EB8 3b:02.1 /sys/devices/vif-0/'},
     {'ignore_devices': frozenset({'0000:3b:00.0', '10de:1eb8', '3b:02.1', '/sys/devices/vif-0'})}),
    ({'on_missing': 'Warn'}, {'on_missing': 'warn'}),
])
def test_values(values, expected):
    config = parse(**values)
    for key, value in expected.items():
        assert getattr(config, key) == value


@pytest.mark.parametrize('key, value, hint', [
    ('enabled', 'maybe', 'expected yes or no'),
    ('hardware_in_installroot', 'sure', 'expected yes or no'),
    ('ignore_devices', '3b:00', 'neither a PCI slot'),
    ('ignore_devices', '0000:3b:00.0 gpu', "'gpu' is neither"),
    ('buses', 'pci all', '"all" stands alone'),
    ('buses', 'PCI!', 'not a bus name'),
    ('on_missing', 'ignore', 'one of install, warn, fail'),
])
def test_malformed_value_names_file_key_and_value(key, value, hint):
    with pytest.raises(ConfigValueError) as err:
        parse(**{key: value})
    message = str(err.value)
    assert '/etc/dnf/plugins/kernelsplit.conf' in message
    assert '%s = %r' % (key, value) in message
    assert hint in message and '--disableplugin=kernelsplit' in message


def test_unknown_key_is_named():
    with pytest.raises(ConfigValueError, match="unknown key 'ignore_device'"):
        parse(ignore_device='10de:1eb8')


def test_ignores_matches_slot_ids_and_path():
    config = parse(ignore_devices='3b:00.0 10de:1eb8 /sys/devices/vif-0')
    assert config.ignores(Device('/sys/devices/p/0000:3b:00.0', 'pci', 'm', slot='0000:3b:00.0'))
    assert config.ignores(Device('/sys/devices/p/0000:01:00.0', 'pci', 'm', slot='0000:01:00.0',
                                 vendor='10de', device='1eb8'))
    assert config.ignores(Device('/sys/devices/vif-0', 'xen', 'xen:vif'))
    assert not config.ignores(Device('/sys/devices/p/0000:3b:00.1', 'pci', 'm', slot='0000:3b:00.1'))


def write(path, text):
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def test_read_takes_every_file_later_ones_winning(tmp_path):
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    first = write(tmp_path / 'a' / 'kernelsplit.conf', '[main]\nbuses = pci\non_missing = fail\n')
    second = write(tmp_path / 'b' / 'kernelsplit.conf', '[main]\non_missing = warn\n')
    config, values = read([str(tmp_path / 'a'), str(tmp_path / 'nothing'), str(tmp_path / 'b')])
    assert (config.buses, config.on_missing, config.source) == (frozenset({'pci'}), 'warn', second)
    assert values == {'buses': 'pci', 'on_missing': 'warn'}
    # a bad value in a file that a later one overrides is still that file's error
    write(tmp_path / 'a' / 'kernelsplit.conf', '[main]\non_missing = sometimes\n')
    with pytest.raises(ConfigValueError, match="%s: \\[main\\] on_missing = 'sometimes'" % first):
        read([str(tmp_path / 'a'), str(tmp_path / 'b')])


def test_without_a_file_the_defaults_name_where_it_would_be(tmp_path):
    config, values = read([str(tmp_path / 'a'), str(tmp_path / 'b')])
    assert config == Config(source=str(tmp_path / 'a' / 'kernelsplit.conf')) and values == {}
    assert read([])[0] == Config()


@pytest.mark.parametrize('text, values', [
    ('[main]\nbuses = "pci"\nignore_devices = \'3b:00.0\'\n',
     {'buses': 'pci', 'ignore_devices': '3b:00.0'}),           # libdnf drops one pair of quotes
    ('[main]\nbuses = "pci\n', {'buses': '"pci'}),
    ('# comment\n; comment\n[main]\nignore_devices = 3b:00.0\n  3b:00.1\n',
     {'ignore_devices': '3b:00.0\n3b:00.1'}),
    ('[main]\nbuses = pci\n[main]\non_missing = warn\n', {'buses': 'pci', 'on_missing': 'warn'}),
    ('[main]\nbuses: pci\n', {'buses': 'pci'}),                 # configparser's other form
    ('[main]\n', {}),
    ('', {}),
])
def test_parse_text(text, values):
    parsed = parse_text(text, 'f.conf')
    assert parsed.values == values and parsed.repeated == {}


def test_a_repeated_key_keeps_every_value_given_and_the_last_counts():
    parsed = parse_text('[main]\nbuses = pci\non_missing = fail\nbuses = "usb"\n'
                        '[main]\nbuses = virtio\n  vmbus\n', 'f.conf')
    assert parsed.values == {'buses': 'virtio\nvmbus', 'on_missing': 'fail'}
    assert parsed.repeated == {'buses': ('pci', 'usb', 'virtio\nvmbus')}
    assert repeated_key_line(parsed, 'buses') == (
        "kernelsplit: f.conf: [main] buses is set more than once ('pci', 'usb', then "
        "'virtio\\nvmbus'); the last one, 'virtio\\nvmbus', counts")


@pytest.mark.parametrize('text, message', [
    ('[main]\nbuses pci\n', "f.conf, line 2: 'buses pci' is not KEY = VALUE"),
    ('buses = pci\n', "f.conf, line 1: 'buses = pci' comes before any [section] header"),
    ('[main]\n[DEFAULT]\nbuses = pci\n', 'f.conf: unknown section [DEFAULT]'),
])
def test_parse_text_errors_name_the_line(text, message):
    with pytest.raises(ConfigValueError) as err:
        parse_text(text, 'f.conf')
    assert str(err.value).startswith(message)
    assert str(err.value).endswith('; fix the file or run dnf with --disableplugin=kernelsplit')


def test_read_text(tmp_path):
    assert read_text(str(tmp_path / 'absent.conf')) is None
    assert read_text(write(tmp_path / 'ok.conf', '[main]\nbuses = pci\n')) == '[main]\nbuses = pci\n'
    (tmp_path / 'dangling.conf').symlink_to(tmp_path / 'nowhere')
    (tmp_path / 'dir.conf').mkdir()
    bad = write(tmp_path / 'bad.conf', b'[main]\n\nbuses = pci \xc3(\n')
    for path, message in ((tmp_path / 'dangling.conf', 'a symbolic link to nothing'),
                          (tmp_path / 'dir.conf', 'is a directory'),
                          (bad, "bad.conf, line 3: byte 0xc3 is not UTF-8 text: 'buses = pci \\xc3('")):
        with pytest.raises(ConfigValueError, match=re.escape(message)):
            read_text(str(path))


def test_as_parser_is_what_dnf_reads_enabled_from():
    assert as_parser({'enabled': 'no', 'Buses': 'pci'}).getboolean('main', 'enabled') is False
    assert as_parser({'Buses': 'pci'}).has_option('main', 'Buses')
    assert not as_parser({}).has_option('main', 'enabled')


def test_the_shipped_file_holds_the_defaults():
    from harness import ROOT
    shipped = ROOT / 'etc' / 'dnf' / 'plugins'
    config, values = read([str(shipped)])
    assert config == Config(source=str(shipped / 'kernelsplit.conf'))
    text = (shipped / 'kernelsplit.conf').read_text()
    for key in Config._fields:
        if key != 'source':
            assert '\n%s =' % key in text and key in values
