"""dnf5: the standalone command through libdnf5 and the guard through the actions plugin,
with the real dnf5 5.4.6 in the Debian sid chroot (tests/sidchroot.py), fixture
repositories built on the host, and the hardware emulated by umockdev inside.
"""

import json
import shutil

import pytest

from harness import PYTHON, Host, run
from standalone import KERNELSPLIT, Dnf5Root, in_sid_for, kernelsplit, root_options, \
    wrap_inside

SRIOV, BOTH, COREONLY, KVM = (Host('baremetal-sriov'), Host('baremetal-sriov-gpu'),
                              Host('baremetal-coreonly'), Host('kvm-guest'))
OLD, NEW = '6.8.0-1.x86_64', '6.9.1-1.x86_64'


@pytest.fixture
def dnf5_root(sid, tmp_path, repos):
    """dnf5_root('split', plugin_conf={...}) -> a Dnf5Root in the sid chroot."""
    def make(*names, plugin_conf=None):
        where = tmp_path / ('dnf5-root%d' % len(list(tmp_path.glob('dnf5-root*'))))
        return Dnf5Root(sid, where, {name: repos[name] for name in names}, plugin_conf)
    return make


def in_sid(sid, root, *args, host):
    """`kernelsplit ARGS` through libdnf5 in the chroot, on a root made by dnf 4 on the host."""
    command = ['python3', str(KERNELSPLIT), *args, '--backend', 'dnf5', *root_options(root)]
    return sid.run(wrap_inside(host, command), **in_sid_for(sid, root))


# --- the standalone command: the same answers through both package managers ----------

@pytest.mark.parametrize('repo, installs, host, args, status', [
    ('split', ['kernel-' + OLD, 'kernel-core-' + NEW], SRIOV, ['--json'], 1),
    ('split', ['kernel-' + OLD, 'kernel-core-' + NEW], SRIOV, ['--all-kernels'], 1),
    ('split', ['kernel-' + OLD, 'kernel-core-' + NEW], SRIOV, ['--json', '--kernel', OLD], 1),
    ('split', ['kernel-core-' + OLD], COREONLY, ['--json'], 2),           # cannot be judged
    ('exact', ['kernel-core-' + OLD], COREONLY, ['--json', '--kernel', NEW], 1),  # by modalias
    ('split', ['kernel-core-' + NEW], KVM, [], 0),
])
def test_check_answers_the_same_through_dnf4_and_dnf5(sid, make_root, repo, installs, host,
                                                      args, status):
    root = make_root(repo)
    root.install(*installs)
    dnf4 = kernelsplit(root, 'check', *args, host=host)
    dnf5 = in_sid(sid, root, 'check', *args, host=host)
    assert dnf4.returncode == status, dnf4
    assert dnf5.returncode == status, dnf5
    assert dnf5.stdout == dnf4.stdout


def test_the_package_manager_is_dnf5_where_dnf5_alone_is_installed(sid, make_root):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    command = ['python3', str(KERNELSPLIT), 'check', '-v', *root_options(root)]
    result = sid.run(wrap_inside(SRIOV, command), **in_sid_for(sid, root))
    assert result.returncode == 1, result
    assert 'kernelsplit: package manager: dnf5' in result.stderr
    # and dnf 4 on this host, whose /usr/bin/dnf is dnf 4
    here = run(SRIOV.wrap([PYTHON, str(KERNELSPLIT), 'check', '-v', *root_options(root)]),
               root.env)
    assert 'kernelsplit: package manager: dnf4' in here.stderr


def test_fix_installs_through_dnf5_and_check_is_then_clean(dnf5_root):
    root = dnf5_root('split')
    root.install('kernel-core-' + NEW)
    assert root.kernelsplit('check', host=SRIOV).returncode == 1
    fix = root.kernelsplit('fix', '-y', host=SRIOV)
    assert fix.returncode == 0, fix
    assert 'kernelsplit: installing kernel-drivers-sriov-%s for 0000:3b:00.0' % NEW in fix.stdout
    assert 'Transaction Summary' in fix.stdout + fix.stderr      # dnf5's own summary
    assert {'kernel-drivers-' + NEW, 'kernel-drivers-sriov-' + NEW} <= root.installed()
    root.depmod()
    after = root.kernelsplit('check', host=SRIOV)
    assert after.returncode == 0, after


# --- the libdnf5 lookup itself --------------------------------------------------------

