from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadlab.api.durations import (
    DurationError,
    format_duration,
    format_timestamp,
    parse_cli_duration,
    parse_duration,
    parse_timestamp,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("2h", timedelta(hours=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("7d", timedelta(days=7)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("0", timedelta(0)),
        ("0m", timedelta(0)),
    ],
)
def test_parse_valid(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "h",
        "1",
        "1.5h",
        "-1h",
        "1m1h",
        "1h1h",
        "1 h",
        " 1h",
        "1h ",
        "1H",
        "10ms",
        "1w",
        "\u0661h",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(DurationError, match="invalid duration"):
        parse_duration(text)


def test_parse_rejects_non_string() -> None:
    with pytest.raises(DurationError, match="must be a string"):
        parse_duration(90)  # type: ignore[arg-type]


def test_parse_rejects_absurdly_long() -> None:
    with pytest.raises(DurationError):
        parse_duration("9" * 1000 + "s")


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=7), "7d"),
        (timedelta(0), "0"),
        (timedelta(days=1, seconds=1), "1d1s"),
    ],
)
def test_format(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@pytest.mark.parametrize("delta", [timedelta(seconds=-1), timedelta(milliseconds=1500)])
def test_format_rejects(delta: timedelta) -> None:
    with pytest.raises(DurationError):
        format_duration(delta)


@given(st.integers(min_value=0, max_value=10**8))
def test_format_parse_roundtrip(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    assert parse_duration(format_duration(delta)) == delta


@given(
    st.tuples(*[st.one_of(st.none(), st.integers(0, 10**4)) for _ in range(4)]),
)
def test_parse_composed(parts: tuple[int | None, ...]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in zip(parts, "dhms", strict=True) if n is not None)
    if not text:
        return
    d, h, m, s = (n or 0 for n in parts)
    assert parse_duration(text) == timedelta(days=d, hours=h, minutes=m, seconds=s)


@given(st.text(max_size=20))
def test_parse_never_crashes_unexpectedly(text: str) -> None:
    try:
        result = parse_duration(text)
    except DurationError:
        return
    assert result >= timedelta(0)
    assert text == "0" or text[-1] in "dhms"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("300", timedelta(seconds=300)),  # plain seconds, as the wait flags always took
        ("2.5", timedelta(seconds=2.5)),
        ("0", timedelta(0)),
    ],
)
def test_cli_durations_take_units_or_seconds(text: str, expected: timedelta) -> None:
    assert parse_cli_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "soon", "-5", "-5m", "1.5h", "1e3", "inf", "nan", " 5", "5 ", ".5", "5.", "1" * 13]
)
def test_cli_durations_reject(text: str) -> None:
    with pytest.raises(DurationError, match="invalid duration"):
        parse_cli_duration(text)


@given(st.integers(min_value=0, max_value=10**8))
def test_cli_durations_agree_with_go_style(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    assert parse_cli_duration(format_duration(delta)) == parse_cli_duration(str(seconds)) == delta


def test_timestamps() -> None:
    moment = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-11-21T10:00:00Z"
    plus_two = datetime(2026, 11, 21, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(plus_two) == "2026-11-21T10:00:00Z"
    assert parse_timestamp("2026-11-21T10:00:00Z") == datetime(2026, 11, 21, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 1, 1))


@pytest.mark.parametrize("text", ["2026-11-21", "2026-11-21T10:00:00", "yesterday", ""])
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp(text)
