"""Run a script or module in this process the way `python script.py` / `python -m mod` would.

The target gets its own `sys.argv`, `sys.path[0]` and `__main__` module; its exit status, its
uncaught exception (printed by `sys.excepthook`, with the frames of this runner trimmed off) and
Ctrl-C are turned into an `Outcome` instead of ending the process, so the caller can still stop the
sampler and write the profile. After the target's main code ends, the runner waits for the
non-daemon threads it started, as the interpreter does at exit.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import io
import os
import runpy
import sys
import threading
import types
import zipfile
from dataclasses import dataclass
from typing import Literal

from aether_native.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, RunError, UsageError

Kind = Literal["script", "module"]

#: Frames of these modules at the bottom of a target's traceback are the runner's, not the user's.
_RUNNER_PACKAGE = "aether_native.cli"
_MAIN_FILES = ("__main__.py", "__main__.pyc")


@dataclass(frozen=True)
class Target:
    """What to run: a script path (as given) or a module name, and its arguments."""

    kind: Kind
    name: str
    args: tuple[str, ...] = ()

    @property
    def stem(self) -> str:
        """A short name for default output files: the script's stem or the module name."""
        if self.kind == "module":
            return self.name
        return os.path.basename(os.path.normpath(self.name)).split(".")[0] or "script"

    @property
    def command(self) -> list[str]:
        """The command line this target stands for, as the user would type it after `python`."""
        head = ["-m", self.name] if self.kind == "module" else [self.name]
        return [*head, *self.args]


@dataclass
class Outcome:
    """How the target ended: the exit status the process should have, and how it got there."""

    status: int = EXIT_OK
    exception: str | None = None  # the uncaught exception's type name, if any


def validate(target: Target) -> None:
    """Check, before anything runs, that the target can be started; raise UsageError if not."""
    if target.kind == "script":
        path = target.name
        if not os.path.exists(path):
            raise UsageError(f"can't open file '{path}': No such file or directory")
        if not os.access(path, os.R_OK):
            raise UsageError(f"can't open file '{path}': Permission denied")
        if os.path.isdir(path):
            found = any(os.path.isfile(os.path.join(path, name)) for name in _MAIN_FILES)
        elif _is_zip(path):
            with zipfile.ZipFile(path) as archive:
                found = any(name in archive.namelist() for name in _MAIN_FILES)
        else:
            found = True
        if not found:
            raise UsageError(f"can't find '__main__' module in '{path}'")
    else:
        name = target.name
        if not name or name.startswith(".") or any(not part.isidentifier() for part in name.split(".")):
            raise UsageError(f"bad module name {name!r} for -m")


class Runner:
    """A context manager that sets up `sys` for the target and restores it afterwards.

    ``with Runner(target) as runner: ...start sampling...; outcome = runner.run()``. Entering checks a
    module target can be found (with the target's sys.path), so that error comes before sampling.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self._saved_argv: list[str] = []
        self._saved_path: list[str] = []
        self._saved_main: types.ModuleType | None = None

    def __enter__(self) -> Runner:
        self._saved_argv = sys.argv[:]
        self._saved_path = sys.path[:]
        self._saved_main = sys.modules.get("__main__")
        target = self.target
        if target.kind == "script":
            sys.argv = [target.name, *target.args]
            entry = os.path.abspath(target.name)
            _set_path0(entry if os.path.isdir(entry) or _is_zip(entry) else os.path.dirname(entry))
        else:
            sys.argv = ["-m", *target.args]  # runpy puts the module's file in argv[0]
            _set_path0(os.getcwd())
            try:
                _check_module(target.name)
            except BaseException:
                self.__exit__(None, None, None)
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        sys.argv = self._saved_argv
        sys.path[:] = self._saved_path
        if self._saved_main is not None:
            sys.modules["__main__"] = self._saved_main

    def run(self) -> Outcome:
        """Run the target to its end and return how it ended; never raises for the target's sake."""
        baseline = set(threading.enumerate())
        outcome = Outcome()
        try:
            self._execute()
        except SystemExit as exc:
            outcome.status = _exit_status(exc)
        except KeyboardInterrupt as exc:
            _print_exception(exc)
            outcome.status = EXIT_INTERRUPTED
            outcome.exception = "KeyboardInterrupt"
        except BaseException as exc:
            _print_exception(exc)
            outcome.status = EXIT_FAILED
            outcome.exception = type(exc).__qualname__
        try:
            _wait_for_threads(baseline)
        except KeyboardInterrupt:  # Ctrl-C while waiting: stop waiting, as the interpreter does
            outcome.status = EXIT_INTERRUPTED
        return outcome

    def _execute(self) -> None:
        target = self.target
        if target.kind == "module":
            runpy.run_module(target.name, run_name="__main__", alter_sys=True)
            return
        path = os.path.abspath(target.name)
        if os.path.isdir(path) or _is_zip(path):
            _run_main_from_path_entry()
        elif path.endswith(".pyc"):
            runpy.run_path(target.name, run_name="__main__")
        else:
            _run_source_file(path)


