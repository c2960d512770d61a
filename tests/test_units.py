"""Durations and sizes: the one parser the API and the CLI share."""

from __future__ import annotations

import math

import pytest
from aether_perf.errors import AetherError, InvalidArgument
from aether_perf.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1ms", 0.001),
        ("250us", 0.00025),
        ("250µs", 0.00025),  # MICRO SIGN
        ("250μs", 0.00025),  # GREEK SMALL LETTER MU
        ("0.5 s", 0.5),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1.5h", 5400.0),
        ("10ns", 1e-8),
        ("0.1ms", 0.0001),  # exact decimal arithmetic: the float nearest 1e-4
        ("  7 ms  ", 0.007),
        ("1MS", 0.001),  # units are case-insensitive; none collide
        (".5s", 0.5),
        ("1e-3", 0.001),  # a bare number is seconds
        ("5", 5.0),
        ("2.5", 2.5),
        (3, 3.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_accepts(value: str | float, seconds: float) -> None:
    result = parse_duration(value)
    assert result == seconds
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "value",
    ["abc", "", "   ", "1 d", "ms", "1..2s", "1 m s", "1ms2", "nan", "inf", "1e99999999999s", float("nan"),
     float("inf"), -math.inf, True, False, None, [1], b"1ms", 10**400],
)  # fmt: skip
def test_parse_duration_rejects_unreadable(value: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_duration(value, name="interval")  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("interval must be a duration")
    assert "ns, us (or µs), ms, s, m (minutes), h" in message
    assert "got " in message


@pytest.mark.parametrize("value", ["0", "0ms", 0, 0.0, "-1ms", -2, "-0.5 s", -1e-9])
def test_parse_duration_rejects_zero_and_negative(value: str | float) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_duration(value, name="duration")
    message = str(caught.value)
    assert message.startswith("duration must be greater than zero")
    assert f"got {value!r}" in message
    assert "ms" in message


def test_parse_duration_range_message() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_duration("10us", name="interval", minimum=50e-6, maximum=1.0)
    assert str(caught.value) == "interval must be between 50us and 1s, got '10us'"
    with pytest.raises(InvalidArgument) as caught:
        parse_duration("2s", name="interval", minimum=50e-6, maximum=1.0)
    assert str(caught.value) == "interval must be between 50us and 1s, got '2s'"
    with pytest.raises(InvalidArgument, match=r"^timeout must be at least 1s, got 0.5$"):
        parse_duration(0.5, name="timeout", minimum=1.0)
    with pytest.raises(InvalidArgument, match=r"^timeout must be at most 1m, got '61s'$"):
        parse_duration("61s", name="timeout", maximum=60.0)
    # An unreadable value names the range too.
    with pytest.raises(InvalidArgument, match=r"between 50us and 1s"):
        parse_duration("fast", name="interval", minimum=50e-6, maximum=1.0)


def test_parse_duration_range_is_inclusive() -> None:
    assert parse_duration("50us", minimum=50e-6, maximum=1.0) == 50e-6
    assert parse_duration("1s", minimum=50e-6, maximum=1.0) == 1.0


def test_invalid_argument_is_a_value_error_and_an_aether_error() -> None:
    with pytest.raises(ValueError):
        parse_duration("x")
    with pytest.raises(AetherError):
        parse_duration("x")


def test_long_values_are_shortened_in_the_message() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_duration("x" * 500)
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1e-9, "1ns"),
        (2.5e-7, "250ns"),
        (0.00025, "250us"),
        (0.001, "1ms"),
        (0.0166666, "16.7ms"),
        (0.1234, "123ms"),
        (0.9996, "1s"),  # rounding carries into the next unit
        (1.5, "1.5s"),
        (1.234, "1.23s"),
        (30, "30s"),
        (90, "1.5m"),
        (3600, "1h"),
        (7200.5, "2h"),
        (-0.002, "-2ms"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [1e-9, 3e-7, 0.00025, 0.001, 0.0125, 1.5, 42.0, 150.0, 9000.0])
def test_format_duration_parses_back(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=5e-3)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("16MiB", 16 * 1024**2),
        ("16mib", 16 * 1024**2),
        ("1.5 GB", 1_500_000_000),
        ("1GiB", 1024**3),
        ("64KiB", 65536),
        ("1kb", 1000),
        ("2MB", 2_000_000),
        ("100B", 100),
        ("4096", 4096),
        ("0", 0),
        (512, 512),
        ("1.5KiB", 1536),
        ("2TiB", 2 * 1024**4),
        ("1TB", 10**12),
    ],
)
def test_parse_size_accepts(value: str | int, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize(
    ("value", "start"),
    [
        ("x", "buffer must be a size"),
        ("16 MiBs", "buffer must be a size"),
        ("1PB", "buffer must be a size"),
        ("", "buffer must be a size"),
        (True, "buffer must be a size"),
        (1.5, "buffer must be a size"),
        ("0.5B", "buffer must be a whole number of bytes"),
        ("-1KiB", "buffer must be zero or more bytes"),
        (-3, "buffer must be zero or more bytes"),
        ("1e30GiB", "buffer must be at most"),
    ],
)
def test_parse_size_rejects(value: object, start: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_size(value, name="buffer")  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith(start)
    assert f"got {value!r}" in message
    assert "\n" not in message


def test_parse_size_range() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_size("1KiB", name="buffer", minimum=64 * 1024, maximum=1024**3)
    assert str(caught.value) == "buffer must be between 64KiB and 1GiB, got '1KiB'"
    assert parse_size("64KiB", minimum=64 * 1024) == 65536


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0B"), (512, "512B"), (1023, "1023B"), (1024, "1KiB"), (1536, "1.5KiB"), (16 * 1024**2, "16MiB"),
     (int(1.25 * 1024**3), "1.25GiB"), (5 * 1024**4, "5TiB"), (-2048, "-2KiB")],
)  # fmt: skip
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text
    if size >= 0:
        assert parse_size(text) == size
