"""GET /labs/<lab>/events: the status JSON as Server-Sent Events, now and at every change;
and for a Lab started for an Enrollment, the roadmap panel's JSON (`roadmap`) too.

A thread follows the Lab with the learner's token: a watch of that one Lab (field
selector metadata.name, which the learner's resourceNames rule allows), a new watch each
time the server ends one, and polling every poll_seconds once a watch is refused or
breaks. A second thread follows the Lab's Enrollment the same way (the learner may get and
watch that one too), reading its Roadmap at each change. The threads hand only the latest
of each to the stream (a one-slot-per-kind mailbox): a slow browser never makes them queue
up states, and nothing blocks a thread on the browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from roadlab.portal.context import UNAUTHORIZED, Portal
from roadlab.portal.ports import LearnerApi, Manifest
from roadlab.portal.roadmap_view import enrollment_of, roadmap_of, roadmap_view
from roadlab.portal.sessions import Session
from roadlab.portal.status_view import status_view

log = logging.getLogger("roadlab.portal.events")
RETRY_MILLISECONDS = 2000  # how soon the browser's EventSource reconnects
LAB, ENROLLMENT = "lab", "enrollment"  # the mailbox's kinds


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class Latest:
    """A mailbox from threads to the event loop with one slot per kind: the newest item of
    each kind not yet taken, and the kinds that are gone (offered None)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._arrived = asyncio.Event()
        self._lock = threading.Lock()
        self._newest: dict[str, Any] = {}
        self._gone: set[str] = set()

    def offer(self, kind: str, item: Any | None) -> None:
        with self._lock:
            if item is None:
                self._gone.add(kind)
            else:
                self._newest[kind] = item
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody listens any more
            self._loop.call_soon_threadsafe(self._arrived.set)

    async def take(self, timeout: float) -> tuple[dict[str, Any], set[str]]:
        """(the newest item of each kind that sent one, the kinds gone since the last take),
        both empty after `timeout` seconds without news."""
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return {}, set()
        with self._lock:
            newest, self._newest = self._newest, {}
            gone, self._gone = self._gone, set()
            self._arrived.clear()
        return newest, gone


def follow(
    portal: Portal,
    lab_name: str,
    stop: threading.Event,
    *,
    what: str,
    watch: Callable[[LearnerApi, int], Iterator[tuple[str, Manifest]]],
    read: Callable[[LearnerApi], Manifest | None],
    offer: Callable[[Manifest | None], None],
) -> None:
    """A thread: offer the object (`what`, read with the Lab's learner client) at every
    change until `stop` is set or it is gone (then offer None)."""
    settings = portal.settings
    watching = True
    while not stop.is_set():
        if watching:
            started = time.monotonic()
            try:
                for kind, item in watch(portal.learners.for_lab(lab_name), settings.watch_seconds):
                    if stop.is_set():
                        return
                    if kind == "DELETED":
                        offer(None)
                        return
                    offer(item)
            except Exception as error:
                log.info("lab %s: the watch of %s failed (%s); polling", lab_name, what, error)
                if getattr(error, "status", None) == UNAUTHORIZED:
                    portal.learners.forget(lab_name)
                watching = False
            else:
                # The server ended the watch: watch again (at once, unless it ended at once).
                if time.monotonic() - started < settings.poll_seconds:
                    stop.wait(settings.poll_seconds)
                continue
        try:
            found = read(portal.learners.for_lab(lab_name))
        except Exception as error:
            log.info("lab %s: polling %s failed: %s", lab_name, what, error)
            if getattr(error, "status", None) == UNAUTHORIZED:
                portal.learners.forget(lab_name)
        else:
            offer(found)
            if found is None:
                return
        stop.wait(settings.poll_seconds)


def follow_lab(portal: Portal, lab_name: str, mailbox: Latest, stop: threading.Event) -> None:
    """The Lab's thread: offer the Lab at every change until `stop` or the Lab is gone."""
    follow(
        portal,
        lab_name,
        stop,
        what="the lab",
        watch=lambda api, seconds: api.watch_lab(lab_name, seconds),
        read=lambda api: api.get_lab(lab_name),
        offer=lambda lab: mailbox.offer(LAB, lab),
    )


def follow_enrollment(
    portal: Portal, lab_name: str, enrollment: str, mailbox: Latest, stop: threading.Event
) -> None:
    """The Enrollment's thread: offer (the Enrollment, its Roadmap) at every change."""

    def offer(found: Manifest | None) -> None:
        if found is None:
            mailbox.offer(ENROLLMENT, None)
            return
        try:
            roadmap = roadmap_of(portal.learners.for_lab(lab_name), found)
        except Exception as error:  # no learner token now: the milestones' ids, no titles
            log.info("lab %s: cannot read its roadmap: %s", lab_name, error)
            roadmap = None
        mailbox.offer(ENROLLMENT, (found, roadmap))

    follow(
        portal,
        lab_name,
        stop,
        what=f"enrollment {enrollment}",
        watch=lambda api, seconds: api.watch_enrollment(enrollment, seconds),
        read=lambda api: api.get_enrollment(enrollment),
        offer=offer,
    )


