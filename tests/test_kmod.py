"""Module resolution agrees with kmod: names, a generated index, and real hardware data."""

import itertools
import shutil
import os
import subprocess

import pytest

import kernelrepo
import realdata
import realkernel
from dnf_kernelsplit.kmod import (ModuleIndex, kernel_release_from_path, module_name_from_path,
                                  normalize)


@pytest.mark.parametrize('path, name', [
    ('/lib/modules/6.9.1-1.x86_64/kernel/drivers/net/ethernet/intel/i40e/i40e.ko', 'i40e'),
    ('i40e.ko.xz', 'i40e'),
    ('i40e.ko.zst', 'i40e'),
    ('i40e.ko.gz', 'i40e'),
    ('snd-hda-intel.ko.xz', 'snd_hda_intel'),
    ('/usr/lib/modules/6.9/kernel/drivers/vfio/pci/vfio-pci.ko.zst', 'vfio_pci'),
    ('i40e.ko.bz2', None),
    ('vmlinuz', None),
    ('.ko', None),
    ('modules.alias', None),
])
def test_module_name_from_path(path, name):
    assert module_name_from_path(path) == name


@pytest.mark.parametrize('path, kver', [
    ('/lib/modules/6.9.1-1.x86_64/vmlinuz', '6.9.1-1.x86_64'),
    ('/usr/lib/modules/6.9.1-200.fc40.x86_64/kernel/x.ko.xz', '6.9.1-200.fc40.x86_64'),
    ('/lib/modules/6.9.1-1.x86_64', None),        # the directory itself ships nothing
    ('/lib/firmware/i40e.pkg', None),
    ('/usr/lib/modules-load.d/x.conf', None),
])
def test_kernel_release_from_path(path, kver):
    assert kernel_release_from_path(path) == kver


@pytest.mark.parametrize('a, b', [('snd-hda-intel', 'snd_hda_intel'), ('vfio_pci', 'vfio_pci')])
def test_normalize(a, b):
    assert normalize(a) == b


def modprobe_resolve(root, kver, alias, config=None):
    command = ['modprobe', '-d', str(root), '-S', kver, '-R', alias]
    if config:
        command[1:1] = ['-C', str(config)]
    out = subprocess.run(command, capture_output=True, text=True)
    return tuple(out.stdout.split())


def concrete(pattern: str) -> list[str]:
    """Device modaliases a kmod alias PATTERN matches (and a near miss)."""
    filled = pattern.replace('*', '')
    if pattern.startswith('pci:'):
        return [pattern.replace('v*', 'v00008086').replace('d*', 'd00001234')
                .replace('sv*', 'sv00001028').replace('sd*', 'sd00000001')
                .replace('bc*', 'bc02').replace('sc*', 'sc00').replace('i*', 'i00').replace('*', ''),
                filled + 'X']
    return [filled, filled + '0', filled[:-1]]


def fixture_modaliases():
    aliases = set()
    for module in kernelrepo.CATALOGUE.values():
        for pattern in module.aliases:
            aliases.update(concrete(pattern))
    for pattern in itertools.chain.from_iterable(kernelrepo.BUILTIN.values()):
        aliases.update(concrete(pattern))
    for host in (kernelrepo.ROOT / 'tests' / 'hosts').glob('*.umockdev'):
        for line in host.read_text().splitlines():
            if line.startswith('E: MODALIAS='):
                aliases.add(line.split('=', 1)[1])
    aliases.update(['pci:v0000FFFFd0000FFFFsv00000000sd00000000bc00sc00i00', 'i40e',
                    'vfio_pci:v000010DEd00001E84sv00001458sd00004008bc03sc00i00',
                    'snd-hda-intel', 'acpi*:PNP0A03:*', 'platform:serial8250'])
    return sorted(aliases)


def test_lookup_agrees_with_modprobe_on_generated_index(full_index_root):
    root, kver = full_index_root
    aliases = fixture_modaliases()
    with ModuleIndex.for_kernel(str(root), kver) as index:
        ours = index.lookup_many(aliases)
        disagreements = {a: (ours[a], modprobe_resolve(root, kver, a)) for a in aliases
                         if ours[a] != modprobe_resolve(root, kver, a)}
    assert not disagreements
    matched = [a for a in aliases if ours[a]]
    assert len(matched) > 40, 'the comparison must exercise real matches'
    assert ours['pci:v000010DEd00001E84sv00001458sd00004008bc03sc00i00'] == ('nouveau',)
    assert ours['vfio_pci:v000010DEd00001E84sv00001458sd00004008bc03sc00i00'] == ('vfio_pci',)
    assert ours['pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00'] == ('virtio_pci',)


