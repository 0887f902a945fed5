"""The devices and their needs, worked out alongside dnf in a child process.

Listing ~200 devices through libudev and resolving their modaliases with
libkmod take ~30 ms of a dnf run, while the machine's other CPUs sit idle as
dnf loads metadata.  For commands that will resolve a transaction the hook
therefore starts both early in a child interpreter and collects the answer
only if a kernel turns up in the transaction.  The child is a plain
`python3 -S -c` on dnf's own sys.path, not a fork of dnf: nothing of dnf's
state (rpmdb handles, locks, log files) is shared.  Its answer travels in
marshal format, which any two processes of the same interpreter read alike.
Any failure of the child means doing the work in-process, as if it had never
been started, and so does a child still at work when its deadline passes (a
few seconds from its start: the work takes ~60 ms); needs resolved against
another index than the one the hook settles on are worked out again
(host.Resolution.holds_for).  The child dies with dnf, however dnf ends.
"""

from __future__ import annotations

import atexit
import logging
import marshal
import os
import sys
import time
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Any, Iterable, Optional

from .hardware import Device, Discovery, Said, discover

logger = logging.getLogger('dnf.plugin')

_CHILD_CODE = ('import sys; sys.path[:] = %r; '
               'from dnf_kernelsplit.background import _child_main; _child_main()')
_ALL_BUSES = '*'
_PR_SET_PDEATHSIG = 1          # <linux/prctl.h>


class Listing(namedtuple('Listing', [
        'discovery',        # hardware.Discovery
        'resolution',       # host.Resolution, or None: the devices' needs are worked out later
        ])):
    """What the child found."""
    __slots__ = ()


def listing_to_bytes(listing: Listing, messages: Iterable[tuple[int, str]] = ()) -> bytes:
    discovery, resolution = listing
    return marshal.dumps({
        'devices': [d._asdict() for d in discovery.devices], 'problem': discovery.problem,
        'resolution': None if resolution is None else {
            'candidates': resolution.candidates, 'index_kver': resolution.index_kver,
            'needs': resolution.needs,
            'builtin': None if resolution.builtin is None else tuple(resolution.builtin)},
        'messages': list(messages)})


def listing_from_bytes(data: bytes) -> tuple[Listing, list[tuple[int, str]]]:
    from .host import Resolution
    fields = marshal.loads(data)
    devices = tuple(Device(**device) for device in fields['devices'])
    resolution = fields['resolution']
    if resolution is not None:
        builtin = resolution['builtin']
        resolution = Resolution(
            tuple(resolution['candidates']), resolution['index_kver'],
            tuple((tuple(modules), basis, by_name)
                  for modules, basis, by_name in resolution['needs']),
            None if builtin is None else frozenset(builtin))
    return Listing(Discovery(devices, fields['problem']), resolution), \
        [(int(level), str(text)) for level, text in fields['messages']]


def _die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when the thread that started it ends
    (dnf killed, crashed or done), so no child outlives dnf."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):      # not Linux: dnf's atexit handler still stops it
        pass
    if os.getppid() != parent:             # dnf ended before the line above took effect
        os._exit(1)


def _child_main() -> None:
    """The child's side: argv[1] the pid of the process that started it, argv[2]
    the buses, argv[3] the root whose kernels resolve the devices' needs ('' for
    none); the Listing marshalled on stdout."""
    parent, buses, root = sys.argv[1:4]
    _die_with_parent(int(parent))
    collect = Said(logging.DEBUG)      # for the parent to log
    logger.addHandler(collect)
    logger.setLevel(logging.DEBUG)
    discovery = discover(None if buses == _ALL_BUSES else frozenset(buses.split(',')))
    resolution = None
    if root and discovery.problem is None:
        from .host import resolve_ahead
        try:
            resolution = resolve_ahead(root, discovery.devices)
        except Exception as exc:     # the parent resolves them itself
            logger.debug('kernelsplit: cannot resolve the devices\' needs ahead: %s', exc)
    sys.stdout.buffer.write(listing_to_bytes(Listing(discovery, resolution), collect.messages))


class BackgroundHost:
    """The child at work; result() collects its Listing (None: do the work here)."""

    # Seconds from the child's start.  Listing ~200 devices and resolving them
    # takes ~60 ms, a slow spell of a busy machine a few times that; a child
    # still at work after this is stuck, and the hook does the work itself
    # rather than wait on.
    DEADLINE = 3.0

    def __init__(self, process: Any, started: float) -> None:
        self._process = process
        self._started = started
        self._result: Optional[Listing] = None
        self._done = False

    @classmethod
    def start(cls, buses: Optional[frozenset[str]] = None, root: Optional[str] = None,
              python: Optional[str] = None) -> Optional['BackgroundHost']:
        """Start the child; None when it would not pay (one CPU) or cannot start.

        ROOT: the root whose kernels' module indexes resolve the devices' needs
        (None: only list the devices).
        """
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        if cpus < 2:                 # the child would only take turns with dnf
            logger.debug('kernelsplit: one CPU: devices will be listed in-process')
            return None
        python = python or sys.executable
        if not python:               # an embedding interpreter: no python3 to start
            return None
        import subprocess
        # Bus names are [a-z0-9_.-] (config.py checks): a comma list is unambiguous.
        argument = _ALL_BUSES if buses is None else ','.join(sorted(buses))
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                [python, '-S', '-c', _CHILD_CODE % (sys.path,), str(os.getpid()), argument,
                 root or ''],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            logger.debug('kernelsplit: cannot start device discovery in the background: %s', exc)
            return None
        handle = cls(process, started)
        # dnf may end without resolving (a package that does not exist, say).
        atexit.register(handle.cancel)
        return handle

    def result(self) -> Optional[Listing]:
        """The child's Listing; None when it failed or missed its deadline (the
        caller does the work in-process)."""
        if self._done:
            return self._result
        self._done = True
        atexit.unregister(self.cancel)
        import subprocess
        # An exited child's output is read whole, however late it is collected.
        timeout = None if self._process.poll() is not None else \
            max(0.0, self._started + self.DEADLINE - time.monotonic())
        try:
            out, err = self._process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._stop()
            logger.debug('kernelsplit: the background listing took longer than %g s; '
                         'listing the devices in-process', self.DEADLINE)
            return None
        if self._process.returncode != 0:
            logger.debug('kernelsplit: background device discovery failed (exit %s): %s',
                         self._process.returncode, err.decode(errors='replace').strip())
            return None
        try:
            self._result, messages = listing_from_bytes(out)
        except (ValueError, EOFError, KeyError, TypeError) as exc:
            logger.debug('kernelsplit: unreadable answer from background device discovery: %s',
                         exc)
            return None
        for level, message in messages:
            logger.log(level, '%s', message)
        return self._result

    def cancel(self) -> None:
        """Stop the child if it still runs: the transaction turned out to need no devices."""
        self._done = True
        atexit.unregister(self.cancel)
        self._stop()

    def _stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.communicate()
