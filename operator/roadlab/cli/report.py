"""The progress report of `kubectl lab report`: one row per learner and milestone, as a
table, CSV, JSON or JUnit XML. Pure: the verb gathers the Enrollments and their Roadmaps.

JUnit XML is for a CI system to show (and a grader to read): <testsuites>, one
<testsuite name="<learner>"> per Enrollment, one <testcase classname="<roadmap>"
name="<milestone>" time="<timeSpentSeconds>"> per milestone. A completed milestone passes;
a coming one (no lab yet) and an optional one not completed are <skipped/>; any other is a
<failure message="<state>: <message>"/>.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from roadlab.api.roadmap import MilestoneRecord, RoadmapSpec
from roadlab.cli.common import NO_VALUE
from roadlab.cli.output import format_table, short_duration, to_json
from roadlab.cli.roadmap_view import NOT_RECORDED, EnrollmentDoc

# The columns of -o csv and the keys of -o json, in order (JSON adds optional and message).
REPORT_FIELDS = (
    "learner",
    "enrollment",
    "roadmap",
    "milestone",
    "state",
    "completedAt",
    "timeSpentSeconds",
    "checksRun",
    "attempts",
)
TABLE_HEADERS = (
    "LEARNER",
    "ENROLLMENT",
    "ROADMAP",
    "MILESTONE",
    "STATE",
    "COMPLETED",
    "TIME SPENT",
    "CHECKS",
    "ATTEMPTS",
)
REPORT_FORMATS = ("table", "csv", "json", "junit")
JUNIT_SUITES_NAME = "roadlab"
# What a failure says when the milestone's record has no message of its own.
DEFAULT_MESSAGES = {
    "Locked": "its requirements are not completed",
    "Available": "not started",
    "Running": "in progress",
    NOT_RECORDED: "not recorded by the operator yet",
}


@dataclass(frozen=True)
class ReportRow:
    learner: str
    enrollment: str
    roadmap: str
    milestone: str
    state: str  # a MilestoneState, or NOT_RECORDED
    completed_at: str | None = None
    time_spent_seconds: int | None = None
    checks_run: int | None = None
    attempts: int = 0
    optional: bool = False
    message: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "learner": self.learner,
            "enrollment": self.enrollment,
            "roadmap": self.roadmap,
            "milestone": self.milestone,
            "state": self.state,
            "completedAt": self.completed_at,
            "timeSpentSeconds": self.time_spent_seconds,
            "checksRun": self.checks_run,
            "attempts": self.attempts,
            "optional": self.optional,
            "message": self.message,
        }


def _row(
    doc: EnrollmentDoc, milestone: str, record: MilestoneRecord | None, optional: bool
) -> ReportRow:
    row = ReportRow(
        doc.spec.learner, doc.name, doc.spec.roadmap, milestone, NOT_RECORDED, optional=optional
    )
    if record is None:
        return row
    return replace(
        row,
        state=record.state,
        completed_at=record.completed_at,
        time_spent_seconds=record.time_spent_seconds,
        checks_run=record.checks_run,
        attempts=record.attempts,
        message=record.message,
    )


def report_rows(
    enrollments: Sequence[EnrollmentDoc], roadmaps: Mapping[str, RoadmapSpec]
) -> list[ReportRow]:
    """One row per learner and milestone: Enrollments by learner then name, milestones in
    their roadmap's order (when the Roadmap is known), then any others they record."""
    rows: list[ReportRow] = []
    for doc in sorted(enrollments, key=lambda d: (d.spec.learner, d.name)):
        records = {record.id: record for record in doc.status.milestones}
        roadmap = roadmaps.get(doc.spec.roadmap)
        seen: set[str] = set()
        for milestone in roadmap.milestones if roadmap is not None else ():
            seen.add(milestone.id)
            rows.append(_row(doc, milestone.id, records.get(milestone.id), milestone.optional))
        for record in doc.status.milestones:
            if record.id not in seen:
                rows.append(_row(doc, record.id, record, False))
    return rows


