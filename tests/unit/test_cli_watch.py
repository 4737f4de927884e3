"""`kubectl lab watch`: the task board, when it ends, the watch with its polling fallback,
and LabClient.watch_lab over the Kubernetes watch API."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import urllib3
from kubernetes import client
from test_cli import (
    NOW,
    FakeApi,
    Harness,
    Manifest,
    api_error,
    catalog_dir,
    cond,
    make_lab,
    ready_status,
    task,
    ts,
    with_conditions,
)

from roadlab.cli import board, common, verbs_learner
from roadlab.kube.lab_client import LabClient

__all__ = ["catalog_dir"]  # the autouse fixture of test_cli: a catalog of the smoke lab


def pending_lab() -> Manifest:
    return make_lab(status=ready_status())


def completed_lab() -> Manifest:
    status = ready_status(
        [
            task("scale-web", "S", "Passed", "spec.replicas is 2"),
            task("configmap-answer", "A", "Passed"),
        ],
        progress="2/2",
    )
    return make_lab(
        status=with_conditions(status, cond("Completed", "True", "AllTasksPassed", "2 of 2"))
    )


def expired_lab() -> Manifest:
    return make_lab(
        status=with_conditions(
            ready_status(), cond("Expired", "True", "Expired", "the lab expired")
        )
    )


# --- the board ------------------------------------------------------------------------------

BOARD = """\
alice-smoke: smoke for alice
[##########----------] 1/2 tasks passed   1h52m left

    TASK               STATE    MESSAGE
  + scale-web          Passed   spec.replicas is 2
  x configmap-answer   Failed   ConfigMap answer not found
"""


def test_format_board() -> None:
    assert board.format_board(pending_lab(), NOW, unicode=False) == BOARD
    unicode = board.format_board(pending_lab(), NOW, unicode=True)
    assert unicode.splitlines()[1] == "[██████████░░░░░░░░░░] 1/2 tasks passed   1h52m left"
    assert "  ✓ scale-web " in unicode
    assert "  ✗ configmap-answer " in unicode


def test_the_board_without_a_clock_stays_put() -> None:
    last = {"token": "t", "job": "j", "state": "Failed", "finishedAt": ts(timedelta(minutes=-2))}
    lab = make_lab(status=ready_status(last_check=last))
    assert board.format_board(lab, NOW, False).endswith("\nlast check: Failed, 2m ago\n")
    still = board.format_board(lab, None, False, footer="watching")
    assert still.splitlines()[1].endswith("expires 2026-11-21T11:52:00Z")
    assert still.endswith("\nlast check: Failed\n\nwatching\n")


def test_the_board_of_a_lab_in_the_making_and_of_a_completed_one() -> None:
    status = {"conditions": [cond("Ready", "False", "Provisioning", "creating objects")]}
    text = board.format_board(make_lab(status=status), NOW, False)
    assert text == (
        "alice-smoke: smoke for alice\n"
        "[--------------------] 0/0 tasks passed   no expiry yet\n"
        "Ready: False (Provisioning): creating objects\n"
        "\n"
        "  no tasks reported yet\n"
    )
    done = board.format_board(completed_lab(), NOW, False)
    assert "[####################] 2/2 tasks passed" in done
    assert "\nCompleted: every task passed\n" in done
    assert "\x1b" not in board.format_board(
        make_lab(status=ready_status([task("a", "A", "Failed", "bad \x1b[2Jvalue\nmore")])),
        NOW,
        False,
    )


@pytest.mark.parametrize(
    ("lab", "text"),
    [
        (expired_lab(), "expired"),
        (make_lab(status={"expiresAt": ts(timedelta(seconds=-3))}), "expiring now"),
        (make_lab(status={"expiresAt": ts(timedelta(seconds=42))}), "42s left"),
        (make_lab(status={"expiresAt": "soon"}), "no expiry yet"),
    ],
)
def test_time_left(lab: Manifest, text: str) -> None:
    assert board.time_left(lab, NOW) == text


def test_task_counts_and_bar() -> None:
    assert board.task_counts(make_lab(status={"tasksPassed": 3, "tasksTotal": 4})) == (3, 4)
    assert board.task_counts(pending_lab()) == (1, 2)
    assert board.progress_bar(1, 3, False, width=6) == "[##----]"
    assert board.progress_bar(0, 0, True, width=2) == "[░░]"


def test_watch_end() -> None:
    assert board.watch_end(pending_lab()) is None
    assert board.watch_end(completed_lab()) == common_step(0, "Completed", "every task passed")
    assert board.watch_end(None) == common_step(3, "Deleted", "the lab was deleted")
    assert board.watch_end(expired_lab()) == common_step(1, "Expired", "the lab expired")
    failed = make_lab(status={"conditions": [cond("Ready", "False", "UnknownLab", "no such lab")]})
    assert board.watch_end(failed) == common_step(1, "UnknownLab", "no such lab")


def common_step(code: int, reason: str, message: str) -> Any:
    from roadlab.cli.waiting import WaitStep  # noqa: PLC0415

    return WaitStep(True, code, reason, message)


# --- the command ----------------------------------------------------------------------------


def changed(lab: Manifest, **annotations: str) -> Manifest:
    """The same board, another resourceVersion (e.g. Kopf's own annotations)."""
    lab = json.loads(json.dumps(lab))
    lab["metadata"]["annotations"] = annotations
    return lab


def test_watch_redraws_at_each_change_until_completed() -> None:
    api = FakeApi(pending_lab())
    api.watches = [[pending_lab(), changed(pending_lab(), x="1"), completed_lab()]]
    harness = Harness(api)
    assert harness.run("watch", "alice-smoke") == 0
    # The first board (unchanged by the second event), a blank line, the last one.
    first, last = harness.out.split("\n\nalice-smoke: smoke for alice\n")
    assert first + "\n" == BOARD
    assert "Completed: every task passed" in last
    assert harness.out.endswith("\nlab alice-smoke is completed: every task passed\n")
    assert api.watch_calls == [("alice-smoke", verbs_learner.WATCH_STREAM_SECONDS)]
    assert harness.err == ""


def test_a_watch_that_ends_is_followed_by_another() -> None:
    api = FakeApi(pending_lab())
    api.watches = [[pending_lab()], [completed_lab()]]
    harness = Harness(api)
    assert harness.run("watch", "alice-smoke") == 0
    assert len(api.watch_calls) == 2
    assert harness.sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        api_error(403, "labs.roadlab.dev is forbidden: cannot watch"),
        urllib3.exceptions.ProtocolError("Connection broken"),
        [],  # a watch that ends without a single event
    ],
)
def test_watch_falls_back_to_polling(failure: Exception | list[Manifest]) -> None:
    api = FakeApi(pending_lab())
    api.watches = [failure]
    # The first get, then one per poll.
    api.script["alice-smoke"] = [pending_lab(), pending_lab(), pending_lab(), completed_lab()]
    harness = Harness(api)
    assert harness.run("watch", "alice-smoke") == 0
    assert harness.sleeps == [common.POLL_SECONDS, common.POLL_SECONDS]
    assert len(api.watch_calls) == 1
    assert harness.err == "note: polling every 1s (the watch was refused or broke)\n"


