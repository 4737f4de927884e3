"""Kopf glue: the decorated handlers. Each hands the Lab to one reconciler function and
reports what came back (status, Events, metrics, retry); the state they share is in
controller.state, the ticker's decision in controller.ticker."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from roadlab.api import conditions as cond
from roadlab.api import naming
from roadlab.api.durations import parse_timestamp
from roadlab.catalog.loader import load_catalog
from roadlab.controller import checks, memory, metrics, reconciler, state, ticker
from roadlab.controller.plan import parse_status
from roadlab.controller.settings import Settings
from roadlab.kube.client import count_requests, describe_api_error, load_api_client
from roadlab.kube.operator_api import KubeApi

LAB = (naming.GROUP, naming.VERSION, naming.PLURAL)
# Objects a Lab's guardrails consist of: a change to any of them is undone.
GUARDED_COMPONENTS = {
    naming.COMPONENT_NAMESPACE,
    naming.COMPONENT_GUARDRAIL,
    naming.COMPONENT_LEARNER,
    naming.COMPONENT_CHECKER,
}
GUARDED_RESOURCES = (
    ("", "v1", "namespaces"),
    ("", "v1", "resourcequotas"),
    ("", "v1", "limitranges"),
    ("", "v1", "serviceaccounts"),
    ("networking.k8s.io", "v1", "networkpolicies"),
    ("rbac.authorization.k8s.io", "v1", "roles"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
)


def diffbase_storage() -> kopf.AnnotationsDiffBaseStorage:
    """Kopf's record of the last handled Lab, under a prefix of its own.

    Not roadlab.dev itself: Kopf leaves every annotation under its storage prefix out of
    the diff, so roadlab.dev/check-requested would never trigger its handler (checks then
    waited for the ticker, up to 30 s).
    """
    return kopf.AnnotationsDiffBaseStorage(
        prefix=naming.KOPF_PREFIX, key="last-handled-configuration"
    )


@kopf.on.startup()
def start(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    config = Settings.from_environment()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=naming.KOPF_PREFIX
    )
    settings.persistence.diffbase_storage = diffbase_storage()
    # Every INFO log line would become an Event; Events are posted explicitly instead.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    catalog = load_catalog(config.catalog_dir)
    api_client = load_api_client()
    count_requests(
        api_client,
        lambda method, resource, code: metrics.KUBE_API_REQUESTS.labels(
            method, resource, code
        ).inc(),
    )
    state.set_runtime(state.Runtime(config, KubeApi(api_client), catalog))
    metrics.serve(config.metrics_port)
    logger.info("catalog %s: %s", config.catalog_dir, ", ".join(sorted(catalog)))


def report(
    body: Mapping[str, Any], patch: MutableMapping[str, Any], outcome: reconciler.Outcome
) -> None:
    """Status, Events and metrics of one reconcile; then retry or give up as it says (the
    result is counted by reconcile_and_report, from what this returns or raises)."""
    state.write_status(body, {**outcome.status_patch(), **patch.pop("status", {})})
    spec_lab = str((body.get("spec") or {}).get("lab", "unknown"))
    lab = state.as_body(body)
    for change in outcome.transitions:
        kopf.event(
            lab,
            type="Warning" if change.warning else "Normal",
            reason=f"{change.type}{change.status}" if change.type != cond.READY else change.reason,
            message=f"{change.type}={change.status} ({change.reason}): {change.message}",
        )
    metrics.LAB_STATES.set(
        body["metadata"]["name"], spec_lab, cond.lab_state(outcome.status.conditions)
    )
    if outcome.provisioned_now:
        metrics.PROVISIONED.labels(spec_lab).inc()
        created = parse_timestamp(body["metadata"]["creationTimestamp"])
        metrics.PROVISIONING_SECONDS.labels(spec_lab).observe(
            (state.now() - created).total_seconds()
        )
    if outcome.expired_now:
        metrics.EXPIRED.labels(spec_lab).inc()
    if outcome.permanent_error:
        raise kopf.PermanentError(outcome.permanent_error)
    if outcome.retry_after:
        ready = cond.get_condition(outcome.status.conditions, cond.READY)
        metrics.RECONCILE_ERRORS.labels(ready.reason if ready else "Unknown").inc()
        raise kopf.TemporaryError(ready.message if ready else "retrying", delay=outcome.retry_after)


def reconcile_and_report(body: Mapping[str, Any], patch: MutableMapping[str, Any]) -> None:
    """One reconcile, reported; counted and timed by its result, however it ends."""
    started = time.monotonic()
    result = "error"  # anything unforeseen: an API error, a bug
    try:
        rt = state.runtime()
        outcome = reconciler.reconcile_lab(
            rt.api, rt.catalog, body, state.now(), rt.settings.operator_namespace
        )
        if outcome.provisioned_now and not (body.get("status") or {}).get("lastCheck"):
            # One run right after provisioning, so the tasks show what is left to do (its
            # lastCheck goes into the same status write, in `patch`).
            provisioned = {**body, "status": outcome.status_patch()}
            start_check(provisioned, patch, checks.INITIAL_TOKEN_PREFIX)
        report(body, patch, outcome)
        result = "ok"
    except kopf.PermanentError:
        result = "invalid"
        raise
    except kopf.TemporaryError:  # also a status conflict, or the operator still starting
        result = "retry"
        raise
    finally:
        metrics.reconciled(result, time.monotonic() - started)


def start_check(
    body: Mapping[str, Any], patch: MutableMapping[str, Any], token: str, *, rerun: bool = False
) -> reconciler.CheckStart:
    rt = state.runtime()
    started = reconciler.start_check(
        rt.api, rt.catalog, body, token, state.now(), rt.settings.checks, rerun=rerun
    )
    if started.status_patch:
        patch.setdefault("status", {}).update(started.status_patch)
    return started


@kopf.on.resume(*LAB)
@kopf.on.create(*LAB)
@kopf.on.update(*LAB, field="spec")
def reconcile(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    # Kopf's bookkeeping of operator versions before 0.2 sat under roadlab.dev, where its
    # marker hides the check-request annotation from Kopf: dropped once.
    for key in naming.LEGACY_KOPF_ANNOTATIONS:
        if key in (body["metadata"].get("annotations") or {}):
            patch.setdefault("metadata", {}).setdefault("annotations", {})[key] = None
    reconcile_and_report(body, patch)


@kopf.on.field(*LAB, field=("metadata", "annotations", naming.ANNOTATION_CHECK_REQUESTED))
def check_requested(body: kopf.Body, patch: kopf.Patch, new: Any, **_: Any) -> None:
    if new:
        started = start_check(body, patch, str(new))
        state.write_status(body, patch.pop("status", {}))
        if started.wait_reason:
            raise kopf.TemporaryError(started.wait_reason, delay=10)


# --- The ticker: one loop over every Lab, instead of a Kopf timer per Lab -----------------
# Kopf puts a finalizer on objects that have timers; a Lab would then outlive an
# uninstalled operator (and block deleting the CRD). One loop also scales to many Labs.

_ticker: asyncio.Task[None] | None = None


def tick_lab(body: Mapping[str, Any]) -> None:
    """Expiry, missed check requests, periodic checks, runs whose end was missed: what
    ticker.due decides, carried out.

    Cheap for a Lab with nothing due: the API is touched only when something is.
    """
    rt = state.runtime()
    decision = ticker.due(body, state.now())
    patch: dict[str, Any] = {}
    try:
        if decision.action is ticker.Action.EXPIRE:
            state.lab_logger(body).info(
                "expired at %s", parse_status(body.get("status")).expires_at
            )
            reconcile_and_report(body, patch)
        elif decision.action is ticker.Action.FOLLOW_CHECK:
            job = rt.api.get("batch/v1", "Job", decision.job, rt.settings.operator_namespace)
            if job is not None:
                record_check(job)
            else:  # the Job went (deleted, or lost mid-start): the request gets a new run
                state.lab_logger(body).info("check job %s is gone; running it again", decision.job)
                start_check(body, patch, decision.token, rerun=True)
        elif decision.action is ticker.Action.START_CHECK:
            start_check(body, patch, decision.token)
        state.write_status(body, patch.pop("status", {}))
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


@kopf.on.startup()
async def start_ticker(logger: kopf.Logger, **_: Any) -> None:
    # The task itself starts at the first Lab event (ensure_ticker): kopf.event, which the
    # ticker calls when it records a check, needs Kopf's event-posting context, which only
    # a resource handler has; a task made here lacked it, and the ticker's events (and the
    # rest of that run's bookkeeping) were lost with a LookupError.
    global _ticker_start  # noqa: PLW0603 - one ticker per operator process
    _ticker_start = (Settings.from_environment().tick_seconds, logger)


def ensure_ticker() -> None:
    """Start the ticker from the resource handler calling this, in its context (once)."""
    global _ticker  # noqa: PLW0603 - one ticker per operator process
    if _ticker is None and _ticker_start is not None:
        interval, logger = _ticker_start
        _ticker = asyncio.create_task(tick_forever(interval, logger))


@kopf.on.cleanup()
async def stop_ticker(**_: Any) -> None:
    if _ticker is not None:
        _ticker.cancel()


def record_check(job: Mapping[str, Any]) -> None:
    """Results of a finished check Job into its Lab's status, with Events and metrics."""
    rt = state.runtime()
    for attempt in range(3):
        try:
            collected = reconciler.collect_check(
                rt.api, rt.catalog, job, state.now(), rt.settings.checks
            )
            break
        except ApiException as error:
            if error.status != 409 or attempt == 2:
                raise
    if collected is None:
        return
    lab = state.as_body(collected.lab)
    for result in collected.results:
        kopf.event(
            lab,
            type="Normal" if result.state == "Passed" else "Warning",
            reason=f"Task{result.state}",
            message=f"{result.id}: {result.message}"[:1024],
        )
    for change in collected.transitions:
        kopf.event(lab, type="Normal", reason=change.reason, message=change.message)
    metrics.VALIDATION_RUNS.labels(collected.lab_id, collected.state).inc()
    if collected.seconds_since_request is not None:
        metrics.CHECK_LATENCY_SECONDS.labels(collected.lab_id).observe(
            collected.seconds_since_request
        )
    started_at = (collected.lab.get("status") or {}).get("startedAt")
    if collected.completed_now and started_at:
        elapsed = (state.now() - parse_timestamp(started_at)).total_seconds()
        metrics.TIME_TO_COMPLETE_SECONDS.labels(collected.lab_id).observe(elapsed)
    metrics.LAB_STATES.set(collected.lab["metadata"]["name"], collected.lab_id, collected.lab_state)


