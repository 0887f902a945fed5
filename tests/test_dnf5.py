"""dnf5: the standalone command through libdnf5 and the guard through the actions plugin,
with the real dnf5 5.4.6 in the Debian sid chroot (tests/sidchroot.py), fixture
repositories built on the host, and the hardware emulated by umockdev inside.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from harness import AS_NOBODY, PYTHON, Host, run
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
    ('split', ['kernel-core-' + OLD], COREONLY, ['--json'], 1),    # judged by inspect mode
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
    if '--json' in args:
        # what inspect mode did is the run's, not the answer: dnf 4 reads a file://
        # repository's packages where they lie, dnf5 copies them into its cache first
        run_only = ('inspected', 'fetched_mb', 'fetched_bytes')
        answer4, answer5 = (dict((k, v) for k, v in r.json().items() if k not in run_only)
                            for r in (dnf4, dnf5))
        assert answer5 == answer4
        assert [i['package'] for i in dnf5.json()['inspected']] == \
            [i['package'] for i in dnf4.json()['inspected']]
    else:
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


def test_check_through_dnf5_runs_as_non_root(sid, repos):
    base = Path(tempfile.mkdtemp(prefix='kernelsplit-nonroot-', dir='/var/tmp'))
    try:
        os.chmod(base, 0o755)
        root = Dnf5Root(sid, base / 'r', {'split': repos['split']})
        root.install('kernel-core-' + NEW)
        for path in [base] + list(base.rglob('*')):
            if not path.is_symlink():
                os.chmod(path, os.stat(path).st_mode | 0o044 | (0o011 if path.is_dir() else 0))
        command = ['python3', str(KERNELSPLIT), 'check', '--json', *root.ks_options()]
        result = root.run(list(AS_NOBODY) + wrap_inside(SRIOV, command))
        assert result.returncode == 1, result
        rows = {d['slot']: d for d in json.loads(result.stdout)['kernels'][0]['devices']}
        assert rows['0000:3b:00.0']['status'] == 'missing'
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_fix_installs_through_dnf5_what_it_installs_through_dnf4(dnf5_root, make_root):
    root = dnf5_root('split')
    root.install('kernel-core-' + NEW)
    assert root.kernelsplit('check', host=SRIOV).returncode == 1
    fix = root.kernelsplit('fix', '-y', host=SRIOV)
    assert fix.returncode == 0, fix
    assert 'kernelsplit: installing kernel-drivers-sriov-%s for 0000:3b:00.0' % NEW in fix.stdout
    twin = make_root('split')
    twin.install('kernel-core-' + NEW)
    dnf4 = kernelsplit(twin, 'fix', '--assumeno', host=SRIOV)

    def lines(result):
        return [l for l in result.stdout.splitlines() if l.startswith('kernelsplit:')]
    assert lines(fix) == lines(dnf4) and len(lines(fix)) == 2
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


RELEASES_PROBE = r'''
import json, sys
sys.path.insert(0, %(plugin)r)
from dnf_kernelsplit import packages_dnf5 as p5
from dnf_kernelsplit.packages import declared_releases, nevra, ships_modules
root, reposdir = sys.argv[1], sys.argv[2]
base = p5.open_base(root, setopts=[('reposdir', reposdir), ('gpgcheck', '0')])
doc = {}
for threshold in (p5.Dnf5Lookup.DECLARED_BY_QUERY, 0):
    lookup = p5.Dnf5Lookup(base)
    lookup.DECLARED_BY_QUERY = threshold
    for pkg in lookup.wrap(lookup.query()):
        by_lookup = lookup.declared_releases(pkg)
        doc.setdefault(nevra(pkg), {})[str(threshold)] = [sorted(by_lookup), pkg.provides.read]
        every = [str(r) for r in pkg.pkg.get_provides()]
        doc[nevra(pkg)]['read'] = sorted(declared_releases(every))
        doc[nevra(pkg)]['provides'] = [len(pkg.provides), list(pkg.provides) == every,
                                       pkg.provides[len(every) - 1] == every[-1] if every else None]
lookup = p5.Dnf5Lookup(base)
doc['ships_modules'] = {nevra(p): [ships_modules(p, 'x'), p.provides.read, len(p.provides)]
                        for p in lookup.wrap(lookup.query()) if not p.installed}
print(json.dumps(doc))
'''


def test_the_libdnf5_lookup_tells_a_release_without_reading_every_provide(sid, make_root,
                                                                         tmp_path):
    """A kernel package's release comes from three queries, not from its provides turned
    into strings (a real driver package has 25,000), and says what reading them says --
    also for the packages the queries cannot answer, which are read."""
    import kernelrepo
    odd = kernelrepo.plain_repo([
        ('kernel-plain', '6.9.1', ['Provides: kernel-plain-uname-r = 6.9.1-1.noarch']),
        ('kernel-debug-core', '6.9.1',      # a flavour: KVER is not VERSION-RELEASE.ARCH
         ['Provides: kernel-debug-core-uname-r = 6.9.1-1.noarch+debug']),
        ('kernel-other', '6.9.1', ['Provides: kernel-uname-r = 6.9.1-1.noarch']),
        ('kernel-norel', '6.9.1', ['Provides: kernel-norel-uname-r = 6.9.1']),
        ('kernel-bare', '6.9.1', ['Provides: kernel-bare-uname-r']),
        ('kernel-epoch', '6.9.1', ['Provides: kernel-epoch-uname-r = 1:6.9.1-1.noarch']),
        ('kernel-two', '6.9.1', ['Provides: kernel-two-uname-r = 6.9.1-1.noarch',
                                 'Provides: kernel-two-uname-r = 6.9.2-1.noarch']),
    ], tmp_path / 'odd')
    root = make_root('exact', 'fedora', 'thirdparty')
    root.install('kernel-core-6.8.0-1.x86_64')
    root.add_repo('odd', odd)
    code = RELEASES_PROBE % {'plugin': str(KERNELSPLIT.parent)}
    result = sid.run(['python3', '-c', code, str(root.root), str(root.reposdir)],
                     **in_sid_for(sid, root))
    assert result.returncode == 0, result
    doc = json.loads(result.stdout)
    ships = doc.pop('ships_modules')
    for name, answers in doc.items():
        # by query or by reading, whatever the threshold: the same releases
        assert answers[str(1000)][0] == answers['0'][0] == answers['read'], (name, answers)
        assert answers['provides'][1:] == [True, True if answers['provides'][0] else None]
    assert doc['kernel-debug-core-6.9.1-1.noarch']['read'] == ['6.9.1-1.noarch+debug']
    assert doc['kernel-norel-6.9.1-1.noarch']['read'] == ['6.9.1']
    assert doc['kernel-two-6.9.1-1.noarch']['read'] == ['6.9.1-1.noarch', '6.9.2-1.noarch']
    assert doc['kernel-core-6.9.1-200.fc40.x86_64']['read'] == ['6.9.1-200.fc40.x86_64']
    assert doc['kmod-foo-1.0-1.x86_64']['read'] == []
    # the modalias() driver package is answered by query alone, none of it read
    drivers = doc['kernel-drivers-sriov-6.9.1-1.x86_64']
    assert drivers['0'] == [['6.9.1-1.x86_64'], 0]
    assert doc['kernel-plain-6.9.1-1.noarch']['0'] == [['6.9.1-1.noarch'], 0]
    for name in ('kernel-debug-core', 'kernel-other', 'kernel-norel', 'kernel-bare',
                 'kernel-epoch', 'kernel-two'):
        read = doc['%s-6.9.1-1.noarch' % name]
        assert read['0'][1] == read['provides'][0] > 0, (name, read)    # read, all of them
    # whether a package ships modules: read up to its first kmod() provide only
    found, read, size = ships['kernel-drivers-sriov-6.9.1-1.x86_64']
    assert found and read < 10 < size
    assert ships['kernel-6.9.1-1.x86_64'][0] is False


WITHOUT_RPMDB_PROBE = r'''
import json, sys
sys.path.insert(0, %(plugin)r)
from dnf_kernelsplit import packages_dnf5 as p5
from dnf_kernelsplit.packages import installed_kernels, nevra, release_packages, releases_of
root, reposdir = sys.argv[1], sys.argv[2]
options = dict(setopts=[('reposdir', reposdir), ('gpgcheck', '0')])
full = p5.Dnf5Lookup(p5.open_base(root, **options))


class Installed:
    """What dnf5 answers over the actions plugin's pipe (dnf5_guard.InstalledByDnf5), from
    a Base that read the rpmdb: the NEVRAs of installed packages."""
    asked = []

    def owners(self, path):
        self.asked.append(path)
        return [p5.InstalledPackage(p.name, p.epoch, p.version, p.release, p.arch, p.nevra)
                for p in full.installed_owners([path])]

    def any_at(self, version, release, arch):
        return any((p.version, p.release, p.arch) == (version, release, arch)
                   for p in full.wrap(full.query()) if p.installed)


lookup = p5.Dnf5Lookup(p5.open_base(root, load_system=False, **options), Installed())
doc = {'installed_in_base': [nevra(p) for p in lookup.wrap(lookup.query()) if p.installed]}
for name, one in (('full', full), ('without', lookup)):
    kernels = installed_kernels(one, root)
    doc[name] = {'kernels': [[k.kver, sorted(nevra(p) for p in k.packages)] for k in kernels]}
    incoming = [p for p in one.wrap(one.query()) if not p.installed and p.name == 'kernel-core']
    for kver, shipped in sorted(releases_of(incoming, one).items()):
        try:
            found = sorted(nevra(p) + (' @' if p.installed else '')
                           for p in release_packages(one, kver, shipped.packages))
        except p5.NeedsRpmdb as exc:
            found = 'NeedsRpmdb: %%s' %% exc
        doc[name][kver] = found
doc['asked'] = list(Installed.asked)
for what, ask in (('files', lambda: installed_kernels(lookup, root)[0].packages[0].files),
                  ('declaring', lambda: lookup.declaring(None, 'kernel-core')),
                  ('glob', lambda: lookup.installed_owners(['/lib/modules/*'], glob=True))):
    try:
        ask()
        doc[what] = 'answered'
    except p5.NeedsRpmdb as exc:
        doc[what] = 'NeedsRpmdb: %%s' %% exc
print(json.dumps(doc))
'''


def test_the_libdnf5_lookup_without_the_rpmdb_answers_as_with_it_or_says_it_cannot(
        sid, make_root):
    """The guard leaves the rpmdb to dnf5, which has read it: installed packages are what dnf5
    says of them.  Questions only the rpmdb answers -- a build some of whose packages are
    installed, an installed package's files -- raise NeedsRpmdb instead of answering wrong."""
    root = make_root('split')
    root.install('kernel-6.8.0-1.x86_64', 'kernel-drivers-sriov-6.8.0-1.x86_64')
    code = WITHOUT_RPMDB_PROBE % {'plugin': str(KERNELSPLIT.parent)}
    result = sid.run(['python3', '-c', code, str(root.root), str(root.reposdir)],
                     **in_sid_for(sid, root))
    assert result.returncode == 0, result
    doc = json.loads(result.stdout)
    assert doc['installed_in_base'] == []               # the rpmdb was not read
    assert doc['without']['kernels'] == doc['full']['kernels'] == [
        ['6.8.0-1.x86_64', ['kernel-core-6.8.0-1.x86_64']]]
    assert sorted(doc['asked']) == ['/lib/modules/6.8.0-1.x86_64/modules.builtin',
                                    '/lib/modules/6.8.0-1.x86_64/vmlinuz']
    # a release nothing of which is installed: the same packages
    assert doc['without']['6.9.1-1.x86_64'] == doc['full']['6.9.1-1.x86_64'] == [
        'kernel-%s-6.9.1-1.x86_64' % name for name in (
            'core', 'drivers', 'drivers-gpu', 'drivers-passthrough', 'drivers-sriov')]
    # one installed in part: from the repository alone it would lack what is installed
    assert 'kernel-drivers-sriov-6.8.0-1.x86_64 @' in doc['full']['6.8.0-1.x86_64']
    assert doc['without']['6.8.0-1.x86_64'] == \
        'NeedsRpmdb: installed packages at 6.8.0-1.x86_64'
    assert doc['files'] == 'NeedsRpmdb: the files of installed kernel-core-6.8.0-1.x86_64'
    assert doc['declaring'] == 'NeedsRpmdb: every package providing kernel-core'
    assert doc['glob'] == 'NeedsRpmdb: the owners of /lib/modules/*'


