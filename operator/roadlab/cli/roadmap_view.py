"""What kubectl lab shows of roadmaps: a learner's map (one line per milestone, in the
roadmap's order), a Roadmap's milestones, the list of Roadmaps, the start request of
`next` and its answer, the certificate asked for, and a verified certificate's facts. Pure.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from roadlab.api import conditions as cond
from roadlab.api import naming
from roadlab.api.certificates import Verified
from roadlab.api.roadmap import (
    EnrollmentSpec,
    EnrollmentStatus,
    Milestone,
    MilestoneRecord,
    RoadmapSpec,
    format_start_request,
    parse_start_request,
)
from roadlab.cli.common import (
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    EXIT_OK,
    MARKS_ASCII,
    MARKS_UNICODE,
    NO_VALUE,
    Manifest,
)
from roadlab.cli.output import (
    condition_summary,
    format_table,
    lab_name,
    optional_timestamp,
    relative_or_dash,
    short_duration,
)
from roadlab.cli.waiting import WaitStep

# A milestone's state on the map.
MILESTONE_MARKS_UNICODE = {
    "Completed": "✓",
    "Running": "▶",
    "Available": "○",
    "Locked": "🔒",
    "Coming": "…",
}
MILESTONE_MARKS_ASCII = {
    "Completed": "+",
    "Running": ">",
    "Available": "o",
    "Locked": "#",
    "Coming": ".",
}
UNKNOWN_MARK = "?"  # a milestone the operator has not recorded yet
NOT_RECORDED = "Unknown"
NEXT_COMMAND = "kubectl lab next"
START_ANSWERS = frozenset({"Accepted", "Refused", "Superseded"})
_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


# --- reading the objects --------------------------------------------------------------------


@dataclass(frozen=True)
class EnrollmentDoc:
    """An Enrollment as read: its name, spec and status (roadlab.api.roadmap models)."""

    name: str
    spec: EnrollmentSpec
    status: EnrollmentStatus

    def milestone_ids(self) -> list[str]:
        return [record.id for record in self.status.milestones]


def parse_enrollment(manifest: Mapping[str, Any]) -> EnrollmentDoc:
    """The Enrollment's spec and status; pydantic's ValidationError when malformed."""
    return EnrollmentDoc(
        name=lab_name(manifest),
        spec=EnrollmentSpec.model_validate(manifest.get("spec") or {}),
        status=EnrollmentStatus.model_validate(manifest.get("status") or {}),
    )


def parse_roadmap(manifest: Mapping[str, Any]) -> RoadmapSpec:
    """The Roadmap's spec; pydantic's ValidationError when malformed."""
    return RoadmapSpec.model_validate(manifest.get("spec") or {})


def _conditions_holder(status: EnrollmentStatus) -> Manifest:
    """The status's conditions in the shape output.condition_summary reads."""
    return {"status": {"conditions": [c.to_wire() for c in status.conditions]}}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _moment(text: str | None) -> str:
    """A timestamp as the map shows it: 2026-11-21 09:00 UTC."""
    moment = optional_timestamp(text)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else NO_VALUE


def milestone_mark(state: str, unicode: bool) -> str:
    marks = MILESTONE_MARKS_UNICODE if unicode else MILESTONE_MARKS_ASCII
    return marks.get(state, UNKNOWN_MARK)


def _mark_cell(mark: str) -> str:
    """The mark padded to two columns (🔒 is a wide character, the others are not)."""
    wide = any(unicodedata.east_asian_width(char) in ("W", "F") for char in mark)
    return mark if wide else mark + " "


# --- the learner's map ----------------------------------------------------------------------


@dataclass(frozen=True)
class MapEntry:
    """One milestone of the map: from the Roadmap when known, and its record."""

    id: str
    title: str
    optional: bool
    requires: tuple[str, ...]
    record: MilestoneRecord | None

    @property
    def state(self) -> str:
        return self.record.state if self.record is not None else NOT_RECORDED