@kopf.on.event("batch", "v1", "jobs", labels={naming.LABEL_COMPONENT: naming.COMPONENT_CHECK})
def check_job_changed(type: str, body: kopf.Body, **_: Any) -> None:
    if type != "DELETED":
        record_check(body)


# Async: a dict update needs no thread. A sync handler waits in Kopf's executor queue, and
# a burst of Labs queued thousands of such calls, each keeping its event alive meanwhile.
@kopf.on.event(*LAB)
async def lab_event(type: str, name: str, body: kopf.Body, **_: Any) -> None:
    if type == "DELETED":
        state.labs.pop(name, None)
        metrics.LAB_STATES.forget(name)
    else:
        # Without managedFields: a third of a Lab's size, and nothing here reads them.
        metadata = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
        state.labs[name] = {**body, "metadata": metadata}
        ensure_ticker()  # the ticker only has work once there is a Lab


def _guarded(value: str | None, **_: Any) -> bool:
    return value in GUARDED_COMPONENTS


async def guardrail_changed(type: str, body: kopf.Body, labels: kopf.Labels, **_: Any) -> None:
    """A guardrail of a lab changed or went: put back what the operator set, and only that.

    Async, so that the events needing nothing (the listing at start-up, ADDED, a Lab not
    seen yet) end in the event loop: as a sync handler each waited in Kopf's executor
    queue, and at 1,000 Labs thousands of them queued with their events.
    """
    if type not in ("MODIFIED", "DELETED"):
        return
    # The Lab as the watch last saw it: no API read per guardrail event.
    lab = state.labs.get(labels[naming.LABEL_LAB])
    if lab is None:
        return
    await asyncio.to_thread(restore, type, lab, body)


def restore(type: str, lab: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    """Put back a changed (MODIFIED) or deleted guardrail of `lab`, in a worker thread.

    Most changes are the cluster's own (quota usage, a namespace's phase); they leave the
    operator's fields as they were and cost no API request."""
    rt = state.runtime()
    namespace = rt.settings.operator_namespace
    try:
        if type == "MODIFIED":
            reconciler.restore_guardrail(rt.api, rt.catalog, lab, body, state.now(), namespace)
        else:
            reconciler.enforce_guardrails(
                rt.api, rt.catalog, lab, state.now(), namespace,
                with_environment=body.get("kind") == "Namespace",
            )  # fmt: skip
    except reconciler.API_ERRORS as error:
        # A terminating namespace refuses new objects; its DELETED event brings it all back.
        state.lab_logger(lab).info(
            "guardrail %s %s not restored: %s",
            body.get("kind"), body["metadata"]["name"], describe_api_error(error),
        )  # fmt: skip


for _group, _version, _plural in GUARDED_RESOURCES:
    kopf.on.event(
        _group,
        _version,
        _plural,
        labels={naming.LABEL_LAB: kopf.PRESENT, naming.LABEL_COMPONENT: _guarded},
    )(guardrail_changed)