# --- the guard: kernelsplit.actions at dnf5's goal_resolved ----------------------------

STOP = 'Action calls for stop: '


def stop_message(result):
    """What the guard said when it stopped dnf5: the message after the actions plugin's prefix."""
    text = result.stderr
    assert STOP in text, result
    return text[text.index(STOP) + len(STOP):].rstrip('\n')


def shown(result):
    """What dnf5 printed, less its download progress lines (their rates vary run to run)."""
    return (result.returncode, result.stdout,
            [line for line in result.stderr.splitlines() if '% |' not in line])


def install_command(message):
    """The `dnf5 install ...` line of a stop message, as arguments."""
    line = next(l for l in message.splitlines() if l.startswith('  dnf5 install '))
    return line.split()[1:]


def test_monolithic_to_split_upgrade_is_stopped_naming_the_packages_and_the_command(dnf5_root):
    root = dnf5_root('mono-split')
    root.install('kernel-' + OLD)
    root.install_guard()
    before = root.installed()
    result = root.dnf5('-y', 'upgrade', host=BOTH)
    assert result.returncode == 1, result
    message = stop_message(result)
    assert message.splitlines()[:3] == [
        'kernelsplit: refusing the transaction: kernel %s would boot without driver packages '
        'this machine needs:' % NEW,
        '  kernel-drivers-gpu-%s for 0000:01:00.0 [10de:1e84] (nouveau)' % NEW,
        '  kernel-drivers-sriov-%s for 0000:3b:00.0 [8086:1572], 0000:3b:00.1 [8086:1572] '
        '(i40e); 0000:3b:02.0 [8086:154c], 0000:3b:02.1 [8086:154c] (iavf)' % NEW]
    command = install_command(message)
    assert command == ['install', 'kernel-' + NEW, 'kernel-drivers-gpu-' + NEW,
                       'kernel-drivers-sriov-' + NEW]
    assert '--disable-plugin=actions' in message
    assert root.installed() == before                         # nothing was installed
    # the command named: the guard lets it through, and the kernel is complete
    done = root.dnf5('-y', *command, host=BOTH)
    assert done.returncode == 0, done
    assert 'kernelsplit' not in done.stdout + done.stderr
    assert {n for n in root.installed() if n.endswith(NEW)} == {
        'kernel-' + NEW, 'kernel-core-' + NEW, 'kernel-drivers-' + NEW,
        'kernel-drivers-gpu-' + NEW, 'kernel-drivers-sriov-' + NEW}
    root.depmod()
    assert root.kernelsplit('check', host=BOTH).returncode == 0
    again = root.dnf5('-y', 'upgrade', host=BOTH)
    assert again.returncode == 0 and 'kernelsplit' not in again.stderr, again


