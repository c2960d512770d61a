"""Reading a whole text input (a path or an open stream) for the exporters' readers.

Every reader reports an unreadable input the same way: one ProfileFormatError line naming the file.
"""

from __future__ import annotations

import json
from typing import Any

from aether_perf.fileio import PathOrText, describe, open_text_input
from aether_perf.model.fileformat import format_error

__all__ = ["read_json", "read_text"]


def read_text(file: PathOrText) -> tuple[str, str]:
    """Return ``(label, text)``: the name to show in errors, and the whole content."""
    label = describe(file)
    try:
        with open_text_input(file) as handle:
            return label, handle.read()
    except FileNotFoundError:
        raise format_error(label, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise format_error(label, f"cannot read it: {exc}") from None


def read_json(file: PathOrText, what: str) -> tuple[str, Any]:
    """Return ``(label, data)``; ``what`` names the expected format in the not-JSON error."""
    label, text = read_text(file)
    try:
        return label, json.loads(text)
    except ValueError as exc:
        raise format_error(label, f"not {what}: not JSON ({exc})") from None
