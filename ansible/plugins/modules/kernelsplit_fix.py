#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, kernelsplit developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r'''
---
module: kernelsplit_fix
short_description: Install the driver packages a host's kernel lacks for its hardware
description:
  - Runs the kernelsplit check for the default boot kernel (or I(kernel)) and installs the
    packages it names for that kernel (the C(install) list of the check's JSON), through the
    target's package manager, so that every device present has its driver on that kernel.
  - Installs with C(kernelsplit fix -y) where the standalone command is installed, else with
    C(dnf install -y) of the check's list.
  - Never removes a package. Nothing to install is no change.
  - In check mode, reports what would be installed and installs nothing.
version_added: "0.1.0"
author:
  - kernelsplit developers
options:
  kernel:
    description:
      - Install what this kernel release (as C(uname -r) names it) lacks, instead of the
        default boot kernel's; it may be a kernel still only in the repositories, whose
        driver packages then come before the kernel itself does.
    type: str
  installroot:
    description:
      - Fix the system installed under this directory (dnf's C(--installroot)).
    type: path
    default: /
  dnf_config:
    description:
      - dnf's configuration file (C(dnf -c)); the C(kernelsplit) command takes it too.
    type: path
  setopt:
    description:
      - dnf options as C(key=value), each passed as C(--setopt=key=value).
    type: list
    elements: str
    default: []
  releasever:
    description:
      - dnf's C(--releasever).
    type: str
  cacheonly:
    description:
      - Run the check from dnf's metadata cache only (C(dnf -C)). The install itself always
        reads the repositories as configured.
    type: bool
    default: false
  command:
    description:
      - Which program checks and installs. C(auto) takes the standalone C(kernelsplit)
        command where it is installed, else dnf (dnf-3, dnf). Both take the dnf options above.
    type: str
    choices: [ auto, kernelsplit, dnf ]
    default: auto
  executable:
    description:
      - Path of that program, when it is not in C(PATH) or not the one to use.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - the kernelsplit dnf plugin (package python3-dnf-plugin-kernelsplit) or the standalone
    C(kernelsplit) command on the target
notes:
  - Installing needs root; use C(become).
  - On a host whose default kernel has a device C(unsupported) (no package of that kernel
    ships its driver) there may be nothing to install; I(status) stays C(stranded).
seealso:
  - module: kernelsplit.fleet.kernelsplit_check
'''

EXAMPLES = r'''
- name: Install what the default boot kernel lacks
  kernelsplit.fleet.kernelsplit_fix:
  become: true

- name: Before an upgrade wave, install the next kernel's driver packages
  kernelsplit.fleet.kernelsplit_fix:
    kernel: 6.9.1-200.fc40.x86_64
  become: true

- name: Say what would be installed, install nothing
  kernelsplit.fleet.kernelsplit_fix:
  check_mode: true
  register: would
'''

RETURN = r'''
packages:
  description: What the check said the kernel lacks, which this run installed (or, in check
    mode, would install).
  returned: when the check ran
  type: list
  elements: str
  sample: [kernel-drivers-6.9.1-1.x86_64, kernel-drivers-sriov-6.9.1-1.x86_64]
installed:
  description: The packages this run installed; empty in check mode and when nothing was
    missing.
  returned: when the check ran
  type: list
  elements: str
  sample: [kernel-drivers-6.9.1-1.x86_64, kernel-drivers-sriov-6.9.1-1.x86_64]
kernel:
  description: The kernel release fixed.
  returned: when the check ran
  type: str
  sample: 6.9.1-1.x86_64
exit_status:
  description: The check's exit status after the run (before it, in check mode); 0 when
    every device has its driver.
  returned: when the check ran
  type: int
  sample: 0
status:
  description: C(ok), C(stranded) or C(unknown) after the run (before it, in check mode).
  returned: when the check ran
  type: str
  sample: ok
command:
  description: The command line that installed the packages (in check mode, that would).
  returned: when there was something to install
  type: list
  elements: str
  sample: [/usr/bin/dnf-3, install, -y, kernel-drivers-sriov-6.9.1-1.x86_64]
stdout:
  description: The package manager's output.
  returned: when packages were installed
  type: str
  sample: 'Installed: kernel-drivers-sriov-6.9.1-1.x86_64'
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kernelsplit.fleet.plugins.module_utils.kernelsplit import (
    COMMON_ARGS, with_prefix, CannotRun, dnf_global_args, installed_nevras, judged_kernel,
    run_check, status_of)


def install_argv(run, params, packages):
    """The command that installs PACKAGES, with the program that ran the check: the
    standalone command's fix (for I(kernel) when given), else dnf's install; from the
    network either way, never cache-only."""
    options = dnf_global_args(dict(params, cacheonly=False))
    if run.runner.kind == 'kernelsplit':
        kernel = ['--kernel', params['kernel']] if params.get('kernel') else []
        return [run.runner.path, 'fix', '-y'] + options + kernel
    return [run.runner.path] + options + ['install', '-y'] + list(packages)


def main():
    module = AnsibleModule(argument_spec=dict(COMMON_ARGS), supports_check_mode=True)
    params = module.params
    try:
        before = run_check(module, params)
    except CannotRun as exc:
        module.fail_json(msg=with_prefix(exc), changed=False,
                         stderr=exc.run.stderr if exc.run is not None else '')
    judged = judged_kernel(before.doc)
    packages = list(judged.get('install', []))
    result = dict(packages=packages, installed=[], kernel=judged.get('kernel'),
                  exit_status=before.doc.get('exit_status'), status=status_of(before.doc))
    if not packages:
        module.exit_json(changed=False, msg='nothing to install', **result)
    result['command'] = install_argv(before, params, packages)
    if module.check_mode:
        module.exit_json(changed=True, msg='would install %s' % ' '.join(packages), **result)
    rc, stdout, stderr = module.run_command(result['command'],
                                            environ_update={'LC_ALL': 'C.UTF-8'})
    result.update(stdout=stdout, stderr=stderr, rc=rc)
    if rc != 0:
        module.fail_json(msg='installing %s failed (exit %d): %s'
                         % (' '.join(packages), rc, stderr.strip() or stdout.strip()),
                         changed=False, **result)
    present = installed_nevras(params['installroot'], packages)
    try:
        after = run_check(module, params)
    except CannotRun as exc:
        result['installed'] = packages if present is None else present
        module.fail_json(msg='kernelsplit: installed, but the check after it failed: %s' % exc,
                         changed=bool(result['installed']), **result)
    still = set(judged_kernel(after.doc).get('install', []))
    result.update(installed=present if present is not None else
                  [p for p in packages if p not in still],
                  exit_status=after.doc.get('exit_status'), status=status_of(after.doc))
    module.exit_json(changed=bool(result['installed']),
                     msg='installed %s' % ' '.join(result['installed']), **result)


if __name__ == '__main__':
    main()