def test_lookup_reads_the_roots_modprobe_config(full_index_root, tmp_path):
    root, kver = full_index_root
    config_dir = root / 'etc' / 'modprobe.d'
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / 'local.conf').write_text('alias pci:v0000ABCDd*sv*sd*bc*sc*i* e1000e\n')
    alias = 'pci:v0000ABCDd00000001sv00000000sd00000000bc02sc00i00'
    try:
        with ModuleIndex.for_kernel(str(root), kver) as index:
            assert index.lookup(alias) == ('e1000e',)
            assert index.lookup(alias) == modprobe_resolve(root, kver, alias, config=config_dir)
    finally:
        (config_dir / 'local.conf').unlink()


def test_module_info_agrees_with_the_index_files(full_index_root):
    root, kver = full_index_root
    moddir = root / 'lib' / 'modules' / kver
    builtin_listed = {normalize(os.path.basename(line).split('.ko')[0])
                      for line in (moddir / 'modules.builtin').read_text().split()}
    with ModuleIndex.for_kernel(str(root), kver) as index:
        assert index.builtin_modules() == builtin_listed
        for name in ('i40e', 'snd_hda_intel', 'snd-hda-intel', 'vfio_pci', 'nvme'):
            info = index.info(name)
            filename = subprocess.run(['modinfo', '-b', str(root), '-k', kver, '-F', 'filename',
                                       name], capture_output=True, text=True).stdout.strip()
            assert info.path == filename and not info.builtin
            assert not index.is_out_of_tree(name)
        assert index.info('virtio_pci').builtin and index.info('virtio_pci').path is None
        assert not index.info('no_such_module').known


def test_out_of_tree_modules_are_recognised(full_index_root, tmp_path):
    root, kver = full_index_root
    extra = root / 'lib' / 'modules' / kver / 'extra'
    module = kernelrepo.Module('nvidia', ('pci:v000010DEd*sv*sd*bc03sc00i00*',), subdir='extra')
    kernelrepo.build_module(module, kver, root / 'lib' / 'modules' / kver, tmp_path)
    subprocess.run(['depmod', '-b', str(root), kver], check=True)
    try:
        with ModuleIndex.for_kernel(str(root), kver) as index:
            alias = 'pci:v000010DEd00001E84sv00001458sd00004008bc03sc00i00'
            assert set(index.lookup(alias)) == {'nouveau', 'nvidia'}
            assert index.lookup(alias) == modprobe_resolve(root, kver, alias)
            assert index.is_out_of_tree('nvidia') and not index.is_out_of_tree('nouveau')
    finally:
        for path in extra.iterdir():
            path.unlink()
        extra.rmdir()
        subprocess.run(['depmod', '-b', str(root), kver], check=True)


def test_index_without_depmod_is_an_error(tmp_path):
    from dnf_kernelsplit.kmod import KmodError
    (tmp_path / 'lib' / 'modules' / '6.9.1-1.x86_64').mkdir(parents=True)
    with pytest.raises(KmodError, match='depmod'):
        ModuleIndex.for_kernel(str(tmp_path), '6.9.1-1.x86_64')


@pytest.fixture(scope='module')
def real_kernel():
    if not realdata.available():
        pytest.skip('no ../shared/realdata')
    try:
        return realkernel.fetch()
    except realkernel.Unavailable as exc:
        pytest.skip(str(exc))


def test_lookup_agrees_with_modprobe_on_every_real_pci_modalias(real_kernel):
    aliases = realdata.pci_modaliases()
    assert len(aliases) > 1000
    with ModuleIndex.for_kernel(str(real_kernel.root), real_kernel.kver) as index:
        ours = index.lookup_many(aliases)
    disagreements = {}
    for alias in aliases:
        theirs = modprobe_resolve(real_kernel.root, real_kernel.kver, alias)
        if ours[alias] != theirs:
            disagreements[alias] = (ours[alias], theirs)
    assert not disagreements
    assert sum(1 for a in aliases if ours[a]) > 500


# --- long modaliases: exact mode's filter and matcher ---------------------------------

# A real input device's modalias runs to a few thousand bytes: this one fits libkmod's
# PATH_MAX with a module's name; LONGER does not (libkmod cuts it to 4095 bytes, and a
# lookup that matches anything then fails: see kmod.AliasMatcher).
LONG = 'input:b0003v046DpC52Be0111-e0,1,4,11,14,k' + ','.join(str(71 + n % 700)
                                                             for n in range(700))
LONGER = LONG + ',' + ','.join(str(71 + n % 700) for n in range(700))


