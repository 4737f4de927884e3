"""roadlab.cli.report: the rows of `kubectl lab report` and its four formats (table, CSV,
JSON, JUnit XML read back as a CI system reads it)."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from test_cli import ts
from test_cli_roadmap import doc, make_enrollment, make_roadmap, record

from roadlab.cli import report, roadmap_view

ROADMAP_SPEC = roadmap_view.parse_roadmap(make_roadmap())


def alice() -> roadmap_view.EnrollmentDoc:
    return doc(make_enrollment("spring-alice"))  # Completed, Running, Available, Locked, Coming


def bob() -> roadmap_view.EnrollmentDoc:
    done = {"completedAt": ts(timedelta(hours=-1)), "timeSpentSeconds": 600, "attempts": 2}
    records = [
        record("pods", "Completed", checksRun=1, **done),
        record("scale", "Completed", checksRun=4, **done),
        record("hpa", "Locked", message="requires scale"),
        record("ingress", "Available"),
        record("gitops", "Coming"),
    ]
    return doc(make_enrollment("spring-bob", "bob", milestones=records))


def carol() -> roadmap_view.EnrollmentDoc:
    return doc(make_enrollment("spring-carol", "carol", milestones=[]))  # nothing recorded yet


def rows() -> list[report.ReportRow]:
    return report.report_rows([carol(), bob(), alice()], {"k8s-basics": ROADMAP_SPEC})


def test_one_row_per_learner_and_milestone_in_the_roadmaps_order() -> None:
    found = rows()
    assert [(r.learner, r.milestone, r.state) for r in found[:6]] == [
        ("alice", "pods", "Completed"),
        ("alice", "scale", "Running"),
        ("alice", "hpa", "Available"),
        ("alice", "ingress", "Locked"),
        ("alice", "gitops", "Coming"),
        ("bob", "pods", "Completed"),
    ]
    assert len(found) == 15
    assert [r.state for r in found if r.learner == "carol"] == ["Unknown"] * 5
    assert found[2].optional and not found[1].optional
    assert found[0] == report.ReportRow(
        learner="alice",
        enrollment="spring-alice",
        roadmap="k8s-basics",
        milestone="pods",
        state="Completed",
        completed_at="2026-11-21T08:30:00Z",
        time_spent_seconds=1500,
        checks_run=3,
        attempts=1,
    )


def test_without_the_roadmap_the_recorded_milestones() -> None:
    found = report.report_rows([alice()], {})
    assert [r.milestone for r in found] == ["pods", "scale", "hpa", "ingress", "gitops"]
    assert not any(r.optional for r in found)
    assert report.report_rows([carol()], {}) == []


def test_table() -> None:
    text = report.format_report(rows()[:2], "table")
    assert text == (
        "LEARNER   ENROLLMENT     ROADMAP      MILESTONE   STATE       COMPLETED"
        "              TIME SPENT   CHECKS   ATTEMPTS\n"
        "alice     spring-alice   k8s-basics   pods        Completed   2026-11-21T08:30:00Z"
        "   25m          3        1\n"
        "alice     spring-alice   k8s-basics   scale       Running     -"
        "                      -            1        1\n"
    )
    assert "hpa (optional)" in report.format_report_table(rows())


def test_csv() -> None:
    text = report.format_report(rows(), "csv")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert list(parsed[0]) == list(report.REPORT_FIELDS)
    assert len(parsed) == 15
    assert parsed[0] == {
        "learner": "alice",
        "enrollment": "spring-alice",
        "roadmap": "k8s-basics",
        "milestone": "pods",
        "state": "Completed",
        "completedAt": "2026-11-21T08:30:00Z",
        "timeSpentSeconds": "1500",
        "checksRun": "3",
        "attempts": "1",
    }
    assert parsed[1]["completedAt"] == parsed[1]["timeSpentSeconds"] == ""
    assert report.format_report([], "csv") == ",".join(report.REPORT_FIELDS) + "\n"


def test_json() -> None:
    parsed = json.loads(report.format_report(rows(), "json"))
    assert len(parsed) == 15
    assert set(report.REPORT_FIELDS) <= set(parsed[0])
    assert parsed[6] == {
        "learner": "bob",
        "enrollment": "spring-bob",
        "roadmap": "k8s-basics",
        "milestone": "scale",
        "state": "Completed",
        "completedAt": "2026-11-21T09:00:00Z",
        "timeSpentSeconds": 600,
        "checksRun": 4,
        "attempts": 2,
        "optional": False,
        "message": "",
    }
    assert json.loads(report.format_report([], "json")) == []


def counts(element: ET.Element) -> tuple[int, int, int]:
    return (
        int(element.get("tests", "-1")),
        int(element.get("failures", "-1")),
        int(element.get("skipped", "-1")),
    )


def child(element: ET.Element, tag: str) -> ET.Element:
    found = element.find(tag)
    assert found is not None, f"no <{tag}> in <{element.tag} {element.attrib}>"
    return found


def test_junit_reads_back_with_the_right_counts() -> None:
    text = report.format_report(rows(), "junit")
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    # alice: pods passes; scale, ingress fail; hpa (optional), gitops (coming) are skipped.
    # bob: pods, scale pass; ingress fails; hpa (optional, locked), gitops are skipped.
    # carol: nothing recorded: four failures, hpa (optional) skipped.
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["alice", "bob", "carol"]
    assert [counts(s) for s in suites] == [(5, 2, 2), (5, 1, 2), (5, 4, 1)]
    assert counts(root) == (15, 7, 5)
    assert root.get("time") == str(1500 + 600 + 600)
    assert len(root.findall(".//failure")) == 7
    assert len(root.findall(".//skipped")) == 5
    cases = {c.get("name"): c for c in suites[0].findall("testcase")}
    assert cases["pods"].attrib == {"classname": "k8s-basics", "name": "pods", "time": "1500"}
    assert list(cases["pods"]) == []  # passed
    assert child(cases["gitops"], "skipped").attrib == {"message": "no lab yet"}
    assert child(cases["ingress"], "failure").attrib == {
        "message": "Locked: requires scale",
        "type": "Locked",
    }
    assert child(cases["scale"], "failure").get("message") == "Running: in progress"
    hpa = child(cases["hpa"], "skipped")
    assert hpa.get("message") == "optional, not completed: Available"
    properties = {p.get("name"): p.get("value") for p in suites[0].iter("property")}
    assert properties == {"enrollment": "spring-alice", "roadmap": "k8s-basics"}
    unknown = suites[2].find("testcase/failure")
    assert unknown is not None
    assert unknown.get("message") == "Unknown: not recorded by the operator yet"


def test_junit_of_nothing_and_an_unknown_format() -> None:
    root = ET.fromstring(report.format_report([], "junit"))
    assert counts(root) == (0, 0, 0)
    with pytest.raises(ValueError, match="no report format 'xml'"):
        report.format_report([], "xml")