def test_a_vm_upgrade_is_the_transaction_dnf5_makes_alone(dnf5_root):
    root = dnf5_root('mono-split')
    root.install('kernel-' + OLD)
    without = root.dnf5('--assumeno', 'upgrade', host=KVM)
    root.install_guard()
    guarded = root.dnf5('--assumeno', 'upgrade', host=KVM)
    assert shown(guarded) == shown(without)
    assert 'kernel-core' in guarded.stdout and 'kernelsplit' not in guarded.stderr
    done = root.dnf5('-y', 'upgrade', host=KVM)
    assert done.returncode == 0, done
    assert 'kernel-core-' + NEW in root.installed()


def test_removing_a_needed_subpackage_is_stopped_as_dnf4_refuses_it(dnf5_root, make_root):
    root = dnf5_root('split')
    root.install('kernel-' + NEW, 'kernel-drivers-sriov-' + NEW)
    root.install_guard()
    result = root.dnf5('-y', 'remove', 'kernel-drivers-sriov', host=SRIOV)
    assert result.returncode == 1, result
    assert 'kernel-drivers-sriov-' + NEW in root.installed()
    # dnf 4's hook on the same root, on this host
    twin = make_root('split')
    twin.install('kernel-' + NEW, 'kernel-drivers-sriov-' + NEW)
    dnf4 = twin.dnf('-y', 'remove', 'kernel-drivers-sriov', host=SRIOV)
    assert dnf4.returncode == 1
    dnf4_message = dnf4.stderr[dnf4.stderr.index('kernelsplit: refusing'):].rstrip('\n')
    expected = dnf4_message.replace(str(twin.pluginconfdir), '/etc/dnf/plugins').replace(
        'or run dnf with --disableplugin=kernelsplit for this one transaction.',
        'or run dnf5 with --disable-plugin=actions for this one transaction (it turns off '
        'every .actions file).')
    assert stop_message(result) == expected
    assert '  removing kernel-drivers-sriov-%s would leave 0000:3b:00.0 [8086:1572] without ' \
           'i40e on kernel %s' % (NEW, NEW) in expected
    # an unneeded one goes
    gone = root.dnf5('-y', 'remove', 'kernel-drivers-sriov', host=KVM)
    assert gone.returncode == 0, gone


