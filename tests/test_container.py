"""Container detection: systemd-detect-virt's rules, and `container = auto | yes | no`.

in_container(ROOT) reads its markers under ROOT, so each layout here is real
files in a temporary directory.  The CLI tests run dnf on the real root "/"
(an rpmdb of their own, --assumeno): the config key forces the guess either
way, whatever this machine is.
"""

import os
import shutil
import subprocess

import pytest

from dnf_kernelsplit.config import Config, ConfigValueError, config_from_values
from dnf_kernelsplit.host import foreign_root_reason, in_container
from harness import AS_NOBODY, PYTHON, Host, Installroot, PLUGIN_DIR, run

SRIOV = Host('baremetal-sriov')
NEW = '6.9.1-1.x86_64'


def layout(root, files):
    """Write FILES (path under ROOT -> bytes, or None for a directory) and return ROOT."""
    for path, content in files.items():
        target = root / path.lstrip('/')
        if content is None:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return str(root)


@pytest.mark.parametrize('files, marker', [
    ({}, None),
    ({'/.dockerenv': b''}, '/.dockerenv exists (docker)'),
    ({'/run/.containerenv': b''}, '/run/.containerenv exists (podman)'),
    ({'/run/systemd/container': b'systemd-nspawn\n'},
     "/run/systemd/container says 'systemd-nspawn'"),
    ({'/proc/1/environ': b'HOME=/\0container=lxc\0TERM=linux\0'},
     "container=lxc in PID 1's environment"),
    ({'/run/host/container-manager': b'podman\n'},
     "/run/host/container-manager says 'podman'"),
    ({'/proc/vz': None}, '/proc/vz without /proc/bc (OpenVZ)'),
    ({'/proc/vz': None, '/proc/bc': None}, None),               # the OpenVZ host itself
    ({'/proc/sys/kernel/osrelease': b'5.15.90.1-microsoft-standard-WSL2\n'},
     "/proc/sys/kernel/osrelease says '5.15.90.1-microsoft-standard-WSL2' (WSL)"),
    ({'/proc/sys/kernel/osrelease': b'6.9.1-1.x86_64\n'}, None),
    # systemd's order: what the container manager says comes before the files
    ({'/run/systemd/container': b'lxc\n', '/.dockerenv': b''},
     "/run/systemd/container says 'lxc'"),
    ({'/run/host/container-manager': b'nspawn\n', '/run/systemd/container': b'lxc\n'},
     "/run/host/container-manager says 'nspawn'"),
    ({'/run/systemd/container': b'lxc\n', '/proc/1/environ': b'container=docker\0'},
     "/run/systemd/container says 'lxc'"),
    ({'/proc/1/environ': b'container=podman\0', '/.dockerenv': b''},
     "container=podman in PID 1's environment"),
    ({'/run/.containerenv': b'', '/.dockerenv': b''}, '/run/.containerenv exists (podman)'),
    # empty markers say nothing; the files still count
    ({'/run/systemd/container': b'', '/proc/1/environ': b'container=\0', '/.dockerenv': b''},
     '/.dockerenv exists (docker)'),
    # PID 1's environment cannot be read (as for a user other than root): the files count
    ({'/proc/1/environ': None, '/.dockerenv': b''}, '/.dockerenv exists (docker)'),
    # a variable that only ends in "container=" is not it
    ({'/proc/1/environ': b'NOTcontainer=lxc\0'}, None),
])
def test_markers_in_systemds_order(tmp_path, files, marker):
    assert in_container(layout(tmp_path, files)) == marker


def test_the_real_root_agrees_with_systemd_detect_virt():
    detect = shutil.which('systemd-detect-virt')
    if detect is None:
        pytest.skip('systemd-detect-virt is not installed')
    said = subprocess.run([detect, '--container'], capture_output=True, text=True).stdout.strip()
    if said == 'container-other':
        pytest.skip('systemd found a container by a rule kernelsplit does not follow '
                    '(cgroup namespace)')
    code = 'import sys; sys.path.insert(0, %r); from dnf_kernelsplit.host import in_container; ' \
           'print(in_container("/"))' % str(PLUGIN_DIR)
    for prefix in ((), AS_NOBODY):       # as nobody, PID 1's environment is out of reach
        ours = run(list(prefix) + [PYTHON, '-c', code], {'PATH': os.environ['PATH']},
                   check=True).stdout.strip()
        assert (ours == 'None') == (said == 'none'), (said, ours)


