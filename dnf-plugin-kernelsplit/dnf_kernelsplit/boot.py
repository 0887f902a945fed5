"""The default boot kernel, as the bootloader will pick it.

In order: `grubby --default-kernel` where grubby exists (the running system
only: it knows no installroot); else the Boot Loader Specification entries
(ROOT/boot/loader/entries, and the ESP's) with GRUB's `saved_entry` from its
environment block, or systemd-boot's `default` (its EFI variable, then
loader.conf); else the newest installed kernel, which is also what GRUB's
blscfg and systemd-boot boot when nothing names a default.  A default naming a
kernel that is not installed (a rescue entry, a removed kernel) is noted and
passed over.

Also read here: Fedora's /etc/sysconfig/kernel UPDATEDEFAULT, which says
whether a newly installed kernel becomes the default entry.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Optional, Sequence

GRUBBY, BLS, NEWEST = 'grubby', 'bls', 'newest'

_ENTRY_DIRS = ('boot/loader/entries', 'efi/loader/entries', 'boot/efi/loader/entries')
_LOADER_CONFS = ('boot/loader/loader.conf', 'efi/loader/loader.conf',
                 'boot/efi/loader/loader.conf')
_GRUBENVS = ('boot/grub2/grubenv', 'boot/grub/grubenv')
# systemd-boot's vendor GUID for its EFI variables (bootctl set-default writes this one).
_LOADER_ENTRY_DEFAULT = ('sys/firmware/efi/efivars/'
                         'LoaderEntryDefault-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f')
_GRUBBY_TIMEOUT = 10


class BootDefault(namedtuple('BootDefault', [
        'kver',             # the default boot kernel (one of the installed), or None: none installed
        'source',           # GRUBBY | BLS | NEWEST
        'detail',           # how people would say where it came from
        'notes',            # tuple[str, ...]: defaults passed over, and why
        ])):
    """Which installed kernel boots by default, and who says so."""
    __slots__ = ()

    @property
    def explicit(self) -> bool:
        """The bootloader names it (a new kernel does not take over by being newer)."""
        return self.source != NEWEST


class BlsEntry(namedtuple('BlsEntry', ['id', 'kver'])):
    """A Boot Loader Specification entry: its id (file name without .conf) and kernel."""
    __slots__ = ()


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding='utf-8', errors='replace') as handle:
            return handle.read()
    except OSError:
        return None


def _key_values(text: str, separator: Optional[str]) -> dict[str, str]:
    """KEY<SEP>VALUE lines (SEP None: whitespace), '#' comments skipped; the last wins."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        if separator is None:
            parts = line.split(None, 1)
            key, value = parts[0], parts[1] if len(parts) > 1 else ''
        else:
            key, _, value = line.partition(separator)
        values[key.strip()] = value.strip()
    return values


def _kver_of_image(path: str) -> Optional[str]:
    name = os.path.basename(path.strip())
    return name[len('vmlinuz-'):] if name.startswith('vmlinuz-') else None


def bls_entries(root: str) -> list[BlsEntry]:
    """The BLS entries under ROOT, with the kernel each boots ('version', else its linux image)."""
    entries = []
    for directory in _ENTRY_DIRS:
        try:
            names = sorted(os.listdir(os.path.join(root, directory)))
        except OSError:
            continue
        for name in names:
            if not name.endswith('.conf'):
                continue
            text = _read(os.path.join(root, directory, name))
            if text is None:
                continue
            fields = _key_values(text, None)
            kver = fields.get('version') or _kver_of_image(fields.get('linux', ''))
            if kver:
                entries.append(BlsEntry(name[:-len('.conf')], kver))
    return entries


def grub_saved_entry(root: str) -> Optional[str]:
    """GRUB's saved_entry from its environment block under ROOT, or None."""
    for path in _GRUBENVS:
        text = _read(os.path.join(root, path))
        if text is not None:
            return _key_values(text, '=').get('saved_entry') or None
    return None


def systemd_boot_default(root: str) -> Optional[str]:
    """systemd-boot's default entry pattern: its EFI variable (the running system only),
    then loader.conf's `default`."""
    if os.path.realpath(root) == '/':
        try:
            with open('/' + _LOADER_ENTRY_DEFAULT, 'rb') as handle:
                raw = handle.read()[4:]         # 4 bytes of attributes, then UTF-16LE
            value = raw.decode('utf-16-le', errors='replace').split('\0', 1)[0]
            if value:
                return value
        except OSError:
            pass
    for path in _LOADER_CONFS:
        text = _read(os.path.join(root, path))
        if text is not None:
            pattern = _key_values(text, None).get('default')
            if pattern:
                return pattern
    return None


def _grubby_default(grubby: str) -> tuple[Optional[str], Optional[str]]:
    """(kver, problem) from `grubby --default-kernel` ('/boot/vmlinuz-KVER')."""
    try:
        done = subprocess.run([grubby, '--default-kernel'], capture_output=True, text=True,
                              timeout=_GRUBBY_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, 'grubby --default-kernel failed: %s' % exc
    kver = _kver_of_image(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None
    if done.returncode != 0 or kver is None:
        return None, 'grubby --default-kernel said %r (exit %d)' % (
            (done.stdout + done.stderr).strip(), done.returncode)
    return kver, None


def default_kernel(root: str, installed: Sequence[str],
                   grubby: Optional[str] = None) -> BootDefault:
    """The default boot kernel among INSTALLED (newest first) for the system in ROOT.

    GRUBBY: the grubby to ask (default: grubby on PATH, for ROOT / only).
    """
    notes: list[str] = []
    if os.path.realpath(root) == '/':
        grubby = grubby or shutil.which('grubby')
        if grubby:
            kver, problem = _grubby_default(grubby)
            if kver in installed:
                return BootDefault(kver, GRUBBY, 'grubby --default-kernel', ())
            notes.append(problem or 'grubby names %s as the default boot kernel, which is '
                         'not installed' % kver)
    entries = bls_entries(root)
    if entries:
        wanted = grub_saved_entry(root)
        if wanted is not None:
            matching = [e for e in entries if e.id == wanted]
            how = "GRUB's saved_entry %s" % wanted
        else:
            wanted = systemd_boot_default(root)
            matching = [e for e in entries if fnmatch.fnmatchcase(e.id, wanted) or
                        fnmatch.fnmatchcase(e.id + '.conf', wanted)] if wanted else []
            how = "systemd-boot's default %s" % wanted
        if wanted is not None:
            chosen = [e for e in matching if e.kver in installed]
            if chosen:
                # several matches: systemd-boot boots the newest
                entry = min(chosen, key=lambda e: installed.index(e.kver))
                return BootDefault(entry.kver, BLS, 'bootloader entry %s' % entry.id, tuple(notes))
            if matching:
                notes.append('%s boots %s, which is not installed' % (
                    how, ', '.join(sorted({e.kver for e in matching}))))
            else:
                notes.append('%s matches no boot entry' % how)
    if not installed:
        return BootDefault(None, NEWEST, 'no kernel installed', tuple(notes))
    return BootDefault(installed[0], NEWEST, 'newest installed', tuple(notes))


def updates_default(root: str) -> Optional[bool]:
    """Fedora/RHEL's UPDATEDEFAULT from ROOT/etc/sysconfig/kernel: whether installing a
    kernel makes it the default entry (None: not said)."""
    text = _read(os.path.join(root, 'etc/sysconfig/kernel'))
    if text is None:
        return None
    value = _key_values(text, '=').get('UPDATEDEFAULT', '').strip('"\'').lower()
    return {'yes': True, 'no': False}.get(value)
