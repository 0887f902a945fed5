"""Exact and inspect mode match as libkmod does: '-' and '_' as one character outside
bracket expressions, and what depmod refuses to index matching nothing -- checked
against libkmod on real depmod-built indexes, by table, by hypothesis and through dnf."""

import dataclasses

import hypothesis
import pytest

import aliasagreement
import kernelrepo
import oddhosts
from dnf_kernelsplit.kmod import AliasMatcher, ModaliasFilter, ModuleIndex, alias_key, \
    modalias_from_provide
from harness import Installroot

OLD, NEW = '6.8.0-1.x86_64', '6.9.1-1.x86_64'
LONG_TAIL = 'a' * 5000


# --- the rules, as libkmod's alias_normalize() has them ----------------------------------

@pytest.mark.parametrize('alias, key', [
    pytest.param('of:N*T*Cti,wl1837-st', b'of:N*T*Cti,wl1837_st', id='dash-becomes-underscore'),
    pytest.param('of:N*T*Cti,wl1837_st', b'of:N*T*Cti,wl1837_st', id='underscore-stays'),
    pytest.param('usb:v13FDp3940d0[0-2]*', b'usb:v13FDp3940d0[0-2]*', id='range-in-brackets-kept'),
    pytest.param('a-[0-2]-[!-]-b', b'a_[0-2]_[!-]_b', id='dashes-between-brackets'),
    pytest.param('x:[[]-', b'x:[[]_', id='bracket-opens-inside-brackets'),
    pytest.param('dmi:bvr-[TBE132I-2.50]-:', b'dmi:bvr_[TBE132I-2.50]_:',
                 id='real-dmi-modalias-with-brackets'),
    pytest.param('bs:a\\*-b', b'bs:a\\*_b', id='backslash-kept'),
    pytest.param('caf\u00e9-1', 'caf\u00e9_1'.encode(), id='utf8-bytes'),
    pytest.param('x-' + LONG_TAIL, ('x_' + LONG_TAIL)[:4095].encode(),
                 id='cut-to-PATH_MAX-1-bytes'),
    pytest.param('x[' + LONG_TAIL[:4092] + ']', ('x[' + LONG_TAIL[:4092] + ']').encode(),
                 id='bracket-closing-at-the-last-byte'),
    pytest.param('a-b\0c-d', b'a_b', id='a-C-string-ends-at-NUL'),
])
def test_alias_key(alias, key):
    assert alias_key(alias) == key


@pytest.mark.parametrize('alias', [
    pytest.param('foo:a[bc', id='unmatched-open'),
    pytest.param('foo:a[', id='open-at-the-end'),
    pytest.param(']foo', id='leading-close'),
    pytest.param('foo:x]', id='stray-close'),
    pytest.param('foo:[a]]', id='close-after-brackets'),
    pytest.param('foo:[[:digit:]]x', id='character-class'),
    pytest.param('foo:[]a]x', id='close-first-in-brackets'),
    pytest.param('foo:[\\]]x', id='escaped-close-in-brackets'),
    pytest.param('x[' + LONG_TAIL + ']', id='brackets-closing-past-PATH_MAX'),
])
def test_alias_key_refused(alias):
    assert alias_key(alias) is None


# --- one real index holding one module per row: libkmod says which rows match ------------

