"""The ticker: one loop over every Lab, instead of a Kopf timer per Lab.

Kopf puts a finalizer on objects that have timers; a Lab would then outlive an uninstalled
operator (and block deleting the CRD). One loop also scales to many Labs. What a tick does
for a Lab is ticker.due's pure decision; this module carries it out.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping
from typing import Any

import kopf

from roadlab.api import conditions as cond
from roadlab.controller import actions, autocheck, checks, memory, state, ticker
from roadlab.controller.plan import parse_status

_ticker: asyncio.Task[None] | None = None
_rechecker: asyncio.Task[None] | None = None


def tick_lab(body: Mapping[str, Any]) -> None:
    """Expiry, missed check requests, periodic checks, runs whose end was missed: what
    ticker.due decides, carried out.

    Cheap for a Lab with nothing due: the API is touched only when something is.
    """
    rt = state.runtime()
    decision = ticker.due(body, state.now())
    try:
        if decision.action is ticker.Action.EXPIRE:
            state.lab_logger(body).info(
                "expired at %s", parse_status(body.get("status")).expires_at
            )
            actions.reconcile_and_report(body, {})
        elif decision.action is ticker.Action.FOLLOW_CHECK:
            job = rt.api.get("batch/v1", "Job", decision.job, rt.settings.operator_namespace)
            if job is not None:
                actions.record_check(job)
            else:  # the Job went (deleted, or lost mid-start): the request gets a new run
                state.lab_logger(body).info("check job %s is gone; running it again", decision.job)
                actions.check_now(body, decision.token, rerun=True)
        elif decision.action is ticker.Action.START_CHECK:
            actions.check_now(body, decision.token)
    except (kopf.TemporaryError, kopf.PermanentError):
        pass  # the status says why (or the Lab changed meanwhile); the next tick tries again


async def tick_forever(interval: float, logger: kopf.Logger) -> None:
    logger.info("ticking every %s s", interval)
    while True:
        await asyncio.sleep(interval)
        for body in list(state.labs.values()):
            try:
                await asyncio.to_thread(tick_lab, body)
            except Exception:
                state.lab_logger(body).exception("tick failed")
        # Memory freed by the last bursts of work goes back to the system.
        await asyncio.to_thread(memory.release_free_memory)


_ticker_start: tuple[float, kopf.Logger] | None = None


# --- Re-checks after a learner's change (controller.autocheck decides when) ---------------

RECHECKS = autocheck.Rechecks()
RECHECK_POLL_SECONDS = 0.1
_rechecks_running: set[asyncio.Task[None]] = set()


def note_change(lab_name: str) -> None:
    RECHECKS.note(lab_name, time.monotonic())


def recheck_lab(lab_name: str) -> None:
    """One re-check of a lab whose objects changed, in a worker thread: only a running lab
    whose checks are short (the warm checker's), never a load test on every change."""
    body = state.labs.get(lab_name)
    rt = state.runtime()
    if body is None:
        return
    status = parse_status(body.get("status"))
    definition = rt.catalog.get(str((body.get("spec") or {}).get("lab")))
    if (
        definition is None
        or not definition.tasks
        or not checks.runs_warm(definition, rt.settings.warm_checker)
        or not cond.is_true(status.conditions, cond.PROVISIONED)
        or cond.is_true(status.conditions, cond.EXPIRED)
        # A learner's request is waiting: its run checks the same objects, and a re-check
        # started first would hold it back for a whole run (a wrong answer's: minutes).
        or checks.pending_request((body.get("metadata") or {}).get("annotations") or {}, status)
    ):
        return
    try:
        actions.check_now(body, autocheck.token(time.time()))
    except kopf.TemporaryError:  # a run in flight, or the Lab changed: still owed
        RECHECKS.retry(lab_name, time.monotonic())


async def recheck_forever() -> None:
    while True:
        await asyncio.sleep(RECHECK_POLL_SECONDS)
        for lab_name in RECHECKS.due_now(time.monotonic()):
            task = asyncio.create_task(asyncio.to_thread(recheck_lab, lab_name))
            _rechecks_running.add(task)  # kept until done: the loop holds no other reference
            task.add_done_callback(functools.partial(_recheck_done, lab_name))


def _recheck_done(lab_name: str, task: asyncio.Task[None]) -> None:
    _rechecks_running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        lab = state.labs.get(lab_name) or {"metadata": {"name": lab_name}}
        state.lab_logger(lab).error("re-check failed", exc_info=task.exception())


def prepare(interval: float, logger: kopf.Logger) -> None:
    """At start-up: the ticker's interval and logger, for ensure_ticker.

    The task itself starts at the first Lab event (ensure_ticker): kopf.event, which the
    ticker calls when it records a check, needs Kopf's event-posting context, which only
    a resource handler has; a task made at start-up lacked it, and the ticker's events (and
    the rest of that run's bookkeeping) were lost with a LookupError.
    """
    global _ticker_start  # noqa: PLW0603 - one ticker per operator process
    _ticker_start = (interval, logger)


def ensure_ticker() -> None:
    """Start the ticker from the resource handler calling this, in its context (once)."""
    global _ticker, _rechecker  # noqa: PLW0603 - one ticker per operator process
    if _ticker is None and _ticker_start is not None:
        interval, logger = _ticker_start
        _ticker = asyncio.create_task(tick_forever(interval, logger))
        _rechecker = asyncio.create_task(recheck_forever())


def stop() -> None:
    for task in (_ticker, _rechecker):
        if task is not None:
            task.cancel()
