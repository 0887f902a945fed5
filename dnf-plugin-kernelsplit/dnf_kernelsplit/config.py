"""The plugin's configuration: read once, validated, frozen.

A malformed value is an error that names the file, the key and the value, and
says how to get dnf going again.
"""

from __future__ import annotations

import os
import re
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Callable, Iterable, Mapping, Optional, Sequence

SECTION = 'main'
ON_MISSING_CHOICES = ('install', 'warn', 'fail')

_TRUE = frozenset({'1', 'yes', 'true', 'on'})
_FALSE = frozenset({'0', 'no', 'false', 'off'})
_SLOT_RE = re.compile(r'^(?:[0-9a-f]{4,8}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$')
_IDS_RE = re.compile(r'^[0-9a-f]{4}:[0-9a-f]{4}$')
_BUS_RE = re.compile(r'^[a-z0-9][a-z0-9_.-]*$')


class ConfigValueError(ValueError):
    """A value that cannot be used; str() is the whole message for the user."""


class Config(namedtuple('Config', [
        'enabled',          # bool
        'ignore_devices',   # frozenset[str]: PCI slots, vendor:device, /sys/devices/... paths
        'buses',            # frozenset[str], or None: every bus
        'hardware_in_installroot',  # bool
        'on_missing',       # install | warn | fail
        'source',           # the file(s) the values came from, for messages
        ], defaults=(True, frozenset(), None, False, 'install', '(defaults)'))):
    """The [main] settings of kernelsplit.conf, validated."""
    __slots__ = ()

    def ignores(self, device) -> bool:
        if not self.ignore_devices:
            return False
        slot = (device.slot or '').lower()
        keys = {device.sys_path, slot, (device.ids or '').lower()}
        if slot.startswith('0000:'):
            keys.add(slot[len('0000:'):])
        return not self.ignore_devices.isdisjoint(keys - {''})


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError('expected yes or no')


def _words(value: str) -> list[str]:
    return [w for w in re.split(r'[\s,]+', value.strip()) if w]


def _device_list(value: str) -> frozenset[str]:
    items = set()
    for word in _words(value):
        lowered = word.lower()
        if word.startswith('/sys/devices/'):
            items.add(os.path.normpath(word))
        elif _SLOT_RE.match(lowered) or _IDS_RE.match(lowered):
            items.add(lowered)
        else:
            raise ValueError('%r is neither a PCI slot (0000:3b:00.0), vendor:device '
                             '(8086:1572) nor a /sys/devices/... path' % word)
    return frozenset(items)


def _bus_list(value: str) -> Optional[frozenset[str]]:
    words = [w.lower() for w in _words(value)]
    if not words or words == ['all']:
        return None
    for word in words:
        if word == 'all' or not _BUS_RE.match(word):
            raise ValueError('%r is not a bus name (pci, virtio, vmbus, ...) '
                             'and "all" stands alone' % word)
    return frozenset(words)


def _choice(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in ON_MISSING_CHOICES:
        raise ValueError('expected one of %s' % ', '.join(ON_MISSING_CHOICES))
    return lowered


_PARSERS: Mapping[str, Callable[[str], object]] = {
    'enabled': _boolean,
    'ignore_devices': _device_list,
    'buses': _bus_list,
    'hardware_in_installroot': _boolean,
    'on_missing': _choice,
}


def config_from_values(values: Mapping[str, str], source: str,
                       origin: Callable[[str], str] = lambda key: '') -> Config:
    """A Config from the [main] KEY -> raw VALUE pairs read from SOURCE.

    ORIGIN names the file a key came from, for the error message.
    """
    parsed: dict[str, object] = {}
    for key, raw in values.items():
        parser = _PARSERS.get(key)
        if parser is None:
            raise ConfigValueError(
                '%s: unknown key %r in [%s] (known: %s); fix the file or run dnf '
                'with --disableplugin=kernelsplit'
                % (origin(key) or source, key, SECTION, ', '.join(sorted(_PARSERS))))
        try:
            parsed[key] = parser(raw)
        except ValueError as exc:
            raise ConfigValueError(
                '%s: [%s] %s = %r is not valid: %s; fix the file or run dnf with '
                '--disableplugin=kernelsplit' % (origin(key) or source, SECTION, key, raw, exc)
            ) from None
    return Config(source=source, **parsed)  # type: ignore[arg-type]


def config_files(pluginconfpath: Sequence[str], name: str = 'kernelsplit') -> list[str]:
    """The files dnf's read_config() reads for NAME, in reading order."""
    files = [os.path.join(path, '%s.conf' % name) for path in pluginconfpath]
    return [f for f in files if os.path.isfile(f)]


def load(parser, files: Iterable[str]) -> Config:
    """A Config from the libdnf ConfigParser dnf's Plugin.read_config() returned.

    FILES are the files that parser read; later ones win, as they do in dnf.
    """
    files = list(files)
    source = files[-1] if files else '(defaults)'
    if not parser.has_section(SECTION):
        return Config(source=source)
    values = {key: parser.get(SECTION, key) for key in parser.options(SECTION)}

    def origin(key: str) -> str:
        for path in reversed(files):
            try:
                with open(path, encoding='utf-8', errors='replace') as handle:
                    if re.search(r'^\s*%s\s*[=:]' % re.escape(key), handle.read(), re.M):
                        return path
            except OSError:
                continue
        return source

    return config_from_values(values, source, origin)
