"""Inspect mode: core-only hosts on repositories as distributions ship them today (no
modalias() provides), through the real dnf CLI, the packages served over HTTP as from a
mirror, so dnf really downloads them into its package cache."""

import json
import subprocess

import pytest

import kernelrepo
from harness import Host, Installroot

NEW, OLD = '6.9.1-1.x86_64', '6.8.0-1.x86_64'
FC_NEW, FC_OLD = '6.9.1-200.fc40.x86_64', '6.8.0-200.fc40.x86_64'
COREONLY, KVM = Host('baremetal-coreonly'), Host('kvm-guest')


def served(tmp_path, repo_server, *names, plugin_conf=None) -> Installroot:
    root = Installroot(tmp_path / 'ir', {name: repo_server(name) for name in names},
                       plugin_conf=plugin_conf)
    return root


def added(result):
    return [line.split(' for ')[0][len('kernelsplit: adding '):]
            for line in result.stdout.splitlines() if line.startswith('kernelsplit: adding')]


def new_packages(root, kver=NEW):
    return {name[:-len(kver) - 1] for name in root.installed() if name.endswith(kver)}


def cached_packages(root):
    return sorted(p.name for p in (root.root / 'var/cache/dnf').rglob('*.rpm'))


def alias_tables(root):
    return sorted((root.root / 'var/cache/dnf/kernelsplit').glob('aliases-*'))


@pytest.mark.parametrize('repo, core, old, new, expected', [
    ('split', ['kernel-core'], OLD, NEW,
     {'kernel-core', 'kernel-drivers', 'kernel-drivers-gpu', 'kernel-drivers-sriov'}),
    ('fedora', ['kernel-core', 'kernel-modules-core'], FC_OLD, FC_NEW,
     {'kernel-core', 'kernel-modules-core', 'kernel-modules', 'kernel-modules-extra'}),
])
def test_a_core_only_host_gets_exactly_what_its_hardware_needs(tmp_path, repo_server, repo,
                                                               core, old, new, expected):
    root = served(tmp_path, repo_server, repo)
    root.install(*['%s-%s' % (name, old) for name in core])
    first = root.dnf('-v', '-y', 'upgrade', host=COREONLY)
    assert first.returncode == 0, first
    root.depmod()
    assert new_packages(root, new) == expected
    assert all('(its modules\' aliases, read by inspect mode)' in line
               for line in first.stdout.splitlines() if line.startswith('kernelsplit: adding'))
    assert 'kernelsplit: inspect: read ' in first.stdout and 'fetched)' in first.stdout
    assert root.check(host=COREONLY).returncode == 0
    # the packages it added came down once: dnf found the ones inspect mode fetched
    assert 'Already downloaded' in first.stdout or '[SKIPPED]' in first.stdout


def test_a_second_run_fetches_nothing(tmp_path, repo_server):
    root = served(tmp_path, repo_server, 'split')
    root.install('kernel-core-' + OLD)
    first = root.dnf('-v', '--assumeno', 'upgrade', host=COREONLY)
    assert 'MB fetched)' in first.stdout, first
    tables = alias_tables(root)
    assert tables
    for rpm in (root.root / 'var/cache/dnf').rglob('*.rpm'):
        rpm.unlink()                 # as keepcache=0 leaves it after a transaction
    second = root.dnf('-v', '--assumeno', 'upgrade', host=COREONLY)
    assert added(second) == added(first) and len(added(first)) == 3, second
    assert 'kernelsplit: inspect: read' not in second.stdout
    assert cached_packages(root) == []                  # nothing was downloaded again
    assert alias_tables(root) == tables


def test_a_vm_fetches_nothing(tmp_path, repo_server):
    root = served(tmp_path, repo_server, 'split')
    root.install('kernel-core-' + OLD)
    result = root.dnf('-v', '-y', 'upgrade', host=KVM)
    assert result.returncode == 0, result
    assert 'inspect' not in result.stdout
    assert alias_tables(root) == []
    assert new_packages(root) == {'kernel-core'}