def test_core_only_host_exact_mode_names_what_the_modaliases_need(dnf5_root):
    root = dnf5_root('exact')
    root.install('kernel-core-' + OLD)
    root.install_guard()
    result = root.dnf5('-y', 'upgrade', host=COREONLY)
    assert result.returncode == 1, result
    message = stop_message(result)
    assert '  kernel-drivers-sriov-%s for 0000:3b:00.0 [8086:1572], 0000:3b:00.1 [8086:1572] ' \
           '(i40e)' % NEW in message.splitlines()
    command = install_command(message)
    assert command == ['install'] + ['kernel-%s-%s' % (n, NEW) for n in (
        'core', 'drivers', 'drivers-gpu', 'drivers-sriov')]
    done = root.dnf5('-y', *command, host=COREONLY)
    assert done.returncode == 0, done
    root.depmod()
    assert root.kernelsplit('check', host=COREONLY).returncode == 0


def test_adding_to_an_installed_kernel_is_judged_with_what_of_it_is_installed(dnf5_root):
    """A driver package for a kernel already installed: the guard reads the rpmdb too (dnf5's
    answers name installed packages, not their files) and names only what is still missing."""
    root = dnf5_root('split')
    root.install('kernel-' + NEW)
    root.install_guard()
    result = root.dnf5('-y', 'install', 'kernel-drivers-gpu-' + NEW, host=BOTH)
    assert result.returncode == 1, result
    message = stop_message(result)
    assert message.splitlines()[1:2] == [
        '  kernel-drivers-sriov-%s for 0000:3b:00.0 [8086:1572], 0000:3b:00.1 [8086:1572] '
        '(i40e); 0000:3b:02.0 [8086:154c], 0000:3b:02.1 [8086:154c] (iavf)' % NEW]
    assert 'kernel-drivers-gpu-%s for' % NEW not in message      # coming: not missing
    assert install_command(message) == ['install', 'kernel-drivers-gpu-' + NEW,
                                        'kernel-drivers-sriov-' + NEW]
    done = root.dnf5('-y', *install_command(message), host=BOTH)
    assert done.returncode == 0, done
    assert 'kernelsplit' not in done.stderr


