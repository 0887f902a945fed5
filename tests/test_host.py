"""Which kernel's index resolves modaliases; which roots are this machine's to judge."""

import pytest

from dnf_kernelsplit.config import Config
from dnf_kernelsplit.host import foreign_root_reason, in_container, index_candidates


@pytest.mark.parametrize('installed, running, expected', [
    (['6.9.1-1.x86_64', '6.8.0-1.x86_64'], '6.8.0-1.x86_64', ['6.8.0-1.x86_64', '6.9.1-1.x86_64']),
    (['6.9.1-1.x86_64', '6.8.0-1.x86_64'], '6.1.0-56-amd64', ['6.9.1-1.x86_64', '6.8.0-1.x86_64']),
    ([], '6.1.0-56-amd64', []),
])
def test_running_kernel_first_else_newest(installed, running, expected):
    assert index_candidates(installed, running) == expected


def test_roots(tmp_path):
    (tmp_path / '.dockerenv').touch()       # the markers: see test_container.py
    assert in_container(str(tmp_path)) == '/.dockerenv exists (docker)'
    assert 'container: /.dockerenv exists' in foreign_root_reason(Config(), '/', str(tmp_path))
    assert foreign_root_reason(Config(container=False), '/', str(tmp_path)) is None
    # an installroot is judged only when the configuration says this machine boots it
    assert 'hardware_in_installroot=yes' in foreign_root_reason(Config(), str(tmp_path))
    assert foreign_root_reason(Config(hardware_in_installroot=True), str(tmp_path)) is None
