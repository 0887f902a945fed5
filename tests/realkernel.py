"""The real Debian 6.1 generic kernel, fetched with apt-get and indexed with depmod.

Shared by the tests (kmod agreement on real data) and bench/ (speed).  Kept in
a cache outside the repo: KERNELSPLIT_REALKERNEL_CACHE, default
/var/tmp/kernelsplit-realkernel.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get('KERNELSPLIT_REALKERNEL_CACHE', '/var/tmp/kernelsplit-realkernel'))
PACKAGE_RE = re.compile(r'^linux-image-6\.1\.0-(\d+)-amd64$')


class Unavailable(Exception):
    """No apt-get, or the package cannot be fetched."""


@dataclass(frozen=True)
class RealKernel:
    root: Path        # a root with lib/modules/KVER and its depmod index
    kver: str
    package: str      # the .deb it came from

    @property
    def modules_dir(self) -> Path:
        return self.root / 'lib' / 'modules' / self.kver


def _newest_package() -> str:
    if shutil.which('apt-cache') is None or shutil.which('apt-get') is None:
        raise Unavailable('apt-get is not available')
    out = subprocess.run(['apt-cache', 'search', '--names-only', r'^linux-image-6\.1\.0-[0-9]+-amd64$'],
                         capture_output=True, text=True).stdout
    names = [line.split()[0] for line in out.splitlines() if PACKAGE_RE.match(line.split()[0])]
    if not names:
        raise Unavailable('apt knows no linux-image-6.1.0-*-amd64 (apt-get update?)')
    return max(names, key=lambda n: int(PACKAGE_RE.match(n).group(1)))


def fetch(cache: Path = CACHE) -> RealKernel:
    """The newest linux-image-6.1.0-N-amd64, unpacked and indexed (cached)."""
    done = sorted(cache.glob('*/.done'))
    if done:
        meta = done[-1].read_text().split()
        return RealKernel(done[-1].parent / 'root', meta[1], meta[0])
    package = _newest_package()
    kver = package[len('linux-image-'):]
    work = cache / package
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    got = subprocess.run(['apt-get', 'download', '-q', package], cwd=work,
                         capture_output=True, text=True)
    debs = list(work.glob('*.deb'))
    if got.returncode != 0 or not debs:
        raise Unavailable('apt-get download %s failed: %s' % (package, got.stderr.strip()))
    root = work / 'root'
    subprocess.run(['dpkg-deb', '-x', str(debs[0]), str(root)], check=True)
    subprocess.run(['depmod', '-b', str(root), kver], check=True)
    debs[0].unlink()
    (work / '.done').write_text('%s %s\n' % (package, kver))
    return RealKernel(root, kver, package)


if __name__ == '__main__':
    kernel = fetch()
    print(kernel.modules_dir)


# --- a split release built from the real kernel's module set (for bench/) ---------

def _group(path: str) -> str:
    """Which subpackage a module of the real tree goes to, by where it lives."""
    rel = path[len('kernel/'):] if path.startswith('kernel/') else path
    if rel.startswith(('drivers/vfio/', 'drivers/uio/', 'virt/')):
        return 'passthrough'
    if rel.startswith('drivers/gpu/'):
        return 'gpu'
    if rel.startswith(('drivers/net/ethernet/intel/i40e/', 'drivers/net/ethernet/intel/iavf/',
                       'drivers/net/ethernet/intel/ice/', 'drivers/net/ethernet/intel/ixgbevf/',
                       'drivers/net/ethernet/intel/igbvf/', 'drivers/net/ethernet/mellanox/',
                       'drivers/net/ethernet/broadcom/bnxt/', 'drivers/net/ethernet/qlogic/',
                       'drivers/infiniband/')):
        return 'sriov'
    if rel.startswith(('arch/', 'block/', 'crypto/', 'fs/', 'lib/', 'mm/', 'net/',
                       'drivers/virtio/', 'drivers/hv/', 'drivers/xen/', 'drivers/nvme/',
                       'drivers/ata/', 'drivers/block/', 'drivers/md/', 'drivers/char/',
                       'drivers/net/hyperv/', 'drivers/net/xen-netback/',
                       'drivers/net/ethernet/amazon/', 'drivers/net/vmxnet3/',
                       'drivers/scsi/virtio_scsi', 'drivers/scsi/sd_mod', 'drivers/scsi/sr_mod',
                       'drivers/scsi/hv_storvsc', 'drivers/scsi/vmw_pvscsi')) \
            or (rel.startswith('drivers/net/') and rel.count('/') == 2):
        return 'core'
    return 'drivers'


def real_modules(kernel: RealKernel) -> dict[str, list]:
    """The real kernel's modules (name, aliases, place) grouped as the split would ship them."""
    import kernelrepo
    aliases: dict[str, list[str]] = {}
    for line in (kernel.modules_dir / 'modules.alias').read_text().splitlines():
        if line.startswith('alias '):
            _, pattern, module = line.split(' ', 2)
            aliases.setdefault(module, []).append(pattern)
    groups: dict[str, list] = {}
    for line in (kernel.modules_dir / 'modules.dep').read_text().splitlines():
        path = line.split(':', 1)[0]
        stem = os.path.basename(path).split('.ko')[0]
        name = stem.replace('-', '_')
        module = kernelrepo.Module(name, tuple(aliases.get(name, ())), os.path.dirname(path),
                                   filename=stem if stem != name else None, compression='')
        groups.setdefault(_group(path), []).append(module)
    return groups


def split_release_from_real(kernel: RealKernel, version: str, release: str, **kw):
    """The kernel-drivers split of the real kernel's ~4,000 modules (tiny ELF stand-ins)."""
    import kernelrepo
    groups = real_modules(kernel)
    names = {g: tuple(m.name for m in mods) for g, mods in groups.items()}
    packages = (
        kernelrepo.Subpackage('kernel', requires=('kernel-core', 'kernel-drivers')),
        kernelrepo.Subpackage('kernel-core', names.get('core', ()), boot=True),
        kernelrepo.Subpackage('kernel-drivers', names.get('drivers', ()), requires=('kernel-core',)),
        kernelrepo.Subpackage('kernel-drivers-sriov', names.get('sriov', ()), requires=('kernel-core',)),
        kernelrepo.Subpackage('kernel-drivers-gpu', names.get('gpu', ()), requires=('kernel-core',)),
        kernelrepo.Subpackage('kernel-drivers-passthrough', names.get('passthrough', ()),
                              requires=('kernel-core',)),
    )
    return kernelrepo.KernelRelease(version, release, packages,
                                    extra_modules=tuple(m for mods in groups.values() for m in mods),
                                    builtin_from=str(kernel.modules_dir), **kw)
