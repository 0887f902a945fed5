"""Prometheus: metrics.py's exposition, the service that writes it, node_exporter serving it.

The real prometheus-node-exporter runs on a loopback port with its textfile
collector on a temporary directory; the writer the service runs puts the
check's metrics there; the test scrapes them, and promtool evaluates the
shipped alert rules on the scraped series.
"""

from __future__ import annotations

import configparser
import fcntl
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import parser as text_parser
from prometheus_client.openmetrics import parser as openmetrics_parser

import fleethosts
from dnf_kernelsplit import metrics, policy
from harness import PLUGIN_DIR, PYTHON, ROOT, Host, Installroot

METRICS = ROOT / 'metrics'
UNITS = ('kernelsplit-metrics.service', 'kernelsplit-metrics.timer', 'kernelsplit-metrics.path')
HOST = Host('baremetal-sriov-gpu')
OLD, NEW = '6.8.0-1.x86_64', '6.9.1-1.x86_64'


def samples(text: str, parse=text_parser.text_string_to_metric_families) -> list:
    return [s for family in parse(text) if family.name.startswith('kernelsplit_')
            for s in family.samples]


def values(found: list, name: str) -> dict:
    """{frozenset(labels): value} of NAME's samples."""
    return {frozenset(s.labels.items()): s.value for s in found if s.name == name}


def unit(name: str) -> configparser.ConfigParser:
    parsed = configparser.ConfigParser(strict=False, interpolation=None)
    parsed.optionxform = str
    parsed.read(METRICS / name)
    return parsed


@pytest.fixture(scope='module')
def host_root(tmp_path_factory, repos):
    """Last kernel's drivers complete, the default (newest) kernel-core alone: stranded."""
    root = Installroot(tmp_path_factory.mktemp('metrics') / 'root', {'split': repos['split']})
    root.install('kernel-' + OLD, 'kernel-drivers-sriov-' + OLD, 'kernel-drivers-gpu-' + OLD,
                 'kernel-core-' + NEW)
    return root


def run_service(root: Installroot, textfile_dir: Path, **env: str):
    """What kernelsplit-metrics.service runs: its ExecStart, here from the checkout."""
    exec_start = unit('kernelsplit-metrics.service')['Service']['ExecStart']
    writer = METRICS / Path(exec_start).name
    assert exec_start == '/usr/libexec/kernelsplit/' + writer.name and writer.exists()
    check = ' '.join(fleethosts.dnf_check_command(root, '--all-kernels'))
    return fleethosts.wrapped(HOST, root, [PYTHON, str(writer)], env={
        'KERNELSPLIT_TEXTFILE_DIR': str(textfile_dir), 'KERNELSPLIT_CHECK': check,
        'KERNELSPLIT_RPM_LOCK': str(root.root / 'var/lib/rpm/.rpm.lock'), **env})


def test_statuses_are_the_policys():
    assert metrics.STATUSES == policy.STATUSES


def test_exposition_parses_in_both_formats_with_the_checks_values(host_root):
    doc = host_root.check('--json', '--all-kernels', host=HOST).json()
    text = metrics.openmetrics(doc)
    assert text.endswith('# EOF\n')
    found = samples(text, openmetrics_parser.text_string_to_metric_families)
    assert found == samples(text)                     # the Prometheus text parser agrees
    assert values(found, 'kernelsplit_exit_status') == {frozenset(): doc['exit_status']}
    devices = values(found, 'kernelsplit_devices')
    for kernel in doc['kernels']:
        default = 'true' if kernel['default'] else 'false'
        for status in policy.STATUSES:
            key = frozenset({'kernel': kernel['kernel'], 'default': default,
                             'status': status}.items())
            assert devices[key] == sum(1 for d in kernel['devices'] if d['status'] == status)
    missing = {(dict(k)['kernel'], dict(k)['package']) for k in
               values(found, 'kernelsplit_missing_package')}
    assert missing == {(k['kernel'], p) for k in doc['kernels'] for p in k['install']}
    assert missing == {(NEW, 'kernel-drivers-' + NEW), (NEW, 'kernel-drivers-gpu-' + NEW),
                       (NEW, 'kernel-drivers-sriov-' + NEW)}
    status = [dict(k) for k in values(found, 'kernelsplit_device_status')]
    pf = next(s for s in status if s['slot'] == '0000:3b:00.0')
    assert pf == {'kernel': NEW, 'default': 'true', 'slot': '0000:3b:00.0', 'device': '8086:1572',
                  'driver': 'i40e', 'module': 'i40e', 'package': 'kernel-drivers-sriov-' + NEW,
                  'status': 'missing'}
    assert all(s['kernel'] == NEW for s in status)         # the old kernel has every driver
    assert values(found, 'kernelsplit_kernel_default') == {
        frozenset({'kernel': NEW, 'default_from': doc['default_from']}.items()): 1,
        frozenset({'kernel': OLD, 'default_from': ''}.items()): 0}


