"""Exact mode: the modalias() provides generator and matching devices against them."""

import subprocess

import pytest

import kernelrepo
import realdata
import realkernel
from dnf_kernelsplit.kmod import (AliasMatcher, ModuleIndex, decode_modalias, encode_modalias,
                                  modalias_from_provide, normalize)

PROV = kernelrepo.ROOT / 'rpm' / 'modalias.prov'


@pytest.mark.parametrize('alias, encoded', [
    ('pci:v00008086d00001572sv*sd*bc*sc*i*', 'pci:v00008086d00001572sv*sd*bc*sc*i*'),
    ('acpi*:PNP0A03:*', 'acpi*:PNP0A03:*'),
    ('of:N*T*Cfsl,imx6q-uart', 'of:N*T*Cfsl%2Cimx6q-uart'),
    ('dmi*:svnLENOVO:pnThinkPad X1*', 'dmi*:svnLENOVO:pnThinkPad%20X1*'),
    ('usb:v*p*d*dc*dsc*dt*ic0[13]isc*', 'usb:v*p*d*dc*dsc*dt*ic0[13]isc*'),
    ('x(y)<z>=%', 'x%28y%29%3Cz%3E%3D%25'),
    ('caf\u00e9', 'caf%C3%A9'),
])
def test_encoding_round_trip(alias, encoded):
    assert encode_modalias(alias) == encoded
    assert decode_modalias(encoded) == alias


@pytest.mark.parametrize('provide, parsed', [
    ('modalias(pci:v00008086d00001572sv*sd*bc*sc*i*) = i40e',
     ('pci:v00008086d00001572sv*sd*bc*sc*i*', 'i40e')),
    ('modalias(of:N*T*Cfsl%2Cimx6q-uart)', ('of:N*T*Cfsl,imx6q-uart', None)),
    ('modalias(vfio_pci:v*d*sv*sd*bc*sc*i*) = vfio_pci', ('vfio_pci:v*d*sv*sd*bc*sc*i*', 'vfio_pci')),
    ('kmod(i40e.ko)', None),
])
def test_provide_parsing(provide, parsed):
    assert modalias_from_provide(provide) == parsed


def test_generator_emits_every_alias_of_every_module(tmp_path):
    odd = kernelrepo.Module('odd-name', ('of:N*T*Cfsl,imx6q-uart', 'dmi*:pn Think(Pad)*', '100%'),
                            subdir='kernel/x', compression='zst')
    files = [kernelrepo.build_module(m, '6.9.1-1.x86_64', tmp_path / 'lib/modules/6.9.1-1.x86_64',
                                     tmp_path)
             for m in [kernelrepo.CATALOGUE['i40e'], kernelrepo.CATALOGUE['snd_hda_intel'],
                       kernelrepo.CATALOGUE['vfio'], odd]]
    out = subprocess.run([str(PROV)], input=''.join('%s\n' % f for f in files),
                         capture_output=True, text=True, check=True).stdout
    provides = [modalias_from_provide(line) for line in out.splitlines()]
    expected = [(a, normalize(m.name)) for m in [kernelrepo.CATALOGUE['i40e'],
                                      kernelrepo.CATALOGUE['snd_hda_intel'], odd]
                for a in m.aliases]
    assert provides == expected
    assert all(' ' not in line.split(' = ')[0] and ',' not in line for line in out.splitlines())


def test_exact_mode_fixture_packages_carry_the_provides():
    rel = kernelrepo.split_release('6.9.1', '1', modalias_provides=True)
    rpm = kernelrepo.build_release(rel) / 'kernel-drivers-sriov-6.9.1-1.x86_64.rpm'
    provides = subprocess.run(['rpm', '-qp', '--provides', str(rpm)], capture_output=True,
                              text=True, check=True).stdout.splitlines()
    parsed = sorted(filter(None, map(modalias_from_provide, provides)))
    assert parsed == sorted((a, name) for name in kernelrepo.GROUPS['sriov']
                            for a in kernelrepo.CATALOGUE[name].aliases)