def _run_source_file(path: str) -> None:
    """Execute a .py file as `__main__`, as `python path` does (absolute __file__ and code names)."""
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=path,
        __cached__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", path),
        __spec__=None,
        __package__=None,
        __builtins__=builtins,
    )
    with io.open_code(path) as handle:
        source = handle.read()
    sys.modules["__main__"] = main
    code = compile(source, path, "exec", dont_inherit=True)
    exec(code, main.__dict__)


def _run_main_from_path_entry() -> None:
    """Run `__main__` from the directory or zip file at sys.path[0], as `python app/` does."""
    sys.modules.pop("__main__", None)  # so the import system looks for it on sys.path
    spec = importlib.util.find_spec("__main__")
    get_code = getattr(spec.loader, "get_code", None) if spec is not None else None
    if spec is None or get_code is None:
        raise ImportError(f"can't find '__main__' module in {sys.path[0]!r}")
    code = get_code("__main__")
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=spec.origin,
        __cached__=spec.cached,
        __loader__=spec.loader,
        __package__="",
        __spec__=spec,
        __builtins__=builtins,
    )
    sys.modules["__main__"] = main
    if code is not None:
        exec(code, main.__dict__)


def _check_module(name: str) -> None:
    """Find `name` as `python -m` would; missing -> UsageError, a failing parent package -> RunError."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        spec = None
    except Exception as exc:
        raise RunError(
            f"error while finding module specification for {name!r} ({type(exc).__name__}: {exc})"
        ) from None
    if spec is None:
        raise UsageError(f"no module named {name!r}")
    if spec.submodule_search_locations is not None:  # a package: runs its __main__
        try:
            main_spec = importlib.util.find_spec(f"{name}.__main__")
        except Exception:
            main_spec = None
        if main_spec is None:
            raise UsageError(f"{name!r} is a package and cannot be directly executed (no __main__ module)")


def _exit_status(exc: SystemExit) -> int:
    """The process status `raise SystemExit(code)` gives, printing a non-int code as Python does."""
    code = exc.code
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    try:
        print(code, file=sys.stderr, flush=True)
    except Exception:
        pass
    return EXIT_FAILED


def _print_exception(exc: BaseException) -> None:
    """Print the target's uncaught exception via sys.excepthook, without the runner's frames."""
    tb = exc.__traceback__
    while tb is not None and _is_runner_frame(tb.tb_frame):
        tb = tb.tb_next
    exc.__traceback__ = tb
    try:
        sys.excepthook(type(exc), exc, tb)
    except Exception:
        sys.__excepthook__(type(exc), exc, tb)
    try:
        sys.stderr.flush()
    except Exception:
        pass


def _is_runner_frame(frame: types.FrameType) -> bool:
    module = frame.f_globals.get("__name__")
    if not isinstance(module, str):
        return False
    return module == "runpy" or module == _RUNNER_PACKAGE or module.startswith(_RUNNER_PACKAGE + ".")


def _wait_for_threads(baseline: set[threading.Thread]) -> None:
    """Join the non-daemon threads the target started, as the interpreter does before exiting."""
    current = threading.current_thread()
    while True:
        pending = [
            thread
            for thread in threading.enumerate()
            if thread is not current and thread not in baseline and not thread.daemon
        ]
        if not pending:
            return
        for thread in pending:
            thread.join()


def _set_path0(entry: str) -> None:
    if sys.path:
        sys.path[0] = entry
    else:
        sys.path.append(entry)


def _is_zip(path: str) -> bool:
    return os.path.isfile(path) and zipfile.is_zipfile(path)
