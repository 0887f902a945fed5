"""The devices and their needs worked out in a child process, on emulated machines."""

import json
import os
import subprocess
import textwrap

import pytest

from dnf_kernelsplit.host import Resolution
from harness import PLUGIN_DIR, PYTHON, Host

PRELUDE = textwrap.dedent('''
    import json, os, sys
    sys.path.insert(0, %r)
    from dnf_kernelsplit import background, hardware, host
    from dnf_kernelsplit.config import Config
''') % str(PLUGIN_DIR)


def run_in(host: Host, code: str, env=None) -> subprocess.CompletedProcess:
    command = host.wrap([PYTHON, '-c', PRELUDE + textwrap.dedent(code)])
    return subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False)


def test_background_discovery_gives_what_discover_gives():
    out = run_in(Host('baremetal-sriov-gpu'), '''
        for buses in (None, frozenset({"pci"}), frozenset({"virtio", "usb"})):
            here = hardware.discover(buses)
            child = background.BackgroundHost.start(buses)
            assert child is not None, "two CPUs or more: the child is started"
            there = child.result()
            assert there.discovery == here and there is child.result(), (buses, here, there)
            assert there.resolution is None, "no root given: nothing resolved"
            print(len(there.discovery.devices))
    ''')
    assert out.returncode == 0, out.stderr
    counts = [int(n) for n in out.stdout.split()]
    assert counts[0] == counts[1] > 0 and counts[2] == 0     # every device there is PCI


def test_background_needs_are_what_host_needs_finds(full_index_root):
    """Resolved in the child against the root's index: the same needs and built-ins as
    in-process; used only when the installed kernels are what the child guessed."""
    out = run_in(Host('baremetal-sriov-gpu'), '''
        root, kver = %r, %r
        listing = background.BackgroundHost.start(None, root).result()
        ahead = listing.resolution
        assert ahead.candidates == (kver,) and ahead.index_kver == kver, ahead
        here = host.host_needs(Config(), root, [kver], "not-this", listing.discovery)
        there = host.host_needs(Config(), root, [kver], "not-this", listing.discovery, ahead)
        assert here == there and here.builtin, (here, there)
        # what the child found is what is used ...
        forged = ahead._replace(needs=((("forged",), "modalias", None),) + ahead.needs[1:])
        used = host.host_needs(Config(), root, [kver], "not-this", listing.discovery, forged)
        assert used.needs[0].modules == ("forged",)
        # ... unless the installed kernels say other indexes are to be consulted
        other = host.host_needs(Config(), root, [], "not-this", listing.discovery, forged)
        assert other.needs[0].modules != ("forged",) and other.index_kver is None
        print(sum(1 for n in here.needs if n.modules))
    ''' % (str(full_index_root[0]), full_index_root[1]))
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 3


@pytest.mark.parametrize('consulted, candidates, devices, holds', [
    (('a', 'b'), ['a', 'b'], 2, True),            # the same indexes in the same order
    (('a', 'b'), ['b', 'a'], 2, False),           # here another kernel comes first
    (('a', 'b'), ['a', 'x', 'b'], 2, True),       # x has no index, so it never counted
    (('a',), ['a', 'b'], 2, False),               # b's index was never consulted
    ((), ['x'], 2, True),                         # no index at all, here neither
    (('a',), ['a'], 3, False),                    # other devices
])
def test_background_needs_hold_when_the_same_indexes_would_be_consulted(
        tmp_path, consulted, candidates, devices, holds):
    for kver in ('a', 'b'):
        (tmp_path / 'lib/modules' / kver).mkdir(parents=True)
        (tmp_path / 'lib/modules' / kver / 'modules.dep.bin').write_bytes(b'')
    (tmp_path / 'lib/modules/x').mkdir()            # kABI lists, say: no index
    resolution = Resolution(consulted, consulted[0] if consulted else None,
                            ((('m',), 'modalias', None),) * 2, None)
    assert resolution.holds_for(str(tmp_path), candidates, [None] * devices) is holds


def test_background_discovery_reports_what_discover_reports(tmp_path):
    (tmp_path / 'pyudev.py').write_text('raise ImportError("pyudev removed for this test")\n')
    out = run_in(Host('kvm-guest'), '''
        result = background.BackgroundHost.start(None, "/").result()
        print(json.dumps([len(result.discovery.devices), result.discovery.problem,
                          result.resolution]))
    ''', env={'PYTHONPATH': str(tmp_path)})
    assert out.returncode == 0, out.stderr
    count, problem, resolution = json.loads(out.stdout)
    assert count == 0 and 'pyudev is not available' in problem and resolution is None


@pytest.mark.parametrize('python, started', [
    ('/bin/false', True),                       # starts, fails: do the work in-process
    ('/nonexistent/python3', False),            # cannot start
])
def test_a_failing_child_means_doing_the_work_in_process(python, started):
    out = run_in(Host('kvm-guest'), '''
        child = background.BackgroundHost.start(python=%r)
        print(json.dumps([child is not None, child.result() if child else None]))
    ''' % python)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [started, None]


def test_no_child_on_one_cpu():
    out = subprocess.run(['taskset', '-c', '0'] + Host('kvm-guest').wrap(
        [PYTHON, '-c', PRELUDE + 'print(background.BackgroundHost.start())']),
        capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'None'


def test_a_cancelled_child_leaves_no_process():
    out = run_in(Host('baremetal-sriov'), '''
        child = background.BackgroundHost.start(None, "/")
        pid = child._process.pid
        child.cancel()
        print(json.dumps([child.result(), os.path.exists("/proc/%d" % pid)]))
    ''')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [None, False]
