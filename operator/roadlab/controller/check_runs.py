"""Validation runs of a Lab, carried out: start one (on the warm checker, else as a check
Job) and record a finished one's results in the Lab's status, once.

The decisions are checks' pure ones; only the API module talks to the cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from roadlab.api import conditions as cond
from roadlab.api import naming, results
from roadlab.api.durations import format_timestamp, parse_timestamp
from roadlab.api.lab import CheckRun, LabSpec, LabStatus, TaskResult
from roadlab.catalog.loader import resolve_parameters
from roadlab.catalog.rendering import RenderError, render_context
from roadlab.catalog.schema import LabDefinition
from roadlab.controller import checks, warm
from roadlab.controller.plan import apply_task_results, parse_status
from roadlab.controller.settings import CheckSettings
from roadlab.kube.operator_api import OperatorApi


@dataclass(frozen=True)
class CheckStart:
    """What asking for a validation run did: a status patch, or why it must wait.

    A run of the warm checker is over by the time this returns: its results are in
    status_patch, and `collected` has what to report once that patch is written.
    """

    status_patch: dict[str, Any] | None = None
    wait_reason: str | None = None
    collected: CheckCollected | None = None
    # Why the run is a Job though the lab's checks would go to the warm checker, for the log.
    warm_fallback: str | None = None


def start_check(  # noqa: PLR0917 - the handler's one call
    api: OperatorApi,
    catalog: Mapping[str, LabDefinition],
    body: Mapping[str, Any],
    token: str,
    now: datetime,
    settings: CheckSettings,
    *,
    rerun: bool = False,
) -> CheckStart:
    """_start_check, and when `token` is the Lab's check request, the record that it was
    answered (status.lastRequest): a run for another reason (a re-check after a change)
    then does not make the ticker take the request for one still pending."""
    started = _start_check(api, catalog, body, token, now, settings, rerun=rerun)
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    if (
        started.status_patch is not None
        and annotations.get(naming.ANNOTATION_CHECK_REQUESTED) == token
    ):
        return replace(started, status_patch={**started.status_patch, "lastRequest": token})
    return started


def _start_check(  # noqa: PLR0917 - the handler's one call
    api: OperatorApi,
    catalog: Mapping[str, LabDefinition],
    body: Mapping[str, Any],
    token: str,
    now: datetime,
    settings: CheckSettings,
    *,
    rerun: bool = False,
) -> CheckStart:
    """Create the check Job for `token` (409: it exists already); one run per Lab at a time.

    rerun: the run for `token` was recorded as started but its Job is gone; make it again.
    """
    status = parse_status(body.get("status"))
    if not cond.is_true(status.conditions, cond.PROVISIONED):
        return CheckStart(wait_reason="the lab is not provisioned yet")
    if cond.is_true(status.conditions, cond.EXPIRED):
        return CheckStart(wait_reason="the lab has expired")
    definition = catalog.get(str((body.get("spec") or {}).get("lab")))
    if definition is None or status.namespace is None:
        return CheckStart(wait_reason="the lab is not in the catalog")
    if not definition.tasks:
        return CheckStart()  # nothing to check
    last = status.last_check
    recheck = checks.is_recheck(token)
    if last is not None and last.token == token and not rerun:
        return CheckStart()  # this request already has its run
    if recheck and not checks.runs_warm(definition, settings.warm_checker):
        return CheckStart()  # re-checks are the warm checker's only
    if last is not None and last.state == "Running":
        job = api.get("batch/v1", "Job", last.job, settings.operator_namespace)
        if job is not None and checks.job_phase(job) == "Running":
            return CheckStart(wait_reason=f"check {last.job} is still running")
    metadata = body["metadata"]
    try:
        spec = LabSpec.model_validate(body.get("spec") or {})
        params = resolve_parameters(definition, spec.parameters)
        context = render_context(params, metadata["name"], spec.learner, status.namespace)
        timeout = spec.validation.timeout_seconds or definition.check_timeout_seconds
        spec_json = checks.check_spec(definition, context, metadata["name"], timeout)
    except (ValueError, RenderError) as error:
        return CheckStart(wait_reason=f"cannot prepare the checks: {error}")
    warm_fallback = None
    if checks.runs_warm(definition, settings.warm_checker):
        warm_run = run_warm_check(body, status, definition, token, spec_json, timeout, now, api,
                                  settings)  # fmt: skip
        if warm_run.status_patch is not None or warm_run.wait_reason is not None or recheck:
            return warm_run  # a re-check without the warm checker is not made as a Job
        warm_fallback = warm_run.warm_fallback
    request = checks.CheckRequest(metadata["name"], metadata["uid"], token, status.namespace)
    job = checks.check_job(
        request,
        spec_json,
        image=settings.checker_image,
        operator_namespace=settings.operator_namespace,
        timeout=timeout,
        image_pull_secrets=settings.image_pull_secrets,
        meshed=definition.check_runner == "mesh",
        pod_cidr=settings.mesh_pod_cidr,
    )
    api.create_if_absent(job)
    run = CheckRun(token=token, job=job["metadata"]["name"], requested_at=format_timestamp(now))
    # A merge patch merges nested objects: null out what the previous run recorded.
    return CheckStart(
        status_patch={"lastCheck": {**run.to_wire(), "finishedAt": None}},
        warm_fallback=warm_fallback,
    )


def run_warm_check(  # noqa: PLR0917 - start_check's one call
    body: Mapping[str, Any],
    status: LabStatus,
    definition: LabDefinition,
    token: str,
    spec_json: str,
    timeout: int,
    now: datetime,
    api: OperatorApi,
    settings: CheckSettings,
) -> CheckStart:
    """The run on the warm checker, its results as a status patch; only a warm_fallback
    reason when the checker is not there (the caller makes a Job). One warm run per Lab
    at a time."""
    lab_name = body["metadata"]["name"]
    if not warm.claim(lab_name):
        return CheckStart(wait_reason="a check of this lab is running")
    try:
        started = time.monotonic()
        answer = warm.run_warm(api, settings, spec_json, timeout)
        finished = now + timedelta(seconds=time.monotonic() - started)
    finally:
        warm.release(lab_name)
    task_ids = [t.id for t in definition.tasks]
    if answer.outcome == "unavailable":
        return CheckStart(warm_fallback=answer.reason)
    if answer.outcome == "timed-out":
        task_results = results.timed_out_results(task_ids, timeout, finished)
        phase: checks.JobPhase = "TimedOut"
    else:
        task_results = results.parse_check_output(answer.document, task_ids, finished)
        phase = "Succeeded"
    recorded = record_results(
        body, status, task_results, phase, token, checks.WARM_JOB, format_timestamp(now), finished
    )
    return CheckStart(status_patch=recorded.patch, collected=recorded.collected)


@dataclass(frozen=True)
class CheckCollected:
    """A finished run written into the Lab's status."""

    lab: dict[str, Any]
    lab_id: str
    state: str
    results: list[TaskResult]
    transitions: list[cond.Transition]
    completed_now: bool
    seconds_since_request: float | None
    lab_state: str  # conditions.lab_state of the status just written


