"""Extending a lab's time: the learner's request, the limits, and the pure decision.

The learner sets the annotation roadlab.dev/extend-requested to "<token>:<duration>"; the
operator grants it when the lab's limits allow (a number of extensions, a longest total
time) and records the outcome in status.lastExtension, whatever it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from roadlab.api.durations import DurationError, format_duration, parse_duration
from roadlab.api.lab import ExtensionState

# A request token (also of check requests): letters, digits and -_.: (a timestamp fits).
TOKEN_PATTERN = r"[A-Za-z0-9][-A-Za-z0-9_.:]{0,62}"
# The duration never holds a ':', so the token ends at the last one.
_REQUEST = re.compile(rf"^(?P<token>{TOKEN_PATTERN}):(?P<duration>[0-9dhms]{{1,16}})$")
# What the admission policy checks (charts/roadlab/templates/lab-policies.yaml), in RE2.
CHECK_TOKEN_RE2 = rf"^{TOKEN_PATTERN}$"
EXTEND_REQUEST_RE2 = rf"^{TOKEN_PATTERN}:[0-9dhms]{{1,16}}$"
MIN_EXTENSION = timedelta(minutes=1)


class ExtensionRequestError(ValueError):
    pass


@dataclass(frozen=True)
class ExtensionRequest:
    token: str
    amount: timedelta


def format_request(token: str, amount: timedelta) -> str:
    return f"{token}:{format_duration(amount)}"


def parse_request(value: str) -> ExtensionRequest:
    match = _REQUEST.fullmatch(value.strip())
    if match is None:
        raise ExtensionRequestError(
            f"an extension request is '<token>:<duration>', e.g. '1764629000:30m', not {value!r}"
        )
    try:
        amount = parse_duration(match["duration"])
    except DurationError as error:
        raise ExtensionRequestError(str(error)) from error
    return ExtensionRequest(match["token"], amount)


@dataclass(frozen=True)
class ExtensionLimits:
    """How far a lab may be extended: count of extensions, and the longest total time."""

    max_extensions: int
    max_total: timedelta


@dataclass(frozen=True)
class ExtensionDecision:
    state: ExtensionState
    message: str
    granted: timedelta = timedelta(0)


def decide(
    amount: timedelta, ttl: timedelta, extended: timedelta, used: int, limits: ExtensionLimits
) -> ExtensionDecision:
    """Grant `amount` more time to a lab of `ttl` already extended by `extended` in `used`
    extensions, within `limits`; an amount beyond the longest total is granted up to it."""
    if amount < MIN_EXTENSION:
        return ExtensionDecision(
            "Refused", f"an extension is at least {format_duration(MIN_EXTENSION)}"
        )
    if used >= limits.max_extensions:
        allowed = limits.max_extensions
        return ExtensionDecision(
            "Refused",
            f"no extensions left: this lab allows {allowed}, and {used} were used"
            if allowed
            else "this lab cannot be extended",
        )
    room = limits.max_total - ttl - extended
    if room < MIN_EXTENSION:
        return ExtensionDecision(
            "Refused",
            f"the lab already has its longest time, {format_duration(limits.max_total)}",
        )
    granted = min(amount, room)
    left = limits.max_extensions - used - 1
    capped = f" (capped at the longest time, {format_duration(limits.max_total)})"
    return ExtensionDecision(
        "Accepted",
        f"extended by {format_duration(granted)}"
        + (capped if granted < amount else "")
        + f"; {left} extension{'s' if left != 1 else ''} left",
        granted,
    )
