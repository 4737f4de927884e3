"""Reconcile one Lab: carry out plan_lab's decision through the API module.

Not Kopf-specific (the handlers call it), so it can run from any trigger: create, update,
resume, the expiry timer or a guardrail that someone changed. Every step is idempotent:
guardrails are server-side applied (ours win), environment objects are created once and
then belong to the learner, and the namespace is deleted at expiry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError

from roadlab.api import conditions as cond
from roadlab.api import naming, results
from roadlab.api.durations import format_timestamp, parse_timestamp
from roadlab.api.lab import CheckRun, Condition, LabSpec, LabStatus, TaskResult
from roadlab.catalog.loader import resolve_parameters
from roadlab.catalog.rendering import RenderError, render_context
from roadlab.catalog.schema import LabDefinition
from roadlab.controller import checks
from roadlab.controller.guardrails import holds
from roadlab.controller.plan import (
    LabPlan,
    apply_task_results,
    live_guardrails,
    mark_apply_failed,
    mark_provisioned,
    parse_status,
    plan_lab,
)
from roadlab.controller.settings import CheckSettings
from roadlab.kube.client import describe_api_error
from roadlab.kube.operator_api import KubeApi

APPLY_RETRY_SECONDS = 15
API_ERRORS = (ApiException, DynamicApiError, ResourceNotFoundError)


@dataclass(frozen=True)
class Outcome:
    """What a reconcile did, for the handler to report (status, events, retry)."""

    status: LabStatus
    transitions: list[cond.Transition] = field(default_factory=list)
    retry_after: int | None = None
    permanent_error: str | None = None
    provisioned_now: bool = False
    expired_now: bool = False

    def status_patch(self) -> dict[str, Any]:
        return self.status.to_patch()


def served_prerequisites(api: KubeApi, definition: LabDefinition | None) -> set[str]:
    """The lab's prerequisites that the cluster serves (one discovery call or read each)."""
    if definition is None:
        return set()
    served = set()
    for prerequisite in definition.required_prerequisites:
        group_version, resource = prerequisite.group_version, prerequisite.resource
        if prerequisite.object_name is None:
            present = api.serves(group_version, resource)
        else:
            present = api.object_exists(group_version, resource, prerequisite.object_name)
        if present:
            served.add(prerequisite.served_key)
    return served


def is_environment(manifest: Mapping[str, Any]) -> bool:
    labels = manifest.get("metadata", {}).get("labels", {})
    return bool(labels.get(naming.LABEL_COMPONENT) == naming.COMPONENT_ENVIRONMENT)


def make_plan(
    api: KubeApi,
    catalog: Mapping[str, LabDefinition],
    body: Mapping[str, Any],
    now: datetime,
    operator_namespace: str,
) -> LabPlan:
    metadata = body["metadata"]
    spec = body.get("spec") or {}
    return plan_lab(
        metadata["name"],
        metadata["uid"],
        int(metadata.get("generation") or 0),
        spec,
        body.get("status"),
        catalog,
        now,
        served_prerequisites(api, catalog.get(str(spec.get("lab")))),
        operator_namespace=operator_namespace,
    )


def apply_objects(api: KubeApi, objects: Sequence[Mapping[str, Any]]) -> None:
    """Guardrails are enforced on every pass; environment objects are only seeded."""
    for manifest in objects:
        if is_environment(manifest):
            api.create_if_absent(dict(manifest))
        else:
            api.apply(dict(manifest))


def reconcile_lab(
    api: KubeApi,
    catalog: Mapping[str, LabDefinition],
    body: Mapping[str, Any],
    now: datetime,
    operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE,
) -> Outcome:
    """Bring one Lab's world in line with its spec; return what to report."""
    old_conditions = _conditions(body)
    was_provisioned = cond.is_true(old_conditions, cond.PROVISIONED)
    plan = make_plan(api, catalog, body, now, operator_namespace)
    generation = int(body["metadata"].get("generation") or 0)
    status = plan.status
    retry_after = plan.retry_after
    expired_now = False

    if plan.expired:
        if plan.namespace and api.namespace_phase(plan.namespace) == "Active":
            api.delete("v1", "Namespace", plan.namespace)
            expired_now = True
    elif plan.objects:
        try:
            apply_objects(api, plan.objects)
            status = mark_provisioned(status, now, generation)
        except API_ERRORS as error:
            # Usually passing: a terminating namespace, a webhook, an API server restart.
            status = mark_apply_failed(status, describe_api_error(error), now, generation)
            retry_after = APPLY_RETRY_SECONDS

    return Outcome(
        status=status,
        transitions=cond.transitions(old_conditions, status.conditions),
        retry_after=retry_after,
        permanent_error=plan.permanent_error,
        provisioned_now=not was_provisioned and cond.is_true(status.conditions, cond.PROVISIONED),
        expired_now=expired_now,
    )