def test_label_values_are_escaped():
    odd = 'a "quoted" \\ back\nslash'
    doc = {'exit_status': 1, 'default_from': 'bls', 'kernels': [{
        'kernel': odd, 'default': True, 'install': [odd],
        'devices': [{'slot': '', 'sysfs_path': '/sys/devices/platform/' + odd, 'status': 'missing',
                     'modules': ['m1', 'm2'], 'packages': [odd], 'driver': None}]}]}
    text = metrics.openmetrics(doc)
    for parse in (openmetrics_parser.text_string_to_metric_families,
                  text_parser.text_string_to_metric_families):
        found = samples(text, parse)
        device = dict(next(iter(values(found, 'kernelsplit_device_status'))))
        assert device['kernel'] == odd and device['package'] == odd
        assert device['slot'] == 'platform/' + odd and device['module'] == 'm1,m2'


def test_a_check_that_cannot_run_is_exit_status_3():
    for doc in ({'error': 'kernelsplit: no kernel is installed in /', 'exit_status': 3},
                metrics.read_doc(''), metrics.read_doc('Error: No such command: kernelsplit')):
        found = samples(metrics.openmetrics(doc), openmetrics_parser.text_string_to_metric_families)
        assert values(found, 'kernelsplit_exit_status') == {frozenset(): 3}
        assert values(found, 'kernelsplit_devices') == {}


def test_module_entry_point_turns_the_checks_json_into_metrics(host_root):
    doc = host_root.check('--json', host=HOST)
    # as from the RPM's copy on the interpreter's path: here, the checkout's, by its directory
    done = subprocess.run([PYTHON, '-m', 'dnf_kernelsplit.metrics'], input=doc.stdout, text=True,
                          capture_output=True, cwd=PLUGIN_DIR)
    assert done.returncode == 0 and done.stdout == metrics.openmetrics(doc.json())