MATCH_ROWS = [
    # (name, pattern, modalias, whether libkmod matches them)
    ('dash-alias-underscore-modalias', 'of:N*T*Cti,wl1837-st', 'of:NbluetoothT(null)Cti,wl1837_st',
     True),
    ('underscore-alias-dash-modalias', 'platform:intel_spi', 'platform:intel-spi', True),
    ('dash-in-literal-prefix', 'i2c:wl-1837*', 'i2c:wl_1837x', True),
    ('real-evdev', 'input:b*v*p*e*-e*k*r*a*m*l*s*f*w*',
     'input:b0003v046DpC52Be0111_e0,1,k71,ramlsfw', True),
    ('range-kept', 'usb:v13FDp3940d0[0-2]*', 'usb:v13FDp3940d01dc00', True),
    ('range-not-a-separator', 'usb:v13FDp3940d0[0-2]*', 'usb:v13FDp3940d0_dc00', False),
    ('range-dash-modalias', 'usb:v13FDp3940d0[0-2]*', 'usb:v13FDp3940d0-dc00', False),
    ('class-of-dash-never-matches', 'cls:[-]x', 'cls:-x', False),
    ('class-of-underscore-takes-dash', 'cls:[_]y', 'cls:-y', True),
    ('negated-class-of-dash', 'cls:[!-]z', 'cls:-z', True),
    ('dmi-bracket-keeps-its-dash', 'dmi*:bvr*TBE132I_2.50*',
     'dmi:bvnLENOVO:bvr-[TBE132I-2.50]-:bd10/11/2017:', False),
    ('dmi-bracket-any-char', 'dmi*:bvr*TBE132I?2.50*',
     'dmi:bvnLENOVO:bvr-[TBE132I-2.50]-:bd10/11/2017:', True),
    ('refused-close-first', 'foo:[]a]x', 'foo:ax', False),
    ('refused-class', 'foo:[[:digit:]]x', 'foo:5x', False),
    ('refused-unmatched-open', 'foo:x[y*', 'foo:x[y]', False),
    ('refused-modalias', 'bar:*', 'bar:a]', False),
    ('refused-modalias-open', 'bar:*', 'bar:[a', False),
    ('backslash-literal-before-wildcard', 'bs:a\\*b', 'bs:a\\xb', True),
    ('backslash-is-no-escape-there', 'bs:a\\*b', 'bs:a*b', False),
    ('backslash-escapes-after-wildcard', 'bs:*x\\?', 'bs:yx?', True),
    # libkmod needs room for the modalias, the module's name ('Q20', 'Q21': 3 bytes) and 2 more
    # in PATH_MAX (4096) bytes, else the whole lookup fails
    ('long-modalias-name-fits', 'long:*', 'long:' + 'a' * (4096 - 2 - 3 - 5), True),
    ('long-modalias-name-does-not-fit', 'long:*', 'long:' + 'a' * (4096 - 2 - 3 - 5 + 1), False),
    # cut to 4095 bytes: nothing can fit then
    ('long-modalias-cut', 'long:*b', 'long:' + LONG_TAIL + 'b', False),
]


@pytest.fixture(scope='module')
def row_index(tmp_path_factory):
    root = tmp_path_factory.mktemp('rows')
    files = aliasagreement.build_index([row[1] for row in MATCH_ROWS], root)
    with ModuleIndex(str(root / 'lib' / 'modules' / aliasagreement.KVER), []) as index:
        yield index, files


@pytest.mark.parametrize('number, pattern, modalias, matches',
                         [pytest.param(n, *row[1:], id=row[0]) for n, row in enumerate(MATCH_ROWS)])
def test_matching_table(row_index, number, pattern, modalias, matches):
    """Each row as libkmod says (its own index, so the row's truth is libkmod's), and as
    exact and inspect mode match it."""
    index, files = row_index
    module = 'Q%d' % number
    assert (module in index.lookup(modalias)) is matches
    assert (AliasMatcher([(pattern, module)]).match(modalias) == [module]) is matches
    provides = aliasagreement.generated_provides([files[number]])
    for regex in (False, True):       # ModaliasFilter's plain loop, and its one regex
        wanted = ModaliasFilter([modalias])
        wanted.REGEX_MIN_PROVIDES = 0 if regex else len(provides) + 1
        assert bool(AliasMatcher(wanted.select(provides)[1]).match(modalias)) is matches, regex


def test_the_generator_leaves_out_what_depmod_drops(tmp_path):
    """rpm/modalias.prov writes a provide for every alias depmod indexes, and none for
    those it drops (its 'Unmatched bracket' warnings)."""
    import subprocess
    patterns = [row[1] for row in MATCH_ROWS] + ['foo:a[bc', ']foo', '[a]]', ' ']
    files = aliasagreement.build_index(patterns, tmp_path)
    rerun = subprocess.run(['depmod', '-b', str(tmp_path), aliasagreement.KVER],
                           capture_output=True, text=True, check=True)
    dropped = {line.split('Unmatched bracket in ', 1)[1] for line in rerun.stderr.splitlines()
               if 'Unmatched bracket in ' in line}
    assert dropped == {'foo:[]a]x', 'foo:[[:digit:]]x', 'foo:x[y*', 'foo:a[bc', ']foo', '[a]]'}
    emitted = {modalias_from_provide(line)[0]
               for line in aliasagreement.generated_provides(files)}
    assert emitted == set(patterns) - dropped


# --- hypothesis: generated patterns and modaliases, a real index per example --------------

