"""A damaged module index, through the real dnf CLI: depmod's own files, truncated or
overwritten.  libkmod loads a truncated file and a lookup then reads past its end."""

import pytest

from harness import Host

COREONLY, SRIOV = Host('baremetal-coreonly'), Host('baremetal-sriov')
OLD, NEW = '6.8.0-1.x86_64', '6.9.1-1.x86_64'


def damage(root, kver, name, how):
    path = root.root / 'lib' / 'modules' / kver / name
    data = path.read_bytes()
    assert len(data) > 100, 'a real index'
    path.write_bytes(data[:len(data) // 2] if how == 'truncated' else b'\0' * 12 + data[12:])
    return path


def kernelsplit_lines(text, path):
    return [line for line in text.splitlines() if line.startswith('kernelsplit:') and
            str(path) in line]


# Every cut and each kind of overwrite is seen: tests/test_kmod.py.
@pytest.mark.parametrize('name, how', [('modules.alias.bin', 'truncated'),
                                       ('modules.dep.bin', 'overwritten')])
def test_check_names_the_damaged_file_and_resolves_with_the_next_index(make_root, name, how):
    root = make_root('split')
    root.install('kernel-' + OLD, 'kernel-' + NEW)
    path = damage(root, NEW, name, how)
    result = root.check('--json', host=COREONLY)
    assert result.returncode in (0, 1), result         # a report, not a crash
    doc = result.json()
    fix = '`depmod -b %s %s`' % (root.root, NEW)
    assert [note for note in doc['notes'] if str(path) in note] == [
        note for note in doc['notes'] if fix in note] != [], doc['notes']
    assert len(kernelsplit_lines(result.stderr, path)) == 1, result.stderr
    # the older kernel's index resolves the devices no driver is bound to
    assert doc['index_kernel'] == OLD
    devices = {d['slot']: d for d in doc['kernels'][0]['devices']}
    assert devices['0000:18:00.0']['driver'] is None
    assert devices['0000:18:00.0']['modules'] == ['megaraid_sas']


def test_check_with_no_usable_index_says_so(make_root):
    root = make_root('split')
    root.install('kernel-' + NEW)
    path = damage(root, NEW, 'modules.alias.bin', 'truncated')
    result = root.check('--json', host=COREONLY)
    assert result.returncode in (0, 1), result
    doc = result.json()
    assert doc['index_kernel'] is None
    assert len(doc['notes']) == 2 and str(path) in doc['notes'][0], doc['notes']
    assert doc['notes'][1].startswith('no installed kernel has a usable module index')


def test_the_hook_says_which_file_is_damaged_and_carries_on(make_root):
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    path = damage(root, OLD, 'modules.alias.bin', 'truncated')
    result = root.dnf('-y', 'upgrade', host=SRIOV)
    assert result.returncode == 0, result
    lines = kernelsplit_lines(result.stderr, path)
    assert len(lines) == 1 and '`depmod -b %s %s`' % (root.root, OLD) in lines[0], result
    # the drivers bound to the devices still say what they need
    assert 'kernel-drivers-sriov-' + NEW in root.installed()


def test_an_index_newer_kmod_wrote_is_whole(full_index_root, sid, tmp_path):
    """kmod 33 and later (Fedora 41, Debian 13; sid's here) write the root node first: their
    files are whole, and a cut inside that root node is still seen."""
    import shutil
    import struct
    from dnf_kernelsplit.kmod import index_file_damage
    root, kver = full_index_root
    copy = tmp_path / 'tree'
    shutil.copytree(root / 'lib' / 'modules' / kver, copy / 'lib' / 'modules' / kver)
    for index in (copy / 'lib' / 'modules' / kver).glob('*.bin'):
        index.unlink()
    built = sid.run(['depmod', '-b', str(copy), kver], rw=[copy])
    assert built.returncode == 0, built
    indexes = sorted((copy / 'lib' / 'modules' / kver).glob('*.bin'))
    alias = copy / 'lib' / 'modules' / kver / 'modules.alias.bin'
    assert struct.unpack('>III', alias.read_bytes()[:12])[2] & 0x0FFFFFFF == 12   # root first
    assert indexes and {p.name: index_file_damage(str(p)) for p in indexes} == \
        {p.name: None for p in indexes}
    alias.write_bytes(alias.read_bytes()[:14])
    assert 'truncated' in index_file_damage(str(alias))
