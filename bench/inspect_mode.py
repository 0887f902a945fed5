#!/usr/bin/python3
"""Bench: inspect mode on a core-only host, repositories as Fedora ships them.

Kernel repo: the real Debian 6.1 kernel's 4,023 modules -- the real .ko files,
compressed with xz as Fedora's kernel.spec compresses them (--check=crc32
--lzma2=dict=1MiB) -- split the Fedora way into kernel-core (vmlinuz,
modules.builtin*), kernel-modules-core, kernel-modules and
kernel-modules-extra by RULES below: a condensed transcription of kernel-ark's
redhat/fedora_files/def_variants.yaml.fedora (first match wins, the rest to
kernel-modules; filtermods.py's moving of modules to satisfy dependencies and
its kunit/test modules-internal package are not reproduced).  Packages carry
kmod(NAME.ko) and NAME-uname-r provides and file lists, no modalias()
provides; payloads are zstd level 19, as Fedora's.  Two releases; the repo is
served over HTTP on 127.0.0.1, so dnf really downloads.

Host: the real PowerEdge R820's 210 PCI functions (../shared/realdata
DELL_IDRAC) with kernel-core + kernel-modules-core of the older release: a
device whose driver those packages do not ship is unbound, as it boots there.
The system around it is distribution-sized, as bench/upgrade.py's "distro"
system (1,000 packages installed, 60,000 available; bench/distro.py).

Measured:
  first run   `dnf -v --assumeno upgrade` with the package cache and the
              plugin's cache empty: what inspect mode fetched (MB), how long
              fetching and reading took (target: reading at most 1 s per
              100 MB of compressed payload), and the wall time it added
              beyond the download (plugin on vs off, same metadata);
  floor       liblzma alone decompressing the modules of the packages read,
              one thread, nothing else done: what exact reading (libkmod
              finds .modinfo by the section table at a module's end) cannot
              go below, per 100 MB of payload on one CPU and on all of them;
  second run  the same command on the same metadata, the plugin's cache warm,
              with `-C`: dnf's metadata and the package cache as they are,
              as in any run within the repository's metadata_expire (Fedora:
              48 h, 6 h for updates), which also proves inspect mode fetches
              nothing (the plugin must still add what the first run added).
              Plugin on vs off in back-to-back pairs, the median of the
              differences (target: at most 5%); and, as the pairs scatter on
              a drifting machine, the plugin's own time inside dnf
              (hooktimes.py), median of the runs with it.  Also measured
              without -C, each run asking the HTTP server whether the
              metadata changed (the test root's metadata_expire=0): that
              server runs on the same two CPUs as dnf and the plugin's
              background child, which a distribution's mirror does not.

Exits 1 when a target is missed.

Usage: bench/inspect_mode.py [--rounds N] [--json FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT / 'tests'), str(ROOT / 'dnf-plugin-kernelsplit')]

sys.path.insert(0, str(BENCH))
import distro  # noqa: E402
import hooktimes  # noqa: E402
import realdata  # noqa: E402
import realkernel  # noqa: E402
from harness import DBPATH, PYTHON, TESTBED_EXEC, Installroot  # noqa: E402

CACHE = Path(os.environ.get('KERNELSPLIT_BENCH_CACHE', '/var/tmp/kernelsplit-bench-fedora'))
CORE, MODULES, EXTRA = 'kernel-modules-core', 'kernel-modules', 'kernel-modules-extra'
TARGET_READ_S_PER_100MB, TARGET_SECOND_RUN = 1.0, 0.05
BUILD_FORMAT = 1      # bump when build_release() builds differently

# (regex on the module's path under kernel/, package): first match wins, else MODULES.
RULES = [(re.compile(pattern), package) for pattern, package in [
    (r'arch/|crypto/|kernel/|lib/|virt/|block/', CORE),
    (r'drivers/acpi/video', MODULES), (r'drivers/acpi/', CORE),
    (r'drivers/block/floppy', EXTRA), (r'drivers/block/rnbd', MODULES),
    (r'drivers/char/mwave', MODULES),
    (r'drivers/crypto/(caam|cavium|chelsio|hisilicon|marvell)/', MODULES),
    (r'drivers/firmware/iscsi_ibft', MODULES),
    (r'drivers/gpio/gpio-dln2', EXTRA), (r'drivers/gpio/gpio-ljca', MODULES),
    (r'drivers/gpu/drm/(display/drm_|drm|etnaviv/|gud/|hyperv/|imagination/|lima/|mxsfb/|'
     r'panfrost/|qxl/|scheduler/|solomon/|tidss/|tiny/|ttm/|udl/|v3d/|vgem/|virtio/|vkms/|'
     r'vmwgfx/|xlnx/)', CORE), (r'drivers/gpu/host1x/', CORE),
    (r'drivers/hid/(hid-(asus|nintendo|picolcd|playstation|prodikeys)|surface-hid)', MODULES),
    (r'drivers/hwmon/(asus_wmi_sensors|dell-smm-hwmon|hp-wmi-sensors|intel-m10-bmc-hwmon|'
     r'nct6775)', MODULES),
    (r'drivers/i2c/busses/i2c-dln2', EXTRA), (r'drivers/i2c/busses/i2c-ljca', MODULES),
    (r'drivers/iio/adc/dln2-adc', EXTRA),
    (r'drivers/iio/(accel|common/cros_ec_sensors|light|pressure|proximity)/', MODULES),
    (r'drivers/input/gameport/', MODULES), (r'drivers/input/joystick/', EXTRA),
    (r'drivers/input/misc/pcspkr', EXTRA), (r'drivers/input/(tablet|touchscreen)/', MODULES),
    (r'drivers/memory/dfl-emif', MODULES),
    (r'drivers/message/fusion/mpt(ctl|fc)', EXTRA), (r'drivers/message/fusion/', MODULES),
    (r'drivers/mfd/dln2', EXTRA),
    (r'drivers/net/(amt|bareudp|dummy|eql|geneve|gtp|ifb|macsec|macvlan|macvtap|mhi_net|mii|'
     r'net_failover|netconsole|nlmon|rionet|sungem_phy|tap|tun|veth|virtio_net|vrf|vsockmon)'
     r'\.ko', CORE),
    (r'drivers/net/(bonding|fjes|hyperv|ipa|ipvlan|mctp|pcs|phy|team|thunderbolt|vmxnet3|'
     r'vxlan|wireguard|wwan)/|drivers/net/(mdio|xen)', CORE),
    (r'drivers/net/can/(slcan/slcan|usb/ems_usb|vcan)|drivers/net/hamradio/|'
     r'drivers/net/slip/slip', EXTRA),
    (r'drivers/net/ethernet/(8390|adi|agere|altera|amazon|amd|apm|asix|brocade|cavium|'
     r'engleder|freescale|fungible|google|hisilicon|ibm|intel|litex|mellanox|microsoft|'
     r'natsemi|netronome|pensando|qualcomm|realtek|renesas|socionext|vertexcom|wangxun|'
     r'xilinx)/|drivers/net/ethernet/(dnet|ethoc|fealnx|jme)\.ko', CORE),
    (r'drivers/nvme/(host/nvme-rdma|target/nvmet-rdma)', MODULES),
    (r'drivers/parport/parport_serial', MODULES), (r'drivers/pci/pcie/aer_inject', EXTRA),
    (r'drivers/powercap/intel_rapl_tpmi|drivers/ptp/ptp_dfl_tod|'
     r'drivers/regulator/arizona-micsupp', MODULES),
    (r'drivers/scsi/(3w|BusLogic|a100u2w|advansys|am53c974|arcmsr|atp870u|ch\.|cxlflash/|'
     r'dc395x|device_handler/|dmx3191d|elx/|esp_scsi|fdomain|hpsa|hptiop|hv_storvsc|ibmvscsi|'
     r'initio|ipr\.|ips\.|iscsi_tcp|libfc/|libiscsi|mpi3mr/|mvumi|myrb|myrs|raid_class|'
     r'scsi_debug|scsi_transport_|ses\.|smartpqi/|snic/|st\.|stex|virtio_scsi|vmw_pvscsi|'
     r'wd719x|xen-scsifront)', CORE),
    (r'drivers/spi/spi-dln2', EXTRA), (r'drivers/spi/spi-(altera-dfl|ljca)', MODULES),
    (r'drivers/target/(iscsi/cxgbit/|sbp/|target_core_user)', MODULES),
    (r'drivers/thermal/intel/int340x_thermal/int3406', MODULES),
    (r'drivers/usb/(atm|image|serial)/', MODULES), (r'drivers/usb/misc/trancevibrator', EXTRA),
    (r'drivers/usb/misc/', MODULES), (r'drivers/usb/usbip/', EXTRA),
    (r'drivers/vdpa/(mlx5|pds)/|drivers/vfio/pci/(mlx5|pds)/', MODULES),
    (r'drivers/video/backlight/apple_bl|drivers/watchdog/iTCO_wdt', MODULES),
    (r'drivers/w1/(masters/ds24|slaves/w1_)', EXTRA),
    (r'drivers/(ata|base|block|bus|char|clk|counter|cpufreq|crypto|cxl|dax|dca|devfreq|dma|'
     r'edac|extcon|firmware|fsi|gnss|gpio|hid|hte|hv|hwmon|hwspinlock|hwtracing|i2c|i3c|iio|'
     r'input|interconnect|iommu|irqchip|mailbox|md|memory|message|misc|mux|nvdimm|nvme|'
     r'nvmem|parport|pci|perf|phy|pinctrl|pmdomain|powercap|pps|ptp|pwm|rapidio|regulator|'
     r'remoteproc|reset|rpmsg|rtc|s390|slimbus|soc|spi|spmi|target|tee|thermal|thunderbolt|'
     r'ufs|usb|vdpa|vfio|vhost|video|virt|virtio|watchdog|xen)/', CORE),
    (r'fs/(affs|befs|coda|dlm|gfs2|nilfs2|ocfs2|sysv|ubifs|ufs)/|fs/fuse/cuse', EXTRA),
    (r'fs/(9p|afs|bcachefs|cachefiles|ceph|erofs|exfat|f2fs|fat|fuse|isofs|lockd|netfs|nls|'
     r'ntfs3|orangefs|overlayfs|pstore|smb|squashfs|udf|vboxsf|xfs|zonefs)/|fs/nfs|'
     r'fs/binfmt_misc', CORE),
    (r'net/(appletalk|ax25|batman-adv|netrom|rds|rose)/|'
     r'net/atm/(br2684|clip|lec|pppoatm)|'
     r'net/ipv4/tcp_(bic|highspeed|htcp|hybla|illinois|lp|scalable|vegas|veno|westwood|yeah)|'
     r'net/l2tp/l2tp_(debugfs|eth|netlink|ppp)|'
     r'net/sched/sch_(choke|drr|etf|gred|mqprio|multiq|netem|qfq|red|sfb|teql)', EXTRA),
    (r'net/9p/9pnet_rdma|net/sunrpc/xprtrdma/', MODULES),
    (r'net/(802|8021q|9p|bridge|ceph|core|dns_resolver|hsr|ife|ipv4|ipv6|iucv|kcm|key|llc|'
     r'netfilter|nsh|openvswitch|psample|qrtr|rxrpc|sched|sunrpc|tipc|tls|vmw_vsock|xdp|'
     r'xfrm)/', CORE),
]]


def package_of(path: str) -> str:
    rel = path[len('kernel/'):] if path.startswith('kernel/') else path
    return next((package for rule, package in RULES if rule.match(rel)), MODULES)


def compressed_modules(kernel: realkernel.RealKernel) -> Path:
    """The real kernel's modules, xz-compressed as Fedora does it (cached)."""
    out = CACHE / ('modules-xz-%s' % kernel.kver)
    if (out / '.done').exists():
        return out
    sources = sorted(p.relative_to(kernel.modules_dir) for p in
                     (kernel.modules_dir / 'kernel').rglob('*.ko'))

    def one(rel: Path) -> None:
        target = out / (str(rel) + '.xz')
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, 'wb') as sink:
            subprocess.run(['xz', '-c', '--check=crc32', '--lzma2=dict=1MiB',
                            str(kernel.modules_dir / rel)], stdout=sink, check=True)

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        list(pool.map(one, sources))
    (out / '.done').write_text('%d\n' % len(sources))
    return out