def test_matcher_semantics():
    matcher = AliasMatcher([('pci:v00008086d00001572sv*sd*bc*sc*i*', 'i40e'),
                            ('pci:v*d*sv*sd*bc01sc08i02*', 'nvme'),
                            ('usb:v*p*d*dc*dsc*dp*ic0[13]isc*ip*in*', 'class'),
                            ('usb:v*p*d*dc*dsc*dp*ic0[!13]isc*ip*in*', 'not-class'),
                            ('xen:vif', 'xen_netfront')])
    assert matcher.match('pci:v00008086d00001572sv00008086sd00000006bc02sc00i00') == ['i40e']
    assert matcher.match('pci:v0000144Dd0000A808sv0000144Dsd0000A801bc01sc08i02') == ['nvme']
    assert matcher.match('usb:v0781p5581d0100dc00dsc00dp00ic03isc06ip50in00') == ['class']
    assert matcher.match('usb:v0781p5581d0100dc00dsc00dp00ic08isc06ip50in00') == ['not-class']
    assert matcher.match('xen:vif') == ['xen_netfront'] and matcher.match('xen:vifx') == []
    assert not AliasMatcher([])


@pytest.fixture(scope='module')
def real_aliases():
    """The real Debian kernel and its modules.alias as (pattern, module) pairs."""
    if not realdata.available():
        pytest.skip('no ../shared/realdata')
    try:
        kernel = realkernel.fetch()
    except realkernel.Unavailable as exc:
        pytest.skip(str(exc))
    entries = []
    for line in (kernel.modules_dir / 'modules.alias').read_text().splitlines():
        if line.startswith('alias '):
            _, pattern, module = line.split(' ', 2)
            entries.append((pattern, module))
    return kernel, entries


def _libkmod_modules(kernel, aliases):
    """What libkmod's lookup names for each of ALIASES, less the kernel's built-ins (no
    package ships those: their aliases are in modules.builtin.alias.bin)."""
    with ModuleIndex.for_kernel(str(kernel.root), kernel.kver) as index:
        found = index.lookup_many(aliases)
        builtin = index.builtin_modules()
    return {alias: set(found[alias]) - builtin for alias in aliases}


def test_exact_mode_agrees_with_libkmod_on_real_data(real_aliases):
    """Every real modalias, of every bus, against the real kernel's 26k aliases as
    modalias() provides: narrowed by ModaliasFilter a machine's worth at a time (the
    one-regex way, as for a real driver package) and matched by AliasMatcher, they
    name the modules libkmod's lookup names."""
    from dnf_kernelsplit.kmod import ModaliasFilter
    kernel, entries = real_aliases
    provides = ['modalias(%s) = %s' % (encode_modalias(pattern), module)
                for pattern, module in entries]
    aliases = realdata.modaliases()
    expected = _libkmod_modules(kernel, aliases)
    ours = {}
    for start in range(0, len(aliases), 60):
        group = aliases[start:start + 60]
        wanted = ModaliasFilter(group)
        assert wanted.candidates_regex() is not None
        matcher = AliasMatcher(wanted.select(provides)[1])
        ours.update((alias, set(matcher.match(alias))) for alias in group)
    differences = {a: (sorted(ours[a]), sorted(expected[a])) for a in aliases
                   if ours[a] != expected[a]}
    assert not differences
    assert len(aliases) > 2500 and sum(1 for a in aliases if ours[a]) > 1000
    assert {a.split(':')[0] for a in aliases if ours[a]} >= {'pci', 'usb', 'acpi', 'input', 'of'}


def test_inspect_mode_agrees_with_libkmod_on_real_data(real_aliases):
    """The same, with the aliases inspect mode reads inside the real kernel's .ko files."""
    import concurrent.futures
    from dnf_kernelsplit.kmod import module_name_from_path
    from dnf_kernelsplit.payload import module_aliases
    kernel, _ = real_aliases
    files = sorted(str(p) for p in kernel.modules_dir.rglob('*.ko*'))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        read = pool.map(lambda path: module_aliases(path, open(path, 'rb').read()), files)
        table = [(alias, module_name_from_path(path)) for path, aliases in zip(files, read)
                 for alias in aliases]
    matcher = AliasMatcher(table)
    aliases = realdata.modaliases()
    expected = _libkmod_modules(kernel, aliases)
    differences = {a: (sorted(set(matcher.match(a))), sorted(expected[a])) for a in aliases
                   if set(matcher.match(a)) != expected[a]}
    assert not differences
    assert len(files) > 4000 and len(table) > 25000


