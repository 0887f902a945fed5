"""The plugin's configuration: read once, validated, frozen.

dnf reads NAME.conf from every directory of its pluginconfpath, later files
winning.  Every file that is there is read strictly: a file that cannot be
read (a directory in its place, no permission), a byte that is not UTF-8, a
line that is not KEY = VALUE, an unknown section or key, or a malformed value
is an error that names the file (and the line, key and value) and says how to
get dnf going again.  A key set twice in one file: the last one counts, with
a warning.  Python's configparser reads the syntax, set up as libdnf's parser
reads it (`#` and `;` start a comment line, keys keep their case, one pair of
quotes around a value goes; `KEY: VALUE` is taken too).
"""

from __future__ import annotations

import configparser
import logging
import os
import re
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every dnf run
    from typing import Callable, Iterable, Mapping, Optional

logger = logging.getLogger('dnf.plugin')

SECTION = 'main'
WAY_OUT = 'fix the file or run dnf with --disableplugin=kernelsplit'
ON_MISSING_CHOICES = ('install', 'warn', 'fail')
INSPECT_CHOICES = ('auto', 'never')
# Room for one Fedora kernel-modules package (~60-70 MB) and its -extra sibling.
INSPECT_MAX_MB = 128
# Buses whose devices are functions of hardware put in the machine, which need a
# driver to work: an unbound one there is waiting for its driver package.  On the
# other buses -- what firmware describes (acpi, platform, dmi, of, pnp), what the
# kernel makes of other devices (input, serio, cpu, wmi, ...) -- every PC-type VM
# has unbound devices some optional module claims (ACPI's floppy controller, the
# PC speaker): counting those would give every core-only cloud image its driver
# packages back.  Bound devices count on every bus.
UNBOUND_BUSES = frozenset({'pci', 'usb', 'virtio', 'vmbus', 'xen', 'xen-backend', 'scsi',
                           'hid', 'mmc', 'sdio', 'ccw', 'ap', 'vio', 'pcmcia', 'firewire',
                           'thunderbolt', 'cxl', 'mhi', 'nvme', 'bcma', 'ssb', 'zorro', 'eisa'})

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
        'container',        # None: guess (auto); True/False: this root is/is not a container's
        'inspect',          # auto | never: read the aliases inside candidate packages
        'inspect_max_mb',   # int: what inspect mode may download per transaction or check
        'unbound_buses',    # frozenset[str], or None: every bus (see UNBOUND_BUSES)
        'source',           # the file(s) the values came from, for messages
        ], defaults=(True, frozenset(), None, False, 'install', None, 'auto', INSPECT_MAX_MB,
                     UNBOUND_BUSES, '(defaults)'))):
    """The [main] settings of kernelsplit.conf, validated."""
    __slots__ = ()

    def counts_unbound(self, device) -> bool:
        """Whether DEVICE, with no driver bound, is waiting for one (see UNBOUND_BUSES)."""
        return self.unbound_buses is None or device.subsystem in self.unbound_buses

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