def map_entries(doc: EnrollmentDoc, roadmap: RoadmapSpec | None) -> list[MapEntry]:
    """The milestones in the roadmap's order, each with its record; without the Roadmap (or
    for records of milestones it no longer has), in the order the Enrollment records them."""
    records = {record.id: record for record in doc.status.milestones}
    entries: list[MapEntry] = []
    milestones: Sequence[Milestone] = roadmap.milestones if roadmap is not None else ()
    for milestone in milestones:
        entries.append(
            MapEntry(
                milestone.id,
                milestone.title,
                milestone.optional,
                tuple(milestone.requires),
                records.get(milestone.id),
            )
        )
    known = {entry.id for entry in entries}
    for record in doc.status.milestones:
        if record.id not in known:
            entries.append(MapEntry(record.id, "", False, (), record))
    return entries


def _entry_detail(entry: MapEntry, states: Mapping[str, str], now: datetime, separator: str) -> str:
    record = entry.record
    if record is None:
        return "not recorded yet (waiting for the operator)"
    parts: list[str] = []
    if record.state == "Completed":
        parts.append(f"completed {_moment(record.completed_at)}")
        if record.time_spent_seconds is not None:
            parts.append(f"{short_duration(record.time_spent_seconds)} spent")
        if record.checks_run is not None:
            parts.append(_plural(record.checks_run, "check"))
        if record.attempts:
            parts.append(_plural(record.attempts, "attempt"))
    elif record.state == "Running":
        parts.append(f"running in lab {record.lab}" if record.lab else "running")
        if record.started_at:
            parts.append(f"started {relative_or_dash(record.started_at, now)}")
        if record.checks_run is not None:
            parts.append(_plural(record.checks_run, "check"))
        if record.attempts:
            parts.append(f"attempt {record.attempts}")
    elif record.state == "Available":
        parts.append("available")
        if record.attempts:
            parts.append(f"{_plural(record.attempts, 'attempt')} so far")
        if record.message:
            parts.append(record.message)
    elif record.state == "Locked":
        missing = [r for r in entry.requires if states.get(r) != "Completed"]
        if missing:
            parts.append(f"locked: requires {', '.join(missing)}")
        else:
            parts.append(f"locked: {record.message}" if record.message else "locked")
    elif record.state == "Coming":
        parts.append("coming: no lab yet")
    else:
        parts.append(record.message or record.state)
    return separator.join(parts)


def last_start_line(status: EnrollmentStatus, now: datetime) -> str | None:
    """ "Last start: Accepted 2m ago (scale): started lab ...", or None before any."""
    last = status.last_start
    if last is None:
        return None
    text = f"Last start: {last.state} {relative_or_dash(last.at, now)}"
    if last.milestone:
        text += f" ({last.milestone})"
    return f"{text}: {last.message}" if last.message else text


def format_map(
    doc: EnrollmentDoc,
    roadmap: RoadmapSpec | None,
    now: datetime,
    unicode: bool,
    *,
    flags: str = "",
) -> str:
    """The learner's map: a header (roadmap, learner, progress), one line per milestone
    with its mark, then the last start request's answer and what to run next. `flags` go
    after each command shown (" --enrollment NAME" when the enrollment was given so)."""
    status = doc.status
    title = f"{roadmap.title} ({doc.spec.roadmap})" if roadmap is not None else doc.spec.roadmap
    header = [
        ("Roadmap", title),
        ("Learner", f"{doc.spec.learner} (enrollment {doc.name}, advance {doc.spec.advance})"),
        ("Progress", status.progress or NO_VALUE),
        (cond.READY, condition_summary(_conditions_holder(status), cond.READY)),
    ]
    completed = cond.is_true(status.conditions, cond.COMPLETED) or bool(status.completed_at)
    if completed:
        header.append((cond.COMPLETED, _moment(status.completed_at)))
    width = max(len(key) for key, _ in header) + 2
    lines = [f"{key + ':':<{width}}{value}" for key, value in header]
    lines.append("")
    entries = map_entries(doc, roadmap)
    if not entries:
        lines.append("Milestones: none recorded yet (waiting for the operator)")
    states = {entry.id: entry.state for entry in entries}
    id_width = max((len(entry.id) for entry in entries), default=0)
    titles = [entry.title + (" (optional)" if entry.optional else "") for entry in entries]
    title_width = max((len(t) for t in titles), default=0)
    separator = " · " if unicode else ", "
    for entry, entry_title in zip(entries, titles, strict=True):
        mark = _mark_cell(milestone_mark(entry.state, unicode))
        detail = _entry_detail(entry, states, now, separator)
        cells = f"  {mark} {entry.id:<{id_width}}   "
        cells += f"{entry_title:<{title_width}}   " if title_width else ""
        lines.append((cells + detail).rstrip())
    footer = [line] if (line := last_start_line(status, now)) is not None else []
    footer += _hints(entries, completed, flags)
    if footer:
        lines += ["", *footer]
    return "\n".join(lines) + "\n"