@pytest.mark.parametrize('modaliases, expected', [
    # a fully literal alias: its provide's name ends right after the pattern
    (['xen:vif'], {('xen:vif', 'xen_netfront')}),
    # 'xen:vif' begins 'xen:vifx': kept as a candidate, and fnmatch says no
    (['xen:vifx', 'xen:vi'], {('xen:vif', 'xen_netfront')}),
    # wildcard patterns: the literal prefix begins the modalias
    (['virtio:d00000001v00001AF4'], {('virtio:d00000001v*', 'virtio_net')}),
    (['pci:v0000144Dd0000A808sv0000144Dsd0000A801bc01sc08i02'],
     {('pci:v*d*sv*sd*bc01sc08i02*', 'nvme'), ('pci:v*d*sv*sd*bc01sc06i01*', 'ahci'),
      ('pci:v*d*sv*sd*bc0Csc03i30*', 'xhci_pci')}),
    ([], set()),
])
@pytest.mark.parametrize('regex', [False, True], ids=['loop', 'regex'])
def test_modalias_provides_kept_by_literal_prefix(make_root, monkeypatch, modaliases, expected,
                                                  regex):
    """What survives the prefix filter: every pattern that may match, few that cannot
    (the fixture package is small: the one-regex way is forced for it too)."""
    from dnf_kernelsplit.kmod import ModaliasFilter
    from dnf_kernelsplit.packages_dnf4 import Dnf4Lookup
    from harness import dnf_base
    if regex:
        monkeypatch.setattr(ModaliasFilter, 'REGEX_MIN_PROVIDES', 0)
    base = dnf_base(make_root('exact'))
    try:
        core = base.sack.query().available().filter(name='kernel-core', version='6.9.1')[0]
        package_modaliases = Dnf4Lookup(base.sack).modalias_provides
        has_any, kept = package_modaliases(core, ModaliasFilter(modaliases))
        assert has_any
        assert set(kept) == expected
        everything = AliasMatcher(package_modaliases(core)[1])
        for alias in modaliases:      # the filter never drops a pattern that matches
            assert AliasMatcher(kept).match(alias) == everything.match(alias)
        assert AliasMatcher(kept).match('xen:vifx') == []
    finally:
        base.close()


def test_modalias_filter_agrees_with_the_plain_prefix_test_on_real_data(real_aliases):
    """Every real machine's modaliases against the real kernel's 26k aliases as provides:
    the one-regex filter keeps exactly what testing each provide's prefix keeps."""
    from dnf_kernelsplit.kmod import ModaliasFilter, select_modalias_provides
    provides = ['kmod(%s.ko)' % m for m in ('i40e', 'snd-hda-intel')]
    provides += ['modalias(%s) = %s' % (encode_modalias(pattern), module)
                 for pattern, module in real_aliases[1]]
    machines = [{d['MODALIAS'] for d in devices if d.get('MODALIAS')}
                for devices in realdata.udevadm_machines().values()]
    # and all of them at once: more than MAX_NODES, the plain loop's way
    machines.append(set().union(*machines))
    kept = 0
    for modaliases in machines:
        wanted = ModaliasFilter(modaliases)
        fast = wanted.select(provides)
        assert fast == select_modalias_provides(provides, wanted.prefixes)
        # by the provides' names, as for hawkey's Reldeps: the same, in the same order
        assert wanted.select(provides, lambda text: text.partition(' = ')[0]) == fast
        kept += len(fast[1])
    assert len(machines) > 40 and kept > 1000
    assert len(provides) >= ModaliasFilter.REGEX_MIN_PROVIDES
    assert ModaliasFilter(machines[-1]).candidates_regex() is None
    assert all(ModaliasFilter(m).candidates_regex() is not None for m in machines[:-1])
