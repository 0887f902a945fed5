#!/usr/bin/python3
"""Finish an umockdev testbed, then exec a command in it.

    umockdev-run -d HOST.umockdev -- testbed_exec.py [--uevent-seqnum=N] HOST.drivers -- COMMAND...

A .umockdev file records devices, whose `driver` links point at
/sys/bus/BUS/drivers/DRIVER; it cannot record the driver directories
themselves.  This adds them with the `module` link the kernel makes for a
driver (../../../../module/MODULE), as read from HOST.drivers, so libudev and
the code under test see the same layout as on a real machine.  Lines:
`BUS/DRIVER MODULE`; MODULE `-` makes a driver without a module link.
--uevent-seqnum=N writes /sys/kernel/uevent_seqnum, the counter of the
kernel's uevents; a test that changes the testbed afterwards writes it again
as the kernel would (one more for each device added, removed, bound, unbound).

With KERNELSPLIT_MEASURE=FILE in the environment the command runs as a child
instead of replacing this process, and FILE receives its wall seconds and
peak RSS in KiB (bench/ uses this to time dnf itself, not the testbed set-up).
"""

import os
import subprocess
import sys
import time


def finish(testbed: str, drivers_file: str) -> None:
    sysfs = os.path.join(testbed, 'sys')
    with open(drivers_file, encoding='utf-8') as handle:
        for line in handle:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            bus_driver, module = line.split()
            bus, driver = bus_driver.split('/', 1)
            driver_dir = os.path.join(sysfs, 'bus', bus, 'drivers', driver)
            os.makedirs(driver_dir, exist_ok=True)
            if module != '-':
                os.makedirs(os.path.join(sysfs, 'module', module), exist_ok=True)
                link = os.path.join(driver_dir, 'module')
                if not os.path.lexists(link):
                    os.symlink('../../../../module/%s' % module, link)


def main(argv: list[str]) -> None:
    testbed = os.environ.get('UMOCKDEV_DIR')
    if not testbed or '--' not in argv:
        sys.exit('usage: umockdev-run -d F -- testbed_exec.py DRIVERS -- COMMAND...')
    split = argv.index('--')
    for argument in argv[1:split]:
        if argument.startswith('--uevent-seqnum='):
            os.makedirs(os.path.join(testbed, 'sys', 'kernel'), exist_ok=True)
            with open(os.path.join(testbed, 'sys', 'kernel', 'uevent_seqnum'), 'w') as out:
                out.write('%d\n' % int(argument.split('=', 1)[1]))
        else:
            finish(testbed, argument)
    command = argv[split + 1:]
    measure = os.environ.pop('KERNELSPLIT_MEASURE', None)
    if not measure:
        os.execvp(command[0], command)
    start = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    with open(measure, 'w', encoding='ascii') as out:
        out.write('%f %d\n' % (time.perf_counter() - start, usage.ru_maxrss))
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == '__main__':
    main(sys.argv)
