"""What the page shows of a Lab's roadmap, when the Lab was started for an Enrollment (the
label roadlab.dev/enrollment): the panel of GET /labs/<lab> and the `roadmap` SSE events,
from the Enrollment and its Roadmap as the learner reads them.

Pure but for roadmap_of, which reads the Roadmap through a LearnerApi. The objects are read
leniently (a field of a newer operator, or one missing, never hides the whole panel), and
every text in the view is plain text: the template escapes it, the page's script sets it as
textContent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from roadlab.api import naming
from roadlab.api.durations import format_duration, parse_timestamp
from roadlab.portal.ports import LearnerApi, Manifest

log = logging.getLogger("roadlab.portal")

# The mark before each milestone (the words after it say the same for screen readers).
MARKS = {
    "Completed": "✓",
    "Running": "▶",
    "Available": "○",
    "Locked": "⊘",
    "Coming": "…",
    "Pending": "·",  # no record yet: the operator has not seen the milestone
}


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def enrollment_of(lab: Mapping[str, Any]) -> str | None:
    """The Enrollment a Lab was started for (its label), or None for a Lab of its own."""
    labels = _mapping(_mapping(lab.get("metadata")).get("labels"))
    name = labels.get(naming.LABEL_ENROLLMENT)
    return name if isinstance(name, str) and name else None


def roadmap_of(api: LearnerApi, enrollment: Mapping[str, Any]) -> Manifest | None:
    """The Enrollment's Roadmap (for its milestones' titles), or None when it cannot be
    read: the panel then names the milestones by their ids."""
    name = _text(_mapping(enrollment.get("spec")).get("roadmap"))
    if not name:
        return None
    try:
        return api.get_roadmap(name)
    except Exception as error:
        log.info("roadmap %s: cannot read it as the learner: %s", name, error)
        return None


def format_when(value: str) -> str:
    """'2026-11-21 10:00 UTC' of an RFC 3339 timestamp (the text itself if it is not one)."""
    try:
        return parse_timestamp(value).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return value


def format_spent(seconds: int) -> str:
    """'45s', '42m', '1h12m': to the minute once it is more than one."""
    if seconds < 60:
        return f"{max(0, seconds)}s"
    return format_duration(timedelta(minutes=round(seconds / 60)))


def _words(
    state: str,
    record: Mapping[str, Any],
    here: bool,
    missing: Sequence[str],
) -> str:
    lab = _text(record.get("lab"))
    if state == "Completed":
        parts = ["done"]
        if record.get("completedAt"):
            parts.append(f"completed {format_when(_text(record.get('completedAt')))}")
        spent = record.get("timeSpentSeconds")
        if isinstance(spent, int) and not isinstance(spent, bool):
            parts.append(f"{format_spent(spent)} spent")
    elif state == "Running":
        parts = ["running: this lab" if here else f"running in lab {lab}" if lab else "running"]
    elif state == "Available":
        parts = ["available"]
    elif state == "Locked":
        if missing:
            parts = [f"locked: requires {', '.join(missing)}"]
        else:
            message = _text(record.get("message"))
            parts = [f"locked: {message}" if message else "locked"]
    elif state == "Coming":
        parts = ["coming: no lab yet"]
    else:
        parts = ["waiting for the operator"]
    if here and state != "Running":
        parts.insert(0, "this lab")
    if state == "Available" and record.get("message"):
        parts.append(_text(record.get("message")))  # e.g. how the last attempt ended
    return " · ".join(parts)


def _rows(
    status: Mapping[str, Any],
    roadmap: Mapping[str, Any] | None,
    lab_name: str,
    lab_milestone: str,
) -> list[dict[str, Any]]:
    records: dict[str, Mapping[str, Any]] = {}
    for item in status.get("milestones") or []:
        record = _mapping(item)
        if _text(record.get("id")):
            records.setdefault(_text(record.get("id")), record)
    planned = [
        _mapping(item)
        for item in _mapping(_mapping(roadmap).get("spec")).get("milestones") or []
        if _text(_mapping(item).get("id"))
    ]
    titles = {_text(m.get("id")): _text(m.get("title")) or _text(m.get("id")) for m in planned}
    # The roadmap's order; a record it no longer has (or every record, without the
    # roadmap) after it.
    order: list[Mapping[str, Any]] = list(planned)
    order += [{"id": key} for key in records if key not in titles]
    done = {key for key, record in records.items() if record.get("state") == "Completed"}
    rows: list[dict[str, Any]] = []
    for milestone in order:
        key = _text(milestone.get("id"))
        record = records.get(key, {})
        state = _text(record.get("state")) or "Pending"
        if state not in MARKS:
            state = "Pending"
        lab = _text(record.get("lab")) or None
        here = key == lab_milestone or (lab is not None and lab == lab_name)
        requires = milestone.get("requires")
        missing = [
            titles.get(required, required)
            for required in (requires if isinstance(requires, list) else [])
            if isinstance(required, str) and required not in done
        ]
        optional = milestone.get("optional") is True
        words = _words(state, record, here, missing) + (" · optional" if optional else "")
        rows.append(
            {
                "id": key,
                "title": titles.get(key) or key,
                "state": state,
                "mark": MARKS[state],
                "words": words,
                "here": here,
                "optional": optional,
                "lab": lab,
                "next": False,
            }
        )
    return rows


def _last_start(
    enrollment_name: str, status: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    last = _mapping(status.get("lastStart"))
    token = _text(last.get("token"))
    if not token:
        return None
    state = _text(last.get("state"))
    milestone = _text(last.get("milestone")) or None
    message = _text(last.get("message"))
    answer: dict[str, Any] = {
        "token": token,
        "state": state,
        "milestone": milestone,
        "message": message,
        "lab": None,
        "text": f"Not started: {message}" if message else "Not started.",
        "command": None,
    }
    if state == "Accepted" and milestone is not None:
        row = next((r for r in rows if r["id"] == milestone), None)
        lab = (row or {}).get("lab") or naming.milestone_lab_name(enrollment_name, milestone)
        title = (row or {}).get("title") or milestone
        answer.update(
            lab=lab,
            text=f"Lab {lab} is starting ({title}): ask your instructor for its link, or run",
            command=f"kubectl lab url {lab}",
        )
    elif state == "Accepted":
        answer.update(text=f"Accepted: {message}" if message else "Accepted.")
    return answer


def _next(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The milestone a plain start request starts, as the operator picks it: the first
    available required one, else the first available optional one."""
    available = [row for row in rows if row["state"] == "Available"]
    required_first = [row for row in available if not row["optional"]] or available
    return required_first[0] if required_first else None


