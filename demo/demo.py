#!/usr/bin/python3
"""The main job, end to end, on an emulated bare-metal host.

Builds the sample repositories (a monolithic 6.8 kernel and the 6.9 split),
emulates with umockdev a bare-metal server with an SR-IOV NIC and a GPU, and
runs the real dnf with the plugin from this tree in an installroot:

  1. the host runs the monolithic kernel: check says all is well;
  2. dnf upgrade to the split release: the plugin adds the SR-IOV and GPU
     driver packages and says why;
  3. check on the new kernel: every device ok;
  4. for contrast, a cloud image (kernel-core alone) on the same machine:
     check names what is missing and exits 1.
"""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The demo's own helpers; dnf finds the plugin through --setopt=pluginpath alone.
sys.path.insert(0, str(ROOT / 'tests'))

import kernelrepo  # noqa: E402
from harness import Host, Installroot  # noqa: E402

WORK = ROOT / 'build' / 'demo'
COREONLY = Host('baremetal-coreonly')
HOST = Host('baremetal-sriov-gpu')
OLD, NEW = '6.8.0-1.x86_64', '6.9.1-1.x86_64'


def say(text: str) -> None:
    print('\n\033[1m==> %s\033[0m' % text, flush=True)


def show(root: Installroot, *args: str, host: Host = HOST) -> int:
    print('$ dnf %s' % ' '.join(args), flush=True)
    result = root.dnf(*args, host=host)
    def interesting(text: str) -> list[str]:
        # dnf's metadata chatter says nothing about the story
        return [line for line in text.splitlines()
                if line.strip() and not line.startswith(('sample ', 'Last metadata'))]
    print('\n'.join(interesting(result.stdout)))
    if interesting(result.stderr):
        print('\n'.join(interesting(result.stderr)))
    print('(exit status %d)' % result.returncode, flush=True)
    return result.returncode


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    say('Sample repository: kernel %s (one package, every module) and kernel %s split into '
        'kernel-core, kernel-drivers, -sriov, -gpu, -passthrough' % (OLD, NEW))
    repo = kernelrepo.build_repo([kernelrepo.monolithic_release('6.8.0', '1'),
                                  kernelrepo.split_release('6.9.1', '1')], WORK / 'repo')
    print(' '.join(sorted(p.name for p in repo.glob('*.rpm'))))

    say('A bare-metal server (%s): SR-IOV NIC (i40e, iavf VFs), NVIDIA GPU, RAID, BMC VGA'
        % HOST.umockdev.name)
    root = Installroot(WORK / 'host', {'sample': repo})
    root.install('kernel-' + OLD)
    print('installed: %s' % ', '.join(sorted(root.installed())))
    if show(root, 'kernelsplit', 'check') != 0:
        return 1

    say('dnf upgrade: the split release\'s metapackage brings kernel-core and kernel-drivers '
        'only; the plugin adds what this hardware needs')
    if show(root, '-y', 'upgrade') != 0:
        return 1
    root.depmod()
    print('installed: %s' % ', '.join(sorted(root.installed())))

    say('dnf kernelsplit check on the new default kernel')
    if show(root, 'kernelsplit', 'check') != 0:
        return 1

    say('For contrast: a cloud image (kernel-core alone) booted on the same machine')
    image = Installroot(WORK / 'image', {'sample': repo})
    image.install('kernel-core-' + NEW)
    if show(image, 'kernelsplit', 'check') != 1:
        return 1

    say('A cloud image booted on bare metal (%s): no driver bound, no index that knows the '
        'devices, and kernel packages as distributions ship them (kmod() provides, no '
        'modalias() ones): inspect mode reads the aliases inside the packages' % COREONLY.name)
    plain = kernelrepo.build_repo([kernelrepo.split_release('6.8.0', '1'),
                                   kernelrepo.split_release('6.9.1', '1')], WORK / 'plain')
    bare = Installroot(WORK / 'bare', {'sample': plain})
    bare.install('kernel-core-6.8.0-1.x86_64')
    if show(bare, '-y', 'upgrade', host=COREONLY) != 0:
        return 1
    bare.depmod()
    return show(bare, 'kernelsplit', 'check', host=COREONLY)


if __name__ == '__main__':
    sys.exit(main())
