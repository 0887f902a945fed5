"""Fixture factory: split-kernel RPM repositories built from real parts.

Each kernel module is a tiny real ELF relocatable object (`gcc -c`) with a
`.modinfo` section added by `objcopy`, carrying name/alias/depends/license/
vermagic, so depmod, modinfo and libkmod read it as they read any module.
The modules are packed by `rpmbuild` into the subpackages of one kernel
release (one spec per release, like kernel.spec) and indexed by `createrepo_c`.

Layouts: the kernel-drivers split (kernel, kernel-core, kernel-drivers,
kernel-drivers-sriov, -gpu, -passthrough), the Fedora-named split (kernel,
kernel-core, kernel-modules-core, kernel-modules, kernel-modules-extra) and a
monolithic `kernel`.  Variants: with `kmod(NAME.ko)` provides, with file lists
only, with `modalias()` provides from the shipped rpm fileattr generator.

Builds are cached by content hash, so a test session or the bench builds each
release once.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
FACTORY_SOURCES = [Path(__file__)]
DEFAULT_CACHE = Path(os.environ.get('KERNELSPLIT_FIXTURE_CACHE',
                                    '/var/tmp/kernelsplit-fixtures'))


@dataclass(frozen=True)
class Module:
    name: str                         # module name as kmod reports it
    aliases: tuple[str, ...] = ()
    subdir: str = 'kernel/drivers/misc'
    filename: Optional[str] = None    # file stem when it differs (snd-hda-intel)
    compression: str = 'xz'           # '' | 'xz' | 'zst'
    depends: tuple[str, ...] = ()

    @property
    def file(self) -> str:
        suffix = {'': '.ko', 'xz': '.ko.xz', 'zst': '.ko.zst'}[self.compression]
        return '%s/%s%s' % (self.subdir, self.filename or self.name, suffix)


def _m(name: str, aliases: Sequence[str], subdir: str, **kw) -> Module:
    return Module(name=name, aliases=tuple(aliases), subdir=subdir, **kw)


# Real module names with aliases as the real modules carry them (a subset).
CATALOGUE: dict[str, Module] = {m.name: m for m in [
    # what a VM needs: kernel-core
    _m('virtio_net', ['virtio:d00000001v*'], 'kernel/drivers/net'),
    _m('virtio_blk', ['virtio:d00000002v*'], 'kernel/drivers/block'),
    _m('virtio_scsi', ['virtio:d00000008v*'], 'kernel/drivers/scsi'),
    _m('virtio_balloon', ['virtio:d00000005v*'], 'kernel/drivers/virtio'),
    _m('hv_netvsc', ['vmbus:635161f83edfc546913ff2d2f965ed0e'], 'kernel/drivers/net/hyperv'),
    _m('hv_storvsc', ['vmbus:d96361baa104294db60572e2ffb1dc7f',
                      'vmbus:32412632863e044c888d88bb29d15e05'], 'kernel/drivers/scsi'),
    _m('xen_netfront', ['xen:vif'], 'kernel/drivers/net', filename='xen-netfront'),
    _m('xen_blkfront', ['xen:vbd'], 'kernel/drivers/block', filename='xen-blkfront'),
    _m('ena', ['pci:v00001D0Fd0000EC20sv*sd*bc*sc*i*', 'pci:v00001D0Fd0000EC21sv*sd*bc*sc*i*'],
       'kernel/drivers/net/ethernet/amazon/ena'),
    _m('nvme', ['pci:v*d*sv*sd*bc01sc08i02*'], 'kernel/drivers/nvme/host', compression='zst'),
    _m('ahci', ['pci:v*d*sv*sd*bc01sc06i01*'], 'kernel/drivers/ata'),
    _m('xhci_pci', ['pci:v*d*sv*sd*bc0Csc03i30*'], 'kernel/drivers/usb/host'),
    # ordinary hardware: kernel-drivers
    _m('e1000e', ['pci:v00008086d000015BEsv*sd*bc*sc*i*', 'pci:v00008086d000015B7sv*sd*bc*sc*i*'],
       'kernel/drivers/net/ethernet/intel/e1000e'),
    _m('igb', ['pci:v00008086d00001521sv*sd*bc*sc*i*', 'pci:v00008086d00001533sv*sd*bc*sc*i*'],
       'kernel/drivers/net/ethernet/intel/igb'),
    _m('ixgbe', ['pci:v00008086d000010FBsv*sd*bc*sc*i*', 'pci:v00008086d00001528sv*sd*bc*sc*i*'],
       'kernel/drivers/net/ethernet/intel/ixgbe'),
    _m('tg3', ['pci:v000014E4d00001657sv*sd*bc*sc*i*'], 'kernel/drivers/net/ethernet/broadcom'),
    _m('r8169', ['pci:v000010ECd00008168sv*sd*bc*sc*i*'], 'kernel/drivers/net/ethernet/realtek'),
    _m('megaraid_sas', ['pci:v00001000d0000005Dsv*sd*bc*sc*i*'], 'kernel/drivers/scsi/megaraid',
       compression=''),
    _m('snd_hda_intel', ['pci:v00008086d0000A348sv*sd*bc*sc*i*',
                         'pci:v000010DEd*sv*sd*bc04sc03i00*'], 'kernel/sound/pci/hda',
       filename='snd-hda-intel'),
    _m('usb_storage', ['usb:v*p*d*dc*dsc*dt*ic08isc06ip50in*'], 'kernel/drivers/usb/storage',
       filename='usb-storage'),
    _m('ast', ['pci:v00001A03d00002000sv*sd*bc03sc*i*'], 'kernel/drivers/gpu/drm/ast'),
    # what firmware describes on every PC-type VM (a floppy controller, a PC speaker)
    _m('floppy', ['acpi*:PNP0700:*'], 'kernel/drivers/block'),
    _m('pcspkr', ['platform:pcspkr'], 'kernel/drivers/input/misc'),
    # SR-IOV NICs: kernel-drivers-sriov
    _m('i40e', ['pci:v00008086d00001572sv*sd*bc*sc*i*', 'pci:v00008086d00001583sv*sd*bc*sc*i*'],
       'kernel/drivers/net/ethernet/intel/i40e'),
    _m('iavf', ['pci:v00008086d0000154Csv*sd*bc*sc*i*', 'pci:v00008086d00001889sv*sd*bc*sc*i*'],
       'kernel/drivers/net/ethernet/intel/iavf'),
    _m('ixgbevf', ['pci:v00008086d000010EDsv*sd*bc*sc*i*'], 'kernel/drivers/net/ethernet/intel/ixgbevf'),
    _m('ice', ['pci:v00008086d00001593sv*sd*bc*sc*i*'], 'kernel/drivers/net/ethernet/intel/ice'),
    _m('mlx5_core', ['pci:v000015B3d00001017sv*sd*bc*sc*i*', 'pci:v000015B3d00001018sv*sd*bc*sc*i*'],
       'kernel/drivers/net/ethernet/mellanox/mlx5/core'),
    # GPUs: kernel-drivers-gpu
    _m('nouveau', ['pci:v000010DEd*sv*sd*bc03sc*i*', 'pci:v000012D2d*sv*sd*bc03sc*i*'],
       'kernel/drivers/gpu/drm/nouveau'),
    _m('amdgpu', ['pci:v00001002d0000687Fsv*sd*bc*sc*i*', 'pci:v00001002d000073BFsv*sd*bc*sc*i*'],
       'kernel/drivers/gpu/drm/amd/amdgpu'),
    # everything else passed through: kernel-drivers-passthrough
    _m('vfio', [], 'kernel/drivers/vfio'),
    _m('vfio_iommu_type1', [], 'kernel/drivers/vfio'),
    _m('vfio_pci_core', [], 'kernel/drivers/vfio/pci', depends=('vfio',)),
    _m('vfio_pci', ['vfio_pci:v*d*sv*sd*bc*sc*i*'], 'kernel/drivers/vfio/pci',
       filename='vfio-pci', depends=('vfio_pci_core',)),
    _m('uio', [], 'kernel/drivers/uio'),
    _m('uio_pci_generic', [], 'kernel/drivers/uio', depends=('uio',)),
]}

# Built into every fixture kernel (modules.builtin / modules.builtin.modinfo).
BUILTIN: Mapping[str, tuple[str, ...]] = {
    'virtio_pci': ('pci:v00001AF4d*sv*sd*bc*sc*i*',),
    'pci_stub': (),
    'pcieport': (),
}

GROUPS: Mapping[str, tuple[str, ...]] = {
    'core': ('virtio_net', 'virtio_blk', 'virtio_scsi', 'virtio_balloon', 'hv_netvsc',
             'hv_storvsc', 'xen_netfront', 'xen_blkfront', 'ena', 'nvme', 'ahci', 'xhci_pci'),
    'drivers': ('e1000e', 'igb', 'ixgbe', 'tg3', 'r8169', 'megaraid_sas', 'snd_hda_intel',
                'usb_storage', 'ast', 'floppy', 'pcspkr'),
    'sriov': ('i40e', 'iavf', 'ixgbevf', 'ice', 'mlx5_core'),
    'gpu': ('nouveau', 'amdgpu'),
    'passthrough': ('vfio', 'vfio_iommu_type1', 'vfio_pci_core', 'vfio_pci', 'uio',
                    'uio_pci_generic'),
}


@dataclass(frozen=True)
class Subpackage:
    name: str                              # full package name
    modules: tuple[str, ...] = ()          # CATALOGUE names it ships
    requires: tuple[str, ...] = ()         # other subpackage names of the same release
    boot: bool = False                     # ships vmlinuz and modules.builtin*
    summary: str = ''


@dataclass(frozen=True)
class KernelRelease:
    version: str
    release: str
    packages: tuple[Subpackage, ...]
    arch: str = 'x86_64'
    kmod_provides: bool = True             # Provides: kmod(NAME.ko), as Fedora's kernels carry
    modalias_provides: bool = False        # Provides: modalias(...) from rpm/modalias.attr
    uname_r_provides: bool = True          # Provides: NAME-uname-r = KVER
    kver: Optional[str] = None             # defaults to VERSION-RELEASE.ARCH
    extra_modules: tuple[Module, ...] = () # modules outside CATALOGUE (the bench's real set)
    builtin_from: Optional[str] = None     # a real modules dir to take modules.builtin* from
    kmod: bool = False                     # a third-party kmod: modules only, no kernel files

    @property
    def uname_r(self) -> str:
        return self.kver or '%s-%s.%s' % (self.version, self.release, self.arch)

    def nevra(self, name: str) -> str:
        return '%s-%s-%s.%s' % (name, self.version, self.release, self.arch)

    def module(self, name: str) -> Module:
        for module in self.extra_modules:
            if module.name == name:
                return module
        return CATALOGUE[name]


def split_release(version: str, release: str, naming: str = 'drivers',
                  sriov_in_drivers: bool = False, **kw) -> KernelRelease:
    """A split kernel release.

    naming='drivers': kernel (meta: core + drivers), kernel-core, kernel-drivers,
    kernel-drivers-sriov, kernel-drivers-gpu, kernel-drivers-passthrough.
    sriov_in_drivers=True keeps the SR-IOV NIC drivers in kernel-drivers and has
    no -sriov package (the release before the split deepened).
    naming='fedora': kernel (meta: core + modules), kernel-core (vmlinuz),
    kernel-modules-core, kernel-modules, kernel-modules-extra.
    """
    if naming == 'drivers':
        drivers = GROUPS['drivers'] + (GROUPS['sriov'] if sriov_in_drivers else ())
        packages = [
            Subpackage('kernel', requires=('kernel-core', 'kernel-drivers'),
                       summary='The Linux kernel (metapackage)'),
            Subpackage('kernel-core', GROUPS['core'], boot=True,
                       summary='The kernel and the modules a VM needs'),
            Subpackage('kernel-drivers', drivers, requires=('kernel-core',),
                       summary='Drivers for ordinary hardware'),
        ]
        if not sriov_in_drivers:
            packages.append(Subpackage('kernel-drivers-sriov', GROUPS['sriov'],
                                       requires=('kernel-core',), summary='SR-IOV NIC drivers'))
        packages += [
            Subpackage('kernel-drivers-gpu', GROUPS['gpu'], requires=('kernel-core',),
                       summary='GPU drivers'),
            Subpackage('kernel-drivers-passthrough', GROUPS['passthrough'],
                       requires=('kernel-core',), summary='PCI passthrough drivers (VFIO, UIO)'),
        ]
    elif naming == 'fedora':
        packages = [
            Subpackage('kernel', requires=('kernel-core', 'kernel-modules'),
                       summary='The Linux kernel (metapackage)'),
            Subpackage('kernel-core', (), requires=('kernel-modules-core',), boot=True,
                       summary='The Linux kernel'),
            Subpackage('kernel-modules-core', GROUPS['core'], requires=('kernel-core',),
                       summary='Core kernel modules'),
            Subpackage('kernel-modules', GROUPS['drivers'], requires=('kernel-modules-core',),
                       summary='Kernel modules for ordinary hardware'),
            Subpackage('kernel-modules-extra',
                       GROUPS['sriov'] + GROUPS['gpu'] + GROUPS['passthrough'],
                       requires=('kernel-modules',), summary='Extra kernel modules'),
        ]
    else:
        raise ValueError(naming)
    return KernelRelease(version, release, tuple(packages), **kw)


def kmod_release(name: str, version: str, release: str, kver: str,
                 modules: Sequence[Module]) -> KernelRelease:
    """A third-party kmod (akmods' kmod-nvidia, ELRepo, ZFS): its own source package,
    shipping modules under /lib/modules/KVER/extra/ for one kernel release it does
    not belong to.  Like RHEL's kmods it carries kmod(NAME.ko) provides (redhat-rpm-
    config's kmod.attr) and owns its extra/ directory; no installonlypkg or *-uname-r."""
    return KernelRelease(version, release, (Subpackage(name, tuple(m.name for m in modules),
                                                       summary='third-party kernel module'),),
                         kver=kver, extra_modules=tuple(modules), uname_r_provides=False,
                         kmod=True)


def monolithic_release(version: str, release: str, **kw) -> KernelRelease:
    """One `kernel` package with every module, as before the split."""
    every = tuple(name for group in GROUPS.values() for name in group)
    return KernelRelease(version, release,
                         (Subpackage('kernel', every, boot=True, summary='The Linux kernel'),), **kw)


# --- building -------------------------------------------------------------

def _run(cmd: Sequence[str], **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if result.returncode != 0:
        raise RuntimeError('%s failed (%d):\n%s\n%s' % (' '.join(map(str, cmd)),
                                                        result.returncode, result.stdout,
                                                        result.stderr))
    return result


def _modinfo(module: Module, kver: str) -> bytes:
    fields = [('name', module.name)]
    fields += [('alias', alias) for alias in module.aliases]
    fields += [('depends', ','.join(module.depends)), ('license', 'GPL'),
               ('description', 'kernelsplit fixture module %s' % module.name),
               ('vermagic', '%s SMP preempt mod_unload ' % kver)]
    return b''.join(('%s=%s' % kv).encode() + b'\0' for kv in fields)


def build_module(module: Module, kver: str, dest: Path, workdir: Path) -> Path:
    """A real ELF .ko (compressed as asked) at DEST/MODULE.file."""
    base = workdir / 'base.o'
    if not base.exists():
        source = workdir / 'base.c'
        source.write_text('int kernelsplit_fixture_init(void) { return 0; }\n')
        _run(['gcc', '-c', '-O0', '-o', str(base), str(source)])
    info = workdir / ('%s.modinfo' % module.name)
    info.write_bytes(_modinfo(module, kver))
    target = dest / module.file
    target.parent.mkdir(parents=True, exist_ok=True)
    plain = target.with_name('%s.ko' % (module.filename or module.name))
    _run(['objcopy', '--add-section', '.modinfo=%s' % info,
          '--set-section-flags', '.modinfo=alloc,readonly', str(base), str(plain)])
    if module.compression == 'xz':
        _run(['xz', '-f', '--check=crc32', str(plain)])
    elif module.compression == 'zst':
        _run(['zstd', '-q', '-f', '--rm', str(plain), '-o', str(target)])
    return target


def _builtin_files(kver_dir: Path, builtin_from: Optional[str] = None) -> None:
    if builtin_from:
        for name in ('modules.builtin', 'modules.builtin.modinfo'):
            shutil.copy2(Path(builtin_from) / name, kver_dir / name)
        return
    (kver_dir / 'modules.builtin').write_text(
        ''.join('kernel/drivers/builtin/%s.ko\n' % name for name in BUILTIN))
    (kver_dir / 'modules.builtin.modinfo').write_bytes(b''.join(
        ('%s.alias=%s' % (name, alias)).encode() + b'\0'
        for name, aliases in BUILTIN.items() for alias in aliases))


def _spec(rel: KernelRelease, staging: Path) -> str:
    main, *subs = rel.packages
    kver = rel.uname_r
    lines = [
        'Name: %s' % main.name,
        'Version: %s' % rel.version,
        'Release: %s' % rel.release,
        'Summary: %s' % (main.summary or main.name),
        'License: GPL-2.0-only',
        'AutoReq: no',
        # kmod()/modalias() provides are what the tests vary; nothing else may sneak in.
        'AutoProv: %s' % ('yes' if rel.modalias_provides else 'no'),
        '%global debug_package %{nil}',
        '%global __os_install_post %{nil}',
        '%global _build_id_links none',
    ]
    lines += [
        '%description',
        'kernelsplit fixture kernel %s.' % kver,
    ]

    def preamble(pkg: Subpackage) -> list[str]:
        out = []
        if pkg.boot:
            out.append('Provides: installonlypkg(kernel)')
        elif pkg.modules and not rel.kmod:
            out.append('Provides: installonlypkg(kernel-module)')
        if rel.uname_r_provides and (pkg.boot or pkg.modules):
            out.append('Provides: %s-uname-r = %s' % (pkg.name, kver))
        if rel.kmod_provides:
            for name in pkg.modules:
                stem = os.path.basename(rel.module(name).file).split('.ko')[0]
                out.append('Provides: kmod(%s.ko)' % stem)
        out += ['Requires: %s = %%{version}-%%{release}' % req for req in pkg.requires]
        return out

    lines[5:5] = preamble(main)
    for pkg in subs:
        lines += ['', '%%package -n %s' % pkg.name,
                  'Summary: %s' % (pkg.summary or pkg.name)] + preamble(pkg) + \
                 ['%%description -n %s' % pkg.name, '%s of kernel %s.' % (pkg.name, kver)]
    lines += ['', '%install', 'cp -a %s/. %%{buildroot}/' % staging]

    def files(pkg: Subpackage) -> list[str]:
        out = []
        if pkg.boot:
            out += ['%%dir /lib/modules/%s' % kver,
                    '%%dir /lib/modules/%s/kernel' % kver,
                    '/lib/modules/%s/vmlinuz' % kver,
                    '/lib/modules/%s/modules.builtin' % kver,
                    '/lib/modules/%s/modules.builtin.modinfo' % kver,
                    '/lib/modules/%s/modules.order' % kver]
        if rel.kmod:
            out += sorted({'%%dir /lib/modules/%s/%s' % (kver, rel.module(name).subdir)
                           for name in pkg.modules})
        out += ['/lib/modules/%s/%s' % (kver, rel.module(name).file) for name in pkg.modules]
        return out

    lines += ['', '%files'] + files(main)
    for pkg in subs:
        lines += ['', '%%files -n %s' % pkg.name] + files(pkg)
    return '\n'.join(lines) + '\n'


def _stage(rel: KernelRelease, staging: Path, workdir: Path) -> None:
    kver_dir = staging / 'lib/modules' / rel.uname_r
    kver_dir.mkdir(parents=True)
    (kver_dir / 'kernel').mkdir()
    names = [name for pkg in rel.packages for name in pkg.modules]
    build_module(rel.module(names[0]), rel.uname_r, kver_dir, workdir)   # makes base.o once
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        list(pool.map(lambda name: build_module(rel.module(name), rel.uname_r, kver_dir, workdir),
                      names[1:]))
    if rel.kmod:
        return
    (kver_dir / 'vmlinuz').write_bytes(b'kernelsplit fixture kernel image ' +
                                       rel.uname_r.encode() + b'\n')
    _builtin_files(kver_dir, rel.builtin_from)
    (kver_dir / 'modules.order').write_text(
        ''.join('%s.ko\n' % rel.module(name).file.split('.ko')[0] for name in names))


def _fingerprint(payload: object) -> str:
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
    for source in FACTORY_SOURCES + [ROOT / 'rpm' / 'modalias.attr', ROOT / 'rpm' / 'modalias.prov']:
        if source.exists():
            digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _rpm_defines(topdir: Path, modalias_provides: bool) -> list[str]:
    defines = ['--define', '_topdir %s' % topdir,
               '--define', '_binary_payload w2.xzdio',
               '--define', '_source_payload w2.xzdio']
    if modalias_provides:
        # The generator this project ships (rpm/), as a kernel tree would use it.
        defines += ['--define', '_fileattrsdir %s' % (ROOT / 'rpm'),
                    '--load', str(ROOT / 'rpm' / 'modalias.attr'),
                    '--define', '_modalias_prov %s' % (ROOT / 'rpm' / 'modalias.prov')]
    return defines


def build_release(rel: KernelRelease, cache: Path = DEFAULT_CACHE) -> Path:
    """The binary RPMs of REL (a directory), built once and cached."""
    key = _fingerprint(asdict(rel))
    out = cache / 'rpms' / ('%s-%s' % (rel.uname_r, key))
    if (out / '.done').exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix='build-') as tmp:
        tmpdir = Path(tmp)
        staging, workdir, topdir = tmpdir / 'staging', tmpdir / 'work', tmpdir / 'rpmbuild'
        workdir.mkdir()
        _stage(rel, staging, workdir)
        spec = tmpdir / ('%s.spec' % rel.packages[0].name)
        spec.write_text(_spec(rel, staging))
        # --target re-reads rpm's configuration and drops --load'ed macros:
        # only ask for it when building for another arch than this machine's.
        target = [] if rel.arch == os.uname().machine else ['--target', rel.arch]
        _run(['rpmbuild', '-bb', '--quiet'] + target +
             _rpm_defines(topdir, rel.modalias_provides) + [str(spec)],
             env=dict(os.environ, LC_ALL='C'))
        built = sorted((topdir / 'RPMS').rglob('*.rpm'))
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for rpm in built:
            shutil.copy2(rpm, out / rpm.name)
        (out / '.done').write_text(_spec(rel, staging))
    return out


def build_repo(releases: Iterable[KernelRelease], dest: Path,
               cache: Path = DEFAULT_CACHE) -> Path:
    """A dnf repository at DEST holding every package of RELEASES."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in releases:
        for rpm in build_release(rel, cache).glob('*.rpm'):
            target = dest / rpm.name
            if not target.exists():
                os.link(rpm, target) if rpm.stat().st_dev == dest.stat().st_dev \
                    else shutil.copy2(rpm, target)
    _run(['createrepo_c', '--quiet', '--no-database', str(dest)])
    return dest


def plain_repo(packages: Iterable[tuple[str, str, Sequence[str]]], dest: Path,
               files: Optional[Mapping[str, Mapping[str, str]]] = None) -> Path:
    """A repository at DEST of noarch packages: (name, version, extra spec lines).

    FILES: NAME -> {path: content} for the packages that ship files (directories
    leading to them are owned too, as kernel-abi-stablelists owns /lib/modules/kabi-*).
    """
    dest.mkdir(parents=True, exist_ok=True)
    topdir = dest / '.build'
    for name, version, extra in packages:
        spec = topdir / ('%s-%s.spec' % (name, version))
        spec.parent.mkdir(parents=True, exist_ok=True)
        shipped = (files or {}).get(name, {})
        staging = topdir / ('%s-%s.files' % (name, version))
        for path, content in shipped.items():
            (staging / path.lstrip('/')).parent.mkdir(parents=True, exist_ok=True)
            (staging / path.lstrip('/')).write_text(content)
        listed = sorted({'%%dir %s' % os.path.dirname(p) for p in shipped} | set(shipped))
        install = ['%install', 'cp -a %s/. %%{buildroot}/' % staging] if shipped else []
        spec.write_text('\n'.join(['Name: %s' % name, 'Version: %s' % version, 'Release: 1',
                                   'Summary: %s' % name, 'License: MIT', 'BuildArch: noarch']
                                  + list(extra) + ['%description', name] + install
                                  + ['%files'] + listed + ['']))
        _run(['rpmbuild', '--quiet', '--define', '_topdir %s' % topdir,
              '--define', '_rpmdir %s' % dest, '--define', '_build_name_fmt %%{NAME}-%%{VERSION}'
              '-%%{RELEASE}.%%{ARCH}.rpm', '-bb', str(spec)])
    shutil.rmtree(topdir)
    _run(['createrepo_c', '--quiet', '--no-database', str(dest)])
    return dest
