"""Configuration: defaults, every key, and errors that name file, key and value."""

import pytest

from dnf_kernelsplit.config import Config, ConfigValueError, config_from_values, load
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


def test_load_names_the_file_that_set_the_bad_key(tmp_path):
    import libdnf.conf
    first, second = tmp_path / 'a.conf', tmp_path / 'b.conf'
    first.write_text('[main]\nbuses = pci\n')
    second.write_text('[main]\nenabled = perhaps\n')
    parser = libdnf.conf.ConfigParser()
    parser.read(str(first))
    parser.read(str(second))
    with pytest.raises(ConfigValueError, match=str(second)):
        load(parser, [str(first), str(second)])
    assert load(libdnf.conf.ConfigParser(), []) == Config()


def test_the_shipped_file_holds_the_defaults():
    import libdnf.conf
    from harness import ROOT
    shipped = ROOT / 'etc' / 'dnf' / 'plugins' / 'kernelsplit.conf'
    parser = libdnf.conf.ConfigParser()
    parser.read(str(shipped))
    config = load(parser, [str(shipped)])
    assert config == Config(source=str(shipped))
    text = shipped.read_text()
    for key in ('enabled', 'ignore_devices', 'buses', 'hardware_in_installroot', 'on_missing'):
        assert '\n%s =' % key in text
