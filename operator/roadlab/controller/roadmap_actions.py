"""What the Roadmap, Enrollment and Cohort handlers carry out: a pass of
controller.enrollments, then its Events, metrics and retries. Kopf-aware, no decorators."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError

from roadlab.api import conditions as cond
from roadlab.api import naming
from roadlab.api.roadmap import ENROLLMENT_KIND
from roadlab.controller import enrollments, metrics, progress, state
from roadlab.kube.client import describe_api_error
from roadlab.kube.operator_api import RoadmapApi

CONFLICT_RETRIES = 3
RETRY_SECONDS = 5

_signing_key: str | None = None
_signing_guard = threading.Lock()


def _api() -> RoadmapApi:
    api = state.runtime().api
    if not isinstance(api, RoadmapApi):  # KubeApi is both; a test's fake may be one only
        raise kopf.PermanentError("the operator's API client cannot serve roadmaps")
    return api


def signing_key() -> str:
    """The certificates' key, read (or made) once per process."""
    global _signing_key  # noqa: PLW0603 - the one key of the operator process
    with _signing_guard:
        if _signing_key is None:
            _signing_key = enrollments.ensure_signing_key(
                _api(), state.runtime().settings.operator_namespace
            )
        return _signing_key


def roadmap_changed(body: Mapping[str, Any]) -> None:
    """Check a Roadmap; then every Enrollment on it takes another pass (a lab added to a
    coming milestone unlocks it, a broken edit stops new Labs)."""
    rt = state.runtime()
    outcome = enrollments.reconcile_roadmap(_api(), rt.catalog, body, state.now())
    if outcome.transition is not None:
        kopf.event(
            state.as_body(body),
            type="Normal" if outcome.valid else "Warning",
            reason=outcome.transition.reason,
            message=outcome.transition.message,
        )
    name = body["metadata"]["name"]
    for enrollment in _api().list_cluster_objects(
        naming.API_VERSION, ENROLLMENT_KIND, f"{naming.LABEL_ROADMAP}={name}"
    ):
        enrollment_changed(enrollment["metadata"]["name"])


def enrollment_changed(name: str) -> None:
    """One pass over an Enrollment, reported; TemporaryError when it must be tried again."""
    rt = state.runtime()
    key: str | None = None
    try:
        key = signing_key()
    except (ApiException, DynamicApiError) as error:
        # Progress is still recorded; certificates are signed on a later pass.
        state.log.warning("no signing key yet (%s): certificates wait", describe_api_error(error))
    for attempt in range(CONFLICT_RETRIES):
        try:
            outcome = enrollments.reconcile_enrollment(
                _api(), rt.catalog, name, state.now(), rt.settings.operator_namespace, key
            )
            break
        except enrollments.ConflictError:
            if attempt == CONFLICT_RETRIES - 1:
                raise kopf.TemporaryError(f"enrollment {name} kept changing", delay=1) from None
        except (ApiException, DynamicApiError) as error:
            raise kopf.TemporaryError(
                f"enrollment {name}: {describe_api_error(error)}", delay=RETRY_SECONDS
            ) from error
    _report(name, outcome)


def _report(name: str, outcome: enrollments.EnrollmentOutcome) -> None:
    body = outcome.body
    if body is None:
        metrics.ENROLLMENT_STATES.forget(name)
        enrollments.forget(name)
        return
    roadmap = str((body.get("spec") or {}).get("roadmap", "unknown"))
    plan = outcome.plan
    if plan is None:
        metrics.ENROLLMENT_STATES.set(name, roadmap, "Invalid")
        return
    enrollment = state.as_body(body)
    for happening in plan.happenings:
        kopf.event(
            enrollment,
            type="Warning" if happening.warning else "Normal",
            reason=happening.reason,
            message=happening.message,
        )
    for record in plan.completed_now:
        metrics.MILESTONES_COMPLETED.labels(roadmap, record.id).inc()
        if record.time_spent_seconds is not None:
            metrics.MILESTONE_COMPLETION_SECONDS.labels(roadmap, record.id).observe(
                record.time_spent_seconds
            )
    ready = cond.get_condition(plan.status.conditions, cond.READY)
    if ready is None or ready.status != cond.TRUE:
        label = "Invalid"
    elif cond.is_true(plan.status.conditions, cond.COMPLETED):
        label = "Completed"
    else:
        label = "InProgress"
    metrics.ENROLLMENT_STATES.set(name, roadmap, label)
    if ready is not None and ready.reason == progress.REASON_ROADMAP_NOT_FOUND:
        # The roadmap may be created later: its handler passes over this Enrollment then.
        return
    cohort = ((body.get("metadata") or {}).get("labels") or {}).get(naming.LABEL_COHORT)
    if cohort and (plan.roadmap_completed_now or outcome.lab_started):
        cohort_counts_changed(cohort)


# What each enrolled Lab looked like at its last pass: a Lab's status is written at every
# check, and most writes change nothing the Enrollment records.
_seen_labs: dict[str, tuple[bool, bool, str | None, int | None]] = {}


def enrolled_lab_changed(type: str, lab: Mapping[str, Any]) -> None:
    """A Lab of an Enrollment changed or went: record it in its Enrollment, release it."""
    metadata = lab["metadata"]
    name = metadata["name"]
    enrollment = (metadata.get("labels") or {}).get(naming.LABEL_ENROLLMENT, "")
    status = lab.get("status") or {}
    completed = any(
        c.get("type") == cond.COMPLETED and c.get("status") == cond.TRUE
        for c in status.get("conditions") or []
    )
    seen = (
        completed,
        bool(metadata.get("deletionTimestamp")),
        status.get("progress"),
        status.get("checksRun"),
    )
    if type == "DELETED":
        _seen_labs.pop(name, None)
    elif _seen_labs.get(name) == seen:
        return
    api = _api()
    if enrollments.release_orphan(api, lab):
        _seen_labs.pop(name, None)
        return
    enrollment_changed(enrollment)
    if type != "DELETED":
        _seen_labs[name] = seen


def cohort_changed(body: Mapping[str, Any], *, enroll: bool) -> None:
    try:
        outcome = enrollments.reconcile_cohort(_api(), body, state.now(), enroll=enroll)
    except (ApiException, DynamicApiError) as error:
        raise kopf.TemporaryError(
            f"cohort {body['metadata']['name']}: {describe_api_error(error)}", delay=RETRY_SECONDS
        ) from error
    if enroll and outcome.invalid is None:
        kopf.event(
            state.as_body(body),
            type="Normal",
            reason="Enrolled",
            message=f"{outcome.enrolled} learners enrolled",
        )


def cohort_counts_changed(name: str) -> None:
    cohort = _api().get(naming.API_VERSION, "Cohort", name)
    if cohort is not None:
        cohort_changed(cohort, enroll=False)
