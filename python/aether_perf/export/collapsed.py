"""Collapsed ("folded") stacks, the input of flamegraph.pl, inferno and speedscope.

One line per distinct stack, sorted: frame labels joined by ``;``, root first, a space, and a
whole number::

    main (app.py);handle (app.py);parse (parse.py) 42

- The number is the stack's summed weight in microseconds, rounded half up (``value="weight"``;
  stacks that round to 0 are left out), or its sample count (``value="samples"``).
- A frame's label is ``function (file)``, or ``function (file:line)`` with ``lines=True`` (frames
  of one function at different lines then stay apart); a frame without a file is just
  ``function``. Stacks whose labels coincide are merged.
- ``;`` in a name becomes ``:``, and line breaks become spaces, so every line parses; lone
  surrogates (undecodable file names) become ``\\udcXX`` escapes, so the text is valid UTF-8.
- With ``threads=True`` every stack starts with a ``Thread <tid> <name>`` frame.
- A sample with no Python frames is the one-frame stack ``<no Python frames>``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from aether_perf.analysis.selection import stack_totals
from aether_perf.errors import InvalidArgument
from aether_perf.export.textinput import read_text
from aether_perf.fileio import PathOrText, open_text_output
from aether_perf.model.fileformat import format_error
from aether_perf.model.frame import Frame
from aether_perf.model.profile import Profile

__all__ = ["NO_FRAMES", "collapse", "frame_label", "read", "sanitize", "write"]

NO_FRAMES = "<no Python frames>"
# ";" separates frames; every character str.splitlines breaks at would split the line.
_TRANSLATE = str.maketrans({";": ":", **dict.fromkeys("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029", " ")})


def sanitize(text: str) -> str:
    """``text`` with ``;`` replaced by ``:``, line breaks (any that ``str.splitlines`` knows) by spaces,
    and lone surrogates (from undecodable file names) by ``\\udcXX`` escapes, so it encodes as UTF-8.
    """
    text = text.translate(_TRANSLATE)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def frame_label(frame: Frame, *, lines: bool = False) -> str:
    """``function (file)``, ``function (file:line)`` with ``lines``, or ``function`` with no file."""
    if not frame.file:
        return sanitize(frame.function)
    where = f"{frame.file}:{frame.line}" if lines else frame.file
    return sanitize(f"{frame.function} ({where})")


def collapse(
    profile: Profile,
    *,
    value: Literal["weight", "samples"] = "weight",
    lines: bool = False,
    threads: bool = False,
) -> list[tuple[str, int]]:
    """The ``(folded stack, number)`` pairs :func:`write` writes, sorted by folded stack."""
    if value not in ("weight", "samples"):
        raise InvalidArgument(f"value must be 'weight' or 'samples', got {value!r}")
    labels = [frame_label(frame, lines=lines) for frame in profile.frames]
    folded = [";".join(labels[i] for i in stack) if stack else NO_FRAMES for stack in profile.stacks]
    groups: list[tuple[str, npt.NDArray[np.bool_] | None]] = []
    if threads:
        for tid in profile.thread_ids():
            prefix = sanitize(f"Thread {tid} {profile.threads[tid].name}") + ";"
            groups.append((prefix, profile.tid == tid))
    else:
        groups.append(("", None))
    sums: dict[str, list[int]] = {}
    for prefix, mask in groups:
        totals = stack_totals(profile, mask)
        weights = totals.weight_ns.tolist()
        counts = totals.samples.tolist()
        for stack_id in totals.present():
            entry = sums.setdefault(prefix + folded[stack_id], [0, 0])
            entry[0] += weights[stack_id]
            entry[1] += counts[stack_id]
    rows = []
    for stack, (weight_ns, samples) in sums.items():
        number = (weight_ns + 500) // 1000 if value == "weight" else samples
        if number:
            rows.append((stack, number))
    rows.sort()
    return rows


def write(
    profile: Profile,
    file: PathOrText,
    *,
    value: Literal["weight", "samples"] = "weight",
    lines: bool = False,
    threads: bool = False,
) -> None:
    """Write collapsed stacks (see the module doc) to a path (atomically) or an open text file."""
    rows = collapse(profile, value=value, lines=lines, threads=threads)
    with open_text_output(file) as handle:
        handle.writelines(f"{stack} {number}\n" for stack, number in rows)


def read(file: PathOrText) -> list[tuple[tuple[str, ...], int]]:
    """Parse collapsed stacks: ``(frames root first, number)`` per line, split at the last space.

    Blank lines are skipped; a line without a space before a whole number raises ProfileFormatError.
    """
    label, text = read_text(file)
    result: list[tuple[tuple[str, ...], int]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not (count.isascii() and count.isdigit()):
            raise format_error(label, f"line {number} is not 'frame;frame;... count'")
        result.append((tuple(stack.split(";")), int(count)))
    return result