def test_watch_of_a_lab_that_is_deleted_or_expires() -> None:
    api = FakeApi(pending_lab())
    api.watches = [[pending_lab()]]  # the stream ends at DELETED...
    api.script["alice-smoke"] = [pending_lab(), None]  # ...and the Lab is gone
    harness = Harness(api)
    assert harness.run("watch", "alice-smoke") == 3
    assert harness.err == "error: lab alice-smoke: Deleted: the lab was deleted\n"
    api = FakeApi(pending_lab())
    api.watches = [[expired_lab()]]
    harness = Harness(api)
    assert harness.run("watch", "alice-smoke") == 1
    assert harness.err == "error: lab alice-smoke: Expired: the lab expired\n"


def test_watch_of_a_completed_lab_ends_at_once() -> None:
    api = FakeApi(completed_lab())
    harness = Harness(api)
    assert harness.run("watch", "alice-smoke") == 0
    assert api.watch_calls == []


def test_watch_of_a_missing_lab() -> None:
    harness = Harness(FakeApi())
    assert harness.run("watch", "nope") == 3
    assert harness.err == "error: lab nope not found\n"


def test_ctrl_c_ends_the_watch_quietly() -> None:
    api = FakeApi(pending_lab())

    def interrupted(name: str, timeout_seconds: int) -> Iterator[Manifest]:
        yield pending_lab()
        raise KeyboardInterrupt

    api.watch_lab = interrupted  # type: ignore[method-assign]
    harness = Harness(api)
    assert harness.run("watch", "alice-smoke") == 130
    assert harness.err == ""
    assert harness.out == BOARD


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