def _hints(entries: Sequence[MapEntry], completed: bool, flags: str) -> list[str]:
    if completed:
        return [f"Roadmap completed: kubectl lab certificate --roadmap-certificate{flags}"]
    hints: list[str] = []
    running = [e for e in entries if e.state == "Running" and e.record and e.record.lab]
    for entry in running:
        lab = entry.record.lab if entry.record else None
        hints.append(f"In progress: kubectl lab status {lab} (then: guide, check, watch)")
    then = "Then" if running else "Next"
    hints.append(f"{then}: {NEXT_COMMAND}{flags} (or {NEXT_COMMAND} MILESTONE{flags})")
    return hints


# --- a Roadmap, and the list of them --------------------------------------------------------


def _parameter_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def format_roadmap(manifest: Mapping[str, Any], spec: RoadmapSpec) -> str:
    """A Roadmap's description and its milestones (requires, optional, lab, parameters)."""
    with_labs = sum(1 for m in spec.milestones if not m.coming)
    header = [
        ("Roadmap", lab_name(manifest)),
        ("Title", spec.title),
        *([("Source", spec.source)] if spec.source else []),
        (cond.READY, condition_summary(manifest, cond.READY)),
        ("Milestones", f"{len(spec.milestones)} ({with_labs} with labs)"),
    ]
    width = max(len(key) for key, _ in header) + 2
    lines = [f"{key + ':':<{width}}{value}" for key, value in header]
    if spec.description:
        lines += ["", "Description:"]
        lines += [f"  {line}" for line in spec.description.splitlines() if line.strip()]
    rows = [
        [
            str(number),
            milestone.id,
            milestone.title,
            milestone.lab or "(coming)",
            ",".join(milestone.requires) or NO_VALUE,
            "yes" if milestone.optional else NO_VALUE,
            milestone.ttl or NO_VALUE,
            ",".join(f"{k}={_parameter_text(v)}" for k, v in milestone.parameters.items())
            or NO_VALUE,
        ]
        for number, milestone in enumerate(spec.milestones, start=1)
    ]
    table = format_table(
        ("#", "ID", "TITLE", "LAB", "REQUIRES", "OPTIONAL", "TTL", "PARAMETERS"), rows
    )
    lines += ["", *[f"  {line}" for line in table.splitlines()]]
    return "\n".join(lines) + "\n"


def _count(value: object) -> str:
    return str(value) if isinstance(value, int) else NO_VALUE


def format_roadmap_list(roadmaps: Sequence[Mapping[str, Any]]) -> str:
    """NAME, TITLE, MILESTONES, WITH-LABS, READY: the operator's counts, else the spec's."""
    rows = []
    for roadmap in sorted(roadmaps, key=lab_name):
        spec, status = roadmap.get("spec") or {}, roadmap.get("status") or {}
        milestones = [m for m in spec.get("milestones") or [] if isinstance(m, Mapping)]
        total = status.get("milestones", len(milestones))
        with_labs = status.get("withLabs", sum(1 for m in milestones if m.get("lab")))
        ready = next(
            (
                str(c.get("status"))
                for c in status.get("conditions") or []
                if isinstance(c, Mapping) and c.get("type") == cond.READY
            ),
            NO_VALUE,
        )
        rows.append(
            [
                lab_name(roadmap),
                str(spec.get("title") or NO_VALUE),
                _count(total),
                _count(with_labs),
                ready,
            ]
        )
    return format_table(("NAME", "TITLE", "MILESTONES", "WITH-LABS", "READY"), rows)


