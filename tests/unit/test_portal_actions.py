"""What a signed-in learner does on the page: the status JSON and its live events, Check,
Extend and hints, each done with the learner's token and nothing more."""

from __future__ import annotations

import json
from collections import deque
from datetime import timedelta
from typing import Any

import anyio
import pytest
from portal_fake import LAB, NOW, PORTAL, FakeApiError, Harness, make_lab, ts

from roadlab.api import naming
from roadlab.api.extensions import parse_request
from roadlab.portal.live import status_events
from roadlab.portal.routes import new_request_token


@pytest.fixture
def harness() -> Harness:
    return Harness(poll_seconds=0.01, keepalive_seconds=0.05, recheck_session_seconds=0.05)


def events_of(body: str) -> list[tuple[str, Any]]:
    """(event, data) of each SSE event in a stream's text."""
    found = []
    for block in body.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if "event" in fields:
            found.append((fields["event"], json.loads(fields["data"])))
    return found


EXPECTED_STATUS = {
    "progress": "1/2",
    "tasksPassed": 1,
    "tasksTotal": 2,
    "completed": False,
    "expired": False,
    "expiresAt": ts(NOW + timedelta(hours=1, minutes=52)),
    "secondsLeft": 6720,
    "tasks": [
        {
            "id": "scale-web",
            "title": "Scale the web Deployment to 2 replicas",
            "state": "Passed",
            "message": "spec.replicas is 2",
        },
        {
            "id": "configmap-answer",
            "title": 'Create a ConfigMap named answer with data.answer set to "42"',
            "state": "Failed",
            "message": "ConfigMap answer not found",
        },
    ],
    "lastCheck": None,
    "lastExtension": None,
}


def test_the_status_json(harness: Harness) -> None:
    harness.signed_in()
    answer = harness.client.get(f"/labs/{LAB}/status")
    assert answer.status_code == 200
    assert answer.json() == EXPECTED_STATUS  # no hints in it
    assert answer.headers["cache-control"] == "no-store"
    harness.clock.advance(20)
    assert harness.client.get(f"/labs/{LAB}/status").json()["secondsLeft"] == 6700


def test_the_status_reports_the_last_check_and_extension(harness: Harness) -> None:
    harness.signed_in()
    lab = make_lab(completed=True)
    lab["status"]["lastCheck"] = {"token": "t1", "job": "check-x", "state": "Passed"}
    lab["status"]["lastExtension"] = {
        "token": "t2",
        "requested": "30m",
        "state": "Accepted",
        "message": "extended by 30m; 1 extension left",
        "at": ts(NOW),
    }
    harness.cluster.labs[LAB] = lab
    status = harness.client.get(f"/labs/{LAB}/status").json()
    assert status["completed"] is True
    assert status["lastCheck"]["state"] == "Passed"
    assert status["lastExtension"]["message"] == "extended by 30m; 1 extension left"


