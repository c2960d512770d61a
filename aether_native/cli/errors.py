"""How the `aether` command fails: one line on stderr and a documented exit status.

Exit statuses: 0 success (or the target's own status), 1 a failed run, 2 bad input (usage, a bad
option value, a missing or unreadable file), 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

from typing import TextIO

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

PREFIX = "aether: error: "


class CLIError(Exception):
    """An error the command reports as one line (never a traceback) before exiting with `status`."""

    status: int = EXIT_FAILED

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())  # always one line
        if status is not None:
            self.status = status


class UsageError(CLIError):
    """Bad input from the user: an unknown option, a bad value, a missing file. Exit status 2."""

    status = EXIT_USAGE


class RunError(CLIError):
    """The run itself failed (the sampler could not start, the output could not be written)."""

    status = EXIT_FAILED


class ParserExit(Exception):
    """argparse wanted to exit (after --help); carries the status instead of raising SystemExit."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def from_exception(exc: BaseException, context: str = "") -> CLIError:
    """Map an exception raised by aether_perf / aether_native (or the OS) to a CLIError.

    Bad input (InvalidArgument, ProfileFormatError, ValueError) -> status 2; anything else
    (SamplerBusyError, SamplerStateError, RunFailed, OSError from the sampler) -> status 1.
    """
    from aether_perf.errors import InvalidArgument, ProfileFormatError

    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        where = f" '{exc.filename}'" if exc.filename else ""
        text = f"{exc.strerror}{where}"
    message = f"{context}: {text}" if context else text
    if isinstance(exc, InvalidArgument | ProfileFormatError | ValueError):
        return UsageError(message)
    return RunError(message)


def report(error: CLIError, stream: TextIO) -> int:
    """Print `error` as one `aether: error: ...` line and return its exit status."""
    print(PREFIX + error.message, file=stream, flush=True)
    return error.status
