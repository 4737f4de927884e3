"""Extension requests: the wire format, the limits, and the status patch that answers one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from roadlab.api import extensions
from roadlab.api.extensions import ExtensionLimits, decide, format_request, parse_request
from roadlab.controller.extending import plan_extension

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
RUNNING = {
    "startedAt": "2026-12-01T09:00:00Z",
    "expiresAt": "2026-12-01T11:00:00Z",
    "conditions": [
        {"type": "Provisioned", "status": "True", "reason": "Provisioned",
         "message": "", "lastTransitionTime": "2026-12-01T09:00:00Z"},
        {"type": "Expired", "status": "False", "reason": "WithinTTL",
         "message": "", "lastTransitionTime": "2026-12-01T09:00:00Z"},
    ],
}  # fmt: skip
SPEC = {"lab": "smoke", "learner": "alice", "ttl": "2h"}


def test_a_request_round_trips_and_its_token_may_be_a_timestamp() -> None:
    value = format_request("2026-12-01T10:00:00.123Z", timedelta(minutes=30))
    assert value == "2026-12-01T10:00:00.123Z:30m"
    assert parse_request(value) == extensions.ExtensionRequest(
        "2026-12-01T10:00:00.123Z", timedelta(minutes=30)
    )


@pytest.mark.parametrize("value", ["", "30m", "tok:", ":30m", "tok:30x", "tok:1h:", "a b:1h"])
def test_malformed_requests_are_refused_with_the_expected_shape(value: str) -> None:
    with pytest.raises(extensions.ExtensionRequestError, match=r"<token>:<duration>|duration"):
        parse_request(value)


def test_the_chart_policy_checks_the_same_shapes() -> None:
    policy = (REPO / "charts/roadlab/templates/lab-policies.yaml").read_text()
    assert f"matches('{extensions.CHECK_TOKEN_RE2}')" in policy
    assert f"matches('{extensions.EXTEND_REQUEST_RE2}')" in policy


M30, H, ZERO = timedelta(minutes=30), timedelta(hours=1), timedelta(0)
LIMITS = ExtensionLimits(max_extensions=2, max_total=timedelta(hours=4))


@pytest.mark.parametrize(
    ("amount", "extended", "used", "state", "granted", "says"),
    [
        (M30, ZERO, 0, "Accepted", M30, "1 extension left"),
        (H * 3, ZERO, 0, "Accepted", H * 2, "capped"),
        (M30, H, 1, "Accepted", M30, "0 extensions left"),
        (M30, H, 2, "Refused", ZERO, "no extensions left"),
        (M30, H * 2, 1, "Refused", ZERO, "longest time, 4h"),
        (timedelta(seconds=30), ZERO, 0, "Refused", ZERO, "at least 1m"),
    ],
)  # fmt: skip
def test_decide_within_the_limits(  # noqa: PLR0917 - one table row
    amount: timedelta, extended: timedelta, used: int, state: str, granted: timedelta, says: str
) -> None:
    decision = decide(amount, timedelta(hours=2), extended, used, LIMITS)
    assert (decision.state, decision.granted) == (state, granted)
    assert says in decision.message


def test_a_lab_that_allows_no_extensions_says_so() -> None:
    decision = decide(timedelta(minutes=30), timedelta(hours=2), timedelta(0), 0,
                      ExtensionLimits(0, timedelta(hours=4)))  # fmt: skip
    assert (decision.state, decision.message) == ("Refused", "this lab cannot be extended")


def test_an_accepted_extension_moves_the_expiry_and_counts() -> None:
    patch = plan_extension(SPEC, RUNNING, "t1:30m", NOW, 1)
    assert patch is not None
    assert patch["expiresAt"] == "2026-12-01T11:30:00Z"
    assert (patch["extendedBy"], patch["extensionsUsed"]) == ("30m", 1)
    assert patch["lastExtension"]["state"] == "Accepted"
    assert patch["lastExtension"]["token"] == "t1"
    expired = next(c for c in patch["conditions"] if c["type"] == "Expired")
    assert "11:30:00" in expired["message"]
    # The next one builds on it; the same token again is already answered.
    status = {**RUNNING, **patch}
    assert plan_extension(SPEC, status, "t1:30m", NOW, 1) is None
    second = plan_extension(SPEC, status, "t2:1h", NOW, 1)
    assert second is not None
    assert (second["expiresAt"], second["extendedBy"]) == ("2026-12-01T12:30:00Z", "1h30m")


def test_the_instructors_limits_come_from_the_spec() -> None:
    spec = {**SPEC, "extensions": {"maxExtensions": 0}}
    patch = plan_extension(spec, RUNNING, "t1:30m", NOW, 1)
    assert patch == {
        "lastExtension": {
            "token": "t1", "requested": "30m", "state": "Refused",
            "message": "this lab cannot be extended", "at": "2026-12-01T10:00:00Z",
        }
    }  # fmt: skip
    capped = plan_extension({**SPEC, "extensions": {"maxTTL": "2h15m"}}, RUNNING, "t:1h", NOW, 1)
    assert capped is not None
    assert capped["expiresAt"] == "2026-12-01T11:15:00Z"


def test_an_expired_or_unprovisioned_lab_is_not_extended() -> None:
    expired = {**RUNNING, "conditions": [
        {**RUNNING["conditions"][0]},  # type: ignore[dict-item]
        {"type": "Expired", "status": "True", "reason": "Expired", "message": "",
         "lastTransitionTime": "2026-12-01T09:00:00Z"},
    ]}  # fmt: skip
    patch = plan_extension(SPEC, expired, "t1:30m", NOW, 1)
    assert patch is not None
    assert set(patch) == {"lastExtension"}
    assert patch["lastExtension"]["state"] == "Refused"
    assert plan_extension(SPEC, {}, "t1:30m", NOW, 1)["lastExtension"]["state"] == "Refused"  # type: ignore[index]


def test_a_malformed_request_is_answered_not_retried() -> None:
    patch = plan_extension(SPEC, RUNNING, "soon please", NOW, 1)
    assert patch is not None
    assert patch["lastExtension"]["state"] == "Refused"
    assert "<token>:<duration>" in patch["lastExtension"]["message"]
    assert plan_extension(SPEC, {**RUNNING, **patch}, "soon please", NOW, 1) is None
