"""The check result document: written by the checker, read back by the operator.

The checker's container writes one small JSON document to its termination log:

    {"version": 1, "results": [{"id": "scale-web", "state": "Passed",
                                "message": "...", "evidence": {"replicas": 2}}]}

The kubelet keeps at most 4096 bytes of it, so encode_results shrinks evidence and
messages until it fits. The operator treats what comes back as untrusted input (the
check pod runs the operator's image, but the document crosses the kubelet and the API):
parse_check_output turns anything unexpected into Error results rather than raising.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from roadlab.api.durations import format_timestamp
from roadlab.api.lab import TaskResult

RESULT_VERSION = 1
TERMINATION_MESSAGE_LIMIT = 4096  # bytes the kubelet keeps of a termination message
MAX_MESSAGE = 512
MAX_EVIDENCE_KEYS = 12
MAX_EVIDENCE_KEY = 64
MAX_EVIDENCE_STRING = 256
STATES = ("Passed", "Failed", "Error")
ELLIPSIS = "..."
INT64 = -(2**63)

ResultState = Literal["Passed", "Failed", "Error"]
Scalar = str | int | float | bool

NO_RESULT = "the check produced no result"
OVERSIZED = "the check result was oversized"
MALFORMED = "the check result was malformed"
MISSING = "no result for this task"


@dataclass(frozen=True)
class TaskOutcome:
    """One task's result as the checker reports it."""

    id: str
    state: ResultState
    message: str
    evidence: Mapping[str, Scalar] = field(default_factory=dict)


# --- checker side ---------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[:limit]
    return text[: limit - len(ELLIPSIS)] + ELLIPSIS


def _scalar(value: Scalar, string_cap: int) -> Scalar:
    if isinstance(value, str):
        return _cut(value, string_cap)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Infinity
    return value


def _entry(outcome: TaskOutcome, message_cap: int, keys: int, string_cap: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": outcome.id,
        "state": outcome.state,
        "message": _cut(outcome.message, message_cap),
    }
    evidence: dict[str, Scalar] = {}
    for key, value in list(outcome.evidence.items())[:keys]:
        evidence[_cut(str(key), MAX_EVIDENCE_KEY)] = _scalar(value, string_cap)
    if evidence:
        entry["evidence"] = evidence
    return entry


# (message chars, evidence keys, evidence string chars), tried in order until it fits.
_SHRINK_STEPS = (
    (MAX_MESSAGE, MAX_EVIDENCE_KEYS, MAX_EVIDENCE_STRING),
    (MAX_MESSAGE, MAX_EVIDENCE_KEYS, 64),
    (MAX_MESSAGE, 6, 32),
    (256, 6, 32),
    (256, 0, 0),
    (128, 0, 0),
    (64, 0, 0),
    (0, 0, 0),
)


