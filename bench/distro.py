"""A distribution-sized system for bench/upgrade.py: what a real host's dnf loads.

- an rpmdb with INSTALLED packages (real RPMs, one spec of INSTALLED subpackages,
  FILES files each, installed with `rpm --justdb`: dnf reads their headers);
- a repository of AVAILABLE packages (those same NEVRAs plus synthetic
  others, with provides, requires and file lists), written with the
  createrepo_c library.  `dnf --assumeno` never downloads a package, so
  metadata is all such a repository needs.

The sizes bench/upgrade.py uses come from real systems, not from what makes
the plugin look small: Debian 12's main/amd64 Contents lists 1,697,183 files
in 32,326 packages (52 per package); this build machine's 758 installed
packages hold 124,324 files (164 per package); Fedora 40's fedora + updates
repositories hold about 70,000 packages.  Everything is cached by its
parameters.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get('KERNELSPLIT_FIXTURE_CACHE', '/var/tmp/kernelsplit-fixtures'))


def _name(i: int) -> str:
    return 'distro-pkg-%05d' % i


def _files(i: int, count: int) -> list[str]:
    base = '/usr/share/distro/%s' % _name(i)
    return ['%s/f%03d' % (base, n) for n in range(count)]


def installed_rpms(count: int, files: int, cache: Path = CACHE) -> Path:
    """COUNT real RPMs (distro-pkg-00000..) with FILES empty files each."""
    out = cache / ('distro-installed-%d-%d' % (count, files))
    if (out / '.done').exists():
        return out
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        work = Path(tmp)
        lines = ['Name: distro-base', 'Version: 1', 'Release: 1', 'Summary: bench base',
                 'License: MIT', 'AutoReqProv: no', '%global debug_package %{nil}',
                 '%global __os_install_post %{nil}', '%description', 'bench', '']
        install = ['%install']
        for i in range(count):
            lines += ['%%package -n %s' % _name(i), 'Summary: %s' % _name(i),
                      '%%description -n %s' % _name(i), _name(i), '']
            install.append('mkdir -p %%{buildroot}/usr/share/distro/%s' % _name(i))
            install.append('touch ' + ' '.join('%%{buildroot}%s' % f for f in _files(i, files)))
        body = '\n'.join(lines + install) + '\n'
        for i in range(count):
            body += '\n%%files -n %s\n/usr/share/distro/%s\n' % (_name(i), _name(i))
        (work / 'distro.spec').write_text(body)
        subprocess.run(['rpmbuild', '-bb', '--quiet', '--define', '_topdir %s' % (work / 'top'),
                        '--define', '_binary_payload w2.xzdio', str(work / 'distro.spec')],
                       check=True, capture_output=True)
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(work / 'top' / 'RPMS', out)
    (out / '.done').write_text('ok\n')
    return out


def install_into(root: Path, rpms: Path, dbpath: str) -> None:
    """Record the RPMs in ROOT's rpmdb (headers and file lists; no payload written)."""
    files = sorted(str(p) for p in rpms.rglob('*.rpm'))
    subprocess.run(['rpm', '--root', str(root), '--dbpath', dbpath, '-i', '--justdb', '--nodeps',
                    '--noscripts', '--ignorearch'] + files, check=True, capture_output=True)


def repository(installed: int, available: int, files: int, installed_files: int,
               cache: Path = CACHE) -> Path:
    """A repository of AVAILABLE packages, the first INSTALLED of them the installed ones.

    The installed ones carry INSTALLED_FILES files, as built; the others
    between 0 and 2 * FILES (FILES on average).
    """
    import createrepo_c as cr
    out = cache / ('distro-repo-%d-%d-%d-%d' % (installed, available, files, installed_files))
    if (out / '.done').exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    repodata = out / 'repodata'
    repodata.mkdir(parents=True)
    rng = random.Random(20261121)
    paths = {kind: str(repodata / ('%s.xml.gz' % kind)) for kind in ('primary', 'filelists', 'other')}
    primary = cr.PrimaryXmlFile(paths['primary'])
    filelists = cr.FilelistsXmlFile(paths['filelists'])
    other = cr.OtherXmlFile(paths['other'])
    for xml in (primary, filelists, other):
        xml.set_num_of_pkgs(available)
    for i in range(available):
        pkg = cr.Package()
        name = _name(i)
        # the installed ones exactly as built by installed_rpms(): same NEVRA
        pkg.name, pkg.epoch, pkg.version, pkg.release = name, '0', '1', '1'
        pkg.arch = 'x86_64' if i < installed else rng.choice(['x86_64', 'noarch'])
        pkg.pkgId = hashlib.sha256(name.encode()).hexdigest()
        pkg.checksum_type = 'sha256'
        pkg.location_href = 'Packages/%s-1-1.%s.rpm' % (name, pkg.arch)
        pkg.summary = pkg.description = 'bench package %d' % i
        pkg.url, pkg.rpm_license, pkg.rpm_group = '', 'MIT', 'Unspecified'
        pkg.rpm_buildhost, pkg.rpm_packager, pkg.rpm_vendor = 'bench', '', ''
        pkg.rpm_sourcerpm = '%s-1-1.src.rpm' % name
        pkg.time_file = pkg.time_build = 1763700000
        pkg.rpm_header_start, pkg.rpm_header_end = 0, 0
        pkg.size_package = pkg.size_installed = pkg.size_archive = 1024
        pkg.provides = [(name, 'EQ', '0', '1', '1', False),
                        ('%s(x86-64)' % name, 'EQ', '0', '1', '1', False),
                        ('libdistro%d.so.1()(64bit)' % i, None, None, None, None, False)]
        if i >= installed:
            pkg.requires = [('libdistro%d.so.1()(64bit)' % rng.randrange(installed), None, None,
                             None, None, False) for _ in range(3)]
        pkg.files = [('', '/usr/share/distro/%s/' % name, 'f%03d' % n)
                     for n in range(installed_files if i < installed
                                    else rng.randrange(files * 2 + 1))]
        primary.add_pkg(pkg)
        filelists.add_pkg(pkg)
        other.add_pkg(pkg)
    for xml in (primary, filelists, other):
        xml.close()
    repomd = cr.Repomd()
    for kind, path in paths.items():
        record = cr.RepomdRecord(kind, path)
        record.fill(cr.SHA256)
        repomd.set_record(record)
    (repodata / 'repomd.xml').write_text(repomd.xml_dump())
    (out / '.done').write_text('ok\n')
    return out


if __name__ == '__main__':
    installed, installed_files, available, files = (int(a) for a in sys.argv[1:5])
    print(installed_rpms(installed, installed_files),
          repository(installed, available, files, installed_files))
