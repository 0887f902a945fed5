"""dnf runs the plugin from a checkout with --setopt=pluginpath alone, as from the RPM.

dnf imports each *.py of its plugin path by file, without putting that
directory on sys.path; kernelsplit.py finds the dnf_kernelsplit package
beside it.  A copy of the plugin directory somewhere else, no PYTHONPATH:
`check` and an upgrade that adds a driver package both work, and the devices
are listed by the background child (which imports the package too).
"""

import shutil

from harness import PLUGIN_DIR, PYTHON, Host, run

SRIOV = Host('baremetal-sriov')
OLD, NEW = '6.8.0-1.x86_64', '6.9.1-1.x86_64'


def test_a_copy_of_the_plugin_directory_works_with_pluginpath_alone(make_root, tmp_path):
    copy = tmp_path / 'elsewhere' / 'dnf-plugin-kernelsplit'
    shutil.copytree(PLUGIN_DIR, copy, ignore=shutil.ignore_patterns('__pycache__'))
    root = make_root('mono-split')
    root.install('kernel-' + OLD)
    env = root.env
    assert 'PYTHONPATH' not in env
    # Nothing else on this machine provides the package: only the copy can.
    found = run([PYTHON, '-c', 'import dnf_kernelsplit'], env)
    assert found.returncode == 1 and "No module named 'dnf_kernelsplit'" in found.stderr

    def dnf(*args):
        command = root.dnf_command(*args)
        command[command.index('--setopt=pluginpath=%s' % PLUGIN_DIR)] = \
            '--setopt=pluginpath=%s' % copy
        return run(SRIOV.wrap(command), env)    # run() fails on "Failed loading plugin"

    check = dnf('kernelsplit', 'check')
    assert check.returncode == 0, check      # the monolithic kernel has every driver
    assert 'Kernel %s (default boot kernel: newest installed)' % OLD in check.stdout
    upgrade = dnf('-v', '-y', 'upgrade')
    assert upgrade.returncode == 0, upgrade
    assert 'kernelsplit: devices listed in the background' in upgrade.stdout, upgrade
    assert 'kernelsplit: adding kernel-drivers-sriov-%s' % NEW in upgrade.stdout
    assert 'kernel-drivers-sriov-' + NEW in root.installed()
