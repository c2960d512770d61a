"""argparse, made to fail the `aether` way: one line, exit status 2, no usage dump."""

from __future__ import annotations

import argparse
from typing import NoReturn

from aether_native.cli.errors import ParserExit, UsageError


class ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise UsageError and whose exits raise ParserExit.

    `main()` turns both into an exit status, so `main(argv)` never raises SystemExit itself.
    Build it with ``allow_abbrev=False``: the profile verb splits argv by exact option names.
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            raise UsageError(message.strip(), status=status or 2)
        raise ParserExit(status)


def interval_arg(value: str) -> float:
    """`--interval`: a duration with a unit ("1ms", "250us") or seconds, in the Sampler's range."""
    from aether_native.sampler import MAX_INTERVAL, MIN_INTERVAL

    return _duration(value, "--interval", minimum=MIN_INTERVAL, maximum=MAX_INTERVAL)


def duration_arg(value: str) -> float:
    """`--duration`: how long to sample, a positive duration ("30s", "500ms")."""
    return _duration(value, "--duration")  # parse_duration refuses zero and negative values


def positive_int(value: str) -> int:
    """`--top`: a whole number >= 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value!r}")
    return number


def _duration(value: str, name: str, minimum: float | None = None, maximum: float | None = None) -> float:
    from aether_perf.units import parse_duration

    try:
        return parse_duration(value, name=name, minimum=minimum, maximum=maximum)
    except ValueError as exc:  # InvalidArgument is a ValueError; argparse would hide its message
        raise argparse.ArgumentTypeError(_strip_name(str(exc), name)) from None


def _strip_name(message: str, name: str) -> str:
    """argparse already prefixes 'argument --interval: '; avoid saying the name twice."""
    return message.removeprefix(f"{name} ")
