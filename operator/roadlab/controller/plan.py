"""The pure decision behind the operator's reconcile: given a Lab, what should exist?

plan_lab never talks to the API. The caller applies plan.objects in order, patches
plan.status, then reports success with mark_provisioned (or mark_apply_failed), and uses
expired / retry_after / permanent_error to decide what happens next.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from roadlab.api import conditions as cond
from roadlab.api import naming
from roadlab.api.durations import (
    DurationError,
    format_timestamp,
    parse_duration,
    parse_timestamp,
)
from roadlab.api.lab import (
    ConditionStatus,
    LabSpec,
    LabStatus,
    ParamValue,
    TaskResult,
)
from roadlab.catalog.loader import format_validation_error, resolve_parameters
from roadlab.catalog.rendering import RenderError, render_environment
from roadlab.catalog.schema import LabDefinition, ParameterError
from roadlab.controller.guardrails import all_guardrail_objects, owner_reference

PREREQUISITE_RETRY_SECONDS = 60


@dataclass(frozen=True)
class LabPlan:
    """What plan_lab decided. objects is in apply order: Namespace, guardrails, environment."""

    status: LabStatus
    objects: list[dict[str, Any]] = field(default_factory=list)
    namespace: str | None = None
    expired: bool = False
    expires_at: datetime | None = None
    retry_after: int | None = None  # seconds; set for problems that may fix themselves
    permanent_error: str | None = None  # set for input that will not get better by waiting
    spec: LabSpec | None = None
    definition: LabDefinition | None = None
    parameters: dict[str, ParamValue] = field(default_factory=dict)

    def status_patch(self) -> dict[str, Any]:
        return self.status.to_patch()


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


def parse_status(status_dict: Mapping[str, Any] | None) -> LabStatus:
    # A mangled status must not wedge the Lab: start over rather than fail forever.
    try:
        return LabStatus.model_validate(status_dict or {})
    except ValidationError:
        return LabStatus()


def with_condition(  # noqa: PLR0917
    status: LabStatus,
    type_: str,
    value: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> LabStatus:
    conditions = cond.set_condition(
        status.conditions, type_, value, reason, message, now, generation
    )
    conditions = cond.summarize_ready(conditions, now, generation)
    return status.model_copy(update={"conditions": conditions})


def merge_tasks(existing: Sequence[TaskResult], definition: LabDefinition) -> list[TaskResult]:
    """One result per catalog task, in catalog order; known results are kept."""
    by_id = {task.id: task for task in existing}
    merged = []
    for task in definition.tasks:
        hint = task.hint or None
        previous = by_id.get(task.id)
        if previous is None:
            merged.append(TaskResult(id=task.id, title=task.title, state="Pending", hint=hint))
        else:
            merged.append(previous.model_copy(update={"title": task.title, "hint": hint}))
    return merged


def summarize_tasks(status: LabStatus, now: datetime, generation: int) -> LabStatus:
    """Recompute progress counters and the Completed condition from status.tasks.

    completedAt records the first time every task passed and is kept afterwards.
    """
    total = len(status.tasks)
    passed = sum(1 for task in status.tasks if task.state == "Passed")
    done = total > 0 and passed == total
    update: dict[str, Any] = {
        "progress": f"{passed}/{total}",
        "tasks_passed": passed,
        "tasks_total": total,
    }
    if done and status.completed_at is None:
        update["completed_at"] = format_timestamp(now)
    status = status.model_copy(update=update)
    if done:
        return with_condition(
            status, cond.COMPLETED, cond.TRUE, cond.REASON_ALL_TASKS_PASSED,
            f"all {total} tasks passed", now, generation,
        )  # fmt: skip
    return with_condition(
        status, cond.COMPLETED, cond.FALSE, cond.REASON_TASKS_PENDING,
        f"{passed} of {total} tasks passed", now, generation,
    )  # fmt: skip


def apply_task_results(
    status: LabStatus, results: Iterable[TaskResult], now: datetime, generation: int
) -> LabStatus:
    """Record check outcomes (results for task ids the Lab does not have are ignored)."""
    by_id = {result.id: result for result in results}
    tasks = [by_id.get(task.id, task) for task in status.tasks]
    merged = [
        new.model_copy(update={"title": new.title or old.title, "hint": new.hint or old.hint})
        for old, new in zip(status.tasks, tasks, strict=True)
    ]
    return summarize_tasks(status.model_copy(update={"tasks": merged}), now, generation)


def mark_provisioned(status: LabStatus, now: datetime, generation: int) -> LabStatus:
    """The caller applied every planned object successfully."""
    _require_aware(now)
    return with_condition(
        status, cond.PROVISIONED, cond.TRUE, cond.REASON_PROVISIONED,
        "all lab objects are applied", now, generation,
    )  # fmt: skip


def mark_apply_failed(status: LabStatus, message: str, now: datetime, generation: int) -> LabStatus:
    """The caller could not apply the planned objects (usually worth retrying)."""
    _require_aware(now)
    return with_condition(
        status, cond.PROVISIONED, cond.FALSE, cond.REASON_APPLY_FAILED, message, now, generation
    )


def started_at_or(status: LabStatus, now: datetime) -> datetime:
    if status.started_at is not None:
        try:
            return parse_timestamp(status.started_at)
        except ValueError:
            pass
    return now


def lifetime(spec: LabSpec, status: LabStatus) -> timedelta:
    """How long the lab lives from its start: its ttl plus the extensions granted."""
    extended = timedelta(0)
    # Only the operator writes it; a hand-edited bad value counts as none.
    with contextlib.suppress(DurationError):
        extended = parse_duration(status.extended_by or "0")
    return spec.ttl_delta() + extended


def plan_lab(  # noqa: PLR0917 - one flat call from the reconcile handler
    name: str,
    uid: str,
    generation: int,
    spec_dict: Mapping[str, Any] | None,
    status_dict: Mapping[str, Any] | None,
    catalog: Mapping[str, LabDefinition],
    now: datetime,
    served_resources: set[str] | frozenset[str],
    *,
    operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE,
) -> LabPlan:
    """Decide the desired objects and status of one Lab (see module docstring)."""
    _require_aware(now)
    status = parse_status(status_dict).model_copy(update={"observed_generation": generation})

    def fail(
        current: LabStatus, reason: str, message: str, retry: int | None = None, **extra: Any
    ) -> LabPlan:
        # Which failures are permanent is the contract's (api.conditions), not this call's.
        permanent = reason in cond.PERMANENT_REASONS
        if not permanent and retry is None:
            raise ValueError(f"{reason} is not a permanent reason: it needs a retry delay")
        failed = with_condition(
            current, cond.PROVISIONED, cond.FALSE, reason, message, now, generation
        )
        return LabPlan(
            status=failed,
            retry_after=None if permanent else retry,
            permanent_error=message if permanent else None,
            **extra,
        )

    try:
        spec = LabSpec.model_validate(spec_dict or {})
        namespace = naming.namespace_for(name)
    except ValidationError as exc:
        return fail(
            status, cond.REASON_INVALID_SPEC, f"invalid spec: {format_validation_error(exc)}"
        )
    except ValueError as exc:
        return fail(status, cond.REASON_INVALID_SPEC, str(exc))

    started_at = started_at_or(status, now)
    expires_at = started_at + lifetime(spec, status)
    status = status.model_copy(
        update={
            "namespace": namespace,
            "started_at": format_timestamp(started_at),
            "expires_at": format_timestamp(expires_at),
        }
    )
    context: dict[str, Any] = {"namespace": namespace, "expires_at": expires_at, "spec": spec}
    if now >= expires_at:
        status = with_condition(
            status, cond.EXPIRED, cond.TRUE, cond.REASON_EXPIRED,
            f"the lab expired at {format_timestamp(expires_at)} (ttl {spec.ttl})", now, generation,
        )  # fmt: skip
        return LabPlan(status=status, expired=True, **context)
    status = with_condition(
        status, cond.EXPIRED, cond.FALSE, cond.REASON_WITHIN_TTL,
        f"the lab expires at {format_timestamp(expires_at)}", now, generation,
    )  # fmt: skip

    definition = catalog.get(spec.lab)
    if definition is None:
        known = ", ".join(sorted(catalog)[:20]) or "none"
        return fail(
            status, cond.REASON_UNKNOWN_LAB,
            f"lab {spec.lab!r} is not in the catalog (known: {known})", **context,
        )  # fmt: skip
    context["definition"] = definition
    status = summarize_tasks(
        status.model_copy(update={"tasks": merge_tasks(status.tasks, definition)}),
        now,
        generation,
    )

    try:
        parameters = resolve_parameters(definition, spec.parameters)
    except ParameterError as exc:
        return fail(status, cond.REASON_INVALID_PARAMETERS, str(exc), **context)
    context["parameters"] = parameters

    missing = [p for p in definition.required_prerequisites if p.served_key not in served_resources]
    if missing:
        listed = ", ".join(f"{p.name} ({p.served_key})" for p in missing)
        return fail(
            status, cond.REASON_PREREQUISITE_MISSING,
            f"the cluster does not serve: {listed}", PREREQUISITE_RETRY_SECONDS, **context,
        )  # fmt: skip

    try:
        guardrails = _guardrails(name, uid, spec, definition, operator_namespace)
        environment = render_environment(
            definition, parameters, lab_name=name, learner=spec.learner, namespace=namespace
        )
    except (RenderError, ValueError) as exc:
        return fail(status, cond.REASON_RENDER_FAILED, str(exc), **context)
    objects = guardrails + environment

    if not cond.is_true(status.conditions, cond.PROVISIONED):
        status = with_condition(
            status, cond.PROVISIONED, cond.FALSE, cond.REASON_PROVISIONING,
            f"applying {len(objects)} objects", now, generation,
        )  # fmt: skip
    return LabPlan(status=status, objects=objects, **context)


def _guardrails(
    name: str, uid: str, spec: LabSpec, definition: LabDefinition, operator_namespace: str
) -> list[dict[str, Any]]:
    """The Namespace and its guardrails. The cluster-scoped objects (the Namespace, the
    learner's ClusterRole on the Lab and its binding) are owned by the Lab, so deleting the
    Lab deletes them; the namespaced ones go with their Namespace."""
    guardrails = all_guardrail_objects(
        name, spec.learner, definition.environment, operator_namespace
    )
    lab_ref = {"apiVersion": naming.API_VERSION, "kind": naming.KIND}
    for manifest in guardrails:
        if "namespace" not in manifest["metadata"]:
            manifest["metadata"]["ownerReferences"] = [
                owner_reference({**lab_ref, "metadata": {"name": name, "uid": uid}})
            ]
    return guardrails


def live_guardrails(  # noqa: PLR0917 - the guardrail handler's one call
    name: str,
    uid: str,
    spec_dict: Mapping[str, Any] | None,
    status_dict: Mapping[str, Any] | None,
    catalog: Mapping[str, LabDefinition],
    now: datetime,
    *,
    operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE,
) -> list[dict[str, Any]]:
    """The Namespace and guardrails a provisioned, unexpired Lab must have; [] for any other.

    What a guardrail watch event is compared with. Unlike plan_lab it renders no
    environment and needs no prerequisite lookups: it runs on every such event.
    """
    _require_aware(now)
    status = parse_status(status_dict)
    if not cond.is_true(status.conditions, cond.PROVISIONED) or cond.is_true(
        status.conditions, cond.EXPIRED
    ):
        return []
    try:
        spec = LabSpec.model_validate(spec_dict or {})
        definition = catalog.get(spec.lab)
        if definition is None or now >= started_at_or(status, now) + lifetime(spec, status):
            return []
        return _guardrails(name, uid, spec, definition, operator_namespace)
    except (ValidationError, ValueError):
        return []