@pytest.mark.parametrize('setting, how', [
    ({'inspect_max_mb': '0'}, 'inspect_max_mb = 0'),
    ({'inspect': 'never'}, 'inspect = never'),
])
def test_what_is_not_read_leaves_devices_unknown_with_the_reason(tmp_path, repo_server,
                                                                  setting, how):
    root = served(tmp_path, repo_server, 'split', plugin_conf=setting)
    root.install('kernel-core-' + NEW)
    check = root.check('--json', host=COREONLY)
    assert check.returncode == 2, check
    nic = nic_row(check)
    assert nic['status'] == 'unknown' and how in nic['reason']
    assert 'kernel-drivers-sriov-' + NEW in nic['reason']
    assert alias_tables(root) == [] and cached_packages(root) == []


def test_cacheonly_with_an_empty_cache_fetches_nothing(tmp_path, repo_server):
    root = served(tmp_path, repo_server, 'split')
    root.install('kernel-core-' + OLD)
    root.dnf('makecache', check=True)
    result = root.dnf('-C', '--assumeno', 'upgrade', host=COREONLY)
    assert added(result) == [], result
    line = next(l for l in result.stdout.splitlines() if 'cannot judge' in l)
    assert '(-C)' in line and 'kernel-drivers-sriov-' + NEW in line
    for option, said in (('-C', '(-C)'), ('--no-download', '--no-download')):
        check = root.check(option, '--json', '--kernel', NEW, host=COREONLY)
        nic = nic_row(check)
        assert nic['status'] == 'unknown' and said in nic['reason'], check
    assert cached_packages(root) == [] and alias_tables(root) == []
    # without either, the check reads them, and says what it fetched
    table = root.check('--kernel', NEW, host=COREONLY)
    assert 'inspect mode read the modules of' in table.stdout and 'MB into the package cache' \
        in table.stdout, table
    # ... once: the next check has the answers, and fetches nothing
    again = root.check('--json', '--kernel', NEW, host=COREONLY)
    assert nic_row(again)['status'] == 'missing', again
    assert again.json()['fetched_bytes'] == 0


def nic_row(check):
    return next(d for d in check.json()['kernels'][0]['devices'] if d['slot'] == '0000:3b:00.0')


def test_a_truncated_package_is_named_and_the_others_still_judged(tmp_path, repo_server):
    root = served(tmp_path, repo_server, 'split', 'split-truncated')
    (root.reposdir / 'split.repo').write_text(
        (root.reposdir / 'split.repo').read_text().replace('enabled=1', 'enabled=1\n'
                                                           'excludepkgs=*-6.9.1-1*'))
    root.install('kernel-core-' + OLD)
    result = root.dnf('--assumeno', 'upgrade', host=COREONLY)
    warning = next(l for l in result.stderr.splitlines() if 'cannot fetch' in l)
    assert 'kernel-drivers-gpu-%s' % NEW in warning, result
    assert sorted(added(result)) == ['kernel-drivers-%s' % NEW, 'kernel-drivers-sriov-%s' % NEW]
    line = next(l for l in result.stdout.splitlines() if 'cannot judge' in l)
    assert '0000:01:00.0' in line and 'kernel-drivers-gpu-' + NEW in line


def test_the_aliases_read_are_what_modinfo_reads(tmp_path):
    """Every module of every fixture package, .ko, .ko.xz and .ko.zst alike."""
    from dnf_kernelsplit.payload import package_aliases
    rpms = kernelrepo.build_release(kernelrepo.split_release('6.9.1', '1'))
    suffixes = set()
    for rpm in sorted(rpms.glob('kernel-*.rpm')):
        read = package_aliases(str(rpm)).modules
        unpacked = tmp_path / rpm.stem
        unpacked.mkdir()
        subprocess.run('rpm2cpio %s | cpio -idm --quiet' % rpm, shell=True, cwd=unpacked,
                       check=True)
        files = [p for p in unpacked.rglob('*.ko*')]
        suffixes.update(p.name.split('.ko')[1] for p in files)
        expected = {}
        for path in files:
            modinfo = subprocess.run(['modinfo', '-F', 'alias', str(path)], check=True,
                                     capture_output=True, text=True).stdout.split()
            name = path.name.split('.ko')[0].replace('-', '_')
            expected[name] = tuple(modinfo)
        assert read == expected, rpm.name
    assert suffixes >= {'', '.xz', '.zst'}


