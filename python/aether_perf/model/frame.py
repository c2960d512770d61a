"""Frames, threads and sample flags: the small value types of a profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "FLAG_BLOCKED",
    "FLAG_GIL_WAIT",
    "FLAG_HOLDS_GIL",
    "FLAG_IDLE",
    "FLAG_TRUNCATED",
    "Frame",
    "FunctionKey",
    "ThreadInfo",
]

#: The sampled thread held the GIL.
FLAG_HOLDS_GIL = 1
#: The thread was idle (blocked, sleeping) when sampled (wall mode).
FLAG_IDLE = 2
#: The stack was deeper than the recorder's cap; the root-most frames are missing.
FLAG_TRUNCATED = 4
#: The thread was blocked waiting for the GIL (wall mode; set with FLAG_IDLE and FLAG_BLOCKED).
FLAG_GIL_WAIT = 8
#: The thread was found blocked in a system call (wall mode; FLAG_IDLE alone may also mean the
#: sampler saw no CPU use during the tick though the thread was on a CPU when signalled).
FLAG_BLOCKED = 16

#: What identifies a function: ``(function, file, first_line)``.
FunctionKey: TypeAlias = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a stack: a function (``co_qualname``) executing a line.

    ``first_line`` is the function's ``co_firstlineno``; ``(function, file, first_line)`` identifies
    the function, so frames of one function at different lines are one function in analyses.
    """

    function: str
    file: str
    line: int
    first_line: int

    @property
    def function_key(self) -> FunctionKey:
        """``(function, file, first_line)``: the identity of the function this frame runs."""
        return (self.function, self.file, self.first_line)


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """A sampled thread: its native thread id and its name."""

    tid: int
    name: str