def build_release(kernel: realkernel.RealKernel, modules: Path, release: str) -> Path:
    """The Fedora-way split of the real kernel as RPMs, version 6.1.0-RELEASE (cached)."""
    kver = '6.1.0-%s.x86_64' % release
    key = hashlib.sha256(repr((BUILD_FORMAT, [(r.pattern, p) for r, p in RULES],
                               kernel.package)).encode()).hexdigest()[:12]
    out = CACHE / ('rpms-%s-%s' % (kver, key))
    if (out / '.done').exists():
        return out
    work = Path(tempfile.mkdtemp(prefix='build-', dir=CACHE))
    staging = work / 'staging' / 'lib/modules' / kver
    shutil.copytree(modules, staging, ignore=shutil.ignore_patterns('.done'))
    for name in ('modules.builtin', 'modules.builtin.modinfo', 'modules.order'):
        shutil.copy2(kernel.modules_dir / name, staging / name)
    (staging / 'vmlinuz').write_bytes(b'bench kernel image ' + kver.encode() + b'\n')
    shipped: dict[str, list[str]] = {CORE: [], MODULES: [], EXTRA: []}
    for path in sorted(modules.rglob('*.ko.xz')):
        rel = str(path.relative_to(modules))
        shipped[package_of(rel)].append(rel)
    spec = ['Name: kernel', 'Version: 6.1.0', 'Release: %s' % release, 'Summary: kernel',
            'License: GPL-2.0-only', 'AutoReqProv: no', '%global debug_package %{nil}',
            '%global __os_install_post %{nil}', '%global _build_id_links none',
            'Requires: kernel-core = %{version}-%{release}',
            'Requires: kernel-modules = %{version}-%{release}',
            'Provides: installonlypkg(kernel)', 'Provides: kernel-uname-r = %s' % kver,
            '%description', 'bench', '',
            '%package -n kernel-core', 'Summary: core', 'Provides: installonlypkg(kernel)',
            'Provides: kernel-core-uname-r = %s' % kver,
            'Requires: kernel-modules-core = %{version}-%{release}',
            '%description -n kernel-core', 'core']
    for name, requires in ((CORE, 'kernel-core'), (MODULES, CORE), (EXTRA, MODULES)):
        spec += ['', '%%package -n %s' % name, 'Summary: %s' % name,
                 'Provides: installonlypkg(kernel-module)',
                 'Provides: %s-uname-r = %s' % (name, kver),
                 'Requires: %s = %%{version}-%%{release}' % requires]
        spec += ['Provides: kmod(%s)' % os.path.basename(rel)[:-len('.xz')]
                 for rel in shipped[name]]
        spec += ['%%description -n %s' % name, name]
    spec += ['', '%install', 'cp -a %s/. %%{buildroot}/' % (work / 'staging'), '', '%files',
             '', '%files -n kernel-core', '%%dir /lib/modules/%s' % kver]
    spec += ['/lib/modules/%s/%s' % (kver, n) for n in
             ('vmlinuz', 'modules.builtin', 'modules.builtin.modinfo', 'modules.order')]
    for name in (CORE, MODULES, EXTRA):
        spec += ['', '%%files -n %s' % name] + \
            ['/lib/modules/%s/%s' % (kver, rel) for rel in shipped[name]]
    (work / 'kernel.spec').write_text('\n'.join(spec) + '\n')
    subprocess.run(['rpmbuild', '-bb', '--quiet', '--define', '_topdir %s' % (work / 'rpmbuild'),
                    '--define', '_binary_payload w19.zstdio', str(work / 'kernel.spec')],
                   check=True, env=dict(os.environ, LC_ALL='C'))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for rpm in (work / 'rpmbuild' / 'RPMS').rglob('*.rpm'):
        shutil.move(str(rpm), out / rpm.name)
    shutil.rmtree(work)
    (out / '.done').write_text(json.dumps({k: len(v) for k, v in shipped.items()}) + '\n')
    return out