def test_units_verify_and_trigger_daily_and_after_rpm_transactions(tmp_path):
    # laid out as the package installs them, with systemd's own units beside them
    root = tmp_path / 'root'
    shutil.copytree('/lib/systemd/system', root / 'usr/lib/systemd/system', symlinks=True)
    for name in UNITS:
        shutil.copy(METRICS / name, root / 'usr/lib/systemd/system' / name)
    writer = root / 'usr/libexec/kernelsplit/kernelsplit-metrics'
    writer.parent.mkdir(parents=True)
    shutil.copy(METRICS / 'kernelsplit-metrics', writer)
    done = subprocess.run(['systemd-analyze', 'verify', '--man=no', '--root=%s' % root] +
                          [str(root / 'usr/lib/systemd/system' / n) for n in UNITS],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == '', done.stderr
    timer = unit('kernelsplit-metrics.timer')
    assert timer['Timer']['OnCalendar'] == 'daily' and timer['Timer']['Persistent'] == 'true'
    assert timer['Install']['WantedBy'] == 'timers.target'
    path_lines = [line.split('=', 1)[1] for line in
                  (METRICS / 'kernelsplit-metrics.path').read_text().splitlines()
                  if line.startswith('PathChanged=')]
    assert '/var/lib/rpm/rpmdb.sqlite' in path_lines
    assert '/usr/lib/sysimage/rpm/rpmdb.sqlite' in path_lines
    assert unit('kernelsplit-metrics.path')['Path']['Unit'] == 'kernelsplit-metrics.service'


def test_writer_waits_for_a_running_rpm_transaction(host_root, tmp_path):
    lock = host_root.root / 'var/lib/rpm/.rpm.lock'
    lock.parent.mkdir(parents=True, exist_ok=True)
    out = tmp_path / 'textfile'
    out.mkdir()
    with open(lock, 'a+') as held:
        fcntl.lockf(held, fcntl.LOCK_EX)          # what rpm holds for a whole transaction
        busy = run_service(host_root, out, KERNELSPLIT_LOCK_TIMEOUT='0')
        assert busy.returncode == 1 and 'rpm transaction has held %s' % lock in busy.stderr
        assert list(out.iterdir()) == []
    done = run_service(host_root, out)
    assert done.returncode == 0, done
    assert [p.name for p in out.iterdir()] == ['kernelsplit.prom']


def test_writer_names_the_setting_when_the_directory_is_missing(host_root, tmp_path):
    result = run_service(host_root, tmp_path / 'absent')
    assert result.returncode == 1
    assert 'KERNELSPLIT_TEXTFILE_DIR=%s is not a directory' % (tmp_path / 'absent') in result.stderr


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@pytest.fixture(scope='module')
def node_exporter(tmp_path_factory):
    textfile = tmp_path_factory.mktemp('textfile')
    port = fleethosts.free_port()
    log = open(textfile.parent / 'node_exporter.log', 'w')
    proc = subprocess.Popen(['prometheus-node-exporter', '--web.listen-address=127.0.0.1:%d' % port,
                             '--collector.disable-defaults', '--collector.textfile',
                             '--collector.textfile.directory=%s' % textfile],
                            stdout=log, stderr=subprocess.STDOUT)
    url = 'http://127.0.0.1:%d/metrics' % port
    try:
        for _ in range(100):                       # at most ~10 s to start listening
            try:
                scrape(url)
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError('node_exporter exited: %s' %
                                         (textfile.parent / 'node_exporter.log').read_text())
                time.sleep(0.1)
        yield SimpleNamespace(url=url, textfile=textfile, proc=proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope='module')
def scraped(node_exporter, host_root):
    """Scrapes before and after the missing packages are installed, the service writing each."""
    first = run_service(host_root, node_exporter.textfile)
    assert first.returncode == 0, first
    before = scrape(node_exporter.url)
    doc = host_root.check('--json', '--all-kernels', host=HOST).json()
    host_root.install(*doc['kernels'][0]['install'])
    second = run_service(host_root, node_exporter.textfile)
    assert second.returncode == 0, second
    after = scrape(node_exporter.url)
    return SimpleNamespace(before=before, after=after, doc=doc, node_exporter=node_exporter)


def test_node_exporter_serves_what_the_service_writes(scraped):
    found = samples(scraped.before)
    devices = values(found, 'kernelsplit_devices')
    missing_default = {dict(k)['kernel']: v for k, v in devices.items()
                       if dict(k)['status'] == 'missing' and dict(k)['default'] == 'true'}
    judged = scraped.doc['kernels'][0]
    assert missing_default == {NEW: sum(1 for d in judged['devices'] if d['status'] == 'missing')}
    assert missing_default[NEW] > 0
    assert values(found, 'kernelsplit_exit_status') == {frozenset(): 1}
    assert {dict(k)['package'] for k in values(found, 'kernelsplit_missing_package')} == \
        set(judged['install'])
    # node_exporter read the file without complaint, and the service left nothing else there
    textfile = text_parser.text_string_to_metric_families(scraped.before)
    errors = [s.value for f in textfile if f.name == 'node_textfile_scrape_error' for s in f.samples]
    assert errors == [0]
    assert [p.name for p in scraped.node_exporter.textfile.iterdir()] == ['kernelsplit.prom']
    assert oct((scraped.node_exporter.textfile / 'kernelsplit.prom').stat().st_mode & 0o777) == '0o644'
    # after the packages are installed, the next write shows the default kernel complete
    after = samples(scraped.after)
    assert values(after, 'kernelsplit_exit_status') == {frozenset(): 0}
    assert {dict(k)['status']: v for k, v in values(after, 'kernelsplit_devices').items()
            if dict(k)['default'] == 'true'}['missing'] == 0
    assert values(after, 'kernelsplit_missing_package') == {}


def promtool_test(tmp_path: Path, scraped_text: str, alerts: list) -> subprocess.CompletedProcess:
    """promtool test rules: the shipped rules on the scraped series, held for 30 minutes."""
    import json
    series = [{'series': '%s{%s}' % (s.name, ','.join('%s="%s"' % kv for kv in sorted(
        dict(s.labels, instance='host1').items()))), 'values': '%dx30' % s.value}
        for s in samples(scraped_text) if s.name == 'kernelsplit_devices']
    spec = {'rule_files': [str(METRICS / 'kernelsplit-alerts.yml')], 'evaluation_interval': '1m',
            'tests': [{'interval': '1m', 'input_series': series, 'alert_rule_test': [
                {'eval_time': '20m', 'alertname': 'KernelsplitDefaultKernelStranded',
                 'exp_alerts': alerts}]}]}
    path = tmp_path / 'alerts-test.yml'
    path.write_text(json.dumps(spec))             # JSON is YAML
    return subprocess.run(['promtool', 'test', 'rules', str(path)], capture_output=True, text=True)


def stranded_alert(labels: dict, value: int) -> dict:
    """The alert the rule should raise, its annotations filled in as Prometheus does."""
    import yaml
    rule = next(r for g in yaml.safe_load((METRICS / 'kernelsplit-alerts.yml').read_text())['groups']
                for r in g['rules'] if r['alert'] == 'KernelsplitDefaultKernelStranded')
    def fill(text):
        for key, val in labels.items():
            text = text.replace('{{ $labels.%s }}' % key, val)
        return text.replace('{{ $value }}', str(value))
    return {'exp_labels': {**labels, **rule['labels']},
            'exp_annotations': {k: fill(v) for k, v in rule['annotations'].items()}}


def test_alert_rule_fires_on_a_stranded_default_kernel_only(scraped, tmp_path):
    check = subprocess.run(['promtool', 'check', 'rules', str(METRICS / 'kernelsplit-alerts.yml')],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    judged = scraped.doc['kernels'][0]
    count = sum(1 for d in judged['devices'] if d['status'] == 'missing')
    labels = {'instance': 'host1', 'kernel': NEW, 'default': 'true', 'status': 'missing'}
    fires = promtool_test(tmp_path, scraped.before, [stranded_alert(labels, count)])
    assert fires.returncode == 0, fires.stdout + fires.stderr
    quiet = promtool_test(tmp_path, scraped.after, [])
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    # and the test can fail: expecting silence on the stranded series is an error
    wrong = promtool_test(tmp_path, scraped.before, [])
    assert wrong.returncode != 0


def test_check_format_openmetrics_prints_the_same_metrics(host_root):
    doc = host_root.check('--json', host=HOST)
    text = host_root.check('--format=openmetrics', host=HOST)
    assert text.returncode == doc.returncode, text
    assert text.stdout == metrics.openmetrics(doc.json())
    found = samples(text.stdout, openmetrics_parser.text_string_to_metric_families)
    assert values(found, 'kernelsplit_exit_status') == {frozenset(): doc.returncode}
    # a check that cannot run says so in the same format
    failed = host_root.check('--format=prometheus', '--kernel', '0.0-0', host=HOST)
    assert failed.returncode == 3
    found = samples(failed.stdout, openmetrics_parser.text_string_to_metric_families)
    assert values(found, 'kernelsplit_exit_status') == {frozenset(): 3}