def _choice_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def choice(value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in choices:
            raise ValueError('expected one of %s' % ', '.join(choices))
        return lowered
    return choice


def _megabytes(value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ValueError('expected a whole number of megabytes (0: fetch nothing)') from None
    if number < 0:
        raise ValueError('expected a whole number of megabytes (0: fetch nothing)')
    return number


def _auto_or_boolean(value: str) -> Optional[bool]:
    if value.strip().lower() == 'auto':
        return None
    try:
        return _boolean(value)
    except ValueError:
        raise ValueError('expected auto, yes or no') from None


_PARSERS: Mapping[str, Callable[[str], object]] = {
    'enabled': _boolean,
    'ignore_devices': _device_list,
    'buses': _bus_list,
    'hardware_in_installroot': _boolean,
    'on_missing': _choice_of(ON_MISSING_CHOICES),
    'container': _auto_or_boolean,
    'inspect': _choice_of(INSPECT_CHOICES),
    'inspect_max_mb': _megabytes,
    'unbound_buses': _bus_list,
}


def config_from_values(values: Mapping[str, str], source: str) -> Config:
    """A Config from the [main] KEY -> raw VALUE pairs read from SOURCE."""
    parsed: dict[str, object] = {}
    for key, raw in values.items():
        parser = _PARSERS.get(key)
        if parser is None:
            raise ConfigValueError('%s: unknown key %r in [%s] (known: %s); %s'
                                   % (source, key, SECTION, ', '.join(sorted(_PARSERS)), WAY_OUT))
        try:
            parsed[key] = parser(raw)
        except ValueError as exc:
            raise ConfigValueError('%s: [%s] %s = %r is not valid: %s; %s'
                                   % (source, SECTION, key, raw, exc, WAY_OUT)) from None
    return Config(source=source, **parsed)  # type: ignore[arg-type]


def config_paths(pluginconfpath: Iterable[str], name: str = 'kernelsplit') -> list[str]:
    """Where dnf looks for NAME.conf, in reading order (as dnf.Plugin.read_config)."""
    return ['%s/%s.conf' % (path, name) for path in pluginconfpath]


def read_text(path: str) -> Optional[str]:
    """PATH's text; None when nothing is there.  ConfigValueError when it cannot be used."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except FileNotFoundError:
        if os.path.lexists(path):
            raise ConfigValueError('%s: a symbolic link to nothing; %s' % (path, WAY_OUT)) from None
        return None
    except IsADirectoryError:
        raise ConfigValueError('%s: is a directory, not a configuration file; %s'
                               % (path, WAY_OUT)) from None
    except OSError as exc:
        raise ConfigValueError('%s: cannot be read (%s); %s'
                               % (path, exc.strerror or exc, WAY_OUT)) from None
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as exc:
        number = data.count(b'\n', 0, exc.start) + 1
        line = data.splitlines()[number - 1].decode('utf-8', 'backslashreplace')
        raise ConfigValueError("%s, line %d: byte 0x%02x is not UTF-8 text: '%s'; %s"
                               % (path, number, data[exc.start], line, WAY_OUT)) from None


class ConfigFile(namedtuple('ConfigFile', [
        'path',             # str
        'values',           # dict[str, str]: [main] KEY -> raw VALUE (the last one given)
        'repeated',         # dict[str, tuple[str, ...]]: KEY -> every VALUE given, when several
        ])):
    """One configuration file, parsed."""
    __slots__ = ()


def _recorder(given: dict[str, list[list[str]]]) -> type:
    """A dict_type for configparser that notes every value each key is given.

    While it reads, configparser stores a KEY = VALUE line as a list of the
    value's lines (continuation lines are appended to it), and replaces it
    with the joined text at the end; only those lists are noted.
    """
    class Recorded(dict):
        def __setitem__(self, key, value):
            if isinstance(value, list):
                given.setdefault(key, []).append(value)
            super().__setitem__(key, value)
    return Recorded


def _unquoted(value: str) -> str:
    """As libdnf: one pair of matching quotes around a value is not part of it."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
        return value[1:-1]
    return value


# No section of a plugin's file is special to dnf; configparser's DEFAULT is.
_NO_DEFAULT_SECTION = '\0'


def parse_text(text: str, path: str) -> ConfigFile:
    """PATH's TEXT, parsed.  ConfigValueError names the line that is not KEY = VALUE."""
    given: dict[str, list[list[str]]] = {}
    # configparser's own delimiters (= and :): a custom set costs a regex compile
    # on every dnf run.
    parser = configparser.ConfigParser(
        comment_prefixes=('#', ';'), strict=False, interpolation=None,
        default_section=_NO_DEFAULT_SECTION, dict_type=_recorder(given))
    parser.optionxform = str            # type: ignore[assignment,method-assign]
    lines = text.splitlines()
    try:
        parser.read_string(text, source=path)
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigValueError("%s, line %d: '%s' comes before any [section] header; settings "
                               'go under [%s]; %s' % (path, exc.lineno, exc.line.strip(), SECTION,
                                                      WAY_OUT)) from None
    except configparser.ParsingError as exc:
        number = exc.errors[0][0]
        raise ConfigValueError("%s, line %d: '%s' is not KEY = VALUE; %s"
                               % (path, number, lines[number - 1].strip(), WAY_OUT)) from None
    for section in parser.sections():
        if section != SECTION:
            raise ConfigValueError('%s: unknown section [%s] (kernelsplit reads [%s]); %s'
                                   % (path, section, SECTION, WAY_OUT))
    values = {key: _unquoted(raw) for key, raw in parser.items(SECTION)} \
        if parser.has_section(SECTION) else {}
    repeated = {key: tuple(_unquoted('\n'.join(value).rstrip()) for value in values_given)
                for key, values_given in given.items() if len(values_given) > 1}
    return ConfigFile(path, values, repeated)


def repeated_key_line(config_file: ConfigFile, key: str) -> str:
    values = config_file.repeated[key]
    return ('kernelsplit: %s: [%s] %s is set more than once (%s, then %r); the last one, %r, '
            'counts' % (config_file.path, SECTION, key, ', '.join(repr(v) for v in values[:-1]),
                        values[-1], values[-1]))


def read(pluginconfpath: Iterable[str], name: str = 'kernelsplit'
         ) -> tuple[Config, dict[str, str]]:
    """The Config from every NAME.conf in PLUGINCONFPATH, and the raw [main] values.

    SOURCE, named in messages that say what to set, is the last file read (its
    values win), else where dnf would look first.
    """
    paths = config_paths(pluginconfpath, name)
    values: dict[str, str] = {}
    read_from = []
    for path in paths:
        text = read_text(path)
        if text is None:
            continue
        config_file = parse_text(text, path)
        config_from_values(config_file.values, path)        # each file's own errors
        for key in config_file.repeated:
            logger.warning('%s', repeated_key_line(config_file, key))
        values.update(config_file.values)
        read_from.append(path)
    source = read_from[-1] if read_from else paths[0] if paths else Config().source
    return config_from_values(values, source), values


def as_parser(values: Mapping[str, str]) -> configparser.ConfigParser:
    """The [main] VALUES as the parser dnf.Plugin.read_config() returns (dnf reads `enabled`)."""
    parser = configparser.ConfigParser(interpolation=None, default_section=_NO_DEFAULT_SECTION)
    parser.optionxform = str            # type: ignore[assignment,method-assign]
    parser.read_dict({SECTION: dict(values)})
    return parser
