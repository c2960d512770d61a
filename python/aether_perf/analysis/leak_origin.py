"""Where a live block came from, for the leak check: the user's code, or something that is not a
leak of it.

A leak-free script still ends with blocks it allocated and did not free; measured under ``aether
memcheck`` on CPython 3.11 a script that imports json, compiles a regex and builds a Counter keeps
~110 KB in ~700 blocks, none of them a leak of its code:

- ``import``: everything allocated under the import machinery (a frame of ``importlib`` /
  ``<frozen importlib._bootstrap...>`` / ``zipimport`` anywhere on the stack): module code objects,
  module globals, class bodies. ``sys.modules`` keeps them for the life of the process. This was
  ~85% of that noise.
- ``cache``: blocks whose innermost Python frame is in a standard-library module that memoizes by
  design, with a bounded cache: ``re`` (compiled patterns, 512 kept), ``abc`` (subclass-check
  caches), ``typing`` (``_tp_cache``), ``functools`` (``lru_cache`` / ``cached_property`` stores),
  ``linecache``, ``encodings``/``codecs`` (codec lookups), ``warnings`` (once-registries),
  ``fnmatch`` and ``locale``.
- ``definitions``: blocks made by a ``def``/``class`` statement (or its decorators) run by a
  module's or a class's body: the function and class objects a program defines. Whether a line is
  one is read from the source (``linecache``); when the source cannot be read, the block counts as
  the program's. Functions defined inside functions (closures, which can leak) are never counted
  here.
- ``tracker``: stacks through our own packages (``aether_native``, ``aether_perf``): the tracker's
  bookkeeping, never the program's.
- ``no-frames``: blocks allocated with no Python frame on the stack (C threads, interpreter
  internals at thread start). They may be real leaks of a C extension, so the report shows them,
  separately, instead of charging them to a Python line.

Everything else is ``user``. Stacks are matched on file names only, so the classification works on
a snapshot read back from a file on another machine.
"""

from __future__ import annotations

import linecache
import re
from collections.abc import Sequence

from aether_perf.model.frame import Frame

__all__ = ["NOISE_ORIGINS", "ORIGINS", "ORIGIN_LABELS", "leak_origin"]

#: Every origin, in report order.
ORIGINS = ("user", "no-frames", "import", "cache", "definitions", "tracker")
#: The origins a leak report leaves out of its totals (and ``--fail-over``) by default.
NOISE_ORIGINS = ("no-frames", "import", "cache", "definitions", "tracker")
#: What the text report calls each origin.
ORIGIN_LABELS = {
    "user": "from the program's code",
    "no-frames": "with no Python frames",
    "import": "kept by module imports",
    "cache": "in standard-library caches",
    "definitions": "from def/class statements",
    "tracker": "from aether's own tracker",
}

_IMPORT = re.compile(
    r"^<frozen (importlib\._bootstrap|importlib\._bootstrap_external|zipimport)>$|"
    r"[\\/]importlib[\\/]_bootstrap(_external)?\.py$|[\\/]zipimport\.py$"
)
_OURS = re.compile(r"[\\/](aether_native|aether_perf)[\\/]")
_CACHE_FROZEN = re.compile(r"^<frozen (abc|codecs)>$")
# A standard-library file directly under .../lib/python3.X/ (so never site-packages) of a caching module.
_CACHE_STDLIB = re.compile(
    r"[\\/]lib[\\/]python3\.\d+[\\/]"
    r"(re[\\/][^\\/]+|sre_compile|sre_parse|abc|typing|functools|linecache|encodings[\\/][^\\/]+|"
    r"codecs|warnings|fnmatch|locale)(\.py)?$"
)


_DEFINITION = ("def ", "async def ", "class ", "@")


def _source(file: str, line: int) -> str:
    return linecache.getline(file, line).lstrip() if file and line > 0 else ""


def _definition(frame: Frame) -> bool:
    """The frame is a module or class body executing a def/class statement or a decorator line."""
    if not _source(frame.file, frame.line).startswith(_DEFINITION):
        return False
    return frame.function == "<module>" or _source(frame.file, frame.first_line).startswith(("class ", "@"))


def leak_origin(frames: Sequence[Frame]) -> str:
    """The origin (one of :data:`ORIGINS`) of a block allocated by ``frames`` (root first)."""
    if not frames:
        return "no-frames"
    if any(_OURS.search(f.file) for f in frames):
        return "tracker"
    if any(_IMPORT.search(f.file) for f in frames):
        return "import"
    inner = frames[-1].file
    if _CACHE_FROZEN.match(inner) or _CACHE_STDLIB.search(inner):
        return "cache"
    if _definition(frames[-1]):
        return "definitions"
    return "user"
