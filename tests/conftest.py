import functools
import http.server
import os
import shutil
import threading
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent / 'dnf-plugin-kernelsplit'))

import kernelrepo  # noqa: E402
from harness import Installroot  # noqa: E402
from sidchroot import sid, sid_chroot  # noqa: E402,F401  (fixtures: the dnf5 chroot)

# Named repositories the tests install from; each is built once per session.
REPO_SETS = {
    # the kernel-drivers split at two versions, with kmod() provides
    'split': lambda: [kernelrepo.split_release('6.8.0', '1'),
                      kernelrepo.split_release('6.9.1', '1')],
    # the same split carrying neither kmod() nor *-uname-r provides: file lists only
    'split-filelists': lambda: [kernelrepo.split_release('6.9.1', '1', kmod_provides=False,
                                                         uname_r_provides=False)],
    # Fedora's names: kernel-core / kernel-modules-core / kernel-modules / -extra
    'fedora': lambda: [kernelrepo.split_release('6.8.0', '200.fc40', naming='fedora'),
                       kernelrepo.split_release('6.9.1', '200.fc40', naming='fedora')],
    # before the split: one `kernel` with every module; after: the kernel-drivers split
    'mono-split': lambda: [kernelrepo.monolithic_release('6.8.0', '1'),
                           kernelrepo.split_release('6.9.1', '1')],
    # the split deepens: 6.8 kept SR-IOV NIC drivers in kernel-drivers, 6.9 has -sriov
    'deepen': lambda: [kernelrepo.split_release('6.8.0', '1', sriov_in_drivers=True),
                       kernelrepo.split_release('6.9.1', '1')],
    # packages carrying modalias() provides from rpm/modalias.prov (exact mode)
    'exact': lambda: [kernelrepo.split_release('6.8.0', '1', modalias_provides=True),
                      kernelrepo.split_release('6.9.1', '1', modalias_provides=True)],
}


FOO = kernelrepo.Module('foo', ('pci:v0000F00Fd*sv*sd*bc*sc*i*',), subdir='extra')
BAZ = kernelrepo.Module('baz', ('pci:v0000BA2Ad*sv*sd*bc*sc*i*',), subdir='extra')


def thirdparty_repo(dest: Path) -> Path:
    """What real Fedora/RHEL hosts carry beside their kernels: a kmod for 6.9.1-1 from its
    own source package, a leftover kmod for a kernel that is not installed (6.5.0-1), RHEL's
    kABI stablelists under /lib/modules/kabi-rhel90, and a vendor driver package that
    conflicts with kernel-drivers-sriov."""
    kernelrepo.build_repo([
        kernelrepo.kmod_release('kmod-foo', '1.0', '1', '6.9.1-1.x86_64', [FOO]),
        kernelrepo.kmod_release('kmod-baz', '550.54', '1', '6.5.0-1.x86_64', [BAZ]),
    ], dest)
    return kernelrepo.plain_repo([
        ('kernel-abi-stablelists', '6.9.1', []),
        ('vendor-i40e', '2.24', ['Conflicts: kernel-drivers-sriov']),
    ], dest, files={'kernel-abi-stablelists': {
        '/lib/modules/kabi-rhel90/kabi_stablelist_x86_64': '[rhel9_x86_64_i40e]\n  i40e_napi_poll\n'}})


def truncated_repo(dest: Path) -> Path:
    """The 6.9.1 split whose kernel-drivers-gpu was cut short after the metadata was made,
    as a mirror's half-synced file is."""
    dest.mkdir(parents=True, exist_ok=True)
    for rpm in kernelrepo.build_release(kernelrepo.split_release('6.9.1', '1')).glob('*.rpm'):
        shutil.copy2(rpm, dest / rpm.name)
    kernelrepo.build_repo([], dest)
    gpu = next(dest.glob('kernel-drivers-gpu-*.rpm'))
    data = gpu.read_bytes()
    gpu.write_bytes(data[:len(data) * 2 // 3])
    return dest


# Repositories built by a function of their destination.
BUILT_REPOS = {'thirdparty': thirdparty_repo, 'split-truncated': truncated_repo}


class Repos:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.built: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self.built:
            dest = self.base / name
            self.built[name] = BUILT_REPOS[name](dest) if name in BUILT_REPOS else \
                kernelrepo.build_repo(REPO_SETS[name](), dest)
        return self.built[name]


@pytest.fixture(scope='session')
def repos(tmp_path_factory):
    base = Path(tempfile.mkdtemp(prefix='kernelsplit-repos-', dir='/var/tmp'))
    os.chmod(base, 0o755)   # readable by the non-root check test
    yield Repos(base)
    shutil.rmtree(base, ignore_errors=True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope='session')
def repo_server(repos):
    """repo_server('split') -> its URL: the session's repositories served over HTTP on
    127.0.0.1, so dnf downloads their packages into its cache as from a mirror."""
    handler = functools.partial(_QuietHandler, directory=str(repos.base))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield lambda name: 'http://127.0.0.1:%d/%s' % (server.server_port, repos[name].name)
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def make_root(tmp_path, repos):
    """make_root('split', plugin_conf={...}) -> an Installroot with those repos enabled."""
    def make(*names: str, plugin_conf=None, base: Path = None, dnf_conf=None) -> Installroot:
        where = base or tmp_path / ('root%d' % len(list(tmp_path.iterdir())))
        return Installroot(where, {name: repos[name] for name in names},
                           plugin_conf=plugin_conf, dnf_conf=dnf_conf)
    return make


@pytest.fixture(scope='session')
def full_index_root(tmp_path_factory):
    """Every fixture module installed (monolithic kernel) with depmod run: a real index."""
    rel = kernelrepo.monolithic_release('6.9.1', '1')
    rpms = kernelrepo.build_release(rel)
    root = tmp_path_factory.mktemp('index-root')
    subprocess.run(['rpm', '--root', str(root), '--dbpath', '/var/lib/rpm', '-i', '--nodeps',
                    '--ignorearch'] + [str(p) for p in rpms.glob('*.rpm')], check=True)
    subprocess.run(['depmod', '-b', str(root), rel.uname_r], check=True)
    return root, rel.uname_r