def roadmap_view(
    enrollment_name: str,
    enrollment: Mapping[str, Any] | None,
    roadmap: Mapping[str, Any] | None,
    *,
    lab: Mapping[str, Any],
    lab_completed: bool,
    problem: str = "",
) -> dict[str, Any]:
    """The panel's JSON. `problem` (or an Enrollment not found) says why only a line is
    shown. The Start button shows once this lab is done and a milestone is next."""
    if enrollment is None and not problem:
        problem = f"Your enrollment {enrollment_name} was not found."
    spec = _mapping(_mapping(roadmap).get("spec"))
    roadmap_name = _text(_mapping(_mapping(enrollment).get("spec")).get("roadmap"))
    title = _text(spec.get("title")) or roadmap_name or enrollment_name
    if problem:
        return {
            "enrollment": enrollment_name,
            "title": title,
            "progress": "",
            "progressText": "",
            "completed": False,
            "milestones": [],
            "next": None,
            "canStartNext": False,
            "lastStart": None,
            "problem": problem,
        }
    status = _mapping(_mapping(enrollment).get("status"))
    metadata = _mapping(lab.get("metadata"))
    lab_milestone = _text(_mapping(metadata.get("labels")).get(naming.LABEL_MILESTONE))
    rows = _rows(status, roadmap, _text(metadata.get("name")), lab_milestone)
    # This lab is done once the Enrollment records it so (the operator does so as the Lab
    # completes; until then the next milestones may still look locked), or, for a Lab the
    # Enrollment does not name, once the Lab itself is completed.
    here = [row for row in rows if row["here"]]
    here_done = all(row["state"] == "Completed" for row in here) if here else lab_completed
    # While a milestone runs, nothing else starts: no milestone is next.
    idle = not any(row["state"] == "Running" for row in rows)
    upcoming = _next(rows) if idle else None
    if upcoming is not None:
        upcoming["next"] = True
        upcoming["words"] += " · next"
    progress = _text(status.get("progress"))
    completed = bool(status.get("completedAt"))
    progress_text = f"{progress} required milestones completed" if progress else ""
    if completed:
        progress_text = "Roadmap completed" + (f" ({progress})" if progress else "")
    return {
        "enrollment": enrollment_name,
        "title": title,
        "progress": progress,
        "progressText": progress_text,
        "completed": completed,
        "milestones": rows,
        "next": {"id": upcoming["id"], "title": upcoming["title"]} if upcoming else None,
        "canStartNext": here_done and upcoming is not None,
        "lastStart": _last_start(enrollment_name, status, rows),
        "problem": "",
    }