@pytest.mark.parametrize('value, parsed', [('auto', None), ('AUTO', None), ('yes', True),
                                           ('no', False), ('1', True), ('off', False)])
def test_the_container_key(value, parsed):
    assert config_from_values({'container': value}, 'f.conf').container is parsed
    assert Config().container is None


def test_a_bad_container_value_is_named():
    with pytest.raises(ConfigValueError, match="container = 'maybe' is not valid: expected auto, "
                                               "yes or no"):
        config_from_values({'container': 'maybe'}, 'f.conf')


def test_foreign_root_reason_follows_the_key(tmp_path):
    docker = layout(tmp_path / 'docker', {'/.dockerenv': b''})
    bare = layout(tmp_path / 'bare', {})
    conf = 'f.conf'
    auto = config_from_values({}, conf)
    assert foreign_root_reason(auto, '/', docker) == (
        "this looks like a container: /.dockerenv exists (docker), and a container's kernels "
        'are never booted on this hardware; if this machine boots its own kernel, set '
        'container = no in f.conf')
    assert foreign_root_reason(auto, '/', bare) is None
    forced = config_from_values({'container': 'yes'}, conf)
    assert foreign_root_reason(forced, '/', bare) == (
        'container = yes in f.conf: this is a container, whose kernels are never booted on '
        'this hardware')
    assert foreign_root_reason(config_from_values({'container': 'no'}, conf), '/', docker) is None
    # an installroot is another matter (hardware_in_installroot), whatever the key says
    assert 'hardware_in_installroot=yes' in foreign_root_reason(forced, str(tmp_path), bare)


# --- through the real dnf CLI, on the real root ---------------------------------

def real_root(tmp_path, repos, container):
    """An Installroot whose dnf runs on "/" with an rpmdb, cache and logs of its own."""
    root = Installroot(tmp_path / 'ir', {'mono-split': repos['mono-split']},
                       plugin_conf={'container': container},
                       dnf_conf={'cachedir': str(tmp_path / 'cache'),
                                 'logdir': str(tmp_path / 'log'),
                                 'persistdir': str(tmp_path / 'persist')})
    (root.home / '.rpmmacros').write_text('%%_dbpath %s\n' % (tmp_path / 'rpmdb'))
    return root


def on_real_root(root, *args):
    command = root.dnf_command(*args)
    command[command.index('--installroot') + 1] = '/'
    return run(SRIOV.wrap(command), root.env)


def test_container_yes_steps_aside_and_says_why(tmp_path, repos):
    root = real_root(tmp_path, repos, 'yes')
    conf = root.pluginconfdir / 'kernelsplit.conf'
    result = on_real_root(root, '-v', '--assumeno', 'install', 'kernel-core-' + NEW)
    assert 'kernel-core' in result.stdout, result
    assert 'kernelsplit: adding' not in result.stdout
    assert 'kernelsplit: stepping aside: container = yes in %s' % conf in result.stdout, result
    check = on_real_root(root, 'kernelsplit', 'check')
    assert check.returncode != 0 and not check.stdout.strip(), check
    assert 'container = yes in %s' % conf in check.stderr, check


def test_container_no_acts_even_beside_a_docker_marker(tmp_path, repos):
    # This runs on "/" whatever this machine is: a VM with /.dockerenv included.
    root = real_root(tmp_path, repos, 'no')
    result = on_real_root(root, '-v', '--assumeno', 'install', 'kernel-core-' + NEW)
    assert 'kernelsplit: stepping aside' not in result.stdout, result
    assert 'kernelsplit: adding kernel-drivers-sriov-' + NEW in result.stdout, result
    check = on_real_root(root, 'kernelsplit', 'check')
    assert 'container' not in check.stdout + check.stderr, check


def test_container_auto_names_what_it_found_on_this_machine(tmp_path, repos):
    root = real_root(tmp_path, repos, 'auto')
    marker = in_container('/')
    check = on_real_root(root, 'kernelsplit', 'check')
    if marker is None:
        assert 'container' not in check.stdout + check.stderr, check
    else:
        assert 'this looks like a container: %s,' % marker in check.stderr, check
        assert 'set container = no in %s' % (root.pluginconfdir / 'kernelsplit.conf') \
            in check.stderr
