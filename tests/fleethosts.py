"""Emulated fleet hosts for Ansible and the metrics writer: each an installroot and hardware.

A host's `ansible_python_interpreter` is a wrapper script that runs the
system Python inside that host's umockdev testbed, with the HOME whose
.rpmmacros points rpm at the installroot's rpmdb (see harness.py), so every
module Ansible sends it -- and the dnf it runs -- sees that host's devices.
The playbooks run as a user runs them: the collection built and installed by
ansible-galaxy, ansible-playbook with the local connection.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Mapping, Optional, Sequence

from harness import DNF, PLUGIN_DIR, PYTHON, ROOT, Host, Installroot, Result, run

COLLECTION_SOURCE = ROOT / 'ansible'
def host_env(root: Installroot) -> dict[str, str]:
    """What the host's processes run with: the installroot's HOME (the checkout's plugin
    comes by pluginpath= alone, as from its RPM)."""
    return {'HOME': str(root.home), 'LC_ALL': 'C.UTF-8', 'PYTHONDONTWRITEBYTECODE': '1'}


def write_interpreter(path: Path, host: Host, root: Installroot) -> Path:
    """A python3 that runs inside HOST's testbed, for ansible_python_interpreter."""
    env = ' '.join('%s=%s' % (k, shlex.quote(v)) for k, v in host_env(root).items())
    command = ' '.join(shlex.quote(a) for a in host.wrap([PYTHON]))
    path.write_text('#!/bin/sh\nexec env %s %s "$@"\n' % (env, command))
    path.chmod(0o755)
    return path


def check_options(root: Installroot) -> dict[str, object]:
    """The audit's per-host variables that point the check at ROOT and the checkout's plugin."""
    return {'kernelsplit_installroot': str(root.root),
            'kernelsplit_dnf_config': str(root.conf),
            'kernelsplit_releasever': '1',
            'kernelsplit_setopt': ['pluginpath=%s' % PLUGIN_DIR]}


def standalone_options(root: Installroot) -> dict[str, object]:
    """Per-host variables that run the check (and the fix) through the checkout's standalone
    kernelsplit command instead of dnf's plugin, on ROOT's repositories."""
    return {'kernelsplit_command': 'kernelsplit',
            'kernelsplit_executable': str(PLUGIN_DIR / 'kernelsplit'),
            'kernelsplit_setopt': ['reposdir=%s' % root.reposdir]}


def dnf_check_command(root: Installroot, *args: str) -> list[str]:
    """`dnf kernelsplit check` on ROOT, as the metrics writer's KERNELSPLIT_CHECK runs it."""
    return [PYTHON, DNF, '-c', str(root.conf), '--installroot', str(root.root),
            '--releasever', '1', '--setopt=pluginpath=%s' % PLUGIN_DIR,
            'kernelsplit', 'check', '--json'] + list(args)


def install_collection(work: Path) -> Path:
    """Build the collection with ansible-galaxy and install it under WORK; its collections path."""
    built = work / 'built'
    built.mkdir(parents=True, exist_ok=True)
    subprocess.run(['ansible-galaxy', 'collection', 'build', '--force', '--output-path',
                    str(built), str(COLLECTION_SOURCE)], check=True, capture_output=True, text=True)
    tarball = next(built.glob('kernelsplit-fleet-*.tar.gz'))
    collections = work / 'collections'
    subprocess.run(['ansible-galaxy', 'collection', 'install', '--force', '-p', str(collections),
                    str(tarball)], check=True, capture_output=True, text=True)
    return collections


CALLBACKS = Path(__file__).resolve().parent / 'ansible_callbacks'


def ansible_env(collections: Path, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_HOST_KEY_CHECKING='False',
               ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS), ANSIBLE_CALLBACKS_ENABLED='task_results',
               ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCALHOST_WARNING='False', ANSIBLE_RETRY_FILES_ENABLED='False',
               ANSIBLE_LOCAL_TEMP=str(work / 'ansible-local'),
               ANSIBLE_REMOTE_TEMP=str(work / 'ansible-remote'),
               ANSIBLE_CONFIG=str(work / 'no-ansible.cfg'))
    return env


def write_inventory(path: Path, hosts: Mapping[str, Mapping[str, object]]) -> Path:
    """A YAML inventory (JSON is YAML) of HOSTS: name -> host variables."""
    path.write_text(json.dumps({'all': {'hosts': hosts}}, indent=1))
    return path


class PlaybookRun(Result):
    """An ansible-playbook run: its exit status, output, and every task's per-host results."""

    def __init__(self, returncode: int, stdout: str, stderr: str, tasks: dict) -> None:
        super().__init__(returncode, stdout, stderr)
        self.tasks = tasks

    def task(self, name: str) -> dict[str, dict]:
        """Per host, the result of the task named NAME (in a role: 'ROLE : NAME')."""
        found: dict[str, dict] = {}
        for task, hosts in self.tasks.items():
            if task == name or task.endswith(' : ' + name):
                found.update(hosts)
        return found


def playbook(name: str, inventory: Path, env: Mapping[str, str], cwd: Path,
             *args: str, timeout: int = 600) -> PlaybookRun:
    """ansible-playbook kernelsplit.fleet.NAME, run from CWD as a user runs it from a shell."""
    command = ['ansible-playbook', '-i', str(inventory), 'kernelsplit.fleet.%s' % name] + list(args)
    results = cwd / '.task-results.json'
    if results.exists():
        results.unlink()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**env, 'PWD': str(cwd), 'KERNELSPLIT_TASK_RESULTS': str(results)})
    tasks = json.loads(results.read_text()) if results.exists() else {}
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, tasks)


def unreachable_host_vars(port: int) -> dict[str, object]:
    """A host ssh cannot reach: a loopback port nothing listens on."""
    return {'ansible_connection': 'ssh', 'ansible_host': '127.0.0.1', 'ansible_port': port,
            'ansible_user': 'nobody', 'ansible_ssh_common_args': '-o ConnectTimeout=5'}


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wrapped(host: Host, root: Installroot, command: Sequence[str],
            env: Optional[Mapping[str, str]] = None) -> Result:
    """COMMAND inside HOST's testbed with the host's environment."""
    full_env = {**os.environ, **host_env(root), **(env or {})}
    full_env.pop('container', None)
    return run(host.wrap(list(command)), full_env)


def filter_plugin():
    """The collection's filter plugin (plain functions), loaded from the checkout."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'kernelsplit_fleet_filters', COLLECTION_SOURCE / 'plugins' / 'filter' / 'fleet.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