def collect_check(
    api: OperatorApi,
    catalog: Mapping[str, LabDefinition],
    job: Mapping[str, Any],
    now: datetime,
    settings: CheckSettings,
) -> CheckCollected | None:
    """Write a finished check Job's results into its Lab's status, once."""
    phase = checks.job_phase(job)
    if phase == "Running":
        return None
    metadata = job["metadata"]
    job_name = metadata["name"]

    def message() -> str | None:
        return api.termination_message(settings.operator_namespace, job_name, "check")

    timeout = int(job["spec"].get("activeDeadlineSeconds") or 0)
    return _collect(api, catalog, metadata, job_name, phase, message, timeout, now)


def collect_check_pod(
    api: OperatorApi,
    catalog: Mapping[str, LabDefinition],
    pod: Mapping[str, Any],
    now: datetime,
) -> CheckCollected | None:
    """The same as collect_check, from the check pod the moment its container ends: the
    Job's own status follows only seconds later (the Job controller's sync), and the
    results are already in the container's termination message."""
    ended = checks.pod_result(pod)
    if ended is None:
        return None
    phase, text = ended
    metadata = pod["metadata"]
    job_name = (metadata.get("labels") or {}).get(checks.JOB_NAME_LABEL)
    if not job_name:
        return None
    return _collect(api, catalog, metadata, job_name, phase, lambda: text, 0, now)


