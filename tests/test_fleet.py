"""The Ansible collection kernelsplit.fleet: a real ansible-playbook against a fleet of emulated hosts.

Each host is an installroot with its own hardware (umockdev), reached with the
local connection through an interpreter wrapper (fleethosts.py); one host has
no kernel (the check cannot run) and one is unreachable (ssh to a closed
loopback port).  The collection is built and installed by ansible-galaxy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

import fleethosts
from harness import Host, Installroot

NEW = '6.9.1-1.x86_64'
SRIOV_GPU, CORE_ONLY, VM = Host('baremetal-sriov-gpu'), Host('baremetal-coreonly'), Host('kvm-guest')
DRIVERS, GPU, SRIOV, PASSTHROUGH = ('kernel-drivers-' + NEW, 'kernel-drivers-gpu-' + NEW,
                                    'kernel-drivers-sriov-' + NEW,
                                    'kernel-drivers-passthrough-' + NEW)

# name: (hardware, repository, what is installed)
FLEET = {
    'vm': (VM, 'exact', ['kernel-core-' + NEW]),
    # a cloud image's kernel-core on an SR-IOV + GPU server
    'sriov-gpu': (SRIOV_GPU, 'exact', ['kernel-core-' + NEW]),
    # bare metal that never had the drivers: judged by the packages' modalias() provides
    'core-only': (CORE_ONLY, 'exact', ['kernel-core-' + NEW]),
    # the same, from packages without those provides, and inspect mode off (a metered
    # link): its unbound devices cannot be judged
    'core-only-plain-repo': (CORE_ONLY, 'split', ['kernel-core-' + NEW]),
    # everything its hardware needs, and kernel-drivers-passthrough, which nothing needs
    'complete': (SRIOV_GPU, 'exact', ['kernel-' + NEW, SRIOV, GPU, PASSTHROUGH]),
    # no kernel installed: the check cannot run
    'broken': (VM, 'exact', []),
}
# Checked and fixed through the standalone kernelsplit command (the others through dnf).
STANDALONE = {'sriov-gpu'}
UNREACHABLE = 'unreachable'
CHECKED = ['vm', 'sriov-gpu', 'core-only', 'core-only-plain-repo', 'complete']
CHECK_TASK = 'Run the kernelsplit check'
FIX_TASK = 'Install what the kernel lacks'


@pytest.fixture(scope='module')
def fleet(tmp_path_factory, repos):
    work = tmp_path_factory.mktemp('fleet')
    roots, inventory_hosts = {}, {}
    for name, (hardware, repo, packages) in FLEET.items():
        root = Installroot(work / 'hosts' / name, {repo: repos[repo]},
                           plugin_conf={'inspect': 'never'} if repo == 'split' else None)
        if packages:
            root.install(*packages)
        roots[name] = root
        python = fleethosts.write_interpreter(root.base / 'python', hardware, root)
        inventory_hosts[name] = {'ansible_connection': 'local',
                                 'ansible_python_interpreter': str(python),
                                 **fleethosts.check_options(root)}
        if name in STANDALONE:
            inventory_hosts[name].update(fleethosts.standalone_options(root))
    inventory_hosts[UNREACHABLE] = fleethosts.unreachable_host_vars(fleethosts.free_port())
    inventory = fleethosts.write_inventory(work / 'inventory.yml', inventory_hosts)
    collections = fleethosts.install_collection(work)
    return SimpleNamespace(work=work, roots=roots, inventory=inventory,
                           env=fleethosts.ansible_env(collections, work))


def run_in(fleet, where: str, name: str, *args: str):
    cwd = fleet.work / where
    cwd.mkdir(exist_ok=True)
    return fleethosts.playbook(name, fleet.inventory, fleet.env, cwd, *args)


def report(fleet, where: str) -> SimpleNamespace:
    directory = fleet.work / where / 'kernelsplit-report'
    return SimpleNamespace(md=(directory / 'fleet-report.md').read_text(),
                           html=(directory / 'fleet-report.html').read_text(),
                           figures=json.loads((directory / 'fleet-report.json').read_text()))


def gate_message(result) -> str:
    failed = result.task('Stop the wave when a host would boot without a driver, or could not '
                         'be checked')
    # run once, on the controller, in the name of the play's first host
    return ' '.join(r['msg'] for r in failed.values() if r.get('failed'))


@pytest.fixture(scope='module')
def first_audit(fleet):
    result = run_in(fleet, 'audit1', 'audit')
    # what `dnf kernelsplit check --json` says on each host, straight from the CLI
    direct = {name: fleet.roots[name].check('--json', host=FLEET[name][0]).json()
              for name in CHECKED}
    return SimpleNamespace(result=result, checks=result.task(CHECK_TASK),
                           report=report(fleet, 'audit1'), direct=direct)


@pytest.fixture(scope='module')
def fixed(fleet, first_audit):
    """kernelsplit_fix in check mode, then for real, then a second audit."""
    before = {name: root.installed() for name, root in fleet.roots.items()}
    dry = run_in(fleet, 'fix-check', 'fix', '--check', '-e', 'kernelsplit_become=false')
    after_dry = {name: root.installed() for name, root in fleet.roots.items()}
    real = run_in(fleet, 'fix', 'fix', '-e', 'kernelsplit_become=false')
    after_real = {name: root.installed() for name, root in fleet.roots.items()}
    for root in fleet.roots.values():
        root.depmod()        # the kernel packages' %posttrans, which an installroot cannot run
    second = run_in(fleet, 'audit2', 'audit', '-e', 'kernelsplit_fail_on_unchecked=false')
    return SimpleNamespace(before=before, dry=dry, dry_results=dry.task(FIX_TASK),
                           after_dry=after_dry, real=real,
                           real_results=real.task(FIX_TASK),
                           after_real=after_real, second=second,
                           second_checks=second.task(CHECK_TASK),
                           second_report=report(fleet, 'audit2'))


def test_check_facts_are_the_checks_json(first_audit):
    for name in CHECKED:
        result = first_audit.checks[name]
        program = os.path.basename(result['command'][0])
        assert program == ('kernelsplit' if name in STANDALONE else 'dnf-3'), result['command']
        assert not result.get('failed') and result['changed'] is False, result
        assert result['ansible_facts']['kernelsplit'] == first_audit.direct[name]
        assert result['kernelsplit'] == first_audit.direct[name]
        judged = first_audit.direct[name]['kernels'][0]
        assert (result['kernel'], result['install']) == (judged['kernel'], judged['install'])
    statuses = {name: (first_audit.checks[name]['status'], first_audit.checks[name]['stranded'],
                       first_audit.checks[name]['exit_status']) for name in CHECKED}
    assert statuses == {'vm': ('ok', False, 0), 'sriov-gpu': ('stranded', True, 1),
                        'core-only': ('stranded', True, 1),
                        'core-only-plain-repo': ('unknown', False, 2),
                        'complete': ('ok', False, 0)}
    assert first_audit.checks['sriov-gpu']['install'] == [DRIVERS, GPU, SRIOV]
    # the installed packages of the kernel, with their sizes from the rpmdb
    complete = {p['name']: p for p in first_audit.checks['complete']['installed_packages'][NEW]}
    assert set(complete) == {'kernel-core', 'kernel-drivers', 'kernel-drivers-sriov',
                             'kernel-drivers-gpu', 'kernel-drivers-passthrough'}
    assert [n for n, p in complete.items() if p['kernel_image']] == ['kernel-core']


def test_check_fails_only_when_the_check_cannot_run(first_audit):
    broken = first_audit.checks['broken']
    assert broken['failed'] and broken['exit_status'] == 3 and broken['status'] == 'cannot check'
    assert 'no kernel is installed' in broken['msg']
    assert first_audit.checks[UNREACHABLE]['unreachable']


def test_audit_exits_non_zero_naming_stranded_and_unchecked_hosts(first_audit):
    assert first_audit.result.returncode == 2, first_audit.result.stderr
    message = gate_message(first_audit.result)
    assert 'would boot their kernel without a driver: core-only, sriov-gpu.' in message
    assert 'could not be checked: unreachable, broken' in message


def test_report_has_one_row_per_host_with_devices_packages_and_command(first_audit, fleet):
    figures = first_audit.report.figures
    rows = {r['host']: r for r in figures['hosts']}
    assert set(rows) == set(FLEET) | {UNREACHABLE}          # none dropped
    assert [r['host'] for r in figures['hosts']][:2] == ['core-only', 'sriov-gpu']  # worst first
    assert {h: r['status'] for h, r in rows.items()} == {
        'vm': 'ok', 'sriov-gpu': 'stranded', 'core-only': 'stranded',
        'core-only-plain-repo': 'unknown', 'complete': 'ok', 'broken': 'cannot check',
        UNREACHABLE: 'unreachable'}
    assert figures['totals'] == {'hosts': 7, 'ok': 2, 'stranded': 2, 'unknown': 1,
                                 'unreachable': 1, 'cannot check': 1, 'unchecked': 2}
    sriov = rows['sriov-gpu']
    doc = first_audit.direct['sriov-gpu']
    assert (sriov['kernel'], sriov['default_from']) == (NEW, doc['default_from'])
    assert sorted(d['slot'] for d in sriov['devices']) == sorted(
        d['slot'] for d in doc['kernels'][0]['devices'] if d['status'] == 'missing')
    assert sriov['install'] == [DRIVERS, GPU, SRIOV]
    root = fleet.roots['sriov-gpu']
    # checked through the standalone command: the way out is its fix, on the same root
    assert sriov['command'] == 'kernelsplit fix -c %s --installroot %s --releasever 1 ' \
        '--setopt=reposdir=%s' % (root.conf, root.root, root.reposdir)
    core = rows['core-only']
    root = fleet.roots['core-only']
    assert core['command'].startswith('dnf -c %s --installroot %s' % (root.conf, root.root))
    assert core['command'].endswith('install %s %s %s' % (DRIVERS, GPU, SRIOV))
    plain = first_audit.direct['core-only-plain-repo']['kernels'][0]['devices']
    assert rows['core-only-plain-repo']['devices'] == []
    assert sorted(s for group in rows['core-only-plain-repo']['unjudged'] for s in group['slots']) \
        == sorted(d['slot'] for d in plain if d['status'] == 'unknown')
    assert 'no kernel is installed' in rows['broken']['error']
    assert 'Connection refused' in rows[UNREACHABLE]['error']
    # the Markdown table and the HTML page carry the same rows
    md_rows = [line for line in first_audit.report.md.splitlines()
               if line.startswith('| ') and not line.startswith('| host') and '---' not in line]
    md_hosts = [line.split('|')[1].strip() for line in md_rows[:7]]
    assert md_hosts == [r['host'] for r in figures['hosts']]
    assert '`%s`' % sriov['command'] in first_audit.report.md
    html = first_audit.report.html
    assert re.findall(r'<tr class="host" data-host="([^"]+)" data-status="([^"]+)"', html) == \
        [(r['host'], r['status']) for r in figures['hosts']]
    assert '<h2>Not checked</h2>' in html and 'Connection refused' in html


def test_html_report_is_self_contained(first_audit):
    html = first_audit.report.html
    assert html.startswith('<!DOCTYPE html>') and html.rstrip().endswith('</html>')
    assert '<script' not in html and '<link' not in html
    assert not re.search(r'(src|href)\s*=', html)
    assert '<style>' in html


def rpm_size(root: Installroot, nevra: str) -> int:
    return int(root.rpm('-q', '--qf', '%{SIZE}', nevra).stdout)


def test_report_counts_per_driver_package_and_the_space_saved(first_audit, fleet):
    figures = first_audit.report.figures
    packages = {p['name']: p for p in figures['packages']}
    # kernel-core is the kernel image: every host carries it, it is not a driver package
    assert set(packages) == {'kernel-drivers', 'kernel-drivers-gpu', 'kernel-drivers-sriov',
                             'kernel-drivers-passthrough'}
    counts = {n: (p['needed'], p['lacking'], p['unneeded'], p['saved']) for n, p in packages.items()}
    # needed: sriov-gpu, core-only, complete; lacking: sriov-gpu, core-only; the vm saves all
    # four, the two stranded hosts save passthrough; the host whose devices cannot be
    # judged counts for no saving
    assert counts == {'kernel-drivers': (3, 2, 0, 1), 'kernel-drivers-gpu': (3, 2, 0, 1),
                      'kernel-drivers-sriov': (3, 2, 0, 1),
                      'kernel-drivers-passthrough': (0, 0, 1, 3)}
    complete = fleet.roots['complete']
    sizes = {n: rpm_size(complete, '%s-%s' % (n, NEW)) for n in packages}
    assert {n: p['size'] for n, p in packages.items()} == sizes
    assert packages['kernel-drivers-passthrough']['unneeded_hosts'] == ['complete']
    assert figures['unneeded_bytes'] == sizes['kernel-drivers-passthrough']
    assert figures['saved_bytes'] == sum(sizes.values()) + 2 * sizes['kernel-drivers-passthrough']
    human_size = fleethosts.filter_plugin().human_size
    assert '**%s**' % human_size(figures['saved_bytes']) in first_audit.report.md


def test_fix_in_check_mode_installs_nothing(fixed):
    assert fixed.after_dry == fixed.before
    dry = fixed.dry_results
    assert dry['sriov-gpu']['changed'] and dry['sriov-gpu']['packages'] == [DRIVERS, GPU, SRIOV]
    assert dry['sriov-gpu']['installed'] == []
    assert dry['core-only']['packages'] == [DRIVERS, GPU, SRIOV]
    for name in ('vm', 'complete', 'core-only-plain-repo'):
        assert not dry[name]['changed'] and dry[name]['packages'] == [], dry[name]


def test_fix_installs_what_was_missing_and_the_second_audit_is_clean(fixed):
    real = fixed.real_results
    for name in ('sriov-gpu', 'core-only'):
        assert real[name]['changed'] and real[name]['installed'] == [DRIVERS, GPU, SRIOV]
        assert fixed.after_real[name] - fixed.before[name] == {DRIVERS, GPU, SRIOV}
    for name in ('vm', 'complete', 'core-only-plain-repo'):
        assert not real[name]['changed'] and fixed.after_real[name] == fixed.before[name]
    assert real['broken']['failed'] and 'no kernel is installed' in real['broken']['msg']
    assert fixed.real.returncode != 0          # ansible reports the broken and unreachable hosts
    # the second audit: nobody stranded; the unchecked hosts are still listed, and let through
    assert fixed.second.returncode == 0, fixed.second.stdout[-3000:]
    statuses = {r['host']: r['status'] for r in fixed.second_report.figures['hosts']}
    assert statuses == {'vm': 'ok', 'sriov-gpu': 'ok', 'core-only': 'ok',
                        'core-only-plain-repo': 'unknown', 'complete': 'ok',
                        'broken': 'cannot check', UNREACHABLE: 'unreachable'}
    for name in ('sriov-gpu', 'core-only'):
        assert fixed.second_checks[name]['exit_status'] == 0
    packages = {p['name']: p for p in fixed.second_report.figures['packages']}
    assert packages['kernel-drivers-sriov']['lacking'] == 0
    assert packages['kernel-drivers-sriov']['needed'] == 3


def test_a_host_that_cannot_be_checked_fails_the_gate_alone(fleet):
    result = run_in(fleet, 'audit-broken', 'audit', '--limit', 'broken')
    assert result.returncode == 2
    message = gate_message(result)
    assert 'could not be checked: broken' in message and 'would boot' not in message
    rows = report(fleet, 'audit-broken').figures['hosts']
    assert [(r['host'], r['status']) for r in rows] == [('broken', 'cannot check')]
    # kernelsplit_fail_on_unchecked=false lets it through: the second audit above


def ansible_doc(fleet, kind: str, *names: str) -> dict:
    done = subprocess.run(['ansible-doc', '--json', '-t', kind] + list(names), env=fleet.env,
                          capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    return json.loads(done.stdout)


def test_plugins_are_documented_as_ansible_core_documents_its_own(fleet):
    modules = ansible_doc(fleet, 'module', 'kernelsplit.fleet.kernelsplit_check',
                          'kernelsplit.fleet.kernelsplit_fix')
    for name, doc in modules.items():
        assert doc['doc']['short_description'] and doc['examples'] and doc['return'], name
        assert doc['doc']['attributes']['check_mode']['support'] == 'full'
    check = modules['kernelsplit.fleet.kernelsplit_check']['doc']['options']
    assert {'all_kernels', 'kernel', 'installroot', 'dnf_config', 'setopt', 'releasever',
            'cacheonly', 'command', 'executable', 'package_sizes'} <= set(check)
    filters = ansible_doc(fleet, 'filter', 'kernelsplit.fleet.fleet_summary',
                          'kernelsplit.fleet.human_size', 'kernelsplit.fleet.md_cell')
    assert all(doc['doc']['short_description'] for doc in filters.values())
    role = ansible_doc(fleet, 'role', 'kernelsplit.fleet.fleet_report')
    assert 'kernelsplit_fail_on_unchecked' in \
        role['kernelsplit.fleet.fleet_report']['entry_points']['main']['options']


def module_utils():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'kernelsplit_module_utils',
        fleethosts.COLLECTION_SOURCE / 'plugins' / 'module_utils' / 'kernelsplit.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_command_lines_for_both_programs():
    utils = module_utils()
    params = {'kernel': None, 'installroot': '/srv/image', 'dnf_config': '/etc/alt.conf',
              'setopt': ['pluginpath=/opt/p'], 'releasever': '40', 'cacheonly': True}
    dnf = utils.Runner('dnf', '/usr/bin/dnf-3')
    assert utils.check_argv(dnf, params, all_kernels=True) == [
        '/usr/bin/dnf-3', '-c', '/etc/alt.conf', '--installroot', '/srv/image', '--releasever',
        '40', '--setopt=pluginpath=/opt/p', '-C', 'kernelsplit', 'check', '--json',
        '--all-kernels']
    standalone = utils.Runner('kernelsplit', '/usr/bin/kernelsplit')
    assert utils.check_argv(standalone, dict(params, kernel='6.9.1-1.x86_64')) == [
        '/usr/bin/kernelsplit', 'check', '--json', '-c', '/etc/alt.conf', '--installroot',
        '/srv/image', '--releasever', '40', '--setopt=pluginpath=/opt/p', '-C',
        '--kernel', '6.9.1-1.x86_64']
    # the report's fix command keeps dnf's options but not -C, and spells the program dnf
    fix_command = fleethosts.filter_plugin().fix_command
    argv = utils.check_argv(dnf, params)
    assert fix_command({'command': argv}, ['a-1-1.x86_64']) == (
        'dnf -c /etc/alt.conf --installroot /srv/image --releasever 40 '
        '--setopt=pluginpath=/opt/p install a-1-1.x86_64')
    assert fix_command({'command': utils.check_argv(standalone, params)}, ['a-1-1.x86_64']) == \
        'kernelsplit fix -c /etc/alt.conf --installroot /srv/image --releasever 40 ' \
        '--setopt=pluginpath=/opt/p'


def test_modules_run_on_rhel8s_python_3_6():
    import ast
    for path in (fleethosts.COLLECTION_SOURCE / 'plugins').rglob('*.py'):
        if 'filter' not in path.parts:            # filters run on the controller
            ast.parse(path.read_text(), str(path), feature_version=(3, 6))
