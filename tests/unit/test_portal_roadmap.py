"""The roadmap panel of a Lab started for an Enrollment: what it shows of each milestone,
that cluster-given text stays inert, that a Lab of its own asks for no Enrollment, the live
`roadmap` events, and "Start next milestone" (the start-requested annotation, as the
learner, behind the CSRF token and a rate limit)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import anyio
import pytest
from kubernetes import client
from portal_fake import LAB, NOW, PORTAL, FakeApiError, Harness, make_lab, ts

from roadlab.api import naming
from roadlab.api.roadmap import parse_start_request
from roadlab.kube.portal_api import LearnerClient
from roadlab.portal import pages
from roadlab.portal.live import status_events
from roadlab.portal.roadmap_view import format_spent, roadmap_view

ENROLLMENT = "alice-platform"
ROADMAP = "platform"
HOSTILE = "<img src=x onerror=alert(1)>"
NEXT_LAB = naming.milestone_lab_name(ENROLLMENT, "networking")


def make_roadmap(title: str = "Platform basics", **titles: str) -> dict[str, Any]:
    milestones = [
        {"id": "basics", "title": "Basics", "lab": "basics"},
        {"id": "smoke", "title": "Smoke test", "lab": "smoke", "requires": ["basics"]},
        {"id": "networking", "title": "Networking", "lab": "net", "requires": ["smoke"]},
        {"id": "storage", "title": "Storage", "lab": "storage", "requires": ["networking"]},
        {"id": "extras", "title": "Extras", "lab": "extras", "optional": True},
        {"id": "gpu", "title": "GPUs"},  # no lab yet: coming
    ]
    for milestone in milestones:
        milestone["title"] = titles.get(milestone["id"], milestone["title"])
    return {
        "apiVersion": naming.API_VERSION,
        "kind": "Roadmap",
        "metadata": {"name": ROADMAP},
        "spec": {"title": title, "milestones": milestones},
    }


def completed(milestone: str, lab: str, minutes_ago: int = 60) -> dict[str, Any]:
    return {
        "id": milestone,
        "state": "Completed",
        "lab": lab,
        "attempts": 1,
        "startedAt": ts(NOW - timedelta(minutes=minutes_ago + 42)),
        "completedAt": ts(NOW - timedelta(minutes=minutes_ago)),
        "timeSpentSeconds": 42 * 60 + 15,
        "checksRun": 3,
        "message": f"completed in lab {lab}",
    }


def make_enrollment(
    *, smoke_done: bool = False, last_start: dict[str, Any] | None = None
) -> dict[str, Any]:
    smoke: dict[str, Any] = (
        completed("smoke", LAB, minutes_ago=1)
        if smoke_done
        else {"id": "smoke", "state": "Running", "lab": LAB, "attempts": 1}
    )
    records = [
        completed("basics", naming.milestone_lab_name(ENROLLMENT, "basics")),
        smoke,
        {"id": "networking", "state": "Available" if smoke_done else "Locked"}
        | ({} if smoke_done else {"message": "requires smoke first"}),
        {"id": "storage", "state": "Locked", "message": "requires networking first"},
        {"id": "extras", "state": "Available"},
        {"id": "gpu", "state": "Coming", "message": "no lab teaches this yet"},
    ]
    status: dict[str, Any] = {
        "milestones": records,
        "current": "networking" if smoke_done else "smoke",
        "progress": "2/4" if smoke_done else "1/4",
    }
    if last_start is not None:
        status["lastStart"] = last_start
    return {
        "apiVersion": naming.API_VERSION,
        "kind": "Enrollment",
        "metadata": {"name": ENROLLMENT, "resourceVersion": "7"},
        "spec": {"roadmap": ROADMAP, "learner": "alice"},
        "status": status,
    }


def enrolled(harness: Harness, *, completed_lab: bool = False, **enrollment: Any) -> None:
    """alice-smoke started for ENROLLMENT's milestone smoke (the operator's labels)."""
    lab = make_lab(completed=completed_lab)
    lab["metadata"]["labels"] = {
        naming.LABEL_ENROLLMENT: ENROLLMENT,
        naming.LABEL_MILESTONE: "smoke",
        naming.LABEL_ROADMAP: ROADMAP,
    }
    harness.cluster.labs[LAB] = lab
    harness.cluster.enrollments[ENROLLMENT] = make_enrollment(**enrollment)
    harness.cluster.roadmaps[ROADMAP] = make_roadmap()


@pytest.fixture
def harness() -> Harness:
    return Harness(poll_seconds=0.01, keepalive_seconds=0.05, recheck_session_seconds=0.05)


class Panel(HTMLParser):
    """The roadmap panel of a page: its summary, rows and Start button."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.found = False
        self.rows: list[dict[str, str]] = []
        self.texts: dict[str, str] = {}
        self.start_hidden: bool | None = None
        self._into: tuple[dict[str, str], str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        classes = attributes.get("class", "").split()
        if attributes.get("id") == "roadmap":
            self.found = True
        if tag == "li" and "milestone" in classes:
            self.rows.append({"id": attributes["data-milestone"], "class": " ".join(classes)})
        elif tag == "span" and self.rows and classes and classes[0].startswith("milestone-"):
            self._into = (self.rows[-1], classes[0].removeprefix("milestone-"))
        elif attributes.get("id") in {"roadmap-title", "roadmap-progress", "roadmap-problem"}:
            self._into = (self.texts, attributes["id"])
        if attributes.get("id") == "start-next":
            self.start_hidden = "hidden" in attributes

    def handle_data(self, data: str) -> None:
        if self._into is not None:
            into, key = self._into
            into[key] = into.get(key, "") + data

    def handle_endtag(self, tag: str) -> None:
        self._into = None


def panel_of(harness: Harness) -> Panel:
    page = harness.client.get(f"/labs/{LAB}")
    assert page.status_code == 200, page.text
    return Panel(page.text)


# --- the panel ------------------------------------------------------------------------------


def test_the_panel_shows_each_milestone_in_order(harness: Harness) -> None:
    enrolled(harness)
    harness.signed_in()
    panel = panel_of(harness)
    assert panel.found
    assert panel.texts["roadmap-title"] == "Platform basics"
    assert panel.texts["roadmap-progress"] == "1/4 required milestones completed"
    assert "roadmap-problem" not in panel.texts
    shown = [(row["id"], row["mark"], row["title"], row["words"]) for row in panel.rows]
    assert shown == [
        ("basics", "✓", "Basics", "done · completed 2026-11-21 09:00 UTC · 42m spent"),
        ("smoke", "▶", "Smoke test", "running: this lab"),
        ("networking", "⊘", "Networking", "locked: requires Smoke test"),
        ("storage", "⊘", "Storage", "locked: requires Networking"),
        ("extras", "○", "Extras", "available · optional"),  # not next while this lab runs
        ("gpu", "…", "GPUs", "coming: no lab yet"),
    ]
    classes = {row["id"]: row["class"] for row in panel.rows}
    assert classes["smoke"] == "milestone ms-running here"  # this lab, highlighted
    assert classes["basics"] == "milestone ms-completed"
    assert classes["gpu"] == "milestone ms-coming"
    # This lab is not completed yet: no Start button.
    assert panel.start_hidden is True
    # Read with the learner's token, never the portal's.
    for verb in ("get_enrollment", "get_roadmap"):
        calls = harness.cluster.calls_of(verb)
        assert calls
        assert {who for who, _ in calls} == {harness.learner_token_of()}
    assert {args for _, args in harness.cluster.calls_of("get_enrollment")} == {(ENROLLMENT,)}
    assert {args for _, args in harness.cluster.calls_of("get_roadmap")} == {(ROADMAP,)}


def test_the_start_button_once_this_lab_is_completed_and_a_next_is_available(
    harness: Harness,
) -> None:
    enrolled(harness, completed_lab=True, smoke_done=True)
    harness.signed_in()
    panel = panel_of(harness)
    assert panel.start_hidden is False
    rows = {row["id"]: row for row in panel.rows}
    assert rows["smoke"]["mark"] == "✓"
    assert rows["smoke"]["class"] == "milestone ms-completed here"
    assert rows["smoke"]["words"] == (
        "this lab · done · completed 2026-11-21 09:59 UTC · 42m spent"
    )
    # A required milestone comes before an optional one, as the operator picks it.
    assert rows["networking"]["words"] == "available · next"
    assert rows["extras"]["words"] == "available · optional"
    assert panel.texts["roadmap-progress"] == "2/4 required milestones completed"


def test_no_start_button_while_another_milestone_runs_or_none_is_available() -> None:
    lab = make_lab(completed=True)
    enrollment = make_enrollment(smoke_done=True)
    view = roadmap_view(ENROLLMENT, enrollment, make_roadmap(), lab=lab, lab_completed=True)
    assert view["canStartNext"] is True
    assert view["next"] == {"id": "networking", "title": "Networking"}

    running = copy.deepcopy(enrollment)
    running["status"]["milestones"][2] = {"id": "networking", "state": "Running", "lab": "x"}
    view = roadmap_view(ENROLLMENT, running, make_roadmap(), lab=lab, lab_completed=True)
    assert (view["canStartNext"], view["next"]) == (False, None)
    assert view["milestones"][2]["words"] == "running in lab x"

    nothing = copy.deepcopy(enrollment)
    for record in nothing["status"]["milestones"]:
        if record["state"] == "Available":
            record["state"] = "Locked"
    view = roadmap_view(ENROLLMENT, nothing, make_roadmap(), lab=lab, lab_completed=True)
    assert (view["canStartNext"], view["next"]) == (False, None)

    # The Lab completed, the Enrollment not updated yet (what is next is not known yet).
    lagging = make_enrollment()
    view = roadmap_view(ENROLLMENT, lagging, make_roadmap(), lab=lab, lab_completed=True)
    assert (view["canStartNext"], view["next"]) == (False, None)
    # This lab not completed: no button, whatever is available.
    still = make_lab()
    view = roadmap_view(
        ENROLLMENT, make_enrollment(), make_roadmap(), lab=still, lab_completed=False
    )
    assert view["canStartNext"] is False


def test_a_completed_roadmap_says_so() -> None:
    enrollment = make_enrollment(smoke_done=True)
    enrollment["status"]["completedAt"] = ts(NOW)
    enrollment["status"]["progress"] = "4/4"
    view = roadmap_view(ENROLLMENT, enrollment, make_roadmap(), lab=make_lab(), lab_completed=True)
    assert view["progressText"] == "Roadmap completed (4/4)"


def test_hostile_titles_render_inert(harness: Harness) -> None:
    enrolled(harness)
    harness.cluster.roadmaps[ROADMAP] = make_roadmap(HOSTILE, basics=HOSTILE, networking=HOSTILE)
    harness.cluster.enrollments[ENROLLMENT]["status"]["milestones"][3]["message"] = HOSTILE
    harness.signed_in()
    page = harness.client.get(f"/labs/{LAB}").text
    assert HOSTILE not in page
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    panel = Panel(page)
    assert panel.texts["roadmap-title"] == HOSTILE  # shown as text
    rows = {row["id"]: row for row in panel.rows}
    assert rows["basics"]["title"] == HOSTILE
    assert rows["storage"]["words"] == f"locked: requires {HOSTILE}"
    # The live updates set text, never HTML.
    script = (pages.STATIC_DIR / "portal.js").read_text()
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script


def test_without_the_label_no_panel_and_no_enrollment_is_asked_for(harness: Harness) -> None:
    harness.cluster.enrollments[ENROLLMENT] = make_enrollment()
    harness.cluster.roadmaps[ROADMAP] = make_roadmap()
    csrf = harness.signed_in()
    page = harness.client.get(f"/labs/{LAB}").text
    assert 'id="roadmap"' not in page
    assert 'id="start-next"' not in page
    harness.cluster.watch_events[LAB] = [("MODIFIED", make_lab()), ("DELETED", make_lab())]
    with harness.client.stream("GET", f"/labs/{LAB}/events") as answer:
        events = events_of("".join(answer.iter_text()))
    assert "roadmap" not in {name for name, _ in events}
    # A start request from a Lab of its own asks nothing of any Enrollment.
    answer = harness.client.post(f"/labs/{LAB}/start", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 404
    assert answer.json() == {"error": "this lab is not part of a roadmap"}
    for verb in ("get_enrollment", "watch_enrollment", "get_roadmap", "request_start"):
        assert not harness.cluster.calls_of(verb), verb


def test_an_enrollment_not_found_or_unreadable_shows_a_line_not_a_broken_page(
    harness: Harness,
) -> None:
    enrolled(harness)
    del harness.cluster.enrollments[ENROLLMENT]
    harness.signed_in()
    panel = panel_of(harness)
    assert panel.texts["roadmap-problem"] == f"Your enrollment {ENROLLMENT} was not found."
    assert panel.rows == []
    assert panel.start_hidden is True

    harness.cluster.enrollments[ENROLLMENT] = make_enrollment()
    harness.cluster.enrollment_error = FakeApiError(403, "Forbidden")
    panel = panel_of(harness)
    assert "Your roadmap cannot be shown now (403 Forbidden)" in panel.texts["roadmap-problem"]


def test_without_its_roadmap_the_milestones_go_by_their_ids(harness: Harness) -> None:
    enrolled(harness)
    del harness.cluster.roadmaps[ROADMAP]
    harness.signed_in()
    panel = panel_of(harness)
    assert panel.texts["roadmap-title"] == ROADMAP
    assert [row["title"] for row in panel.rows] == [
        "basics",
        "smoke",
        "networking",
        "storage",
        "extras",
        "gpu",
    ]
    # Without the roadmap's requirements, the operator's own words.
    assert panel.rows[3]["words"] == "locked: requires networking first"


def test_time_spent_is_shown_to_the_minute() -> None:
    assert [format_spent(s) for s in (0, 45, 60, 2535, 4320, 90000)] == [
        "0s",
        "45s",
        "1m",
        "42m",
        "1h12m",
        "1d1h",
    ]


# --- live updates ---------------------------------------------------------------------------


def events_of(body: str) -> list[tuple[str, Any]]:
    found = []
    for block in body.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if "event" in fields:
            found.append((fields["event"], json.loads(fields["data"])))
    return found


def roadmap_events(
    harness: Harness, until: Callable[[dict[str, Any]], bool] = lambda _: True
) -> list[dict[str, Any]]:
    """The roadmap events of a stream of the page, up to the first one `until` accepts
    (then the stream is closed, as when the page goes)."""
    session = next(iter(harness.portal.sessions._sessions.values()))
    lab = harness.cluster.labs[LAB]

    async def collect() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        stream = status_events(harness.portal, session, lab)
        try:
            with anyio.fail_after(10):
                async for chunk in stream:
                    found += [data for name, data in events_of(chunk) if name == "roadmap"]
                    if found and until(found[-1]):
                        return found
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        return found

    return anyio.run(collect)


def test_the_panel_follows_the_enrollment_with_the_learner_token(harness: Harness) -> None:
    enrolled(harness)
    harness.signed_in()
    harness.cluster.enrollment_watch_events[ENROLLMENT] = [
        ("ADDED", make_enrollment()),
        ("MODIFIED", make_enrollment(smoke_done=True)),
    ]
    # Each event as the view changes (the thread hands over only the latest Enrollment).
    *_, changed = roadmap_events(harness, lambda view: view["progress"] == "2/4")
    assert changed["milestones"][1]["state"] == "Completed"
    assert changed["progressText"] == "2/4 required milestones completed"
    assert changed["milestones"][1]["title"] == "Smoke test"  # the roadmap read at each change
    watches = harness.cluster.calls_of("watch_enrollment")
    assert watches
    assert {who for who, _ in watches} == {harness.learner_token_of()}
    assert {args[0] for _, args in watches} == {ENROLLMENT}


def test_the_panel_is_polled_when_the_watch_is_refused(harness: Harness) -> None:
    enrolled(harness)
    harness.signed_in()
    harness.cluster.enrollment_watch_error = FakeApiError(403, "Forbidden")
    [shown] = roadmap_events(harness)
    assert shown["milestones"][0]["state"] == "Completed"
    assert harness.cluster.calls_of("get_enrollment")


# --- Start next milestone -------------------------------------------------------------------


def test_start_next_sets_the_annotation_as_the_learner(harness: Harness) -> None:
    enrolled(harness, completed_lab=True, smoke_done=True)
    csrf = harness.signed_in()
    answer = harness.client.post(f"/labs/{LAB}/start", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 202
    token = answer.json()["token"]
    [(who, args)] = harness.cluster.calls_of("request_start")
    assert who == harness.learner_token_of()
    assert who != PORTAL
    assert args == (ENROLLMENT, token)
    annotations = harness.cluster.enrollments[ENROLLMENT]["metadata"]["annotations"]
    request = parse_start_request(annotations[naming.ANNOTATION_START_REQUESTED])
    assert request is not None
    assert (request.token, request.milestone) == (token, None)  # "<token>": the next one
    assert not harness.cluster.calls_of("patch_lab_annotations")  # the Lab is left alone

    # A given milestone: "<token>/<milestone>".
    again = harness.client.post(
        f"/labs/{LAB}/start", headers={"X-CSRF-Token": csrf}, json={"milestone": "extras"}
    )
    assert again.status_code == 202
    value = annotations[naming.ANNOTATION_START_REQUESTED]
    assert value == f"{again.json()['token']}/extras"
    assert again.json()["token"] != token


@pytest.mark.parametrize("body", [{"milestone": "Not An Id"}, {"milestone": 3}, [], "x"])
def test_start_refuses_a_bad_milestone(harness: Harness, body: Any) -> None:
    enrolled(harness, completed_lab=True, smoke_done=True)
    csrf = harness.signed_in()
    answer = harness.client.post(
        f"/labs/{LAB}/start", headers={"X-CSRF-Token": csrf}, content=json.dumps(body)
    )
    assert answer.status_code == 400
    assert not harness.cluster.calls_of("request_start")


def test_start_needs_the_csrf_token(harness: Harness) -> None:
    enrolled(harness, completed_lab=True, smoke_done=True)
    harness.signed_in()
    for headers in ({}, {"X-CSRF-Token": "not-the-token"}):
        answer = harness.client.post(f"/labs/{LAB}/start", headers=headers)
        assert answer.status_code == 403
        assert answer.json() == {"error": "missing or wrong X-CSRF-Token"}
    assert not harness.cluster.calls_of("request_start")
    # And a session for this Lab: without one, 404 as every route of a Lab.
    harness.client.cookies.clear()
    assert harness.client.post(f"/labs/{LAB}/start").status_code == 404


def test_start_requests_are_rate_limited_per_lab() -> None:
    harness = Harness(start_requests_per_minute=2)
    enrolled(harness, completed_lab=True, smoke_done=True)
    csrf = harness.signed_in()
    headers = {"X-CSRF-Token": csrf}
    codes = [harness.client.post(f"/labs/{LAB}/start", headers=headers) for _ in range(3)]
    assert [answer.status_code for answer in codes] == [202, 202, 429]
    assert codes[2].headers["retry-after"] == "60"
    assert len(harness.cluster.calls_of("request_start")) == 2
    harness.clock.advance(60)
    assert harness.client.post(f"/labs/{LAB}/start", headers=headers).status_code == 202


def test_a_refused_patch_is_a_bad_gateway(harness: Harness) -> None:
    enrolled(harness, completed_lab=True, smoke_done=True)
    csrf = harness.signed_in()
    harness.cluster.start_error = FakeApiError(403, "Forbidden")
    answer = harness.client.post(f"/labs/{LAB}/start", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 502
    assert "403 Forbidden" in answer.json()["error"]


def test_the_operators_answer_is_shown_accepted(harness: Harness) -> None:
    enrolled(harness, completed_lab=True, smoke_done=True)
    csrf = harness.signed_in()
    token = harness.client.post(f"/labs/{LAB}/start", headers={"X-CSRF-Token": csrf}).json()[
        "token"
    ]
    accepted = make_enrollment(
        smoke_done=True,
        last_start={
            "token": token,
            "milestone": "networking",
            "state": "Accepted",
            "message": f"lab {NEXT_LAB} starting",
            "at": ts(NOW),
        },
    )
    accepted["status"]["milestones"][2] = {
        "id": "networking",
        "state": "Running",
        "lab": NEXT_LAB,
        "attempts": 1,
        "message": f"lab {NEXT_LAB} starting",
    }
    harness.cluster.enrollment_watch_events[ENROLLMENT] = [("MODIFIED", accepted)]
    [shown] = roadmap_events(harness)
    assert shown["lastStart"] == {
        "token": token,
        "state": "Accepted",
        "milestone": "networking",
        "message": f"lab {NEXT_LAB} starting",
        "lab": NEXT_LAB,
        "text": (
            f"Lab {NEXT_LAB} is starting (Networking): ask your instructor for its link, or run"
        ),
        "command": f"kubectl lab url {NEXT_LAB}",
    }
    assert NEXT_LAB == "alice-platform-networking"
    # The next one now runs elsewhere: no Start button any more.
    assert shown["canStartNext"] is False
    assert shown["milestones"][2]["words"] == f"running in lab {NEXT_LAB}"


def test_the_operators_answer_is_shown_refused(harness: Harness) -> None:
    enrolled(harness, completed_lab=True, smoke_done=True)
    csrf = harness.signed_in()
    token = harness.client.post(f"/labs/{LAB}/start", headers={"X-CSRF-Token": csrf}).json()[
        "token"
    ]
    refusal = f"milestone 'smoke' is still running in lab {LAB}"
    refused = make_enrollment(
        smoke_done=True,
        last_start={"token": token, "state": "Refused", "message": refusal, "at": ts(NOW)},
    )
    harness.cluster.enrollment_watch_events[ENROLLMENT] = [("MODIFIED", refused)]
    [shown] = roadmap_events(harness)
    assert shown["lastStart"]["state"] == "Refused"
    assert shown["lastStart"]["text"] == f"Not started: {refusal}"
    assert shown["lastStart"]["command"] is None
    assert shown["lastStart"]["lab"] is None


# --- the real client's calls --------------------------------------------------------------


class RecordingObjects:
    """CustomObjectsApi's calls, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = []

    def get_cluster_custom_object(self, *args: object, **kwargs: object) -> dict[str, Any]:
        self.calls.append(("get", args, kwargs))
        return {"metadata": {"name": args[3]}}

    def patch_cluster_custom_object(self, *args: object, **kwargs: object) -> dict[str, Any]:
        self.calls.append(("patch", args, kwargs))
        return {"metadata": {"name": args[3]}}


def test_the_learner_client_reads_and_annotates_the_enrollment() -> None:
    learner = LearnerClient(client.ApiClient(client.Configuration()))
    objects = RecordingObjects()
    learner.labs = objects  # type: ignore[assignment]
    learner.get_enrollment(ENROLLMENT)
    learner.get_roadmap(ROADMAP)
    learner.request_start(ENROLLMENT, "123-abc/networking")
    (_, get_e, _), (_, get_r, _), (_, patch, options) = objects.calls
    assert get_e == (naming.GROUP, naming.VERSION, "enrollments", ENROLLMENT)
    assert get_r == (naming.GROUP, naming.VERSION, "roadmaps", ROADMAP)
    assert patch == (
        naming.GROUP,
        naming.VERSION,
        "enrollments",
        ENROLLMENT,
        {"metadata": {"annotations": {naming.ANNOTATION_START_REQUESTED: "123-abc/networking"}}},
    )
    assert options["_content_type"] == "application/merge-patch+json"
