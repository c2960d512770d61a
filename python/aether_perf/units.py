"""Durations and sizes: one parser for the API and the CLI.

``parse_duration`` takes seconds (a number) or a string with a unit and returns seconds;
``parse_size`` takes bytes or a string with a unit and returns bytes. Both raise
:class:`~aether_perf.errors.InvalidArgument` with one line that names the option, the value it got,
the accepted units and the accepted range. ``format_duration`` and ``format_size`` write the short
human form back ("1ms", "250us", "1.5s", "16MiB"), which ``parse_*`` accept again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from aether_perf.errors import InvalidArgument

__all__ = ["format_duration", "format_size", "parse_duration", "parse_size"]

# Unit -> seconds, as exact decimals so that "0.1ms" is the float nearest to 1e-4.
_DURATION_UNITS: dict[str, Decimal] = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "µs": Decimal("1e-6"),  # MICRO SIGN
    "μs": Decimal("1e-6"),  # GREEK SMALL LETTER MU
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
    "": Decimal(1),
}
_DURATION_UNITS_TEXT = "ns, us (or µs), ms, s, m (minutes), h; a bare number means seconds"

_SIZE_UNITS: dict[str, int] = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
    "tb": 1000**4,
    "tib": 1024**4,
}
_MAX_SIZE = 2**63 - 1
_SIZE_UNITS_TEXT = "B, KB, KiB, MB, MiB, GB, GiB, TB, TiB; a bare number means bytes"

_NUMBER_WITH_UNIT = re.compile(
    r"""^\s*
        (?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
        \s*
        (?P<unit>[^\W\d_]*)
        \s*$""",
    re.VERBOSE,
)


def _split(value: str) -> tuple[Decimal, str] | None:
    match = _NUMBER_WITH_UNIT.match(value)
    if match is None:
        return None
    try:
        number = Decimal(match.group("number"))
    except InvalidOperation:  # pragma: no cover - the regex only lets valid decimals through
        return None
    return number, match.group("unit")


def _range_text(minimum: float | None, maximum: float | None, fmt: Callable[[float], str]) -> str:
    if minimum is not None and maximum is not None:
        return f"between {fmt(minimum)} and {fmt(maximum)}"
    if minimum is not None:
        return f"at least {fmt(minimum)}"
    if maximum is not None:
        return f"at most {fmt(maximum)}"
    return ""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fmt_size_bound(value: float) -> str:
    return format_size(int(value))


def parse_duration(
    value: str | float | int,
    *,
    name: str = "duration",
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """Return the duration ``value`` in seconds.

    ``value`` is a number of seconds or a string: a number (decimals and exponents allowed) with an
    optional unit ``ns``, ``us``/``µs``, ``ms``, ``s``, ``m`` (minutes) or ``h``, spaces allowed
    ("1ms", "250us", "0.5 s", "2m"); a bare number means seconds. The result must be finite and
    greater than zero and, when given, within ``[minimum, maximum]`` (seconds, inclusive).
    Anything else raises :class:`InvalidArgument` naming ``name``.
    """
    bounds = _range_text(minimum, maximum, format_duration)
    shown = _shown(value)

    def bad(what: str) -> InvalidArgument:
        return InvalidArgument(f"{name} must be {what}, got {shown}")

    def unreadable() -> InvalidArgument:
        where = f" {bounds}" if bounds else ""
        return bad(f"a duration{where}, such as '1ms', '250us' or '30s' (units: {_DURATION_UNITS_TEXT})")

    seconds: float
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise unreadable()
    if isinstance(value, str):
        parts = _split(value)
        if parts is None:
            raise unreadable()
        number, unit = parts
        factor = _DURATION_UNITS.get(unit.lower())
        if factor is None:
            raise unreadable()
        try:
            seconds = float(number * factor)
        except ArithmeticError:  # decimal overflow: an absurd exponent
            raise unreadable() from None
    else:
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float
            raise unreadable() from None
    if math.isnan(seconds) or math.isinf(seconds):
        raise unreadable()
    if seconds <= 0:
        raise bad(f"greater than zero{' and ' + bounds if bounds else ''} (units: {_DURATION_UNITS_TEXT})")
    if (minimum is not None and seconds < minimum) or (maximum is not None and seconds > maximum):
        raise bad(bounds)
    return seconds


def parse_size(
    value: str | int,
    *,
    name: str = "size",
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """Return the size ``value`` in bytes.

    ``value`` is a whole number of bytes or a string: a number with an optional unit ``B``, ``KB``
    (1000), ``KiB`` (1024), ``MB``, ``MiB``, ``GB``, ``GiB``, ``TB``, ``TiB`` (any case), spaces allowed
    ("16MiB", "1.5 GB", "4096"). The result must be a whole, non-negative number of bytes and, when
    given, within ``[minimum, maximum]``. Anything else raises :class:`InvalidArgument`.
    """
    bounds = _range_text(minimum, maximum, _fmt_size_bound)
    shown = _shown(value)

    def bad(what: str) -> InvalidArgument:
        return InvalidArgument(f"{name} must be {what}, got {shown}")

    def unreadable() -> InvalidArgument:
        where = f" {bounds}" if bounds else ""
        return bad(f"a size{where}, such as '4096', '64KiB' or '16MiB' (units: {_SIZE_UNITS_TEXT})")

    amount: Decimal
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise unreadable()
    if isinstance(value, str):
        parts = _split(value)
        if parts is None:
            raise unreadable()
        number, unit = parts
        factor = _SIZE_UNITS.get(unit.lower() or "b")
        if factor is None:
            raise unreadable()
        try:
            amount = number * factor
        except ArithmeticError:  # decimal overflow: an absurd exponent
            raise unreadable() from None
    else:
        amount = Decimal(value)
    if amount < 0:
        raise bad(f"zero or more bytes{' and ' + bounds if bounds else ''} (units: {_SIZE_UNITS_TEXT})")
    if amount != amount.to_integral_value():
        raise bad(f"a whole number of bytes (units: {_SIZE_UNITS_TEXT})")
    if amount > _MAX_SIZE:
        raise bad(f"at most {format_size(_MAX_SIZE)} (the largest 64-bit size)")
    size = int(amount)
    if (minimum is not None and size < minimum) or (maximum is not None and size > maximum):
        raise bad(bounds)
    return size


def _number(value: float) -> str:
    """At most three significant digits, no trailing zeros, never an exponent (value < 1000)."""
    if value >= 100:
        text = f"{value:.0f}"
    elif value >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_duration(seconds: float) -> str:
    """Short human form of a duration in seconds: "1ms", "250us", "1.5s", "2.5m", "3h"."""
    if math.isnan(seconds):
        return "nan"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if math.isinf(seconds):
        return "inf"
    if seconds == 0:
        return "0s"
    steps = (("ns", 1e-9, 1e-6), ("us", 1e-6, 1e-3), ("ms", 1e-3, 1.0), ("s", 1.0, 60.0), ("m", 60.0, 3600.0))
    for unit, scale, upper in steps:
        if seconds < upper:
            text = _number(seconds / scale)
            # Rounding may carry into the next unit ("999.7ms" -> "1000ms" -> "1s").
            if float(text) * scale < upper:
                return text + unit
    hours = seconds / 3600.0
    return (_number(hours) if hours < 1000 else f"{hours:.0f}") + "h"


def format_size(n: int) -> str:
    """Short human form of a size in bytes, binary units: "512B", "1.5KiB", "16MiB"."""
    if n < 0:
        return "-" + format_size(-n)
    if n < 1024:
        return f"{n}B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024.0
        if value < 1000 or unit == "TiB":
            text = _number(value) if value < 1000 else f"{value:.0f}"
            return text + unit
    raise AssertionError("unreachable")  # pragma: no cover