# --- next: the start request and its answer -------------------------------------------------


def start_patch(token: str, milestone: str | None = None) -> Manifest:
    value = format_start_request(token, milestone)
    return {"metadata": {"annotations": {naming.ANNOTATION_START_REQUESTED: value}}}


def _requested_start_token(enrollment: Mapping[str, Any]) -> str | None:
    annotations = (enrollment.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(naming.ANNOTATION_START_REQUESTED)
    parsed = parse_start_request(value) if isinstance(value, str) else None
    return parsed.token if parsed is not None else None


def start_wait_step(enrollment: Mapping[str, Any] | None, token: str) -> WaitStep:
    """Done once status.lastStart answers our token: 0 when Accepted, 1 when Refused, and 1
    when a newer request replaced ours before the operator saw it."""
    if enrollment is None:
        return WaitStep(True, EXIT_NOT_FOUND, "Deleted", "the enrollment was deleted")
    last = (enrollment.get("status") or {}).get("lastStart") or {}
    state, message = str(last.get("state") or ""), str(last.get("message") or "")
    if last.get("token") == token and state:
        return WaitStep(True, EXIT_OK if state == "Accepted" else EXIT_FAILURE, state, message)
    newer = _requested_start_token(enrollment)
    if newer is not None and newer != token and last.get("token") == newer:
        return WaitStep(True, EXIT_FAILURE, "Superseded", "a newer start request replaced this one")
    return WaitStep(False, reason="Requested", message="waiting for the operator to answer")


def started_lab(doc: EnrollmentDoc) -> tuple[str, str] | None:
    """(milestone, Lab) of the last accepted start request."""
    last = doc.status.last_start
    milestone = (last.milestone if last is not None else None) or doc.status.current
    if not milestone:
        return None
    record = doc.status.record(milestone)
    lab = record.lab if record is not None and record.lab else None
    return milestone, lab or naming.milestone_lab_name(doc.name, milestone)


def next_outcome(doc: EnrollmentDoc, step: WaitStep, flags: str = "") -> str:
    """What `next` prints once answered: the state and message, and for an accepted
    request the milestone's Lab and what to run with it."""
    lines = [f"{step.reason}: {step.message}" if step.message else step.reason]
    started = started_lab(doc) if step.reason == "Accepted" else None
    if started is None:
        return "\n".join(lines) + "\n"
    milestone, lab = started
    steps = [
        (f"kubectl lab status {lab}", "its state and tasks (also: guide, watch, check, hint)"),
        (f"kubectl lab roadmap{flags}", "your map"),
        (f"kubectl lab kubeconfig {lab}", "for instructors: the lab's own kubeconfig"),
    ]
    width = max(len(command) for command, _ in steps) + 3
    lines += [f"milestone {milestone}: lab {lab}", "next steps:"]
    lines += [f"  {command:<{width}}{about}" for command, about in steps]
    return "\n".join(lines) + "\n"


# --- certificates ---------------------------------------------------------------------------


class NoCertificateError(LookupError):
    """The certificate asked for does not exist (yet): the reason is the message."""


def choose_certificate(
    doc: EnrollmentDoc, milestone: str | None, whole_roadmap: bool
) -> tuple[str, str]:
    """(what it certifies, the JWS): the roadmap's, a milestone's, or by default the latest
    completed milestone's. NoCertificateError when there is none yet."""
    status = doc.status
    if whole_roadmap:
        if not status.certificate:
            progress = f" (progress {status.progress})" if status.progress else ""
            raise NoCertificateError(
                f"enrollment {doc.name} has no roadmap certificate yet{progress}: it comes "
                "once every required milestone is completed"
            )
        return f"roadmap {doc.spec.roadmap}", status.certificate
    if milestone is not None:
        record = status.record(milestone)
        if record is None:
            known = ", ".join(doc.milestone_ids()) or "none recorded yet"
            raise NoCertificateError(
                f"milestone {milestone} is not in enrollment {doc.name} (milestones: {known})"
            )
        if not record.certificate:
            raise NoCertificateError(
                f"milestone {milestone} has no certificate yet (it is {record.state})"
            )
        return f"milestone {milestone}", record.certificate
    signed = [
        (index, record)
        for index, record in enumerate(status.milestones)
        if record.certificate and record.state == "Completed"
    ]
    if not signed:
        raise NoCertificateError(f"no milestone of enrollment {doc.name} is completed yet")
    _, latest = max(signed, key=lambda pair: (pair[1].completed_at or "", pair[0]))
    return f"milestone {latest.id}", str(latest.certificate)


def split_pem(text: str) -> list[str]:
    """The PEM public keys in a file's text (one file may hold several)."""
    return [block + "\n" for block in _PEM_BLOCK.findall(text)]


def _text(value: object) -> str:
    return NO_VALUE if value is None or value == "" else str(value)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _named(value: object, key: str) -> str:
    """ "Title (name)" of a {name|id, title} claim."""
    if not isinstance(value, Mapping):
        return _text(value)
    name, title = _text(value.get(key)), value.get("title")
    return f"{title} ({name})" if title else name


def format_certificate(verified: Verified, unicode: bool) -> str:
    """The facts a verified certificate states, one per line."""
    body = _mapping(verified.claims.get("roadlab"))
    kind = verified.kind or "unknown"
    lines = [f"VERIFIED: a {kind} certificate, signed by key {verified.key_id}"]
    facts: list[tuple[str, str]] = [
        ("Learner", _text(verified.claims.get("sub"))),
        ("Roadmap", _named(body.get("roadmap"), "name")),
        ("Enrollment", _text(body.get("enrollment"))),
    ]
    if kind == "milestone":
        lab = _mapping(body.get("lab"))
        parameters = _mapping(lab.get("parameters"))
        spent = body.get("timeSpentSeconds")
        facts += [
            ("Milestone", _named(body.get("milestone"), "id")),
            ("Lab", f"{_text(lab.get('id'))} (lab {_text(lab.get('name'))})"),
            ("Definition", f"sha256 {_text(lab.get('definitionSHA256'))}"),
            (
                "Parameters",
                ", ".join(f"{k}={_parameter_text(v)}" for k, v in parameters.items()) or NO_VALUE,
            ),
            ("Started", _text(body.get("startedAt"))),
            ("Completed", _text(body.get("completedAt"))),
            ("Time spent", short_duration(spent) if isinstance(spent, int) else NO_VALUE),
            ("Checks run", _text(body.get("checksRun"))),
        ]
    else:
        facts.append(("Completed", _text(body.get("completedAt"))))
    facts.append(("Key id", verified.key_id))
    width = max(len(key) for key, _ in facts) + 2
    lines += [f"{key + ':':<{width}}{value}" for key, value in facts]
    marks = MARKS_UNICODE if unicode else MARKS_ASCII
    if kind == "milestone":
        tasks = [t for t in body.get("tasks") or [] if isinstance(t, Mapping)]
        lines.append("Tasks:" if tasks else f"{'Tasks:':<{width}}none")
        id_width = max((len(_text(t.get("id"))) for t in tasks), default=0)
        for task in tasks:
            state = _text(task.get("state"))
            mark = marks.get(state, marks["Pending"])
            evidence = task.get("evidenceSHA256")
            lines.append(
                f"  {mark} {_text(task.get('id')):<{id_width}}   {state:<7}"
                + (f"   evidence sha256 {evidence}" if evidence else "")
            )
    elif kind == "roadmap":
        milestones = [m for m in body.get("milestones") or [] if isinstance(m, Mapping)]
        lines.append("Milestones:")
        id_width = max((len(_text(m.get("id"))) for m in milestones), default=0)
        for milestone in milestones:
            lines.append(
                f"  {marks['Passed']} {_text(milestone.get('id')):<{id_width}}   completed "
                f"{_text(milestone.get('completedAt'))}   certificate sha256 "
                f"{_text(milestone.get('certificateSHA256'))}"
            )
    return "\n".join(line.rstrip() for line in lines) + "\n"
