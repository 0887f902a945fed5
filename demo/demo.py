#!/usr/bin/python3
"""The main job, end to end, on an emulated bare-metal host.

Builds the sample split-kernel repositories, emulates (umockdev) a bare-metal
server with an SR-IOV NIC and a GPU, and runs the real dnf with the plugin
from this tree in an installroot.
"""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / 'tests'), str(ROOT / 'dnf-plugin-kernelsplit')]

import kernelrepo  # noqa: E402
from harness import Host, Installroot  # noqa: E402

WORK = ROOT / 'build' / 'demo'
HOST = Host('baremetal-sriov-gpu')
NEW = '6.9.1-1.x86_64'


def say(text: str) -> None:
    print('\n\033[1m==> %s\033[0m' % text, flush=True)


def show(root: Installroot, *args: str) -> int:
    print('$ dnf %s' % ' '.join(args), flush=True)
    result = root.dnf(*args, host=HOST)
    sys.stdout.write(result.stdout)
    if result.stderr.strip():
        sys.stdout.write(result.stderr)
    print('(exit status %d)' % result.returncode, flush=True)
    return result.returncode


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    say('Building the sample repository: kernel %s split into kernel-core, kernel-drivers, '
        '-sriov, -gpu, -passthrough' % NEW)
    repo = kernelrepo.build_repo([kernelrepo.split_release('6.9.1', '1')], WORK / 'repo')
    print(' '.join(sorted(p.name for p in repo.glob('*.rpm'))))

    say('A cloud image (kernel-core only) booted on bare metal: %s' % HOST.umockdev.name)
    root = Installroot(WORK / 'host', {'sample': repo})
    root.install('kernel-core-' + NEW)
    print('installed: %s' % ', '.join(sorted(root.installed())))

    say('dnf kernelsplit check: which devices would come up without a driver?')
    status = show(root, 'kernelsplit', 'check')
    if status != 1:
        print('expected exit status 1 (missing drivers)')
        return 1

    say('Installing what check named')
    doc = root.dnf('kernelsplit', 'check', '--json', host=HOST).json()
    root.install(*doc['kernels'][0]['install'])
    print('installed: %s' % ', '.join(sorted(root.installed())))

    say('dnf kernelsplit check again')
    status = show(root, 'kernelsplit', 'check')
    return 0 if status == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