def _cell(value: int | str | None) -> str:
    return "" if value is None else str(value)


def format_report_table(rows: Sequence[ReportRow]) -> str:
    cells = [
        [
            row.learner,
            row.enrollment,
            row.roadmap,
            row.milestone + (" (optional)" if row.optional else ""),
            row.state,
            row.completed_at or NO_VALUE,
            short_duration(row.time_spent_seconds)
            if row.time_spent_seconds is not None
            else NO_VALUE,
            _cell(row.checks_run) or NO_VALUE,
            str(row.attempts),
        ]
        for row in rows
    ]
    return format_table(TABLE_HEADERS, cells)


def format_report_csv(rows: Sequence[ReportRow]) -> str:
    """A header row of REPORT_FIELDS, then one row each (absent values empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REPORT_FIELDS)
    for row in rows:
        document = row.as_json()
        writer.writerow([_cell(document[field]) for field in REPORT_FIELDS])
    return buffer.getvalue()


def format_report_json(rows: Sequence[ReportRow]) -> str:
    return to_json([row.as_json() for row in rows])


def _outcome(row: ReportRow) -> tuple[str, str] | None:
    """(element, message) of a test case that did not pass; None when it passed."""
    if row.state == "Completed":
        return None
    if row.state == "Coming":
        return "skipped", "no lab yet"
    if row.optional:
        return "skipped", f"optional, not completed: {row.state}"
    return "failure", f"{row.state}: {row.message or DEFAULT_MESSAGES.get(row.state, row.state)}"


def format_report_junit(rows: Sequence[ReportRow]) -> str:
    """JUnit XML: one test suite per Enrollment (named after the learner), one test case
    per milestone."""
    suites: dict[str, list[ReportRow]] = {}
    for row in rows:
        suites.setdefault(row.enrollment, []).append(row)
    root = ET.Element("testsuites", name=JUNIT_SUITES_NAME)
    totals = {"tests": 0, "failures": 0, "skipped": 0, "time": 0}
    for enrollment, cases in suites.items():
        suite = ET.SubElement(root, "testsuite", name=cases[0].learner)
        properties = ET.SubElement(suite, "properties")
        for key, text in (("enrollment", enrollment), ("roadmap", cases[0].roadmap)):
            ET.SubElement(properties, "property", name=key, value=text)
        counts = {"tests": len(cases), "failures": 0, "skipped": 0, "time": 0}
        for row in cases:
            seconds = row.time_spent_seconds or 0
            counts["time"] += seconds
            case = ET.SubElement(
                suite, "testcase", classname=row.roadmap, name=row.milestone, time=str(seconds)
            )
            outcome = _outcome(row)
            if outcome is not None:
                element, message = outcome
                attributes = {"message": message}
                if element == "failure":
                    attributes["type"] = row.state
                    counts["failures"] += 1
                else:
                    counts["skipped"] += 1
                ET.SubElement(case, element, attributes)
        _set_counts(suite, counts)
        for key, count in counts.items():
            totals[key] += count
    _set_counts(root, totals)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _set_counts(element: ET.Element, counts: Mapping[str, int]) -> None:
    element.set("tests", str(counts["tests"]))
    element.set("failures", str(counts["failures"]))
    element.set("errors", "0")
    element.set("skipped", str(counts["skipped"]))
    element.set("time", str(counts["time"]))


def format_report(rows: Sequence[ReportRow], output: str) -> str:
    """The report in one of REPORT_FORMATS."""
    formatters = {
        "table": format_report_table,
        "csv": format_report_csv,
        "json": format_report_json,
        "junit": format_report_junit,
    }
    if output not in formatters:
        raise ValueError(f"no report format {output!r} (known: {', '.join(REPORT_FORMATS)})")
    return formatters[output](rows)
