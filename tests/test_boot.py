"""The default boot kernel from the bootloader's own files, and what becomes the default."""

import os
import stat

import pytest

from dnf_kernelsplit.boot import (BLS, GRUBBY, NEWEST, bls_entries, default_kernel,
                                  updates_default)
from dnf_kernelsplit.policy import next_default

OLD, NEW, RESCUE = '6.8.0-1.x86_64', '6.9.1-1.x86_64', '0-rescue-4f1a'
INSTALLED = [NEW, OLD]


def entry(root, name, **fields):
    entries = root / 'boot/loader/entries'
    entries.mkdir(parents=True, exist_ok=True)
    (entries / ('%s.conf' % name)).write_text(''.join('%s %s\n' % kv for kv in fields.items()))


@pytest.fixture
def fedora(tmp_path):
    """Two BLS entries as Fedora's kernel-install writes them, and a rescue entry."""
    entry(tmp_path, 'm-' + OLD, title='Fedora (%s)' % OLD, version=OLD, linux='/vmlinuz-' + OLD)
    entry(tmp_path, 'm-' + NEW, title='Fedora (%s)' % NEW, version=NEW, linux='/vmlinuz-' + NEW)
    entry(tmp_path, 'm-' + RESCUE, title='Rescue', linux='/vmlinuz-' + RESCUE)
    return tmp_path


def test_entries_name_their_kernel_by_version_else_image(fedora):
    assert sorted(bls_entries(str(fedora))) == sorted([
        ('m-' + OLD, OLD), ('m-' + NEW, NEW), ('m-' + RESCUE, RESCUE)])


def test_without_a_bootloader_the_newest_boots(tmp_path):
    assert default_kernel(str(tmp_path), INSTALLED)[:2] == (NEW, NEWEST)
    assert default_kernel(str(tmp_path), [])[:2] == (None, NEWEST)


@pytest.mark.parametrize('grubenv, loader, expected', [
    ('saved_entry=m-%s\n' % OLD, None, (OLD, BLS, 'bootloader entry m-' + OLD)),
    (None, 'default m-6.8*\n', (OLD, BLS, 'bootloader entry m-' + OLD)),
    (None, 'default m-*.conf\n', (NEW, BLS, 'bootloader entry m-' + NEW)),   # newest of several
    ('saved_entry=m-%s\n' % RESCUE, None, (NEW, NEWEST, 'newest installed')),  # not installed
    ('saved_entry=gone\n', None, (NEW, NEWEST, 'newest installed')),
    ('boot_success=1\n', None, (NEW, NEWEST, 'newest installed')),          # nothing saved
])
def test_grub_saved_entry_and_systemd_boot_default(fedora, grubenv, loader, expected):
    if grubenv is not None:
        (fedora / 'boot/grub2').mkdir(parents=True)
        text = '# GRUB Environment Block\n' + grubenv
        (fedora / 'boot/grub2/grubenv').write_text(text + '#' * (1024 - len(text)))
    if loader is not None:
        (fedora / 'boot/loader/loader.conf').write_text(loader)
    found = default_kernel(str(fedora), INSTALLED)
    assert found[:3] == expected
    assert found.explicit is (expected[1] != NEWEST)
    if expected[1] == NEWEST and grubenv and 'saved_entry' in grubenv:
        assert found.notes and 'saved_entry' in found.notes[0]


def grubby(tmp_path, output, status=0):
    """A grubby that answers as Fedora's does (`/boot/vmlinuz-KVER`)."""
    script = tmp_path / 'grubby'
    script.write_text('#!/bin/sh\n[ "$1" = --default-kernel ] || exit 64\n'
                      'echo "%s"\nexit %d\n' % (output, status))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_grubby_speaks_for_the_running_system_only(tmp_path, fedora):
    asked = grubby(tmp_path, '/boot/vmlinuz-' + OLD)
    assert default_kernel('/', INSTALLED, grubby=asked)[:2] == (OLD, GRUBBY)
    # an installroot is another system: its own files say
    assert default_kernel(str(fedora), INSTALLED, grubby=asked)[:2] == (NEW, NEWEST)


@pytest.mark.parametrize('output, status', [('/boot/vmlinuz-5.0.0-1.x86_64', 0),
                                            ('The param /boot/vmlinuz is incorrect', 1)])
def test_grubby_naming_nothing_installed_is_noted(tmp_path, output, status):
    found = default_kernel('/', INSTALLED, grubby=grubby(tmp_path, output, status))
    assert found.source != GRUBBY and found.notes and 'grubby' in found.notes[0]


@pytest.mark.parametrize('text, expected', [
    (None, None), ('UPDATEDEFAULT=yes\nDEFAULTKERNEL=kernel-core\n', True),
    ('# comment\nUPDATEDEFAULT="no"\n', False), ('DEFAULTKERNEL=kernel\n', None)])
def test_updates_default(tmp_path, text, expected):
    if text is not None:
        os.makedirs(tmp_path / 'etc/sysconfig')
        (tmp_path / 'etc/sysconfig/kernel').write_text(text)
    assert updates_default(str(tmp_path)) is expected


@pytest.mark.parametrize('incoming, newest, current, explicit, update, expected', [
    ([NEW], NEW, OLD, False, None, NEW),     # nothing pinned: the newest boots
    ([NEW], NEW, OLD, True, None, OLD),      # pinned, and nobody moves the pin
    ([NEW], NEW, OLD, True, True, NEW),      # UPDATEDEFAULT=yes moves it to the new kernel
    ([NEW], NEW, OLD, True, False, OLD),
    ([OLD], NEW, NEW, False, None, NEW),     # an older kernel coming in does not take over
    ([OLD], NEW, NEW, True, True, OLD),      # ... unless UPDATEDEFAULT=yes says it does
])
def test_next_default(incoming, newest, current, explicit, update, expected):
    assert next_default(incoming, newest, current, explicit, update) == expected
