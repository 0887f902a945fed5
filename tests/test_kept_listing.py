"""The device listing kept between runs, until the kernel announces a change.

Every device added, removed, bound to a driver or unbound from one is a uevent,
and the kernel counts them in /sys/kernel/uevent_seqnum.  While the counter (and
the boot) is what it was, the listing of a run before is the listing, and libudev
is not asked again.  These tests change an emulated machine in one umockdev
session between real `dnf kernelsplit check` runs (as root: the listing is kept in
/run/kernelsplit), with and without counting the change as the kernel would.
"""

import dataclasses
import json
import os
import shlex
import shutil
import tempfile
from pathlib import Path

import pytest

import oddhosts
from dnf_kernelsplit import hardware
from harness import AS_NOBODY, Host, Installroot, run

NEW = '6.9.1-1.x86_64'
VF = '0000:3b:02.1'
VF_SYSFS = '/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:02.1'
KEPT = '/run/kernelsplit/devices'
# A session's step: the VF goes, and the kernel is not told (the uevent count stands).
REMOVE_VF = ('sh', 'rm -r "$TESTBED%s"' % VF_SYSFS[len('/sys'):])


def session(root, host, steps, out_dir, prefix=(), env=None):
    """Run STEPS in one umockdev session of HOST: ('check', NAME) saves that check's
    report in OUT_DIR as NAME, its stderr as NAME.err and what it logged (dnf.log) as
    NAME.log; ('dnf', NAME, ARGS...) does the same for another dnf command; ('sh', CODE)
    runs CODE (TESTBED: the testbed's sysfs).  NAME -> what was saved."""
    out_dir.mkdir(exist_ok=True)
    log = shlex.quote(str(root.root / 'var/log/dnf.log'))
    lines = ['set -e', 'TESTBED="$UMOCKDEV_DIR/sys"']
    for step in steps:
        if step[0] in ('check', 'dnf'):
            saved = shlex.quote(str(out_dir / step[1]))
            command = root.dnf_command(*(step[2:] if step[0] == 'dnf' else
                                         ('kernelsplit', 'check', '--json')))
            lines.append('rm -f %s 2>/dev/null || true' % log)
            lines.append('%s > %s 2> %s.err || true' % (shlex.join(command), saved, saved))
            lines.append('cat %s > %s.log 2>/dev/null || true' % (log, saved))
        else:
            lines.append(step[1])
    result = run([*prefix, *host.wrap(['/bin/sh', '-c', '\n'.join(lines)])],
                 {**root.env, **(env or {})}, timeout=120)
    assert result.returncode == 0, result
    return {path.name: path.read_text() for path in out_dir.iterdir()}


def slots(text):
    doc = json.loads(text[text.index('{'):])
    return {d['slot'] or d['sysfs_path'] for d in doc['kernels'][0]['devices']}


def test_the_listing_is_kept_until_the_kernel_announces_a_change(make_root, tmp_path):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    out = session(root, Host('baremetal-sriov', uevent_seqnum=4711), [
        ('check', 'first'),
        REMOVE_VF,      # the listing kept is used
        ('check', 'unannounced'),
        # the kernel counts the removal
        ('sh', 'echo 4712 > "$TESTBED/kernel/uevent_seqnum"'),
        ('check', 'announced'),
    ], tmp_path / 'out')
    assert VF in slots(out['first'])
    assert slots(out['unannounced']) == slots(out['first'])
    assert 'devices as listed before, kept in %s (uevent 4711)' % KEPT \
        in out['unannounced.log'], out['unannounced.log']
    assert slots(out['announced']) == slots(out['first']) - {VF}
    assert '10 devices listed, kept in %s (uevent 4712)' % KEPT in out['announced.log']


def test_the_transaction_hook_reads_the_kept_listing(make_root, tmp_path):
    """dnf 4's hook (its background child) as the check: the kept listing while the count
    stands, a new one when the kernel counts a change."""
    root = make_root('mono-split')
    root.install('kernel-6.8.0-1.x86_64')
    upgrade = ('-v', '--assumeno', 'upgrade')
    out = session(root, Host('baremetal-sriov', uevent_seqnum=300), [
        ('dnf', 'first', *upgrade),
        ('dnf', 'second', *upgrade),
        REMOVE_VF,
        ('dnf', 'unannounced', *upgrade),
        ('sh', 'echo 301 > "$TESTBED/kernel/uevent_seqnum"'),
        ('dnf', 'announced', *upgrade),
    ], tmp_path / 'out')

    def added(name):
        return [line for line in out[name].splitlines() if line.startswith('kernelsplit: adding')]
    assert added('first') and added('first') == added('second') == added('unannounced')
    assert 'devices listed, kept in %s (uevent 300)' % KEPT in out['first.log']
    for name in ('second', 'unannounced'):
        assert 'devices as listed before, kept in %s (uevent 300)' % KEPT in out[name + '.log']
    assert VF in ''.join(added('unannounced')) and VF not in ''.join(added('announced'))
    assert 'devices listed, kept in %s (uevent 301)' % KEPT in out['announced.log']


