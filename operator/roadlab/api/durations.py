"""Go-style durations ("1h30m") and RFC 3339 timestamps.

Durations accept the units d, h, m, s, each at most once and largest first, with
integer amounts. That is stricter than Go (no fractions, no ms/us/ns, no reordering)
so that every accepted string has one obvious meaning; "d" is accepted because lab
TTLs of several days are common and "168h" is unfriendly.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# Also used by the CRD's CEL rule (kept textually identical, see tests/unit/test_crd.py).
DURATION_PATTERN = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
_DURATION_RE = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_MAX_DURATION_LEN = 32  # far beyond any sane TTL; bounds int() work on hostile input
_PLAIN_SECONDS_RE = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?")


class DurationError(ValueError):
    """A duration string is malformed."""


def parse_duration(text: str) -> timedelta:
    """Parse "90m", "2h", "1h30m", "45s", "7d" (or "0") into a timedelta."""
    if not isinstance(text, str):
        raise DurationError(f"duration must be a string like '1h30m', got {type(text).__name__}")
    if text == "0":
        return timedelta(0)
    match = _DURATION_RE.fullmatch(text) if len(text) <= _MAX_DURATION_LEN else None
    if not text or match is None:
        raise DurationError(
            f"invalid duration {text!r}: expected integer amounts of d, h, m, s in that "
            "order, e.g. '90m', '2h', '1h30m', '7d'"
        )
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_cli_duration(text: str) -> timedelta:
    """A command-line duration: Go-style like parse_duration ("5m", "1h30m", "90s", "2h"),
    or a plain number of seconds ("300", "2.5"), which the wait flags took before units."""
    if isinstance(text, str) and _PLAIN_SECONDS_RE.fullmatch(text):
        return timedelta(seconds=float(text))
    return parse_duration(text)


def format_duration(delta: timedelta) -> str:
    """Inverse of parse_duration for whole, non-negative seconds ("1d2h", "90m" -> "1h30m")."""
    total = int(delta.total_seconds())
    if total < 0 or timedelta(seconds=total) != delta:
        raise DurationError(f"cannot format {delta!r}: only whole non-negative seconds")
    if total == 0:
        return "0"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z suffix and second precision, as Kubernetes writes it."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (with Z or an offset) into an aware datetime."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid RFC 3339 timestamp {text!r}") from exc
    if moment.tzinfo is None or "T" not in text:
        raise ValueError(f"invalid RFC 3339 timestamp {text!r}: needs a date, time and offset")
    return moment
