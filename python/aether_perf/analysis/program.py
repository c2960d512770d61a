"""Which source files are the profiled program's own: where a finding may point.

A hot line inside ``json/decoder.py`` or numpy is real, but the place to act on it is the
program's line that called it; the rules report program lines only. Library files are those under
the interpreter's standard library and site-packages directories, aether's own packages, and
pseudo-files such as ``<frozen runpy>`` or ``<string>``.
"""

from __future__ import annotations

import functools
import os
import sysconfig

__all__ = ["is_program_file"]

_OWN_PACKAGES = ("aether_native", "aether_perf")


@functools.cache
def _library_dirs() -> tuple[str, ...]:
    dirs = set()
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(name)
        if path:
            dirs.add(os.path.realpath(path) + os.sep)
    return tuple(sorted(dirs))


@functools.cache
def is_program_file(path: str) -> bool:
    """True for a real file that is neither the standard library, an installed package nor aether."""
    if not path or path.startswith("<"):
        return False
    real = os.path.realpath(path)
    if real.startswith(_library_dirs()):
        return False
    parts = real.split(os.sep)
    return not any(package in parts[:-1] for package in _OWN_PACKAGES)