def enforce_guardrails(
    api: KubeApi,
    catalog: Mapping[str, LabDefinition],
    body: Mapping[str, Any],
    now: datetime,
    operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE,
    *,
    with_environment: bool = False,
) -> int:
    """Re-apply a live Lab's namespace and guardrails; count applied.

    with_environment also seeds the environment objects that are missing: for a Namespace
    that was deleted, with everything in it.
    """
    plan = make_plan(api, catalog, body, now, operator_namespace)
    if plan.expired or not cond.is_true(_conditions(body), cond.PROVISIONED):
        return 0
    objects = plan.objects if with_environment else [
        m for m in plan.objects if not is_environment(m)
    ]  # fmt: skip
    apply_objects(api, objects)
    return len(objects)


def restore_guardrail(  # noqa: PLR0917 - the guardrail handler's one call
    api: KubeApi,
    catalog: Mapping[str, LabDefinition],
    lab: Mapping[str, Any],
    observed: Mapping[str, Any],
    now: datetime,
    operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE,
) -> bool:
    """Apply one changed guardrail of a live Lab again if it no longer holds what the
    operator set; True if it was applied.

    Most changes to guardrails are the cluster's own (quota usage, namespace phase): they
    cost no API request here. Only the drifted object is applied, not all of them.
    """
    metadata = lab["metadata"]
    kind, name = observed.get("kind"), observed["metadata"]["name"]
    for desired in live_guardrails(
        metadata["name"], metadata["uid"], lab.get("spec"), lab.get("status"), catalog, now,
        operator_namespace=operator_namespace,
    ):  # fmt: skip
        if desired["kind"] == kind and desired["metadata"]["name"] == name:
            if holds(dict(observed), desired):
                return False
            api.apply(desired)
            return True
    return False


def _conditions(body: Mapping[str, Any]) -> list[Condition]:
    raw = (body.get("status") or {}).get("conditions") or []
    try:
        return [Condition.model_validate(c) for c in raw]
    except ValueError:
        return []


# --- Validation runs ----------------------------------------------------------------------


@dataclass(frozen=True)
class CheckStart:
    """What asking for a validation run did: a status patch, or why it must wait."""

    status_patch: dict[str, Any] | None = None
    wait_reason: str | None = None


def start_check(  # noqa: PLR0917 - the handler's one call
    api: KubeApi,
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
    if last is not None and last.token == token and not rerun:
        return CheckStart()  # this request already has its run
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
    request = checks.CheckRequest(metadata["name"], metadata["uid"], token, status.namespace)
    job = checks.check_job(
        request,
        spec_json,
        image=settings.checker_image,
        operator_namespace=settings.operator_namespace,
        timeout=timeout,
        image_pull_secrets=settings.image_pull_secrets,
    )
    api.create_if_absent(job)
    run = CheckRun(token=token, job=job["metadata"]["name"], requested_at=format_timestamp(now))
    # A merge patch merges nested objects: null out what the previous run recorded.
    return CheckStart(status_patch={"lastCheck": {**run.to_wire(), "finishedAt": None}})


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
    api: KubeApi,
    catalog: Mapping[str, LabDefinition],
    job: Mapping[str, Any],
    now: datetime,
    settings: CheckSettings,
) -> CheckCollected | None:
    """Write a finished check Job's results into its Lab's status, once."""
    phase = checks.job_phase(job)
    if phase == "Running":
        return None
    job_name = job["metadata"]["name"]
    lab_name = (job["metadata"].get("labels") or {}).get(naming.LABEL_LAB)
    token = (job["metadata"].get("annotations") or {}).get(f"{naming.GROUP}/check-token", "")
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
        return None  # already recorded: events for a finished Job repeat
    lab_id = str((lab.get("spec") or {}).get("lab"))
    definition = catalog.get(lab_id)
    task_ids = [t.id for t in definition.tasks] if definition else [t.id for t in status.tasks]
    if phase == "TimedOut":
        timeout = int(job["spec"].get("activeDeadlineSeconds") or 0)
        task_results = results.timed_out_results(task_ids, timeout, now)
    else:
        message = api.termination_message(settings.operator_namespace, job_name, "check")
        task_results = results.parse_check_output(message, task_ids, now)
    generation = int(lab["metadata"].get("generation") or 0)
    was_completed = cond.is_true(status.conditions, cond.COMPLETED)
    new_status = apply_task_results(status, task_results, now, generation)
    state = checks.run_state([r.state for r in task_results], phase)
    requested_at = last.requested_at if last is not None and last.job == job_name else None
    run = CheckRun(
        token=token,
        job=job_name,
        requested_at=requested_at,
        finished_at=format_timestamp(now),
        state=state,
    )
    new_status = new_status.model_copy(update={"last_check": run})
    patch = new_status.to_patch()
    api.patch_lab_status(
        lab_name,
        {k: patch[k] for k in ("tasks", "progress", "tasksPassed", "tasksTotal", "conditions",
                               "completedAt", "lastCheck") if k in patch},
        lab["metadata"].get("resourceVersion"),
    )  # fmt: skip
    seconds = (now - parse_timestamp(requested_at)).total_seconds() if requested_at else None
    return CheckCollected(
        lab=lab,
        lab_id=lab_id,
        state=state,
        results=task_results,
        transitions=cond.transitions(status.conditions, new_status.conditions),
        completed_now=not was_completed and cond.is_true(new_status.conditions, cond.COMPLETED),
        seconds_since_request=seconds,
        lab_state=cond.lab_state(new_status.conditions),
    )
