"""The devices and their needs worked out in a child process, on emulated machines."""

import json
import os
import subprocess
import textwrap

import pytest

from dnf_kernelsplit import background
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


# --- a slow or orphaned child, through the real dnf CLI -----------------------------

OLD, NEW = '6.8.0-1.x86_64', '6.9.1-1.x86_64'

# pyudev, as the background child (`python3 -S`, so sys.flags.no_site) finds it: stuck
# for ten minutes before it loads the real one.  dnf itself gets the real pyudev at once.
SLOW_CHILD_PYUDEV = textwrap.dedent('''
    import importlib.machinery, importlib.util, os, sys
    if sys.flags.no_site:
        open(os.environ["KERNELSPLIT_TEST_STUCK"], "w").write(str(os.getpid()))
        import time
        time.sleep(600)
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.machinery.PathFinder.find_spec(
        "pyudev", [p for p in sys.path if os.path.abspath(p or ".") != here])
    real = importlib.util.module_from_spec(spec)
    sys.modules["pyudev"] = real
    spec.loader.exec_module(real)
''')


def slow_child(tmp_path):
    """The environment for a dnf run whose background child gets stuck, and the file
    where that child writes its pid."""
    shim = tmp_path / 'shim'
    shim.mkdir()
    (shim / 'pyudev.py').write_text(SLOW_CHILD_PYUDEV)
    stuck = tmp_path / 'stuck-child.pid'
    return {'PYTHONPATH': '%s:%s' % (PLUGIN_DIR, shim),
            'KERNELSPLIT_TEST_STUCK': str(stuck)}, stuck


def alive(pid: int) -> bool:
    """Whether PID runs (a zombie waiting for its reaper has ended)."""
    try:
        with open('/proc/%d/stat' % pid) as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def test_a_child_slower_than_its_deadline_means_listing_in_process(make_root, tmp_path):
    """The upgrade still gets the driver packages (fail-safe, not fail-open), and the
    stuck child does not outlive its deadline."""
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    env, stuck = slow_child(tmp_path)
    result = root.dnf('-v', '-y', 'upgrade', host=Host('baremetal-sriov'), env=env)
    assert result.returncode == 0, result
    assert 'kernel-drivers-sriov-' + NEW in root.installed()
    assert 'kernelsplit: devices listed in-process' in result.stdout, result
    assert 'kernelsplit: the background listing took longer than' in result.stdout, result
    assert 'cannot list this machine' not in result.stdout + result.stderr
    assert stuck.exists() and not alive(int(stuck.read_text()))


def test_the_child_dies_with_dnf(make_root, tmp_path):
    """SIGKILL of dnf while the child works: the child goes too, not ten minutes later."""
    import signal
    import time
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    env, stuck = slow_child(tmp_path)
    command = Host('baremetal-sriov').wrap(root.dnf_command('--assumeno', 'upgrade'))
    dnf = subprocess.Popen(command, env={**root.env, **env}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    child = None
    try:
        for _ in range(600):
            if stuck.exists() and stuck.read_text():
                break
            time.sleep(0.1)
        child = int(stuck.read_text())
        with open('/proc/%d/stat' % child) as stat:
            parent = int(stat.read().rsplit(')', 1)[1].split()[1])
        with open('/proc/%d/cmdline' % parent, 'rb') as cmdline:
            assert b'dnf-3' in cmdline.read()        # the dnf process itself, by its pid
        os.kill(parent, signal.SIGKILL)
        for _ in range(50):
            if not alive(child):
                break
            time.sleep(0.1)
        assert not alive(child), 'the background child outlived dnf'
    finally:
        dnf.kill()
        dnf.wait()
        if child is not None and alive(child):
            os.kill(child, signal.SIGKILL)        # the test failed: leave no sleeper behind


def test_a_child_whose_parent_is_gone_before_it_starts_exits_at_once():
    """The parent died before the child asked to die with it: the child sees another
    parent than the one named on its command line, and stops before any work."""
    code = background._CHILD_CODE % ([str(PLUGIN_DIR)],)
    done = subprocess.run([PYTHON, '-S', '-c', code, '1', '*', ''], capture_output=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout) == (1, b'')
