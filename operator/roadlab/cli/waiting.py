"""Check and extension requests and waiting: when a wait is over, with which exit code, and
the progress line shown meanwhile. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from roadlab.api import conditions as cond
from roadlab.api import naming
from roadlab.api.extensions import format_request, parse_request
from roadlab.cli.common import (
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    EXIT_OK,
    NO_VALUE,
    PERMANENT_REASONS,
    REASON_DELETED,
    SPINNER_ASCII,
    SPINNER_UNICODE,
    Manifest,
)
from roadlab.cli.output import condition, condition_is_true, lab_status


def new_check_token(now: datetime) -> str:
    """A fresh check-requested value: the UTC time with milliseconds."""
    moment = now.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def check_patch(token: str) -> Manifest:
    return {"metadata": {"annotations": {naming.ANNOTATION_CHECK_REQUESTED: token}}}


def new_extension_token(now: datetime) -> str:
    """A fresh extend-requested token: milliseconds since the epoch (the request's token
    may not contain the ':' of a check token)."""
    return str(int(now.timestamp() * 1000))


def extension_patch(token: str, amount: timedelta) -> Manifest:
    return {
        "metadata": {
            "annotations": {naming.ANNOTATION_EXTEND_REQUESTED: format_request(token, amount)}
        }
    }


def all_tasks_passed(lab: Mapping[str, Any]) -> bool:
    tasks = lab_status(lab).get("tasks") or []
    return all(task.get("state") == "Passed" for task in tasks)


def check_exit_code(lab: Mapping[str, Any]) -> int:
    """0 when the last run passed every task, else 1 (failed, errored or timed-out runs)."""
    last = lab_status(lab).get("lastCheck") or {}
    if last.get("state") in ("Error", "TimedOut", "Failed"):
        return EXIT_FAILURE
    return EXIT_OK if all_tasks_passed(lab) else EXIT_FAILURE


@dataclass(frozen=True)
class WaitStep:
    """Where a wait stands after looking at the Lab once."""

    done: bool
    exit_code: int = EXIT_OK
    reason: str = ""
    message: str = ""


def permanent_failure(lab: Mapping[str, Any]) -> WaitStep | None:
    if condition_is_true(lab, cond.EXPIRED):
        expired = condition(lab, cond.EXPIRED) or {}
        message = str(expired.get("message") or "the lab has expired")
        return WaitStep(True, EXIT_FAILURE, cond.REASON_EXPIRED, message)
    for type_ in (cond.READY, cond.PROVISIONED):
        found = condition(lab, type_)
        if (
            found is not None
            and found.get("status") != cond.TRUE
            and found.get("reason") in PERMANENT_REASONS
        ):
            message = str(found.get("message") or "")
            return WaitStep(True, EXIT_FAILURE, str(found["reason"]), message)
    return None


def gone() -> WaitStep:
    return WaitStep(True, EXIT_NOT_FOUND, REASON_DELETED, "the lab was deleted")


def start_wait_step(lab: Mapping[str, Any] | None) -> WaitStep:
    """Ready=True ends the wait with 0, a permanent failure with 1; all else keeps waiting."""
    if lab is None:
        return gone()
    ready = condition(lab, cond.READY)
    if (
        ready is not None
        and ready.get("status") == cond.TRUE
        and not condition_is_true(lab, cond.EXPIRED)
    ):
        return WaitStep(
            True, EXIT_OK, str(ready.get("reason") or ""), str(ready.get("message") or "")
        )
    failure = permanent_failure(lab)
    if failure is not None:
        return failure
    if ready is None:
        return WaitStep(False, reason="Pending", message="waiting for the operator")
    return WaitStep(
        False, reason=str(ready.get("reason") or ""), message=str(ready.get("message") or "")
    )


def check_wait_step(lab: Mapping[str, Any] | None, token: str) -> WaitStep:
    """Done once status.lastCheck carries our token (or a newer request's) and a finishedAt."""
    if lab is None:
        return gone()
    last = lab_status(lab).get("lastCheck") or {}
    annotations = (lab.get("metadata") or {}).get("annotations") or {}
    newer = annotations.get(naming.ANNOTATION_CHECK_REQUESTED)  # someone asked again since
    accepted = {token, newer} if newer else {token}
    if last.get("token") in accepted and last.get("finishedAt"):
        return WaitStep(True, check_exit_code(lab), str(last.get("state") or ""), "")
    failure = permanent_failure(lab)
    if failure is not None:
        return failure
    if last.get("token") == token:
        return WaitStep(False, reason="Running", message=f"check job {last.get('job')} is running")
    message = "waiting for the operator to start the check"
    if not condition_is_true(lab, cond.READY):
        ready = condition(lab, cond.READY) or {}
        message += f" (lab not ready: {ready.get('reason', 'Pending')})"
    return WaitStep(False, reason="Requested", message=message)


def _requested_extension_token(lab: Mapping[str, Any]) -> str | None:
    annotations = (lab.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(naming.ANNOTATION_EXTEND_REQUESTED)
    try:
        return parse_request(value).token if isinstance(value, str) else None
    except ValueError:
        return None


def extension_wait_step(lab: Mapping[str, Any] | None, token: str) -> WaitStep:
    """Done once status.lastExtension answers our token: 0 when Accepted, 1 when Refused,
    and 1 when a newer request replaced ours before the operator saw it."""
    if lab is None:
        return gone()
    last = lab_status(lab).get("lastExtension") or {}
    state, message = str(last.get("state") or ""), str(last.get("message") or "")
    if last.get("token") == token and state:
        return WaitStep(True, EXIT_OK if state == "Accepted" else EXIT_FAILURE, state, message)
    newer = _requested_extension_token(lab)
    if newer is not None and newer != token and last.get("token") == newer:
        return WaitStep(
            True, EXIT_FAILURE, "Superseded", "a newer extension request replaced this one"
        )
    failure = permanent_failure(lab)
    # Only expiry ends it: the operator answers extension requests of labs that failed.
    if failure is not None and failure.reason == cond.REASON_EXPIRED:
        return failure
    return WaitStep(False, reason="Requested", message="waiting for the operator to answer")


def delete_wait_step(lab: Mapping[str, Any] | None) -> WaitStep:
    if lab is None:
        return WaitStep(True, EXIT_OK, REASON_DELETED, "")
    namespace = lab_status(lab).get("namespace") or NO_VALUE
    return WaitStep(False, reason="Deleting", message=f"cleaning up namespace {namespace}")


def spinner_line(  # noqa: PLR0917 - one value per piece of the line
    tick: int, reason: str, message: str, elapsed: float, width: int, unicode: bool
) -> str:
    """One line of the live display, cut to the terminal width (the elapsed time stays)."""
    frames = SPINNER_UNICODE if unicode else SPINNER_ASCII
    head = f"{frames[tick % len(frames)]} {reason}"
    tail = f" ({int(elapsed)}s)"
    text = f"{head}: {message}" if message else head
    room = max(width - 1 - len(tail), len(head))
    if len(text) > room:
        text = text[: max(room - 3, 0)] + "..."
    return text + tail


def plain_progress_line(reason: str, message: str, elapsed: float) -> str:
    text = f"{reason}: {message}" if message else reason
    return f"[{int(elapsed):>4}s] {text}"
