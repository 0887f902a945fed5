#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, kernelsplit developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DOCUMENTATION = r'''
---
module: kernelsplit_check
short_description: Check that a host's kernel carries the driver packages its hardware needs
description:
  - Runs the kernelsplit check on the target, C(kernelsplit check --json) where the standalone
    C(kernelsplit) command is installed, else C(dnf kernelsplit check --json) through dnf 4
    (C(dnf-3), since on Fedora 41 and later C(dnf) is dnf5, which loads no Python plugins).
  - The check lists the devices present, the kernel modules each needs and the package of the
    kernel that ships them, and judges each device C(ok), C(missing), C(unsupported),
    C(unknown) or C(none) against the default boot kernel (or I(kernel), or every installed
    kernel with I(all_kernels)).
  - Returns the check's JSON document as I(kernelsplit), and as the fact
    C(ansible_facts.kernelsplit).
  - Fails only when the check could not run (its exit status 3, or no report at all, for
    example when the plugin is not installed). A host whose default kernel lacks a driver is
    a result, not a failure; see I(stranded).
  - Never changes the host.
version_added: "0.1.0"
author:
  - kernelsplit developers
options:
  all_kernels:
    description:
      - Check every installed kernel, not only the default boot kernel.
      - The exit status and I(status) still follow the default boot kernel.
      - Mutually exclusive with I(kernel).
    type: bool
    default: false
  kernel:
    description:
      - Check this kernel release (as C(uname -r) names it), installed or only in the enabled
        repositories, for example the kernel an upgrade wave is about to bring.
      - Mutually exclusive with I(all_kernels).
    type: str
  installroot:
    description:
      - Check the system installed under this directory (dnf's C(--installroot)).
      - The plugin steps aside for an installroot other than C(/) unless its configuration
        says C(hardware_in_installroot=yes); the check then fails.
    type: path
    default: /
  dnf_config:
    description:
      - dnf's configuration file (C(dnf -c)), for example to use other repositories or another
        plugin configuration directory.
      - The standalone C(kernelsplit) command takes it, and I(setopt), I(releasever) and
        I(cacheonly), as dnf does.
    type: path
  setopt:
    description:
      - dnf options as C(key=value), each passed as C(--setopt=key=value), for example
        C(pluginpath=/opt/kernelsplit/plugins) or C(*.skip_if_unavailable=1).
    type: list
    elements: str
    default: []
  releasever:
    description:
      - dnf's C(--releasever), needed with an I(installroot) whose release dnf cannot detect.
    type: str
  cacheonly:
    description:
      - Run dnf from its metadata cache only (C(dnf -C)); no metadata is downloaded, so a
        fleet's audit does not make every host fetch repository metadata.
    type: bool
    default: false
  command:
    description:
      - Which program runs the check. C(auto) takes the standalone C(kernelsplit) command
        where it is installed, else dnf (dnf-3, dnf). Both take the dnf options below.
    type: str
    choices: [ auto, kernelsplit, dnf ]
    default: auto
  executable:
    description:
      - Path of the program that runs the check, when it is not in C(PATH) or not the one to
        use. A name starting with C(kernelsplit) is taken for the standalone command, any
        other for dnf, unless I(command) says which.
    type: path
  package_sizes:
    description:
      - Also list, for every installed kernel checked, the installed packages that ship its
        files, with their installed sizes, as I(installed_packages). A fleet report counts
        from them what driver packages are installed without being needed.
      - Read from the rpmdb with rpm's Python bindings; without them I(installed_packages)
        is null.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
requirements:
  - the kernelsplit dnf plugin (package python3-dnf-plugin-kernelsplit) or the standalone
    C(kernelsplit) command on the target
notes:
  - Runs as any user; the check reads the rpmdb and the repository metadata dnf has cached.
seealso:
  - module: kernelsplit.fleet.kernelsplit_fix
'''

EXAMPLES = r'''
- name: Check the default boot kernel against the hardware
  kernelsplit.fleet.kernelsplit_check:
  register: check

- name: Stop before the upgrade when a device would lose its driver
  ansible.builtin.assert:
    that: not check.stranded
    fail_msg: "{{ inventory_hostname }} lacks {{ check.install | join(', ') }}"

- name: Check the kernel the next wave brings, from the metadata cache only
  kernelsplit.fleet.kernelsplit_check:
    kernel: 6.9.1-200.fc40.x86_64
    cacheonly: true

- name: Check every installed kernel of an image tree
  kernelsplit.fleet.kernelsplit_check:
    installroot: /srv/images/worker
    releasever: "40"
    all_kernels: true

- name: Devices of the default kernel that lack their driver package
  ansible.builtin.debug:
    msg: "{{ ansible_facts.kernelsplit.kernels[0].devices | selectattr('status', 'eq', 'missing') | map(attribute='slot') | list }}"
'''

RETURN = r'''
kernelsplit:
  description:
    - The check's JSON document, as C(dnf kernelsplit check --json) prints it; also set as
      the fact C(ansible_facts.kernelsplit).
    - C(kernels) lists the kernels checked, the default boot kernel (or I(kernel)) first;
      each has C(kernel), C(default), C(installed), C(devices), C(install) (the packages to
      install for it) and C(not_installed).
    - Each device has C(sysfs_path), C(slot), C(id), C(class), C(bus), C(modalias),
      C(driver), C(modules), C(packages), C(status) (C(ok), C(missing), C(unsupported),
      C(unknown) or C(none)), C(reason) and more.
    - At the top, C(default_kernel), C(default_from) (C(grubby), C(bls) or C(newest)),
      C(default_detail), C(exit_status), C(index_kernel), C(ignored) and C(notes).
  returned: when the check ran
  type: dict
  sample:
    kernels:
      - kernel: 6.9.1-1.x86_64
        default: true
        installed: true
        install: [kernel-drivers-sriov-6.9.1-1.x86_64]
        not_installed: []
        devices:
          - slot: "0000:3b:00.0"
            id: "8086:1572"
            driver: i40e
            modules: [i40e]
            packages: [kernel-drivers-sriov-6.9.1-1.x86_64]
            status: missing
    default_kernel: 6.9.1-1.x86_64
    default_from: newest
    default_detail: newest installed
    exit_status: 1
exit_status:
  description: The check's exit status, 0 ok, 1 a device is C(missing) or C(unsupported),
    2 a device is C(unknown), 3 nothing could be checked.
  returned: always
  type: int
  sample: 1
status:
  description:
    - C(ok); C(stranded), a device of the judged kernel is C(missing) or C(unsupported), so
      it would boot without a driver; C(unknown), a device cannot be judged; or
      C(cannot check) when the module failed.
  returned: always
  type: str
  sample: stranded
stranded:
  description: Whether a device would be left without its driver on the judged kernel.
  returned: always
  type: bool
  sample: true
kernel:
  description: The kernel release the exit status follows (the default boot kernel, or I(kernel)).
  returned: when the check ran
  type: str
  sample: 6.9.1-1.x86_64
install:
  description: The packages to install for the judged kernel (its C(install) list).
  returned: when the check ran
  type: list
  elements: str
  sample: [kernel-drivers-sriov-6.9.1-1.x86_64]
installed_packages:
  description:
    - For each installed kernel checked, the installed packages that ship its files, with
      C(nevra), C(name), C(size) (installed bytes) and C(kernel_image) (it ships vmlinuz).
    - Null when I(package_sizes) is false or rpm's Python bindings are missing.
  returned: when the check ran
  type: dict
  sample:
    6.9.1-1.x86_64:
      - {nevra: kernel-core-6.9.1-1.x86_64, name: kernel-core, size: 52428800, kernel_image: true}
      - {nevra: kernel-drivers-6.9.1-1.x86_64, name: kernel-drivers, size: 104857600, kernel_image: false}
command:
  description: The command line that ran the check.
  returned: always
  type: list
  elements: str
  sample: [/usr/bin/dnf-3, kernelsplit, check, --json]
stderr:
  description: What the check printed on stderr (dnf's messages).
  returned: always
  type: str
  sample: ''
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kernelsplit.fleet.plugins.module_utils.kernelsplit import (
    COMMON_ARGS, with_prefix, EXIT_CANNOT_CHECK, EXIT_STRANDED, CannotRun, installed_release_packages,
    judged_kernel, run_check, status_of)


def main():
    argument_spec = dict(COMMON_ARGS)
    argument_spec.update(
        all_kernels=dict(type='bool', default=False),
        package_sizes=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('all_kernels', 'kernel')])
    params = module.params
    try:
        run = run_check(module, params, all_kernels=params['all_kernels'])
    except CannotRun as exc:
        run = exc.run
        module.fail_json(msg=with_prefix(exc), changed=False, status='cannot check',
                         stranded=False,
                         exit_status=run.doc.get('exit_status', EXIT_CANNOT_CHECK)
                         if run is not None and run.doc else EXIT_CANNOT_CHECK,
                         command=run.argv if run is not None else [],
                         stderr=run.stderr if run is not None else '',
                         rc=run.rc if run is not None else None)
    doc = run.doc
    judged = judged_kernel(doc)
    sizes = None
    if params['package_sizes']:
        sizes = installed_release_packages(
            params['installroot'], [k['kernel'] for k in doc.get('kernels', []) if k.get('installed')])
    module.exit_json(changed=False, kernelsplit=doc, ansible_facts=dict(kernelsplit=doc),
                     exit_status=doc.get('exit_status'), status=status_of(doc),
                     stranded=doc.get('exit_status') == EXIT_STRANDED,
                     kernel=judged.get('kernel'), install=judged.get('install', []),
                     installed_packages=sizes, command=run.argv, stderr=run.stderr)


if __name__ == '__main__':
    main()