class Server:
    """DIRECTORY over HTTP on 127.0.0.1, stopped with the bench."""

    def __init__(self, directory: Path) -> None:
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass
        handler = functools.partial(Quiet, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = 'http://127.0.0.1:%d' % self.httpd.server_port

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def core_only_host(installed_modules: set[str], builtin: set[str], work: Path) -> tuple[Path, Path]:
    """The R820's PCI functions as a kernel-core + kernel-modules-core boot sees them."""
    devices = [dict(d) for d in realdata.udevadm_machines()['DELL_IDRAC']
               if d.get('SUBSYSTEM') == 'pci']
    for device in devices:
        driver = device.get('DRIVER')
        if driver and driver.replace('-', '_') not in installed_modules | builtin:
            del device['DRIVER']
    umockdev, drivers = realdata.umockdev_from_udevadm(
        devices, lambda m: m in installed_modules)
    host, host_drivers = work / 'host.umockdev', work / 'host.drivers'
    host.write_text(umockdev)
    host_drivers.write_text(drivers)
    return host, host_drivers


INSPECT_RE = re.compile(r'kernelsplit: inspect: read (\S+) \(([\d.]+) MB (fetched|from the '
                        r'package cache) in (\d+) ms\) in (\d+) ms')


def decompression_floor(package_files: list[Path]) -> dict:
    """What exact reading cannot go below: liblzma (Python's lzma) decompressing the
    PACKAGE_FILES' modules whole, on one thread, with nothing else read; per 100 MB
    of the package files, on one CPU and spread over this machine's CPUs."""
    import lzma
    from dnf_kernelsplit.payload import _cpio_entries
    modules = []
    for package in package_files:
        cpio = subprocess.Popen(['rpm2cpio', str(package)], stdout=subprocess.PIPE)
        modules += [data for path, data in _cpio_entries(cpio.stdout)
                    if path.endswith('.ko.xz') and data]
        cpio.stdout.close()
        cpio.wait()
    start = time.perf_counter()
    plain = sum(len(lzma.decompress(data)) for data in modules)
    seconds = time.perf_counter() - start
    size = sum(package.stat().st_size for package in package_files)
    cpus = len(os.sched_getaffinity(0))
    return {'modules': len(modules), 'elf_mb': round(plain / 1e6, 1),
            'one_cpu_s': round(seconds, 2), 'cpus': cpus,
            's_per_100mb_one_cpu': round(seconds / size * 1e8, 2),
            's_per_100mb_all_cpus': round(seconds / size * 1e8 / cpus, 2)}


def run(root: Installroot, host: Path, drivers: Path, plugin: bool, work: Path,
        verbose: bool = False, hook_times: Optional[Path] = None, cacheonly: bool = False
        ) -> tuple[float, subprocess.CompletedProcess]:
    """HOOK_TIMES: a file the dnf run appends its time in the plugin machinery to
    (hooktimes.py).  CACHEONLY: dnf's -C."""
    command = ['umockdev-run', '-d', str(host), '--', PYTHON, str(TESTBED_EXEC), str(drivers),
               '--'] + root.dnf_command(*(['-v'] if verbose else []), *(['-C'] * cacheonly),
                                        '--assumeno', 'upgrade', plugin=plugin)
    report = work / 'measure'
    env = {**root.env, 'KERNELSPLIT_MEASURE': str(report)}
    if hook_times is not None:
        env.update(PYTHONPATH=str(hooktimes.shim(work / 'hook-shim')),
                   KERNELSPLIT_HOOK_TIMES=str(hook_times))
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit('dnf failed: %s' % done.stderr)
    return float(report.read_text().split()[0]), done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=9)
    parser.add_argument('--json')
    parser.add_argument('--keep', action='store_true',
                        help='keep the installroot and repository (their directory is printed)')
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error('--rounds: at least 2 (the pairs\' quartiles need two)')
    if not realdata.available():
        print('bench/inspect_mode: no ../shared/realdata; nothing to measure')
        return 0
    CACHE.mkdir(parents=True, exist_ok=True)
    kernel = realkernel.fetch()
    modules = compressed_modules(kernel)
    old, new = build_release(kernel, modules, '1.fc'), build_release(kernel, modules, '2.fc')
    work = Path(tempfile.mkdtemp(prefix='kernelsplit-bench-inspect-', dir='/var/tmp'))
    repo = work / 'repo'
    repo.mkdir()
    for rpm in list(old.glob('*.rpm')) + list(new.glob('*.rpm')):
        os.link(rpm, repo / rpm.name)
    subprocess.run(['createrepo_c', '--quiet', '--no-database', str(repo)], check=True)
    sizes = {rpm.name: rpm.stat().st_size for rpm in new.glob('*.rpm')}
    system = dict(installed=1000, installed_files=164, available=60000, files=52)
    distro_rpms = distro.installed_rpms(system['installed'], system['installed_files'])
    distro_repo = distro.repository(system['installed'], system['available'], system['files'],
                                    system['installed_files'])
    server = Server(work)
    try:
        root = Installroot(work / 'ir', {'fedora': server.url + '/repo', 'distro': distro_repo})
        distro.install_into(root.root, distro_rpms, DBPATH)
        root.install('kernel-core-6.1.0-1.fc.x86_64', 'kernel-modules-core-6.1.0-1.fc.x86_64')
        kver = '6.1.0-1.fc.x86_64'
        installed = {p.name.split('.ko')[0].replace('-', '_')
                     for p in (root.root / 'lib/modules' / kver).rglob('*.ko*')}
        builtin = {line.rsplit('/', 1)[-1].split('.ko')[0].replace('-', '_') for line in
                   (kernel.modules_dir / 'modules.builtin').read_text().split()}
        host, drivers = core_only_host(installed, builtin, work)
        root.dnf('makecache', plugin=False, check=True)
        subprocess.run([PYTHON, '-m', 'compileall', '-q', str(ROOT / 'dnf-plugin-kernelsplit')],
                       check=True)
        cache = root.root / 'var/cache/dnf'

        def cold() -> None:
            for rpm in cache.rglob('*.rpm'):
                rpm.unlink()
            shutil.rmtree(cache / 'kernelsplit', ignore_errors=True)

        # First run: nothing cached but dnf's metadata.
        firsts, offs, reads = [], [], []
        for _ in range(3):
            cold()
            wall_off, _ = run(root, host, drivers, False, work)
            cold()
            wall_on, shown = run(root, host, drivers, True, work, verbose=True)
            read = [(m.group(1), float(m.group(2)), m.group(3), int(m.group(4)), int(m.group(5)))
                    for m in INSPECT_RE.finditer(shown.stdout)]
            firsts.append(wall_on)
            offs.append(wall_off)
            reads.append(read)
        read = reads[len(reads) // 2]
        fetched_mb = sum(mb for _, mb, how, _, _ in read if how == 'fetched')
        read_files = [next(cache.rglob(name + '.rpm')) for name, _, _, _, _ in read]
        floor = decompression_floor(read_files)
        read_ms = [statistics.median(r[i][4] for r in reads) for i in range(len(read))]
        fetch_ms = [statistics.median(r[i][3] for r in reads) for i in range(len(read))]
        payload_mb = sum(mb for _, mb, _, _, _ in read)
        added = [on - off for on, off in zip(firsts, offs)]
        added_beyond = statistics.median(a - sum(r[i][3] for i in range(len(r))) / 1000
                                         for a, r in zip(added, reads))
        lines = [l for l in shown.stdout.splitlines()
                 if l.startswith('kernelsplit: adding') or 'cannot judge' in l]
        # Second run: the same metadata, the plugin's answers cached.
        second_runs = {}
        for cacheonly in (True, False):
            warm = run(root, host, drivers, True, work, verbose=True, cacheonly=cacheonly)[1]
            if INSPECT_RE.search(warm.stdout) or \
                    [l for l in warm.stdout.splitlines() if l.startswith('kernelsplit: adding')] \
                    != [l for l in lines if l.startswith('kernelsplit: adding')]:
                raise SystemExit('the second run read packages again or added something else:'
                                 '\n%s' % warm.stdout)
            samples = {True: [], False: []}
            # Both sides load the timing shim, so the pairs stay alike.
            hook_times = {True: work / ('hooks-on-%d' % cacheonly),
                          False: work / ('hooks-off-%d' % cacheonly)}
            rounds = args.rounds * (2 if cacheonly else 1)
            for round_ in range(rounds):
                for plugin in ((False, True) if round_ % 2 == 0 else (True, False)):
                    samples[plugin].append(run(root, host, drivers, plugin, work,
                                               hook_times=hook_times[plugin],
                                               cacheonly=cacheonly)[0])
            deltas = sorted(a - b for a, b in zip(samples[True], samples[False]))
            off = statistics.median(samples[False])
            second = statistics.median(deltas)
            inside = statistics.median(
                hooktimes.hook_ms(hook_times[True].read_text().splitlines()))
            second_runs[cacheonly] = {
                'wall_off_s': round(off, 3), 'overhead_ms': round(second * 1000, 1),
                'overhead_pct': round(second / off * 100, 1), 'rounds': rounds,
                'quartiles_ms': [round(q * 1000, 1) for q in
                                 statistics.quantiles(deltas, n=4)[::2]],
                'inside_dnf_ms': round(inside, 1),
                'inside_dnf_pct': round(inside / 1000 / off * 100, 1)}
    finally:
        server.stop()
    figures = {
        'kernel': kernel.package, 'packages_mb': {k: round(v / 1e6, 1) for k, v in sizes.items()},
        'split': json.loads((new / '.done').read_text()),
        'first_run': {'inspected': [{'package': p, 'mb': mb, 'how': how, 'fetch_ms': f,
                                     'read_ms': r} for (p, mb, how, _, _), f, r
                                    in zip(read, fetch_ms, read_ms)],
                      'fetched_mb': round(fetched_mb, 1),
                      'decompression_floor': floor,
                      'read_s_per_100mb': round(sum(read_ms) / 1000 / payload_mb * 100, 2)
                      if payload_mb else None,
                      'wall_off_s': round(statistics.median(offs), 3),
                      'wall_on_s': round(statistics.median(firsts), 3),
                      'added_beyond_download_s': round(added_beyond, 3),
                      'plugin_lines': lines},
        'second_run': second_runs[True],
        'second_run_asking_the_server': second_runs[False],
    }
    first = figures['first_run']
    print('kernel repo   %s split the Fedora way: %s' % (kernel.package, ', '.join(
        '%s %.1f MB' % (k.rsplit('-6.1.0', 1)[0], v) for k, v in
        sorted(figures['packages_mb'].items()))))
    for line in lines:
        print('  ' + (line if len(line) < 150 else line[:147] + '...'))
    for item in first['inspected']:
        print('  inspect read %(package)s: %(mb).1f MB %(how)s, fetch %(fetch_ms)d ms, '
              'read %(read_ms)d ms' % item)
    print('first run     fetched %.1f MB; reading %.2f s per 100 MB of payload (target <= %.1f);'
          ' wall off %.3f s, on %.3f s: +%.3f s beyond the download'
          % (first['fetched_mb'], first['read_s_per_100mb'] or 0, TARGET_READ_S_PER_100MB,
             first['wall_off_s'], first['wall_on_s'], first['added_beyond_download_s']))
    floor = first['decompression_floor']
    print('  floor       liblzma alone on the %d .ko.xz read (%.1f MB of ELF): %.2f s on one CPU, '
          '%.2f s per 100 MB of payload; %.2f s per 100 MB on all %d CPUs'
          % (floor['modules'], floor['elf_mb'], floor['one_cpu_s'], floor['s_per_100mb_one_cpu'],
             floor['s_per_100mb_all_cpus'], floor['cpus']))
    for key, label in (('second_run', 'second run   '), ('second_run_asking_the_server',
                                                       '  without -C ')):
        second = figures[key]
        print('%s %+.1f ms (%+.1f%%) on %.3f s%s, median of %d pairs (quartiles %+.1f..%+.1f); '
              'inside dnf\'s plugin machinery %.1f ms (%.1f%%)'
              % (label, second['overhead_ms'], second['overhead_pct'], second['wall_off_s'],
                 ' (target <= 5%)' if key == 'second_run' else '', second['rounds'],
                 *second['quartiles_ms'], second['inside_dnf_ms'], second['inside_dnf_pct']))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + '\n')
    if args.keep:
        print('kept        %s' % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    missed = [what for what, ok in (
        ('reading', (first['read_s_per_100mb'] or 0) <= TARGET_READ_S_PER_100MB),
        ('second run', figures['second_run']['overhead_pct'] <= TARGET_SECOND_RUN * 100)) if not ok]
    if missed:
        print('missed: %s' % ', '.join(missed))
    return 1 if missed else 0


if __name__ == '__main__':
    sys.exit(main())
