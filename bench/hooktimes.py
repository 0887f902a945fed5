"""What dnf spends inside its plugin machinery, timed inside the dnf process.

A sitecustomize.py on dnf's PYTHONPATH wraps dnf.plugin.Plugins._load and
Plugins._caller (every hook: config, sack, resolved -- with the re-resolve
the plugin asks for) and appends one line per dnf run to the file named by
KERNELSPLIT_HOOK_TIMES.  Used by bench/hook_time.py and bench/inspect_mode.py:
on a machine whose speed drifts, wall-time pairs scatter more than the plugin
costs, while this is the plugin's own time.
"""

from __future__ import annotations

from pathlib import Path

# Loaded by dnf's interpreter through PYTHONPATH: times dnf's plugin machinery.
SITECUSTOMIZE = '''
import atexit, os, time
_out = os.environ.get('KERNELSPLIT_HOOK_TIMES')
if _out:
    try:
        import dnf.plugin as _plugin
    except ImportError:            # not dnf (the testbed's own interpreter)
        _plugin = None
    if _plugin is not None:
        _spent = {}
        def _timed(name, real):
            def wrapper(self, *args, **kwargs):
                key = args[0] if name == 'call' else name
                started = time.perf_counter()
                try:
                    return real(self, *args, **kwargs)
                finally:
                    _spent[key] = _spent.get(key, 0.0) + time.perf_counter() - started
            return wrapper
        _plugin.Plugins._caller = _timed('call', _plugin.Plugins._caller)
        _plugin.Plugins._load = _timed('load', _plugin.Plugins._load)
        def _write():
            with open(_out, 'a') as out:
                out.write(' '.join('%s=%.3f' % (k, v * 1000) for k, v in sorted(_spent.items()))
                          + '\\n')
        atexit.register(_write)
'''


def shim(directory: Path) -> Path:
    """DIRECTORY, holding the sitecustomize.py to put on dnf's PYTHONPATH (written once)."""
    target = directory / 'sitecustomize.py'
    if not target.exists():
        directory.mkdir(parents=True, exist_ok=True)
        target.write_text(SITECUSTOMIZE)
    return directory


def hook_ms(lines: list[str]) -> list[float]:
    """Per run, the milliseconds spent in the plugin machinery."""
    return [sum(float(kv.split('=')[1]) for kv in line.split()) for line in lines if line.strip()]
