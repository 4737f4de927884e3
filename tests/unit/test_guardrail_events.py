"""The guardrail watch's glue: events that need nothing end in the event loop; the rest
are restored in a worker thread, from the Lab as the watch last saw it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import kopf
import pytest

from roadlab.api import naming
from roadlab.controller import actions, handlers, state

LAB = {"metadata": {"name": "alice-hpa", "uid": "u1"}, "spec": {"lab": "hpa"}}
QUOTA = {
    "kind": "ResourceQuota",
    "metadata": {"name": "lab-quota", "labels": {naming.LABEL_LAB: "alice-hpa"}},
}


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, str]]]:
    calls: list[tuple[str, str, str]] = []

    def record(type: str, lab: Mapping[str, Any], body: Mapping[str, Any]) -> None:
        calls.append((type, lab["metadata"]["name"], threading.current_thread().name))

    monkeypatch.setattr(actions, "restore", record)
    monkeypatch.setitem(state.labs, "alice-hpa", LAB)
    yield calls


def event(type: str | None, lab: str = "alice-hpa") -> None:
    body = kopf.Body(
        {**QUOTA, "metadata": {**QUOTA["metadata"], "labels": {naming.LABEL_LAB: lab}}}
    )
    asyncio.run(handlers.guardrail_changed(type=type, body=body, labels=body.metadata.labels))


def test_listing_and_added_events_do_nothing(restored: list[tuple[str, str, str]]) -> None:
    event(None)  # Kopf's listing at start-up
    event("ADDED")
    assert restored == []


def test_a_lab_not_seen_yet_is_left_alone(restored: list[tuple[str, str, str]]) -> None:
    event("MODIFIED", lab="someone-else")
    assert restored == []


def test_changes_are_restored_off_the_event_loop(restored: list[tuple[str, str, str]]) -> None:
    event("MODIFIED")
    event("DELETED")
    assert [(t, lab) for t, lab, _ in restored] == [
        ("MODIFIED", "alice-hpa"),
        ("DELETED", "alice-hpa"),
    ]
    assert all(thread != threading.main_thread().name for _, _, thread in restored)