def test_what_listing_said_is_said_again_when_the_listing_is_reused(make_root, tmp_path):
    """A device's bytes that are not UTF-8 are warned about on every run, kept or not."""
    host = dataclasses.replace(oddhosts.garbled(tmp_path), uevent_seqnum=5)
    root = make_root('split')
    root.install('kernel-' + NEW)
    out = session(root, host, [('check', 'first'), ('check', 'second')], tmp_path / 'out')
    assert 'devices as listed before' in out['second.log']
    assert out['first'] == out['second']
    for name in ('first', 'second'):
        for slot, what in [(oddhosts.GPU, '[10de:1e84]: MODALIAS, PCI_ID: '),
                           (oddhosts.PF0, ': sriov_totalvfs: ')]:
            lines = [line for line in out[name + '.err'].splitlines() if slot in line]
            assert len(lines) == 1 and what in lines[0], (name, slot, out[name + '.err'])


def test_without_the_kernels_counter_nothing_is_kept(make_root, tmp_path):
    """A kernel before 4.14 did not announce binding, and sysfs may lack the counter:
    then every run lists the devices."""
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    out = session(root, Host('baremetal-sriov'), [
        ('check', 'first'),
        REMOVE_VF,
        ('check', 'second'),
    ], tmp_path / 'out')
    assert VF in slots(out['first'])
    assert VF not in slots(out['second'])
    assert 'kept in' not in out['second.log']


def test_a_kept_listing_not_this_users_or_damaged_is_listed_again(make_root, tmp_path):
    root = make_root('split')
    root.install('kernel-core-' + NEW)
    out = session(root, Host('baremetal-sriov', uevent_seqnum=77), [
        ('check', 'first'),
        REMOVE_VF,
        # another user's file in its place: not believed
        ('sh', 'chown nobody %s' % KEPT),
        ('check', 'foreign'),
        # damaged: not believed either, and the run goes on
        ('sh', 'head -c 100 /dev/urandom > %s' % KEPT),
        ('check', 'damaged'),
        ('sh', 'printf "" > %s' % KEPT),
        ('check', 'empty'),
        # not a file at all: opening a FIFO would wait for a writer forever
        ('sh', 'rm %s; mkfifo -m 600 %s' % (KEPT, KEPT)),
        ('check', 'fifo'),
    ], tmp_path / 'out')
    assert VF in slots(out['first'])
    for name in ('foreign', 'damaged', 'empty', 'fifo'):
        assert VF not in slots(out[name]), name
        assert 'devices as listed before' not in out[name + '.log'], out[name + '.log']
        assert 'Traceback' not in out[name + '.log']
    assert os.stat(KEPT).st_uid == 0          # listed again, and kept anew


def test_a_user_keeps_the_listing_in_their_runtime_directory_only(repos):
    """Not root: kept in $XDG_RUNTIME_DIR/kernelsplit when there is one, else not at all."""
    base = Path(tempfile.mkdtemp(prefix='kernelsplit-nonroot-', dir='/var/tmp'))
    try:
        os.chmod(base, 0o755)
        root = Installroot(base / 'r', {'split': repos['split']})
        root.install('kernel-core-' + NEW)
        root.open_to_all()
        runtime = base / 'runtime'
        runtime.mkdir()
        os.chown(runtime, 65534, 65534)
        for kept in (False, True):      # where nobody saves the reports
            (base / ('out-%s' % kept)).mkdir()
            os.chown(base / ('out-%s' % kept), 65534, 65534)
        for env, kept in (({}, False), ({'XDG_RUNTIME_DIR': str(runtime)}, True)):
            out = session(root, Host('baremetal-sriov', uevent_seqnum=9), [
                ('check', 'first'),
                REMOVE_VF,
                ('check', 'second'),
            ], base / ('out-%s' % kept), prefix=AS_NOBODY, env=env)
            assert VF in slots(out['first'])
            assert (VF in slots(out['second'])) == kept
            assert (runtime / 'kernelsplit' / 'devices').exists() == kept
        listing = runtime / 'kernelsplit'
        assert (listing.stat().st_uid, oct(listing.stat().st_mode & 0o777)) == (65534, '0o700')
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize('release, parsed, counts_binding', [
    ('6.1.0-27-amd64', (6, 1), True), ('6.12.0-0.rc3.20241015git.31.fc42.x86_64', (6, 12), True),
    ('5.14.0-427.13.1.el9_4.x86_64', (5, 14), True), ('4.14', (4, 14), True),
    ('4.13.16-300', (4, 13), False), ('3.10.0-1160.el7.x86_64', (3, 10), False),
    ('6', (6,), True), ('', (), False), ('linux', (), False), ('6.x', (), False),
])
def test_kernel_releases_are_compared_by_version(release, parsed, counts_binding):
    """The listing is kept only on kernels that count binding: 4.14 and later."""
    assert hardware._release(release) == parsed
    assert (parsed >= hardware._BIND_UEVENTS_SINCE) == counts_binding