def _dump(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_results(
    results: Sequence[TaskOutcome], limit: int = TERMINATION_MESSAGE_LIMIT, error: str = ""
) -> str:
    """The result document, at most `limit` UTF-8 bytes.

    Evidence is trimmed first, then messages; if even bare results do not fit, trailing
    results are dropped (the operator reports those tasks as having no result).
    `error` is an optional note for the whole run (e.g. a malformed spec).
    """
    head: dict[str, Any] = {"version": RESULT_VERSION}
    if error:
        head["error"] = _cut(error, MAX_MESSAGE)
    text = ""
    for message_cap, keys, string_cap in _SHRINK_STEPS:
        entries = [_entry(r, message_cap, keys, string_cap) for r in results]
        text = _dump({**head, "results": entries})
        if len(text.encode()) <= limit:
            return text
    head["error"] = _cut(error or "results were dropped to fit the size limit", 128)
    while entries:
        entries.pop()
        text = _dump({**head, "results": entries})
        if len(text.encode()) <= limit:
            return text
    return _dump({"version": RESULT_VERSION, "results": []})


# --- operator side --------------------------------------------------------------------------


def _errors(task_ids: Sequence[str], message: str, now: datetime) -> list[TaskResult]:
    checked_at = format_timestamp(now)
    return [
        TaskResult(id=task_id, state="Error", message=message, checked_at=checked_at)
        for task_id in task_ids
    ]


class _Malformed(ValueError):  # noqa: N818 - internal, always reported as "malformed"
    pass


def _reject_constant(name: str) -> Any:
    raise _Malformed(f"non-finite number {name}")


def _clean_text(text: str, limit: int) -> str:
    cleaned = "".join(ch if ch.isprintable() or ch == "\n" else " " for ch in text[: limit * 2])
    return _cut(cleaned, limit)


def _evidence(raw: object) -> dict[str, Scalar] | None:
    if not isinstance(raw, dict):
        return None
    evidence: dict[str, Scalar] = {}
    for key, value in raw.items():
        if len(evidence) >= MAX_EVIDENCE_KEYS:
            break
        if not isinstance(value, str | int | float | bool):
            continue  # nested or null values are not evidence
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if isinstance(value, int) and not isinstance(value, bool) and not INT64 <= value < -INT64:
            continue  # the API server stores integers as int64
        key_text = _clean_text(str(key), MAX_EVIDENCE_KEY)
        if not key_text:
            continue
        evidence[key_text] = (
            _clean_text(value, MAX_EVIDENCE_STRING) if isinstance(value, str) else value
        )
    return evidence or None


def _document(text: str) -> tuple[list[dict[str, Any]], str]:
    """(results, run-level error note) of a well-formed document, else _Malformed."""
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _Malformed("not valid JSON") from exc
    if not isinstance(document, dict):
        raise _Malformed(f"expected a JSON object, got {type(document).__name__}")
    version = document.get("version")
    if type(version) is not int or version != RESULT_VERSION:
        raise _Malformed(f"unsupported version {str(version)[:16]!r}")
    results = document.get("results")
    if not isinstance(results, list):
        raise _Malformed("results is not a list")
    for index, entry in enumerate(results):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise _Malformed(f"results[{index}] is not an object with a string id")
    error = document.get("error")
    return results, _clean_text(error, 200) if isinstance(error, str) else ""


def _task_result(entry: Mapping[str, Any], checked_at: str) -> TaskResult:
    task_id = entry["id"]
    state = entry.get("state")
    message = entry.get("message", "")
    if not isinstance(state, str) or state not in STATES:
        shown = _clean_text(str(state), 32) if isinstance(state, str) else type(state).__name__
        return TaskResult(
            id=task_id,
            state="Error",
            message=f"{MALFORMED}: state {shown!r} is not one of {', '.join(STATES)}",
            checked_at=checked_at,
        )
    if not isinstance(message, str):
        return TaskResult(
            id=task_id,
            state="Error",
            message=f"{MALFORMED}: message is not a string",
            checked_at=checked_at,
        )
    return TaskResult(
        id=task_id,
        state=state,
        message=_clean_text(message, MAX_MESSAGE),
        evidence=_evidence(entry.get("evidence")),
        checked_at=checked_at,
    )


def parse_check_output(
    text: str | None,
    task_ids: Sequence[str],
    now: datetime,
    limit: int = TERMINATION_MESSAGE_LIMIT,
) -> list[TaskResult]:
    """One TaskResult per task id, in task_ids order, from a check container's message.

    Never raises on bad input: no text, oversized text, malformed JSON or shapes all
    become Error results that say so. Results for unknown ids are ignored.
    """
    if text is None or not text.strip():
        return _errors(task_ids, NO_RESULT, now)
    if len(text) > limit or len(text.encode("utf-8", errors="replace")) > limit:
        return _errors(task_ids, OVERSIZED, now)
    try:
        entries, document_error = _document(text)
    except _Malformed as exc:
        return _errors(task_ids, f"{MALFORMED}: {exc}", now)
    checked_at = format_timestamp(now)
    wanted = set(task_ids)
    by_id: dict[str, TaskResult] = {}
    duplicated: set[str] = set()
    for entry in entries:
        task_id = entry["id"]
        if task_id not in wanted:
            continue
        if task_id in by_id:
            duplicated.add(task_id)
            continue
        by_id[task_id] = _task_result(entry, checked_at)
    results = []
    for task_id in task_ids:
        if task_id in duplicated:
            message = f"{MALFORMED}: more than one result for this task"
            results.append(
                TaskResult(id=task_id, state="Error", message=message, checked_at=checked_at)
            )
        elif task_id in by_id:
            results.append(by_id[task_id])
        else:
            message = MISSING + (f" ({document_error})" if document_error else "")
            results.append(
                TaskResult(id=task_id, state="Error", message=message, checked_at=checked_at)
            )
    return results


def timed_out_results(
    task_ids: Sequence[str], deadline_seconds: int, now: datetime
) -> list[TaskResult]:
    """Every task Error: the check Job hit its deadline before reporting."""
    return _errors(task_ids, f"the check did not finish within {deadline_seconds} s", now)