def _comparable(view: dict[str, Any]) -> str:
    # secondsLeft changes every second; the page counts down by itself.
    return json.dumps({k: v for k, v in view.items() if k != "secondsLeft"}, sort_keys=True)


async def status_events(portal: Portal, session: Session, first: Manifest) -> AsyncIterator[str]:
    """The SSE body: `status` now and at each change, `roadmap` (the panel's JSON) at each
    change of a Lab's Enrollment, a comment to keep the stream open, and `ended` (then the
    end) when the Lab is deleted or the session is over."""
    with portal.open_slot("events", session.lab, portal.settings.most_event_streams) as granted:
        if not granted:
            yield sse("ended", {"reason": "too many open pages of this lab: close some"})
            return
        async for chunk in _status_events(portal, session, first):
            yield chunk


class RoadmapPanel:
    """The `roadmap` events of a stream: the panel's JSON when it changed, from the latest
    Enrollment (and Roadmap) the thread read and the latest Lab (its completion)."""

    def __init__(self, enrollment: str) -> None:
        self.enrollment = enrollment
        self._followed: tuple[Manifest | None, Manifest | None] | None = None
        self._last = ""

    def update(
        self, newest: dict[str, Any], gone: set[str], lab: Manifest, lab_completed: bool
    ) -> dict[str, Any] | None:
        if ENROLLMENT in gone:
            self._followed = (None, None)
        elif ENROLLMENT in newest:
            self._followed = newest[ENROLLMENT]
        if self._followed is None:  # not read yet: the page shows the one it was served with
            return None
        enrollment, roadmap = self._followed
        shown = roadmap_view(
            self.enrollment, enrollment, roadmap, lab=lab, lab_completed=lab_completed
        )
        comparable = json.dumps(shown, sort_keys=True)
        if comparable == self._last:
            return None
        self._last = comparable
        return shown


def _followers(
    portal: Portal, lab: str, enrollment: str | None, mailbox: Latest, stop: threading.Event
) -> list[threading.Thread]:
    """The Lab's thread, and its Enrollment's for a Lab started for one (for a Lab of its
    own, no Enrollment is ever asked for)."""
    followers = [
        threading.Thread(
            target=follow_lab,
            args=(portal, lab, mailbox, stop),
            name=f"roadlab-events-{lab}",
            daemon=True,
        )
    ]
    if enrollment is not None:
        followers.append(
            threading.Thread(
                target=follow_enrollment,
                args=(portal, lab, enrollment, mailbox, stop),
                name=f"roadlab-enrollment-{lab}",
                daemon=True,
            )
        )
    return followers


async def _status_events(portal: Portal, session: Session, first: Manifest) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    settings = portal.settings
    definition = portal.definition(first)
    mailbox = Latest(loop)
    stop = threading.Event()
    enrollment = enrollment_of(first)
    followers = _followers(portal, session.lab, enrollment, mailbox, stop)
    lab = first
    panel = RoadmapPanel(enrollment) if enrollment is not None else None
    try:
        view = status_view(first, definition, portal.now())
        last = _comparable(view)
        yield f"retry: {RETRY_MILLISECONDS}\n\n" + sse("status", view)
        for follower in followers:
            follower.start()
        last_sent = next_recheck = loop.time()
        next_recheck += settings.recheck_session_seconds
        while True:
            wait = min(settings.keepalive_seconds, settings.recheck_session_seconds)
            newest, gone = await mailbox.take(wait)
            if loop.time() >= next_recheck:
                if not await portal.still_valid(session):
                    yield sse("ended", {"reason": "the session is over: open your link again"})
                    return
                next_recheck = loop.time() + settings.recheck_session_seconds
            sent = False
            if LAB in newest:
                lab = newest[LAB]
                portal.follow_lab(session, lab)
                view = status_view(lab, definition, portal.now())
                if _comparable(view) != last:
                    last = _comparable(view)
                    sent = True
                    yield sse("status", view)
            shown = panel.update(newest, gone, lab, view["completed"]) if panel else None
            if shown is not None:
                sent = True
                yield sse("roadmap", shown)
            if LAB in gone:
                yield sse("ended", {"reason": "the lab was deleted"})
                return
            if sent:
                last_sent = loop.time()
            elif loop.time() - last_sent >= settings.keepalive_seconds:
                last_sent = loop.time()
                yield ": keepalive\n\n"
    finally:
        stop.set()  # the threads end at their next event, poll or watch timeout
