"""The task board of `kubectl lab watch`: what it shows of a Lab, and when the watch ends.
Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from roadlab.api import conditions as cond
from roadlab.cli.common import EXIT_OK, NO_VALUE
from roadlab.cli.output import (
    condition_is_true,
    condition_summary,
    format_table,
    lab_name,
    lab_spec,
    lab_status,
    optional_timestamp,
    relative_or_dash,
    short_duration,
    task_mark,
)
from roadlab.cli.waiting import WaitStep, gone, permanent_failure

BAR_WIDTH = 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
REASON_COMPLETED = "Completed"


def time_left(lab: Mapping[str, Any], now: datetime | None) -> str:
    """ "1h52m left" (None for now: the expiry itself, so that the text stays put)."""
    if condition_is_true(lab, cond.EXPIRED):
        return "expired"
    expires_at = lab_status(lab).get("expiresAt")
    expiry = optional_timestamp(expires_at)
    if expiry is None:
        return "no expiry yet"
    if now is None:
        return f"expires {expires_at}"
    seconds = (expiry - now).total_seconds()
    return f"{short_duration(seconds)} left" if seconds > 0 else "expiring now"


def task_counts(lab: Mapping[str, Any]) -> tuple[int, int]:
    """(passed, total): the operator's counts, else the reported tasks'."""
    status = lab_status(lab)
    tasks = status.get("tasks") or []
    passed = status.get("tasksPassed")
    total = status.get("tasksTotal")
    if not isinstance(passed, int):
        passed = sum(1 for task in tasks if task.get("state") == "Passed")
    if not isinstance(total, int):
        total = len(tasks)
    return passed, total


def progress_bar(passed: int, total: int, unicode: bool, width: int = BAR_WIDTH) -> str:
    filled = round(width * passed / total) if total > 0 else 0
    full, empty = ("█", "░") if unicode else ("#", "-")
    return f"[{full * filled}{empty * (width - filled)}]"


def _first_line(text: object) -> str:
    """The first line of a message, without the control characters that would drive the
    terminal (a check's message may quote what the learner wrote)."""
    lines = str(text or "").strip().splitlines()
    return _CONTROL.sub("", lines[0]) if lines else ""


def format_board(
    lab: Mapping[str, Any], now: datetime | None, unicode: bool, footer: str = ""
) -> str:
    """The board: the lab and its progress, one row per task (mark, id, state, the first
    line of its message), the last check; times relative to now (None: none, so that two
    boards of an unchanged Lab are equal)."""
    status, spec = lab_status(lab), lab_spec(lab)
    passed, total = task_counts(lab)
    lines = [
        f"{lab_name(lab)}: {spec.get('lab', NO_VALUE)} for {spec.get('learner', NO_VALUE)}",
        f"{progress_bar(passed, total, unicode)} {passed}/{total} tasks passed   "
        f"{time_left(lab, now)}",
    ]
    if condition_is_true(lab, cond.COMPLETED):
        lines.append("Completed: every task passed")
    elif not condition_is_true(lab, cond.READY):
        lines.append(f"{cond.READY}: {condition_summary(lab, cond.READY)}")
    tasks = status.get("tasks") or []
    lines.append("")
    if tasks:
        rows = [
            [
                f"{task_mark(str(task.get('state', 'Pending')), unicode)} {task.get('id', '')}",
                str(task.get("state", "Pending")),
                _first_line(task.get("message")),
            ]
            for task in tasks
        ]
        table = format_table(("  TASK", "STATE", "MESSAGE"), rows)
        lines.extend("  " + line if line else line for line in table.splitlines())
    else:
        lines.append("  no tasks reported yet")
    last = status.get("lastCheck") or {}
    if last:
        when = last.get("finishedAt") or last.get("requestedAt")
        relative = f", {relative_or_dash(when, now)}" if now is not None and when else ""
        lines += ["", f"last check: {last.get('state', NO_VALUE)}{relative}"]
    if footer:
        lines += ["", footer]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def watch_end(lab: Mapping[str, Any] | None) -> WaitStep | None:
    """Where the watch ends: Completed (0), deleted (3), expired or failed in a way the
    operator does not retry (1); None while it goes on."""
    if lab is None:
        return gone()
    if condition_is_true(lab, cond.COMPLETED):
        return WaitStep(True, EXIT_OK, REASON_COMPLETED, "every task passed")
    return permanent_failure(lab)