def test_on_a_terminal_the_board_is_drawn_in_place() -> None:
    api = FakeApi(pending_lab())
    api.watches = [api_error(403, "no watch")]
    api.script["alice-smoke"] = [pending_lab(), completed_lab()]
    harness = Harness(api, out=Terminal())
    assert harness.run("watch", "alice-smoke") == 0
    assert "\x1b[" in harness.out  # cursor movements of the live display
    assert "2/2 tasks passed" in harness.out
    assert "polling every 1s" in harness.out  # said on the board, not on stderr
    assert harness.out.endswith("lab alice-smoke is completed: every task passed\n")
    assert harness.err == ""


def test_watch_takes_only_text_output() -> None:
    harness = Harness(FakeApi(pending_lab()))
    assert harness.run("watch", "alice-smoke", "-o", "json") == 2


# --- LabClient.watch_lab --------------------------------------------------------------------


class FakeResponse:
    status = 200

    def __init__(self, events: list[Manifest]) -> None:
        self.lines = [json.dumps(event).encode() + b"\n" for event in events]
        self.closed = False

    def stream(self, amt: Any = None, decode_content: Any = None) -> Iterator[bytes]:
        yield from self.lines

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        pass


class FakeCustomObjects:
    def __init__(self, events: list[Manifest]) -> None:
        self.response = FakeResponse(events)
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def list_cluster_custom_object(self, *args: Any, **kwargs: Any) -> FakeResponse:
        self.calls.append((args, kwargs))
        return self.response


def event(kind: str, lab: Manifest) -> Manifest:
    return {"type": kind, "object": lab}


def test_lab_client_watches_one_lab_by_field_selector(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = pending_lab()
    lab["metadata"]["resourceVersion"] = "7"
    fake = FakeCustomObjects(
        [
            event("ADDED", lab),
            event("BOOKMARK", {"metadata": {"resourceVersion": "8"}}),
            event("MODIFIED", completed_lab()),
            event("DELETED", completed_lab()),
            event("ADDED", lab),  # never reached: the stream ends at DELETED
        ]
    )
    lab_client = LabClient(client.ApiClient())
    monkeypatch.setattr(lab_client, "_labs", lambda: fake)
    seen = list(lab_client.watch_lab("alice-smoke", 300))
    assert [x["metadata"]["name"] for x in seen] == ["alice-smoke", "alice-smoke"]
    assert seen[1]["status"]["progress"] == "2/2"
    [(args, kwargs)] = fake.calls
    assert args == ("roadlab.dev", "v1alpha1", "labs")
    assert kwargs["field_selector"] == "metadata.name=alice-smoke"
    assert kwargs["timeout_seconds"] == 300
    assert kwargs["watch"] is True
    assert kwargs["_request_timeout"] == (10, 330)
    assert fake.response.closed


def test_lab_client_watch_errors_are_api_exceptions(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    fake = FakeCustomObjects([{"type": "ERROR", "object": gone}])
    lab_client = LabClient(client.ApiClient())
    monkeypatch.setattr(lab_client, "_labs", lambda: fake)
    with pytest.raises(client.exceptions.ApiException) as raised:
        list(lab_client.watch_lab("alice-smoke", 300))
    assert raised.value.status == 410
    assert fake.response.closed


def test_a_broken_watch_that_was_followed_goes_on_by_polling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = FakeApi(pending_lab())

    def breaks(name: str, timeout_seconds: int) -> Iterator[Manifest]:
        yield pending_lab()
        raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")

    api.watch_lab = breaks  # type: ignore[method-assign]
    api.script["alice-smoke"] = [pending_lab(), pending_lab(), completed_lab()]
    harness = Harness(api)
    assert harness.run("watch", "alice-smoke") == 0
    assert harness.sleeps == [common.POLL_SECONDS]