def test_a_corrupt_payload_or_module_is_a_payload_error_naming_it(tmp_path):
    from dnf_kernelsplit.payload import PayloadError, package_aliases
    rpm = next(kernelrepo.build_release(kernelrepo.split_release('6.9.1', '1'))
               .glob('kernel-drivers-sriov-*.rpm'))
    data = bytearray(rpm.read_bytes())
    for cut in (len(data) * 2 // 3, len(data) - 64):
        broken = tmp_path / ('cut-%d-%s' % (cut, rpm.name))
        broken.write_bytes(data[:cut])
        with pytest.raises(PayloadError, match=str(broken)):
            package_aliases(str(broken))
    # a module that does not decompress: its .ko.xz stream damaged inside a valid payload
    module = kernelrepo.Module('i40e', ('pci:v00008086d00001572sv*sd*bc*sc*i*',),
                               subdir='kernel/drivers/net')
    made = kernelrepo.build_module(module, NEW, tmp_path / 'tree', tmp_path)
    raw = bytearray(made.read_bytes())
    raw[len(raw) // 2:len(raw) // 2 + 8] = b'\xff' * 8
    from dnf_kernelsplit.payload import module_aliases
    with pytest.raises(PayloadError, match='i40e.ko.xz'):
        module_aliases('/lib/modules/%s/kernel/drivers/net/i40e.ko.xz' % NEW, bytes(raw))


PC_VM = Host('kvm-guest-pc')


def test_a_pc_vm_with_a_floppy_controller_and_a_speaker_is_left_alone(tmp_path, repo_server):
    """What firmware describes on every PC-type VM (ACPI's floppy controller, the PC speaker
    platform device) has no driver bound on a core-only image, and kernel-drivers has one for
    each: unbound devices on such buses do not count (unbound_buses), so a cloud image stays
    core-only and nothing is fetched."""
    root = served(tmp_path, repo_server, 'split')
    root.install('kernel-core-' + OLD)
    with_plugin = root.dnf('-v', '--assumeno', 'upgrade', host=PC_VM)
    assert added(with_plugin) == [], with_plugin
    assert 'inspect' not in with_plugin.stdout and alias_tables(root) == []
    check = root.check('--json', host=PC_VM)
    assert check.returncode == 0, check
    rows = {d['sysfs_path']: d for d in check.json()['kernels'][0]['devices']}
    floppy = rows['/sys/devices/LNXSYSTM:00/LNXSYBUS:00/PNP0A03:00/PNP0700:00']
    assert (floppy['status'], floppy['basis']) == ('none', 'uncounted')
    # counting them is a choice: the floppy and the speaker then bring kernel-drivers
    root.write_plugin_conf({'hardware_in_installroot': 'yes', 'unbound_buses': 'all'})
    counted = root.dnf('-v', '--assumeno', 'upgrade', host=PC_VM)
    assert added(counted) == ['kernel-drivers-' + NEW], counted


def test_the_standalone_command_on_dnf4_fetches_what_inspect_mode_reads(tmp_path, repo_server):
    """`kernelsplit check` through dnf 4 downloads the candidate packages as `dnf kernelsplit
    check` does: its lookup has the dnf.Base to download with."""
    from standalone import kernelsplit
    root = served(tmp_path, repo_server, 'split')
    root.install('kernel-core-' + NEW)
    check = kernelsplit(root, 'check', '--json', host=COREONLY)
    nic = nic_row(check)
    assert nic['status'] == 'missing', check
    assert nic['install'] == ['kernel-drivers-sriov-' + NEW]
    assert check.json()['fetched_bytes'] > 0 and alias_tables(root)
