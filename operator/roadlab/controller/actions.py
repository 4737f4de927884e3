"""What the handlers carry out, between Kopf and the reconciler: a reconcile reported
(status, Events, metrics, retry), a check started or recorded, a guardrail restored.

Kopf-aware (Events, Temporary/PermanentError) but no decorators: handlers.py holds those;
the decisions are in reconciler, plan and ticker.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from roadlab.api import conditions as cond
from roadlab.api.durations import parse_timestamp
from roadlab.controller import check_runs, checks, extending, metrics, reconciler, state
from roadlab.kube.client import describe_api_error


def report(
    body: Mapping[str, Any],
    patch: MutableMapping[str, Any],
    outcome: reconciler.Outcome,
    check: check_runs.CheckCollected | None = None,
) -> None:
    """Status, Events and metrics of one reconcile; then retry or give up as it says (the
    result is counted by reconcile_and_report, from what this returns or raises)."""
    state.write_status(body, {**outcome.status_patch(), **patch.pop("status", {})})
    if check is not None:  # a run of the warm checker, recorded in that same write
        report_check(check)
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
            rt.api, rt.catalog, body, state.now(), rt.settings.operator_namespace,
            portal=rt.settings.portal,
        )  # fmt: skip
        if outcome.provisioned_now and not (body.get("status") or {}).get("lastCheck"):
            # One run right after provisioning, so the tasks show what is left to do (its
            # lastCheck goes into the same status write, in `patch`).
            provisioned = {**body, "status": outcome.status_patch()}
            initial = start_check(provisioned, patch, checks.INITIAL_TOKEN_PREFIX)
            report(body, patch, outcome, initial.collected)
        else:
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
) -> check_runs.CheckStart:
    rt = state.runtime()
    started = check_runs.start_check(
        rt.api, rt.catalog, body, token, state.now(), rt.settings.checks, rerun=rerun
    )
    if started.warm_fallback:
        state.lab_logger(body).info(
            "warm checker unavailable (%s); checking with a Job", started.warm_fallback
        )
    if started.status_patch:
        patch.setdefault("status", {}).update(started.status_patch)
    return started


def check_now(body: Mapping[str, Any], token: str, *, rerun: bool = False) -> None:
    """Start the run for `token` and write what it gives: a Job's start, or a warm run's
    results (then its Events and metrics); TemporaryError when it must wait."""
    patch: dict[str, Any] = {}
    started = start_check(body, patch, token, rerun=rerun)
    state.write_status(body, patch.pop("status", {}))
    if started.collected is not None:
        report_check(started.collected)
    if started.wait_reason:
        raise kopf.TemporaryError(started.wait_reason, delay=checks.WAIT_RETRY_SECONDS)


def extend(body: Mapping[str, Any], request: str) -> None:
    """Answer a learner's extension request: more time within the lab's limits, or why not."""
    patch = extending.plan_extension(
        body.get("spec"),
        body.get("status"),
        request,
        state.now(),
        int(body["metadata"].get("generation") or 0),
    )
    if patch is None:
        return  # answered already (the handler ran again)
    state.write_status(body, patch)
    answer = patch["lastExtension"]
    kopf.event(
        state.as_body(body),
        type="Normal" if answer["state"] == "Accepted" else "Warning",
        reason=f"Extension{answer['state']}",
        message=answer["message"],
    )
    metrics.EXTENSIONS.labels(str((body.get("spec") or {}).get("lab")), answer["state"]).inc()


def record_check(job: Mapping[str, Any]) -> None:
    """Results of a finished check Job into its Lab's status, with Events and metrics."""
    rt = state.runtime()
    for attempt in range(3):
        try:
            collected = check_runs.collect_check(
                rt.api, rt.catalog, job, state.now(), rt.settings.checks
            )
            break
        except ApiException as error:
            if error.status != 409 or attempt == 2:
                raise
    if collected is not None:
        report_check(collected)


def record_check_pod(pod: Mapping[str, Any]) -> None:
    """Results of a check pod whose container just ended, before its Job says so."""
    rt = state.runtime()
    try:
        collected = check_runs.collect_check_pod(rt.api, rt.catalog, pod, state.now())
    except ApiException as error:
        if error.status == 409:
            return  # the Lab changed meanwhile: the Job's own event records the run
        raise
    if collected is not None:
        report_check(collected)


def report_check(collected: check_runs.CheckCollected) -> None:
    """Events and metrics of a run whose results were just written."""
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


def renew_portal_access(lab: Mapping[str, Any]) -> None:
    """A new access token for a running Lab whose token Secret was deleted (revoked)."""
    rt = state.runtime()
    status = lab.get("status") or {}
    conditions = reconciler.conditions_of(lab)
    if not cond.is_true(conditions, cond.PROVISIONED) or cond.is_true(conditions, cond.EXPIRED):
        return
    portal = dataclasses.replace(rt.settings.portal, workspace_image=None)
    # Without the revoked token's digest, so the new token's is taken (or read) afresh.
    fresh = {**lab, "status": {k: v for k, v in status.items() if k != "portalTokenSHA256"}}
    digest = reconciler.seed_portal_objects(
        rt.api, fresh, str(status.get("namespace")), rt.settings.operator_namespace, portal
    )
    rt.api.patch_lab_status(lab["metadata"]["name"], {"portalTokenSHA256": digest}, None)
    state.lab_logger(lab).info("portal access token renewed (the old one was revoked)")


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
