"""What a real udev database may hold and the plain test hosts do not, through the real dnf
CLI: bytes that are not UTF-8, garbage for a number, a modalias longer than the kernel's."""

import pytest

import oddhosts
from oddhosts import AUDIO, GPU, LONG_PATH, PF0, PF1

OLD, NEW = '6.8.0-1.x86_64', '6.9.1-1.x86_64'


def rows(result):
    return {d['slot'] or d['sysfs_path']: d for d in result.json()['kernels'][0]['devices']}


def warnings_naming(text, name):
    return [line for line in text.splitlines() if 'kernelsplit' in line and name in line]


def test_bytes_that_are_not_utf8_leave_the_device_judged_with_one_warning(make_root, tmp_path):
    host = oddhosts.garbled(tmp_path)
    root = make_root('split')
    root.install('kernel-' + NEW)
    result = root.check('--json', host=host)
    assert result.returncode == 1, result          # the GPU's package is not installed
    devices = rows(result)
    gpu, audio = devices[GPU], devices[AUDIO]
    # bound to nouveau: judged by its driver, whatever its modalias says
    assert (gpu['driver'], gpu['modules'], gpu['status']) == ('nouveau', ['nouveau'], 'missing')
    assert gpu['packages'] == ['kernel-drivers-gpu-' + NEW]
    assert gpu['modalias'] == oddhosts.GARBLED_GPU_MODALIAS.decode(errors='replace')
    # unbound: the byte sits where snd_hda_intel's alias has a wildcard, as for kmod
    assert (audio['driver'], audio['modules'], audio['status']) == (None, ['snd_hda_intel'], 'ok')
    for slot, what in [(GPU, '[10de:1e84]: MODALIAS, PCI_ID: '), (AUDIO, ': MODALIAS: '),
                       (PF0, ': sriov_totalvfs: ')]:
        lines = warnings_naming(result.stderr, slot)
        assert len(lines) == 1 and what in lines[0], (slot, result.stderr)
    assert not warnings_naming(result.stderr, PF1)     # ASCII garbage: nothing undecodable
    # garbage where the number of VFs belongs: not an SR-IOV PF
    assert devices[PF0]['sriov'] is None and devices[PF1]['sriov'] is None
    assert devices['0000:3b:02.0']['sriov'] == 'vf'


def test_the_hook_adds_what_a_garbled_device_needs_and_warns_once(make_root, tmp_path):
    host = oddhosts.garbled(tmp_path)
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    result = root.dnf('-y', 'upgrade', host=host)
    assert result.returncode == 0, result
    assert 'kernel-drivers-gpu-' + NEW in root.installed()
    assert ('kernelsplit: adding kernel-drivers-gpu-%s for %s [10de:1e84] (nouveau)'
            % (NEW, GPU)) in result.stdout, result
    for slot in (GPU, AUDIO, PF0):
        assert len(warnings_naming(result.stderr, slot)) == 1, (slot, result.stderr)


@pytest.mark.parametrize('command', [('kernelsplit', 'check', '--json'), ('-y', 'upgrade')])
def test_a_modalias_longer_than_the_kernels_is_left_out_with_a_warning(make_root, tmp_path,
                                                                       command):
    host = oddhosts.long_modalias(tmp_path)
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    result = root.dnf(*command, host=host)
    assert result.returncode == 0, result
    lines = warnings_naming(result.stderr, '/sys' + LONG_PATH)
    assert len(lines) == 1 and '65536 bytes' in lines[0], result.stderr
    if command[0] == 'kernelsplit':
        devices = rows(result)
        assert '/sys' + LONG_PATH not in devices
        assert devices[PF0]['modules'] == ['i40e'] and len(devices) == 11
    else:
        assert 'kernelsplit: adding kernel-drivers-sriov-' + NEW in result.stdout
        assert 'kernel-drivers-sriov-' + NEW in root.installed()