@pytest.mark.parametrize('regex', [False, True], ids=['loop', 'regex'])
def test_long_modaliases_are_matched_as_libkmod_says(monkeypatch, tmp_path, regex):
    """Patterns whose literal runs past the prefixes ModaliasFilter keeps, or that
    differ from a modalias only after them: kept or not, the matches are libkmod's
    (an index depmod built of them)."""
    import aliasagreement
    from dnf_kernelsplit.kmod import AliasMatcher, ModaliasFilter, encode_modalias
    if regex:
        monkeypatch.setattr(ModaliasFilter, 'REGEX_MIN_PROVIDES', 0)
    patterns = [LONG, LONG[:-1], LONG[:100] + '*', LONG[:64] + '*', LONG[:64] + 'X*',
                LONG[:65] + '*', LONG[:200] + '*k*', 'input:b0003v*', 'input:b0003v046D[pP]*',
                'pci:v00008086d00001572sv*sd*bc*sc*i*', 'pci:v*d*sv*sd*bc02*',
                'input:b0019v*', 'usb:v*p*']
    modaliases = [LONG, LONGER, LONG[:70], LONG[:64],
                  'pci:v00008086d00001572sv00008086sd00000006bc02sc00i00']
    aliasagreement.build_index(patterns, tmp_path)
    with ModuleIndex(str(tmp_path / 'lib' / 'modules' / aliasagreement.KVER), []) as index:
        expected = {alias: sorted(name.replace('Q', 'm') for name in index.lookup(alias))
                    for alias in modaliases}
    provides = ['modalias(%s) = m%d' % (encode_modalias(p), n) for n, p in enumerate(patterns)]
    provides.append('kmod(i40e.ko)')
    has_any, kept = ModaliasFilter(modaliases).select(provides)
    assert has_any and {module for _, module in kept} == {'m%d' % n for n in range(11)}
    matcher = AliasMatcher(kept)
    for alias in modaliases:
        assert sorted(matcher.match(alias)) == expected[alias], alias[:80]
    assert len(expected[LONG]) == 6 and expected[LONGER] == [] and len(LONGER) > 4096


# --- damaged index files --------------------------------------------------------------

def test_every_truncation_of_every_index_file_is_seen(full_index_root, tmp_path):
    """depmod writes the root node last: whatever length a file is cut to, it shows."""
    from dnf_kernelsplit.kmod import INDEX_FILES, index_file_damage
    root, kver = full_index_root
    moddir = root / 'lib' / 'modules' / kver
    cut = str(tmp_path / 'cut.bin')
    for name in INDEX_FILES:
        assert index_file_damage(str(moddir / name)) is None, name
        shutil.copyfile(moddir / name, cut)
        for length in reversed(range(os.path.getsize(cut))):
            os.truncate(cut, length)
            assert index_file_damage(cut) is not None, (name, length)


@pytest.mark.parametrize('change, damage', [
    (lambda d: b'\0\0\0\0' + d[4:], 'not a module index (magic 0x0)'),
    (lambda d: d[:4] + b'\0\x03\0\x01' + d[8:], 'index format 3, not 2'),
    (lambda d: d[:8] + b'\x20\xff\xff\xff' + d[12:], 'truncated or corrupt (its root node at'),
    (lambda d: d + b'\0', 'truncated or corrupt (1 bytes after its root node)'),
    (lambda d: d[:-4] + b'\x20\xff\xff\xff', 'corrupt (its root node points outside the file)'),
])
def test_a_corrupt_index_file_is_named_with_the_fix(full_index_root, tmp_path, change, damage):
    from dnf_kernelsplit.kmod import DamagedIndexError
    root, kver = full_index_root
    copy = tmp_path / 'lib' / 'modules' / kver
    shutil.copytree(root / 'lib' / 'modules' / kver, copy)
    alias_bin = copy / 'modules.alias.bin'
    alias_bin.write_bytes(change(alias_bin.read_bytes()))
    with pytest.raises(DamagedIndexError) as raised:
        ModuleIndex.for_kernel(str(tmp_path), kver)
    assert str(raised.value).startswith('%s is %s' % (alias_bin, damage))
    assert str(raised.value).endswith('rebuild the index with `depmod -b %s %s`' % (tmp_path, kver))


@pytest.mark.parametrize('dirname, command', [
    ('/lib/modules/6.9.1-1.x86_64', 'depmod 6.9.1-1.x86_64'),
    ('/usr/lib/modules/6.9.1-1.x86_64', 'depmod 6.9.1-1.x86_64'),
    ('/srv/image/lib/modules/6.9.1-1.x86_64', 'depmod -b /srv/image 6.9.1-1.x86_64'),
])
def test_depmod_command(dirname, command):
    from dnf_kernelsplit.kmod import depmod_command
    assert depmod_command(dirname) == command