def _collect(  # noqa: PLR0917 - the two ways a Job's end is seen
    api: OperatorApi,
    catalog: Mapping[str, LabDefinition],
    metadata: Mapping[str, Any],
    job_name: str,
    phase: checks.JobPhase,
    message: Callable[[], str | None],
    timeout: int,
    now: datetime,
) -> CheckCollected | None:
    lab_name = (metadata.get("labels") or {}).get(naming.LABEL_LAB)
    token = (metadata.get("annotations") or {}).get(checks.TOKEN_ANNOTATION, "")
    if not lab_name:
        return None
    lab = api.get(naming.API_VERSION, naming.KIND, lab_name)
    if lab is None:
        return None
    status = parse_status(lab.get("status"))
    last = status.last_check
    if last is None or last.job != job_name:
        # Not the Lab's current run: an older Job (its events replay after a restart) must
        # not overwrite a newer run. A run whose start was never recorded is started again
        # from the still pending request, which records it.
        return None
    if last.finished_at is not None and last.state != "Running":
        return None  # already recorded: events for a finished Job (and its pod) repeat
    lab_id = str((lab.get("spec") or {}).get("lab"))
    definition = catalog.get(lab_id)
    task_ids = [t.id for t in definition.tasks] if definition else [t.id for t in status.tasks]
    if phase == "TimedOut":
        task_results = results.timed_out_results(task_ids, timeout, now)
    else:
        task_results = results.parse_check_output(message(), task_ids, now)
    recorded = record_results(
        lab, status, task_results, phase, token, job_name, last.requested_at, now
    )
    api.patch_lab_status(lab_name, recorded.patch, lab["metadata"].get("resourceVersion"))
    return recorded.collected


@dataclass(frozen=True)
class Recorded:
    patch: dict[str, Any]  # the Lab's status patch that records the run
    collected: CheckCollected  # what to report once it is written


def record_results(  # noqa: PLR0917 - the two ways a run ends
    lab: Mapping[str, Any],
    status: LabStatus,
    task_results: list[TaskResult],
    phase: checks.JobPhase,
    token: str,
    job_name: str,
    requested_at: str | None,
    now: datetime,
) -> Recorded:
    """A finished run's results as the Lab's new status, and what to report of it."""
    lab_id = str((lab.get("spec") or {}).get("lab"))
    generation = int(lab["metadata"].get("generation") or 0)
    was_completed = cond.is_true(status.conditions, cond.COMPLETED)
    new_status = apply_task_results(status, task_results, now, generation)
    state = checks.run_state([r.state for r in task_results], phase)
    run = CheckRun(
        token=token,
        job=job_name,
        requested_at=requested_at,
        finished_at=format_timestamp(now),
        state=state,
    )
    recheck = checks.is_recheck(token)
    new_status = new_status.model_copy(
        update={
            "last_recheck" if recheck else "last_check": run,
            "checks_run": (status.checks_run or 0) + 1,
        }
    )
    patch = new_status.to_patch()
    recorded_keys = ("tasks", "progress", "tasksPassed", "tasksTotal", "conditions", "checksRun",
                     "completedAt", "lastRecheck" if recheck else "lastCheck")  # fmt: skip
    seconds = (now - parse_timestamp(requested_at)).total_seconds() if requested_at else None
    return Recorded(
        patch={k: patch[k] for k in recorded_keys if k in patch},
        collected=CheckCollected(
            lab=dict(lab),
            lab_id=lab_id,
            state=state,
            results=task_results,
            transitions=cond.transitions(status.conditions, new_status.conditions),
            completed_now=not was_completed and cond.is_true(new_status.conditions, cond.COMPLETED),
            seconds_since_request=seconds,
            lab_state=cond.lab_state(new_status.conditions),
        ),
    )
