"""Module -> package lookup from real repo metadata and rpmdb, through the dnf Python API."""

import pytest

import kernelrepo
from dnf_kernelsplit.packages import (installed_kernels, kernel_packages, package_kernel_releases,
                                      release_packages)
from dnf_kernelsplit.packages_dnf4 import Dnf4Lookup
from harness import dnf_base


EVERY_MODULE = set(kernelrepo.CATALOGUE)


def release_map(base, kver):
    seeds = base.sack.query().filter(file__glob='/lib/modules/%s/*' % kver)
    lookup = Dnf4Lookup(base.sack)
    return kernel_packages(lookup, kver, release_packages(lookup, kver, seeds), EVERY_MODULE)


def modules_by_package(release):
    out = {}
    for module, refs in release.modules.items():
        for ref in refs:
            out.setdefault(ref.name, set()).add(module)
    return out


EXPECTED_DRIVERS_SPLIT = {
    'kernel-core': set(kernelrepo.GROUPS['core']),
    'kernel-drivers': set(kernelrepo.GROUPS['drivers']),
    'kernel-drivers-sriov': set(kernelrepo.GROUPS['sriov']),
    'kernel-drivers-gpu': set(kernelrepo.GROUPS['gpu']),
    'kernel-drivers-passthrough': set(kernelrepo.GROUPS['passthrough']),
}


@pytest.mark.parametrize('repo, kver, expected', [
    ('split', '6.9.1-1.x86_64', EXPECTED_DRIVERS_SPLIT),
    ('split-filelists', '6.9.1-1.x86_64', EXPECTED_DRIVERS_SPLIT),
    ('fedora', '6.9.1-200.fc40.x86_64', {
        'kernel-modules-core': set(kernelrepo.GROUPS['core']),
        'kernel-modules': set(kernelrepo.GROUPS['drivers']),
        'kernel-modules-extra': set(kernelrepo.GROUPS['sriov'] + kernelrepo.GROUPS['gpu']
                                    + kernelrepo.GROUPS['passthrough']),
    }),
])
def test_module_to_package_map(make_root, repo, kver, expected):
    root = make_root(repo)
    base = dnf_base(root)
    try:
        release = release_map(base, kver)
        assert modules_by_package(release) == expected
        assert [p.nevra for p in release.providers('snd_hda_intel')] == \
            [next(n for n in expected if 'snd_hda_intel' in expected[n]) + '-' + kver]
        assert not any(p.installed for p in release.packages)
    finally:
        base.close()


def test_provides_and_file_lists_give_the_same_answer(make_root):
    answers = []
    for repo in ('split', 'split-filelists'):
        base = dnf_base(make_root(repo))
        try:
            answers.append(release_map(base, '6.9.1-1.x86_64').modules)
        finally:
            base.close()
    assert answers[0] == answers[1]


def test_installed_kernels_newest_first_and_installed_flags(make_root):
    root = make_root('split')
    root.install('kernel-6.8.0-1.x86_64', 'kernel-core-6.9.1-1.x86_64')
    base = dnf_base(root)
    try:
        kernels = installed_kernels(Dnf4Lookup(base.sack), str(root.root))
        assert [k.kver for k in kernels] == ['6.9.1-1.x86_64', '6.8.0-1.x86_64']
        old = release_packages(Dnf4Lookup(base.sack), kernels[1].kver, kernels[1].packages)
        assert {p.name for p in old if p.installed} == {'kernel-core', 'kernel-drivers'}
        release = kernel_packages(Dnf4Lookup(base.sack), kernels[0].kver, release_packages(
            Dnf4Lookup(base.sack), kernels[0].kver, kernels[0].packages), EVERY_MODULE)
        installed = {p.name for p in release.packages if p.installed}
        assert installed == {'kernel-core'}
        assert {p.name for p in release.packages} == set(EXPECTED_DRIVERS_SPLIT)
    finally:
        base.close()


def test_version_order_is_rpm_order_not_string_order(tmp_path, make_root):
    repo = kernelrepo.build_repo([kernelrepo.split_release('6.9.1', '1'),
                                  kernelrepo.split_release('6.10.0', '1')], tmp_path / 'repo')
    from harness import Installroot
    root = Installroot(tmp_path / 'ir', {'r': repo})
    root.install('kernel-core-6.9.1-1.x86_64', 'kernel-core-6.10.0-1.x86_64')
    base = dnf_base(root)
    try:
        assert [k.kver for k in installed_kernels(Dnf4Lookup(base.sack), str(root.root))] == [
            '6.10.0-1.x86_64', '6.9.1-1.x86_64']
    finally:
        base.close()


@pytest.mark.parametrize('module, provides', [
    ('i40e', ['kmod(i40e.ko)']),
    ('sb_edac', ['kmod(sb-edac.ko)', 'kmod(sb_edac.ko)']),
    # every mix of separators: a file may be named so (snd-soc-sof_es8336.ko)
    ('snd_hda_intel', ['kmod(snd-hda-intel.ko)', 'kmod(snd-hda_intel.ko)',
                       'kmod(snd_hda-intel.ko)', 'kmod(snd_hda_intel.ko)']),
    # past six separators, the two uniform spellings only
    ('a_b_c_d_e_f_g_h', ['kmod(a-b-c-d-e-f-g-h.ko)', 'kmod(a_b_c_d_e_f_g_h.ko)']),
])
def test_kmod_provide_names(module, provides):
    from dnf_kernelsplit.packages import kmod_provides
    assert kmod_provides(module) == provides


