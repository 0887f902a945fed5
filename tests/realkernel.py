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
