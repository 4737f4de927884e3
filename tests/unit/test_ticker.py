"""ticker.due: what one tick does for a Lab, as a table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from roadlab.api import naming
from roadlab.controller.ticker import NOTHING, Action, Due, due

NOW = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
EARLIER = "2026-11-21T09:00:00Z"  # an hour before NOW
JUST_NOW = "2026-11-21T09:59:50Z"  # ten seconds before NOW
LATER = "2026-11-21T12:00:00Z"
EXPIRED = {"type": "Expired", "status": "True", "reason": "Expired", "lastTransitionTime": EARLIER}


def lab(
    *,
    expires_at: str = LATER,
    conditions: list[dict[str, Any]] | None = None,
    last_check: dict[str, Any] | None = None,
    requested: str | None = None,
    interval: int = 0,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "startedAt": EARLIER,
        "expiresAt": expires_at,
        "conditions": conditions or [],
    }
    if last_check is not None:
        status["lastCheck"] = last_check
    annotations = {naming.ANNOTATION_CHECK_REQUESTED: requested} if requested else {}
    return {
        "metadata": {"name": "a", "annotations": annotations},
        "spec": {"lab": "smoke", "learner": "alice", "validation": {"intervalSeconds": interval}},
        "status": status,
    }


def run(state: str, token: str = "t1", finished_at: str | None = JUST_NOW) -> dict[str, Any]:
    check = {"token": token, "job": "check-a-1", "requestedAt": EARLIER, "state": state}
    if state != "Running" and finished_at:
        check["finishedAt"] = finished_at
    return check


PERIODIC = Due(Action.START_CHECK, token=f"periodic-{int(NOW.timestamp())}")

CASES = [
    ("nothing due", lab(), NOTHING),
    ("past expiresAt", lab(expires_at=EARLIER), Due(Action.EXPIRE)),
    ("expiresAt is now", lab(expires_at="2026-11-21T10:00:00Z"), Due(Action.EXPIRE)),
    ("already marked Expired", lab(expires_at=EARLIER, conditions=[EXPIRED]), NOTHING),
    (
        "expiry comes before a run in flight",
        lab(expires_at=EARLIER, last_check=run("Running")),
        Due(Action.EXPIRE),
    ),
    (
        "a run in flight is followed",
        lab(last_check=run("Running")),
        Due(Action.FOLLOW_CHECK, job="check-a-1", token="t1"),
    ),
    (
        "a run in flight starts no other, requested or periodic",
        lab(last_check=run("Running"), requested="t2", interval=30),
        Due(Action.FOLLOW_CHECK, job="check-a-1", token="t1"),
    ),
    ("a request without a run", lab(requested="t2"), Due(Action.START_CHECK, token="t2")),
    (
        "a request newer than the last run",
        lab(last_check=run("Passed"), requested="t2"),
        Due(Action.START_CHECK, token="t2"),
    ),
    ("a request its run answered", lab(last_check=run("Passed"), requested="t1"), NOTHING),
    ("periodic, never run since the start", lab(interval=60), PERIODIC),
    ("periodic, not yet due", lab(last_check=run("Failed"), interval=60), NOTHING),
    (
        "periodic, due again",
        lab(last_check=run("Failed", finished_at=EARLIER), interval=60),
        PERIODIC,
    ),
    (
        "a request comes before a periodic run",
        lab(interval=60, requested="t2"),
        Due(Action.START_CHECK, token="t2"),
    ),
    (
        "no periodic runs with interval 0",
        lab(last_check=run("Passed", finished_at=EARLIER)),
        NOTHING,
    ),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_due(body: dict[str, Any], expected: Due) -> None:
    assert due(body, NOW) == expected


def test_an_empty_lab_has_nothing_due() -> None:
    assert due({"metadata": {"name": "a"}}, NOW) == NOTHING
