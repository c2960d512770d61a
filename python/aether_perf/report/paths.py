"""Short, recognisable file names for reports: what a reader needs, not the install prefix.

``/venv/lib/python3.11/site-packages/pkg/mod.py`` -> ``pkg/mod.py``; a standard-library file ->
``threading.py``; a file under the current directory -> its relative path. Anything else is kept.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from functools import lru_cache

__all__ = ["short_path"]


@lru_cache(maxsize=1)
def _prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get(key, "") for key in ("purelib", "platlib", "stdlib", "platstdlib")}
    roots.update(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    # Longest first, so site-packages wins over the stdlib directory that contains it.
    return tuple(sorted((os.path.join(r, "") for r in roots if r), key=len, reverse=True))


@lru_cache(maxsize=4096)
def short_path(path: str) -> str:
    if not path or path.startswith("<"):
        return path
    for prefix in _prefixes():
        if path.startswith(prefix):
            return path[len(prefix) :]
    cwd = os.path.join(os.getcwd(), "")
    if path.startswith(cwd):
        return path[len(cwd) :]
    return path