def test_mixed_separators_and_unknown_modules(make_root):
    base = dnf_base(make_root('split'))
    try:
        pkgs = release_packages(Dnf4Lookup(base.sack), '6.9.1-1.x86_64',
                                base.sack.query().filter(file__glob='/lib/modules/6.9.1-1.x86_64/*'))
        release = kernel_packages(Dnf4Lookup(base.sack), '6.9.1-1.x86_64', pkgs,
                                  ['snd_hda_intel', 'no_such_module'])
        assert [p.name for p in release.providers('snd_hda_intel')] == ['kernel-drivers']
        assert release.providers('no_such_module') == ()
        # Which packages ship modules is only asked when a device is left unresolved.
        assert release.shipping == frozenset() and release.unread == {}
        release = kernel_packages(Dnf4Lookup(base.sack), '6.9.1-1.x86_64', pkgs, ['snd_hda_intel'],
                                  ['pci:v0000FFFFd0000FFFFsv00000000sd00000000bc00sc00i00'])
        assert release.shipping == {p.nevra for p in release.packages if p.name != 'kernel'}
        # without modalias() provides, and without inspect mode, their aliases are unknown
        assert set(release.unread) == release.shipping
    finally:
        base.close()


def test_kernel_release_recognised_without_names(make_root):
    base = dnf_base(make_root('split-filelists'))
    try:
        for pkg in base.sack.query().available():
            kvers = package_kernel_releases(pkg)
            assert kvers == (set() if pkg.name == 'kernel' else {'6.9.1-1.x86_64'}), pkg
    finally:
        base.close()


def test_what_is_a_kernel_and_what_only_ships_into_one(make_root):
    from dnf_kernelsplit.packages import declares_kernel, package_shipment
    base = dnf_base(make_root('split', 'thirdparty'))
    try:
        found = {pkg.name: package_shipment(pkg) for pkg in base.sack.query().available()
                 if pkg.evr in ('6.9.1-1', '1.0-1', '550.54-1')}
        assert found['kernel-core'] == ({'6.9.1-1.x86_64'}, {'6.9.1-1.x86_64'})
        assert found['kernel-drivers-sriov'] == ({'6.9.1-1.x86_64'}, set())
        assert found['kmod-foo'] == ({'6.9.1-1.x86_64'}, set())
        assert found['kmod-baz'] == ({'6.5.0-1.x86_64'}, set())
        assert found['kernel-abi-stablelists'] == ({'kabi-rhel90'}, set())
        assert found['kernel'] == (set(), set())          # the metapackage ships nothing
        query = base.sack.query().available()
        by_name = {p.name: p for p in query.filter(evr='6.9.1-1')}
        # provides say it too, for packages whose files do not: installonlypkg(kernel),
        # or the kernel build's own NAME-uname-r
        assert declares_kernel(Dnf4Lookup(base.sack), [by_name['kernel-core']], '6.9.1-1.x86_64')
        assert declares_kernel(Dnf4Lookup(base.sack), [by_name['kernel-drivers-sriov']], '6.9.1-1.x86_64')
        assert not declares_kernel(Dnf4Lookup(base.sack), [by_name['kernel-drivers-sriov']], '6.8.0-1.x86_64')
        kmod = query.filter(name='kmod-foo')
        assert not declares_kernel(Dnf4Lookup(base.sack), kmod, '6.9.1-1.x86_64')
    finally:
        base.close()


def test_installed_owners_from_the_rpmdb_index_are_hawkeys(make_root):
    """The owners of exact paths come from rpm's Basenames index (a dnf.Base at hand),
    and are the packages hawkey's file filter finds: several kernels, a kmod sharing
    their directories, directories, a path nobody owns, a root where rpm cannot look."""
    root = make_root('split', 'thirdparty')
    root.install('kernel-6.8.0-1.x86_64', 'kernel-core-6.9.1-1.x86_64', 'kmod-foo')
    base = dnf_base(root)
    try:
        with_rpmdb, hawkey_only = Dnf4Lookup(base.sack, base), Dnf4Lookup(base.sack)
        cases = [[], ['/nowhere/at/all']]
        for kver in ('6.8.0-1.x86_64', '6.9.1-1.x86_64'):
            cases += [['/lib/modules/%s/vmlinuz' % kver, '/lib/modules/%s/modules.builtin' % kver],
                      ['/lib/modules/%s' % kver], ['/lib/modules/%s/extra' % kver],
                      ['/lib/modules/%s/extra/foo.ko' % kver, '/lib/modules/%s/vmlinuz' % kver]]
        seen = set()
        for paths in cases:
            by_rpm = with_rpmdb.rpmdb_owners(paths)
            assert by_rpm == hawkey_only.installed_owners(paths), paths
            assert with_rpmdb.installed_owners(paths) == by_rpm
            seen.update(p.name for p in by_rpm)
        assert {'kernel-core', 'kmod-foo'} <= seen
        base.conf.installroot = str(root.base / 'no-such-root')
        assert with_rpmdb.rpmdb_owners(cases[2]) is None     # rpm cannot open it: hawkey asked
    finally:
        base.close()
