"""GET /labs/<lab>/events: the status JSON as Server-Sent Events, now and at every change.

A thread follows the Lab with the learner's token: a watch of that one Lab (field
selector metadata.name, which the learner's resourceNames rule allows), a new watch each
time the server ends one, and polling every poll_seconds once a watch is refused or
breaks. The thread hands only the latest Lab to the stream (a one-slot mailbox): a slow
browser never makes it queue up states, and nothing blocks the thread on the browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from roadlab.portal.context import UNAUTHORIZED, Portal
from roadlab.portal.ports import Manifest
from roadlab.portal.sessions import Session
from roadlab.portal.status_view import status_view

log = logging.getLogger("roadlab.portal.events")
RETRY_MILLISECONDS = 2000  # how soon the browser's EventSource reconnects


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class LatestLab:
    """A one-slot mailbox from a thread to the event loop: the newest Lab not yet taken,
    then (once offered None) that the Lab is gone."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._arrived = asyncio.Event()
        self._lock = threading.Lock()
        self._newest: Manifest | None = None
        self._gone = False

    def offer(self, lab: Manifest | None) -> None:
        with self._lock:
            if lab is None:
                self._gone = True
            else:
                self._newest = lab
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody listens any more
            self._loop.call_soon_threadsafe(self._arrived.set)

    async def take(self, timeout: float) -> tuple[bool, Manifest | None]:
        """(True, the newest Lab), (True, None) once it is gone and every state was taken,
        or (False, None) after `timeout` seconds without news."""
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return False, None
        with self._lock:
            newest, self._newest = self._newest, None
            if newest is not None:
                if not self._gone:
                    self._arrived.clear()
                return True, newest
            self._arrived.clear()
            return (True, None) if self._gone else (False, None)


def follow_lab(portal: Portal, lab_name: str, mailbox: LatestLab, stop: threading.Event) -> None:
    """The thread: offer the Lab at every change until `stop` is set or the Lab is gone."""
    settings = portal.settings
    watching = True
    while not stop.is_set():
        if watching:
            started = time.monotonic()
            try:
                for kind, lab in portal.learners.for_lab(lab_name).watch_lab(
                    lab_name, settings.watch_seconds
                ):
                    if stop.is_set():
                        return
                    if kind == "DELETED":
                        mailbox.offer(None)
                        return
                    mailbox.offer(lab)
            except Exception as error:
                log.info("lab %s: the watch failed (%s); polling instead", lab_name, error)
                if getattr(error, "status", None) == UNAUTHORIZED:
                    portal.learners.forget(lab_name)
                watching = False
            else:
                # The server ended the watch: watch again (at once, unless it ended at once).
                if time.monotonic() - started < settings.poll_seconds:
                    stop.wait(settings.poll_seconds)
                continue
        try:
            found = portal.learners.for_lab(lab_name).get_lab(lab_name)
        except Exception as error:
            log.info("lab %s: polling failed: %s", lab_name, error)
            if getattr(error, "status", None) == UNAUTHORIZED:
                portal.learners.forget(lab_name)
        else:
            mailbox.offer(found)
            if found is None:
                return
        stop.wait(settings.poll_seconds)


def _comparable(view: dict[str, Any]) -> str:
    # secondsLeft changes every second; the page counts down by itself.
    return json.dumps({k: v for k, v in view.items() if k != "secondsLeft"}, sort_keys=True)


async def status_events(portal: Portal, session: Session, first: Manifest) -> AsyncIterator[str]:
    """The SSE body: `status` now and at each change, a comment to keep the stream open,
    and `ended` (then the end) when the Lab is deleted or the session is over."""
    with portal.open_slot("events", session.lab, portal.settings.most_event_streams) as granted:
        if not granted:
            yield sse("ended", {"reason": "too many open pages of this lab: close some"})
            return
        async for chunk in _status_events(portal, session, first):
            yield chunk


async def _status_events(portal: Portal, session: Session, first: Manifest) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    settings = portal.settings
    definition = portal.definition(first)
    mailbox = LatestLab(loop)
    stop = threading.Event()
    follower = threading.Thread(
        target=follow_lab,
        args=(portal, session.lab, mailbox, stop),
        name=f"roadlab-events-{session.lab}",
        daemon=True,
    )
    try:
        view = status_view(first, definition, portal.now())
        last = _comparable(view)
        yield f"retry: {RETRY_MILLISECONDS}\n\n" + sse("status", view)
        follower.start()
        last_sent = next_recheck = loop.time()
        next_recheck += settings.recheck_session_seconds
        while True:
            wait = min(settings.keepalive_seconds, settings.recheck_session_seconds)
            arrived, lab = await mailbox.take(wait)
            if loop.time() >= next_recheck:
                if not await portal.still_valid(session):
                    yield sse("ended", {"reason": "the session is over: open your link again"})
                    return
                next_recheck = loop.time() + settings.recheck_session_seconds
            if arrived and lab is None:
                yield sse("ended", {"reason": "the lab was deleted"})
                return
            if arrived and lab is not None:
                portal.follow_lab(session, lab)
                view = status_view(lab, definition, portal.now())
                if _comparable(view) != last:
                    last = _comparable(view)
                    last_sent = loop.time()
                    yield sse("status", view)
                    continue
            if loop.time() - last_sent >= settings.keepalive_seconds:
                last_sent = loop.time()
                yield ": keepalive\n\n"
    finally:
        stop.set()  # the thread ends at its next event, poll or watch timeout
