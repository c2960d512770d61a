"""Reading a scenario file: a Python file that defines one :class:`Scenario` (or several, picked by name).

The file runs as a module of its own (``__name__`` is ``"__aether_scenario__"``, so an
``if __name__ == "__main__":`` block does not start a test), with its directory on ``sys.path`` as
``python file.py`` would have it. Whatever goes wrong (missing file, syntax error, an exception while
it runs, no Scenario in it, a Scenario refused as impossible) becomes one InvalidArgument line.
"""

from __future__ import annotations

import dataclasses
import sys
import traceback
import types
from pathlib import Path

from aether_perf.errors import InvalidArgument
from aether_perf.load.scenario import Scenario

__all__ = ["MODULE_NAME", "load_scenario"]

MODULE_NAME = "__aether_scenario__"


def load_scenario(path: str | Path, name: str | None = None) -> Scenario:
    """The Scenario defined in the file ``path`` (the one called ``name`` when it defines several)."""
    p = Path(path)
    try:
        source = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidArgument(f"scenario file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"cannot read scenario file '{path}': {exc}") from None
    try:
        code = compile(source, str(p), "exec")
    except SyntaxError as exc:
        raise InvalidArgument(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = str(p.resolve())
    folder = str(p.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[MODULE_NAME] = module  # so dataclasses and pickling inside the file find it
    try:
        exec(code, module.__dict__)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{path}: {exc}") from None
    except Exception as exc:
        line = _line_in(exc, str(p))
        raise InvalidArgument(f"{path}{line}: {type(exc).__name__}: {exc}") from None
    found: dict[str, Scenario] = {}
    for value in module.__dict__.values():
        if isinstance(value, Scenario):
            found.setdefault(value.name, value)
    if not found:
        raise InvalidArgument(
            f"{path} defines no Scenario (expected e.g. scenario = Scenario('shop', users=10, "
            "duration='1m', transactions=[browse]))"
        )
    if name is not None:
        if name not in found:
            raise InvalidArgument(
                f"{path} has no scenario named {name!r} (it has: {', '.join(sorted(found))})"
            )
        chosen = found[name]
    elif len(found) > 1:
        raise InvalidArgument(
            f"{path} defines several scenarios ({', '.join(sorted(found))}); choose one with --scenario NAME"
        )
    else:
        chosen = next(iter(found.values()))
    return dataclasses.replace(chosen, source=str(p.resolve()))


def _line_in(exc: BaseException, filename: str) -> str:
    """':LINE' of the deepest frame of ``exc``'s traceback inside ``filename``, else ''."""
    line = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename:
            line = f":{frame.lineno}"
    return line