def test_check_patches_the_one_annotation_as_the_learner(harness: Harness) -> None:
    csrf = harness.signed_in()
    answer = harness.client.post(f"/labs/{LAB}/check", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 202
    token = answer.json()["token"]
    [(who, args)] = harness.cluster.calls_of("patch_lab_annotations")
    assert who == harness.learner_token_of()
    assert who != PORTAL
    assert args == (LAB, {naming.ANNOTATION_CHECK_REQUESTED: token})
    # A fresh token each time, of the form the admission policy allows.
    again = harness.client.post(f"/labs/{LAB}/check", headers={"X-CSRF-Token": csrf})
    assert again.json()["token"] != token
    parse_request(f"{token}:30m")  # no ':' in it, and within the token pattern


def test_extend_patches_the_one_annotation_as_the_learner(harness: Harness) -> None:
    csrf = harness.signed_in()
    answer = harness.client.post(
        f"/labs/{LAB}/extend", headers={"X-CSRF-Token": csrf}, json={"duration": "30m"}
    )
    assert answer.status_code == 202
    token = answer.json()["token"]
    [(who, args)] = harness.cluster.calls_of("patch_lab_annotations")
    assert who == harness.learner_token_of()
    assert args == (LAB, {naming.ANNOTATION_EXTEND_REQUESTED: f"{token}:30m"})
    request = parse_request(f"{token}:30m")
    assert request.amount == timedelta(minutes=30)


@pytest.mark.parametrize(
    "body", [{}, {"duration": "soon"}, {"duration": "10s"}, {"duration": "30d"}, [], "x"]
)
def test_extend_refuses_a_bad_duration(harness: Harness, body: Any) -> None:
    csrf = harness.signed_in()
    answer = harness.client.post(
        f"/labs/{LAB}/extend", headers={"X-CSRF-Token": csrf}, content=json.dumps(body)
    )
    assert answer.status_code == 400
    assert not harness.cluster.calls_of("patch_lab_annotations")


def test_hints_come_from_the_lab_then_the_catalog(harness: Harness) -> None:
    csrf = harness.signed_in()
    headers = {"X-CSRF-Token": csrf}
    answer = harness.client.post(f"/labs/{LAB}/hint/configmap-answer", headers=headers)
    assert answer.json() == {"hint": "kubectl create configmap answer --from-literal=answer=42"}
    # scale-web has no hint in the status: the catalog's (labs/smoke/lab.yaml).
    catalog_hint = harness.client.post(f"/labs/{LAB}/hint/scale-web", headers=headers).json()
    assert "kubectl scale" in catalog_hint["hint"]
    assert harness.client.post(f"/labs/{LAB}/hint/no-such-task", headers=headers).status_code == (
        404
    )


def test_a_refused_call_is_a_bad_gateway_not_a_crash(harness: Harness) -> None:
    csrf = harness.signed_in()

    harness.cluster.patch_error = FakeApiError(403, "Forbidden")
    answer = harness.client.post(f"/labs/{LAB}/check", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 502
    assert "403 Forbidden" in answer.json()["error"]


def test_events_send_the_status_now_and_at_every_change(harness: Harness) -> None:
    harness.signed_in()
    first = make_lab()
    passed = make_lab(
        tasks=[{"id": "scale-web", "title": "Scale", "state": "Passed", "message": "ok"}],
        completed=True,
    )
    harness.cluster.watch_events[LAB] = [
        ("ADDED", first),  # the same as the first read: not sent twice
        ("MODIFIED", passed),
        ("DELETED", passed),
    ]
    with harness.client.stream("GET", f"/labs/{LAB}/events") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        body = "".join(answer.iter_text())
    assert body.startswith("retry: 2000\n\n")
    events = events_of(body)
    assert events[0] == ("status", EXPECTED_STATUS)
    assert [name for name, _ in events] == ["status", "status", "ended"]
    assert events[1][1]["completed"] is True
    assert events[1][1]["progress"] == "1/1"
    assert events[2][1] == {"reason": "the lab was deleted"}
    # Watched with the learner's token, narrowed to this Lab.
    watches = harness.cluster.calls_of("watch_lab")
    assert watches
    assert {who for who, _ in watches} == {harness.learner_token_of()}
    assert {args[0] for _, args in watches} == {LAB}


def test_events_poll_when_the_watch_is_refused(harness: Harness) -> None:
    harness.signed_in()
    harness.cluster.watch_error = FakeApiError(403, "Forbidden")
    changed = make_lab(expires_in=timedelta(hours=3))
    # The route's read (the first event), a poll with no change, a change, the Lab gone.
    harness.cluster.scripted_reads[LAB] = deque([make_lab(), make_lab(), changed, None])
    with harness.client.stream("GET", f"/labs/{LAB}/events") as answer:
        events = events_of("".join(answer.iter_text()))
    assert [name for name, _ in events] == ["status", "status", "ended"]
    assert events[1][1]["expiresAt"] == ts(NOW + timedelta(hours=3))


def test_events_end_when_the_link_is_revoked(harness: Harness) -> None:
    harness.signed_in()
    harness.cluster.access_tokens[LAB] = "revoked-and-remade-0123456789abcdefghij"
    harness.clock.advance(harness.settings.access_cache_seconds)
    # The session is checked again while the stream is open (here: at its first recheck).
    session = next(iter(harness.portal.sessions._sessions.values()))

    async def collect() -> list[str]:
        return [chunk async for chunk in status_events(harness.portal, session, make_lab())]

    chunks = anyio.run(collect)
    assert events_of("".join(chunks))[-1] == (
        "ended",
        {"reason": "the session is over: open your link again"},
    )


def test_request_tokens_are_fresh_and_well_formed() -> None:
    tokens = {new_request_token(NOW) for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert token.startswith(str(int(NOW.timestamp() * 1000)))
        parse_request(f"{token}:5m")


def test_a_lab_has_a_few_event_streams_at_most() -> None:
    harness = Harness(most_event_streams=0)
    harness.signed_in()
    with harness.client.stream("GET", f"/labs/{LAB}/events") as answer:
        events = events_of("".join(answer.iter_text()))
    assert events == [("ended", {"reason": "too many open pages of this lab: close some"})]