@pytest.mark.parametrize('buses, stopped', [('pci', True), ('usb', False)])
def test_the_buses_setting_decides_which_devices_are_judged(dnf5_root, buses, stopped):
    """The guard lists the devices before it has read kernelsplit.conf, on every bus: with
    `buses` set it lists them again for those buses alone."""
    root = dnf5_root('mono-split', plugin_conf={'buses': buses})
    root.install('kernel-' + OLD)
    root.install_guard()
    result = root.dnf5('--assumeno', 'upgrade', host=SRIOV)
    assert (STOP in result.stderr) == stopped, result
    if stopped:
        assert '  kernel-drivers-sriov-%s for 0000:3b:00.0' % NEW in stop_message(result)


def test_on_missing_warn_only_warns(dnf5_root):
    root = dnf5_root('mono-split', plugin_conf={'on_missing': 'warn'})
    root.install('kernel-' + OLD)
    root.install_guard()
    result = root.dnf5('-y', 'upgrade', host=BOTH)
    assert result.returncode == 0, result
    assert STOP not in result.stderr
    assert ('kernelsplit: kernel %s will boot without kernel-drivers-sriov-%s for 0000:3b:00.0 '
            '[8086:1572]' % (NEW, NEW)) in result.stderr
    assert 'kernelsplit: to install the kernel complete: dnf5 install kernel-%s ' % NEW \
        in result.stderr
    new = {n for n in root.installed() if n.endswith(NEW)}
    assert new == {'kernel-' + NEW, 'kernel-core-' + NEW, 'kernel-drivers-' + NEW}