@hypothesis.settings(max_examples=12, derandomize=True, database=None, deadline=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(batch=aliasagreement.batches(min_patterns=4, max_patterns=12))
def test_generated_aliases_match_as_libkmod_does(tmp_path_factory, batch):
    """Each example its own index: hypothesis shrinks a disagreement to a few aliases."""
    root = tmp_path_factory.getbasetemp() / 'agreement'
    patterns = [pattern for pattern, _ in batch]
    modaliases = [m for _, made in batch for m in made]
    result = aliasagreement.check_batch(patterns, modaliases, root)
    assert not result.disagreements, result.disagreements[:5]


def test_a_generated_tree_matches_as_libkmod_does(tmp_path):
    """One index of 120 generated patterns, every modalias made from them against every
    pattern (bench/agreement.py runs millions of such pairs)."""
    patterns, modaliases = aliasagreement.generated_tree(120, seed=0)
    result = aliasagreement.check_batch(patterns, modaliases, tmp_path)
    assert not result.disagreements, result.disagreements[:5]
    assert result.patterns == 120 and result.pairs > 30000


# --- through dnf: a core-only VM gains the drivers libkmod would load ---------------------

EXTRA = (
    kernelrepo.Module('hci_uart', ('of:N*T*Cti,wl1837-stC*', 'of:N*T*Cti,wl1837-st'),
                      'kernel/drivers/bluetooth'),
    kernelrepo.Module('evdev', ('input:b*v*p*e*-e*k*r*a*m*l*s*f*w*',), 'kernel/drivers/input'),
    # depmod drops this alias; fnmatch() alone would take it for 'platform:acme_x'
    kernelrepo.Module('acme', ('platform:acme[]_]x',), 'kernel/drivers/platform'),
)
ADDED_MODULES = {'kernel-drivers': ('hci_uart',), 'kernel-drivers-passthrough': ('evdev',),
                 'kernel-drivers-gpu': ('acme',)}
BLUETOOTH = '/devices/platform/serial8250/serial0/serial0-0'
KEYBOARD = '/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/0003:046D:C52B.0001/input/input5'
ACME = '/devices/platform/acme.0'


def release_with_extra_modules(modalias_provides: bool) -> kernelrepo.KernelRelease:
    rel = kernelrepo.split_release('6.9.1', '1', modalias_provides=modalias_provides)
    packages = tuple(dataclasses.replace(p, modules=p.modules + ADDED_MODULES.get(p.name, ()))
                     for p in rel.packages)
    return dataclasses.replace(rel, packages=packages, extra_modules=EXTRA)


def vm_with_odd_devices(directory):
    """kvm-guest plus three unbound devices whose modaliases only libkmod's rules match."""
    def change(devices):
        for path, subsystem, modalias in [
                (BLUETOOTH, 'serial', 'of:NbluetoothT(null)Cti,wl1837_st'),
                (KEYBOARD, 'input', 'input:b0003v046DpC52Be0111_e0,1,k71,ramlsfw'),
                (ACME, 'platform', 'platform:acme_x')]:
            device = oddhosts.Device('P: %s\nE: SUBSYSTEM=%s\n' % (path, subsystem))
            device.properties['MODALIAS'] = device.attributes['modalias'] = modalias.encode()
            devices[path] = device
    return oddhosts.derive('kvm-guest', directory, 'kvm-odd-modaliases', change)


@pytest.mark.parametrize('mode', ['exact', 'inspect'])
def test_a_core_only_vm_gets_what_libkmod_would_load(tmp_path, mode):
    repo = kernelrepo.build_repo([
        kernelrepo.split_release('6.8.0', '1', modalias_provides=mode == 'exact'),
        release_with_extra_modules(modalias_provides=mode == 'exact')], tmp_path / 'repo')
    host = vm_with_odd_devices(tmp_path)
    # the devices are on buses whose unbound devices do not count by default (serial's of:
    # device, an input device): this is about how their modaliases match
    root = Installroot(tmp_path / 'ir', {'kernels': repo}, plugin_conf={'unbound_buses': 'all'})
    root.install('kernel-core-' + OLD)
    result = root.dnf('-y', 'upgrade', host=host)
    assert result.returncode == 0, result
    root.depmod()
    added = [line.split(' (its modules')[0] for line in result.stdout.splitlines()
             if line.startswith('kernelsplit: adding')]
    assert added == [
        'kernelsplit: adding kernel-drivers-%s for /sys%s (hci_uart)' % (NEW, BLUETOOTH),
        'kernelsplit: adding kernel-drivers-passthrough-%s for /sys%s (evdev)' % (NEW, KEYBOARD),
    ], result
    assert 'kernel-drivers-gpu-' + NEW not in root.installed()
    # and the index depmod built of what was installed resolves them, with libkmod itself
    check = root.check('--json', host=host)
    assert check.returncode == 0, check
    devices = {d['sysfs_path']: d for d in check.json()['kernels'][0]['devices']}
    assert devices['/sys' + BLUETOOTH]['modules'] == ['hci_uart']
    assert devices['/sys' + KEYBOARD]['modules'] == ['evdev']
    assert devices['/sys' + ACME]['modules'] == []
