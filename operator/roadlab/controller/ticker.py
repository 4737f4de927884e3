"""The ticker's decision for one Lab, made from its last watched body and the time alone.

ticking.tick_lab carries it out; kept pure so that every case is a row of a table test.
Order matters: an expired Lab is only expired, and a Lab with a run in flight starts none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from roadlab.api import conditions as cond
from roadlab.api.durations import parse_timestamp
from roadlab.api.lab import LabStatus
from roadlab.controller import checks
from roadlab.controller.plan import parse_status


class Action(Enum):
    NOTHING = "nothing"
    EXPIRE = "expire"  # past expiresAt and not yet marked Expired: reconcile to expire it
    FOLLOW_CHECK = "follow-check"  # a run is in flight: read its Job (a lost Job runs again)
    START_CHECK = "start-check"  # a request without a run yet, or a periodic run, is due


@dataclass(frozen=True)
class Due:
    action: Action
    job: str = ""  # FOLLOW_CHECK: the running check's Job
    token: str = ""  # FOLLOW_CHECK and START_CHECK: the run's request token


NOTHING = Due(Action.NOTHING)


def expiry_due(status: LabStatus, now: datetime) -> bool:
    if not status.expires_at or cond.is_true(status.conditions, cond.EXPIRED):
        return False
    return parse_timestamp(status.expires_at) <= now


def due(body: Mapping[str, Any], now: datetime) -> Due:
    """What a tick does for the Lab `body` at `now`."""
    status = parse_status(body.get("status"))
    if expiry_due(status, now):
        return Due(Action.EXPIRE)
    last = status.last_check
    if last is not None and last.state == "Running":
        return Due(Action.FOLLOW_CHECK, job=last.job, token=last.token)
    spec = body.get("spec") or {}
    interval = int((spec.get("validation") or {}).get("intervalSeconds") or 0)
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    token = checks.pending_request(annotations, status) or checks.periodic_token(
        status, interval, now
    )
    return Due(Action.START_CHECK, token=token) if token else NOTHING
