"""What the page shows of a Lab: the status JSON of GET /labs/<lab>/status and the SSE
events, from the Lab as the learner reads it. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from roadlab.api.durations import parse_timestamp
from roadlab.catalog.schema import LabDefinition


def _status(lab: Mapping[str, Any]) -> Mapping[str, Any]:
    return lab.get("status") or {}


def _condition_true(lab: Mapping[str, Any], type_: str) -> bool:
    return any(
        item.get("type") == type_ and item.get("status") == "True"
        for item in _status(lab).get("conditions") or []
    )


def expires_at(lab: Mapping[str, Any]) -> datetime | None:
    value = _status(lab).get("expiresAt")
    if not value:
        return None
    try:
        return parse_timestamp(str(value))
    except ValueError:
        return None


def seconds_left(lab: Mapping[str, Any], now: datetime) -> int | None:
    end = expires_at(lab)
    return None if end is None else max(0, int((end - now).total_seconds()))


def is_expired(lab: Mapping[str, Any], now: datetime) -> bool:
    return _condition_true(lab, "Expired") or seconds_left(lab, now) == 0


def _tasks(lab: Mapping[str, Any], definition: LabDefinition | None) -> list[dict[str, str]]:
    reported = _status(lab).get("tasks") or []
    if reported:
        return [
            {
                "id": str(task.get("id", "")),
                "title": str(task.get("title", "")),
                "state": str(task.get("state", "Pending")),
                "message": str(task.get("message", "")),
            }
            for task in reported
        ]
    # Not provisioned yet: the catalog's tasks, none checked.
    return [
        {"id": task.id, "title": task.title, "state": "Pending", "message": ""}
        for task in (definition.tasks if definition is not None else [])
    ]


def status_view(
    lab: Mapping[str, Any], definition: LabDefinition | None, now: datetime
) -> dict[str, Any]:
    """The status JSON (no hints: they come one at a time from the hint route)."""
    status = _status(lab)
    tasks = _tasks(lab, definition)
    passed = sum(task["state"] == "Passed" for task in tasks)
    total = len(tasks)
    tasks_passed = status.get("tasksPassed")
    tasks_total = status.get("tasksTotal")
    return {
        "progress": status.get("progress") or f"{passed}/{total}",
        "tasksPassed": tasks_passed if isinstance(tasks_passed, int) else passed,
        "tasksTotal": tasks_total if isinstance(tasks_total, int) else total,
        "completed": _condition_true(lab, "Completed"),
        "expired": is_expired(lab, now),
        "expiresAt": status.get("expiresAt"),
        "secondsLeft": seconds_left(lab, now),
        "tasks": tasks,
        "lastCheck": status.get("lastCheck"),
        "lastExtension": status.get("lastExtension"),
    }


def task_hint(lab: Mapping[str, Any], definition: LabDefinition | None, task_id: str) -> str | None:
    """The task's hint: the Lab's status first (the operator fills it in), else the
    catalog's; "" for a task without one; None for no such task."""
    for task in _status(lab).get("tasks") or []:
        if task.get("id") == task_id and task.get("hint"):
            return str(task["hint"])
    known = any(task.get("id") == task_id for task in _status(lab).get("tasks") or [])
    for entry in definition.tasks if definition is not None else []:
        if entry.id == task_id:
            return entry.hint
    return "" if known else None