def test_on_missing_fail_stops_with_the_list_too(dnf5_root):
    root = dnf5_root('mono-split', plugin_conf={'on_missing': 'fail'})
    root.install('kernel-' + OLD)
    root.install_guard()
    result = root.dnf5('-y', 'upgrade', host=SRIOV)
    assert result.returncode == 1
    assert install_command(stop_message(result)) == [
        'install', 'kernel-' + NEW, 'kernel-drivers-sriov-' + NEW]


def test_a_transaction_without_a_kernel_is_judged_by_the_gate_alone(dnf5_root):
    """No Python is started: a sitecustomize on PYTHONPATH would leave a mark."""
    root = dnf5_root('split', 'thirdparty')
    root.install('kernel-core-' + NEW)
    marks = root.base / 'marks'             # inside the chroot too
    shim = root.base / 'shim'
    shim.mkdir()
    (shim / 'sitecustomize.py').write_text(
        'import sys\nopen(%r, "a").write(" ".join(sys.orig_argv) + "\\n")\n' % str(marks))
    env = {'PYTHONPATH': str(shim)}
    without = root.dnf5('--assumeno', 'install', 'vendor-i40e', host=SRIOV, env=env)
    root.install_guard()
    marks.unlink(missing_ok=True)
    guarded = root.dnf5('--assumeno', 'install', 'vendor-i40e', host=SRIOV, env=env)
    assert shown(guarded) == shown(without)
    assert 'dnf5_guard' not in marks.read_text()     # testbed_exec.py's own mark is there
    # RHEL's kABI lists ship into /lib/modules/kabi-rhel90/: coming from a repository
    # without file lists dnf5 cannot tell (neither install-only nor known files), and it is
    # no kernel; going away, its files are known and the guard looks, finds no kernel
    # there and says nothing
    kabi = root.dnf5('-y', 'install', 'kernel-abi-stablelists', host=SRIOV, env=env)
    assert kabi.returncode == 0 and 'kernelsplit' not in kabi.stderr, kabi
    assert 'dnf5_guard' not in marks.read_text()
    gone = root.dnf5('-y', 'remove', 'kernel-abi-stablelists', host=SRIOV, env=env)
    assert gone.returncode == 0 and 'kernelsplit' not in gone.stderr, gone
    assert 'dnf5_guard' in marks.read_text()


def test_a_bad_configuration_stops_a_kernel_transaction_naming_it(dnf5_root):
    root = dnf5_root('mono-split', plugin_conf={'on_missing': 'sometimes'})
    root.install('kernel-' + OLD)
    root.install_guard()
    result = root.dnf5('-y', 'upgrade', host=KVM)
    assert result.returncode == 1
    message = stop_message(result)
    assert "/etc/dnf/plugins/kernelsplit.conf: [main] on_missing = 'sometimes' is not valid" \
        in message and '--disable-plugin=actions' in message