LOOKUP_PROBE = r'''
import json, sys
sys.path.insert(0, %(plugin)r)
from dnf_kernelsplit import packages_dnf5 as p5
from dnf_kernelsplit.packages import nevra
root, reposdir, filelists = sys.argv[1], sys.argv[2], sys.argv[3] == 'yes'
base = p5.open_base(root, setopts=[('reposdir', reposdir), ('gpgcheck', '0')],
                    filelists=filelists)
lookup = p5.Dnf5Lookup(base)
names = lambda pkgs: sorted(nevra(p) + (' @System' if p.installed else '') for p in pkgs)
core = [p for p in lookup.declaring(None, 'kernel-core-uname-r = 6.9.1-1.x86_64') if not p.installed][0]
sriov = [p for p in lookup.siblings(core) if p.name == 'kernel-drivers-sriov'][0]
old = lookup.installed_owners(['/lib/modules/6.8.0-1.x86_64/vmlinuz'])[0]
doc = {
  'installed_owners': names(lookup.installed_owners(['/lib/modules/6.8.0-1.x86_64/vmlinuz'])),
  'installed_glob': names(lookup.installed_owners(['/lib/modules/*'], glob=True)),
  'owners': names(lookup.owners(['/lib/modules/6.9.1-1.x86_64/vmlinuz'])),
  'siblings': names(lookup.siblings(core)),
  'declaring_glob': names(lookup.declaring(None, '*-uname-r = 6.9.1-1.x86_64', glob=True)),
  'provides_query': names(lookup.provides_query(lookup.siblings(core))(['kmod(i40e.ko)', 'kmod(iavf.ko)'])),
  'modalias': lookup.modalias_provides(sriov),
  'files': sriov.files,
  'evr_cmp': [core.evr_cmp(old), old.evr_cmp(core), core.evr_cmp(core)],
  'equal': [core == p5.Dnf5Package(core.pkg), len({core, p5.Dnf5Package(core.pkg)})],
  'chksum': [sriov.chksum[0] is not None, len(sriov.chksum[1]), old.chksum],
  'local_before': lookup.local_file(sriov),
}
lookup.fetch([sriov])
path = lookup.local_file(sriov)
doc['local_after'] = [path.endswith('/packages/' + nevra(sriov) + '.rpm'), open(path, 'rb').read(4).hex()]
try:
    lookup.fetch([p5.Dnf5Package(core.pkg)] + [p for p in lookup.siblings(core) if p.name == 'kernel-drivers-gpu'])
    doc['fetch_error'] = None
except p5.FetchError as exc:
    doc['fetch_error'] = str(exc)
print(json.dumps(doc))
'''


@pytest.mark.parametrize('filelists', [False, True])
def test_the_libdnf5_lookup_answers_as_packages_py_asks(sid, make_root, repos, tmp_path,
                                                        filelists):
    root = make_root('exact')
    root.install('kernel-core-' + OLD)
    # the repository, less the file of one package its metadata lists
    copy = tmp_path / 'exact-copy'
    shutil.copytree(repos['exact'], copy)
    gone = next(copy.rglob('kernel-drivers-gpu-6.9.1-1.x86_64.rpm'))
    gone.unlink()
    root.add_repo('exact', copy)
    code = LOOKUP_PROBE % {'plugin': str(KERNELSPLIT.parent)}
    result = sid.run(['python3', '-c', code, str(root.root), str(root.reposdir),
                      'yes' if filelists else 'no'], **in_sid_for(sid, root))
    assert result.returncode == 0, result
    doc = json.loads(result.stdout)
    assert doc['installed_owners'] == ['kernel-core-%s @System' % OLD]
    assert doc['installed_glob'] == ['kernel-core-%s @System' % OLD]
    # available packages' files only with file lists
    assert doc['owners'] == (['kernel-core-' + NEW] if filelists else [])
    release = ['kernel-%s-%s' % (n, NEW) for n in ('core', 'drivers', 'drivers-gpu',
                                                    'drivers-passthrough', 'drivers-sriov')]
    assert doc['siblings'] == sorted(['kernel-' + NEW] + release)
    assert doc['declaring_glob'] == release
    assert doc['provides_query'] == ['kernel-drivers-sriov-' + NEW]
    has_any, matching = doc['modalias']
    assert has_any and ['pci:v00008086d00001572sv*sd*bc*sc*i*', 'i40e'] in matching
    assert any(f.endswith('/i40e.ko.xz') for f in doc['files']) == filelists
    assert doc['evr_cmp'] == [1, -1, 0]
    assert doc['equal'] == [True, 1]
    assert doc['chksum'] == [True, 32, None]       # sha256 from the metadata; none installed
    assert doc['local_before'] is None
    assert doc['local_after'] == [True, 'edabeedb']   # an rpm file's lead
    # a package whose file is gone from the repository: the error names it and why
    assert doc['fetch_error'].startswith('cannot download '), doc
    assert 'Cannot download kernel-drivers-gpu-%s.rpm' % NEW in doc['fetch_error'], doc
