"""An Enrollment's progress: the pure decision, cert-manager style. The reconciler gathers
the Roadmap, the Enrollment and the Labs of its milestones; `plan_enrollment` says what the
status is, which Lab to start (at most one) and which finalizers may go; the reconciler
carries it out.

The status is rebuilt from what exists each time, so an operator killed between starting a
Lab and writing the status finds the Lab on its next pass and records it (the Lab's name is
the same on every attempt: no duplicate). A Completed milestone is final: its record stays
when its Lab is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from roadlab.api import certificates as certs
from roadlab.api import conditions as cond
from roadlab.api import naming
from roadlab.api.durations import format_timestamp, parse_timestamp
from roadlab.api.lab import Condition, ConditionStatus, LabStatus
from roadlab.api.roadmap import (
    EnrollmentSpec,
    EnrollmentStatus,
    Milestone,
    MilestoneRecord,
    ParsedStart,
    RequestState,
    RoadmapSpec,
    StartRequest,
    TaskRecord,
)

# Condition reasons of an Enrollment (Ready, Completed).
REASON_IN_PROGRESS = "InProgress"
REASON_ROADMAP_NOT_FOUND = "RoadmapNotFound"
REASON_ROADMAP_INVALID = "RoadmapInvalid"
REASON_ALL_COMPLETED = "AllMilestonesCompleted"
REASON_PENDING = "MilestonesPending"

Signer = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class LabView:
    """A milestone's Lab as gathered: enough to record it."""

    name: str
    lab_id: str
    parameters: Mapping[str, object]
    created_at: str
    status: LabStatus
    deleting: bool
    holds_finalizer: bool

    @property
    def completed(self) -> bool:
        return cond.is_true(self.status.conditions, cond.COMPLETED)

    @property
    def ended(self) -> bool:
        """Going, or expired (an expired Lab stays, without its namespace, until deleted)."""
        return self.deleting or cond.is_true(self.status.conditions, cond.EXPIRED)


def lab_view(lab: Mapping[str, Any]) -> LabView:
    metadata = lab["metadata"]
    spec = lab.get("spec") or {}
    return LabView(
        name=metadata["name"],
        lab_id=str(spec.get("lab", "")),
        parameters=dict(spec.get("parameters") or {}),
        created_at=str(metadata.get("creationTimestamp") or ""),
        status=LabStatus.model_validate(lab.get("status") or {}),
        deleting=bool(metadata.get("deletionTimestamp")),
        holds_finalizer=naming.ENROLLMENT_RECORD_FINALIZER in (metadata.get("finalizers") or []),
    )


@dataclass(frozen=True)
class LabToStart:
    milestone: str
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Happening:
    """Something to say in an Event of the Enrollment."""

    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Inputs:
    name: str
    uid: str
    generation: int
    spec: EnrollmentSpec
    status: EnrollmentStatus
    roadmap: RoadmapSpec | None
    roadmap_problems: Sequence[str]
    labs: Mapping[str, LabView]  # by milestone id
    definition_digests: Mapping[str, str]  # catalog lab id -> definition_sha256
    request: ParsedStart | None
    now: datetime


@dataclass
class Plan:
    status: EnrollmentStatus
    start: LabToStart | None = None
    release: list[str] = field(default_factory=list)  # Labs whose finalizer may go
    # Expired Labs not completed: deleted, so that the milestone's Lab name is free again.
    delete: list[str] = field(default_factory=list)
    happenings: list[Happening] = field(default_factory=list)
    completed_now: list[MilestoneRecord] = field(default_factory=list)
    roadmap_completed_now: bool = False


def _seconds_between(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    return max(0, int((parse_timestamp(end) - parse_timestamp(start)).total_seconds()))


def _completed_record(
    milestone_id: str,
    lab: LabView,
    previous: MilestoneRecord | None,
    digests: Mapping[str, str],
    now: datetime,
) -> MilestoneRecord:
    started = lab.status.started_at or lab.created_at or None
    completed = lab.status.completed_at or format_timestamp(now)
    return MilestoneRecord(
        id=milestone_id,
        state="Completed",
        lab=lab.name,
        attempts=max(previous.attempts if previous else 0, 1),
        started_at=started,
        completed_at=completed,
        time_spent_seconds=_seconds_between(started, completed),
        checks_run=lab.status.checks_run,
        tasks=[
            TaskRecord(
                id=task.id,
                state=task.state,
                evidence_sha256=certs.sha256_of(task.evidence) if task.evidence else None,
            )
            for task in lab.status.tasks
        ],
        lab_definition_sha256=digests.get(lab.lab_id),
        message=f"completed in lab {lab.name}",
    )


def _waiting_record(
    milestone: Milestone, previous: MilestoneRecord | None, done: set[str]
) -> MilestoneRecord:
    """A milestone with no Lab at work on it: Coming, Locked or Available."""
    attempts = previous.attempts if previous else 0
    message = ""
    if previous is not None and previous.state == "Running":
        message = (
            f"lab {previous.lab} ended (deleted or expired) before it was completed "
            f"(attempt {attempts})"
        )
    elif previous is not None:
        message = previous.message if previous.state == "Available" else ""
    if milestone.coming:
        return MilestoneRecord(id=milestone.id, state="Coming", message="no lab teaches this yet")
    missing = [r for r in milestone.requires if r not in done]
    if missing:
        return MilestoneRecord(
            id=milestone.id,
            state="Locked",
            attempts=attempts,
            lab=previous.lab if previous else None,
            message=f"requires {', '.join(missing)} first",
        )
    return MilestoneRecord(
        id=milestone.id,
        state="Available",
        attempts=attempts,
        lab=previous.lab if previous else None,
        message=message,
    )


def _records(inputs: Inputs, plan: Plan) -> list[MilestoneRecord]:
    assert inputs.roadmap is not None
    records: list[MilestoneRecord] = []
    done: set[str] = set()
    for milestone in inputs.roadmap.milestones:
        previous = inputs.status.record(milestone.id)
        lab = inputs.labs.get(milestone.id)
        if lab is not None and lab.holds_finalizer and lab.deleting:
            plan.release.append(lab.name)  # its result is in this status once written
        if previous is not None and previous.state == "Completed":
            record = previous
        elif lab is not None and lab.completed:
            record = _completed_record(
                milestone.id, lab, previous, inputs.definition_digests, inputs.now
            )
            plan.completed_now.append(record)
            plan.happenings.append(
                Happening("MilestoneCompleted", f"{milestone.id} completed in lab {lab.name}")
            )
        elif lab is not None and not lab.ended:
            was_running = previous is not None and previous.state == "Running"
            record = MilestoneRecord(
                id=milestone.id,
                state="Running",
                lab=lab.name,
                attempts=(previous.attempts if previous else 0) + (0 if was_running else 1),
                started_at=lab.status.started_at or lab.created_at or None,
                checks_run=lab.status.checks_run,
                message=f"lab {lab.name}: {lab.status.progress or '0/?'} tasks passed",
            )
        else:
            record = _waiting_record(milestone, previous, done)
            if lab is not None and not lab.deleting:
                plan.delete.append(lab.name)  # expired unfinished
            if previous is not None and previous.state == "Running":
                plan.happenings.append(Happening("MilestoneEnded", record.message, warning=True))
        if record.state == "Completed":
            done.add(milestone.id)
        records.append(record)
    return records


def _refusal(
    inputs: Inputs, records: Sequence[MilestoneRecord], wanted: str | None
) -> str | Milestone:
    """The milestone to start for a request (wanted: a given one, None: the next), or why not."""
    assert inputs.roadmap is not None
    by_id = {r.id: r for r in records}
    running = next((r for r in records if r.state == "Running"), None)
    if wanted is not None:
        milestone = next((m for m in inputs.roadmap.milestones if m.id == wanted), None)
        if milestone is None:
            ids = ", ".join(m.id for m in inputs.roadmap.milestones)
            return f"the roadmap has no milestone {wanted!r} (milestones: {ids})"
        record = by_id[wanted]
        if record.state == "Coming":
            return f"milestone {wanted!r} has no lab yet (coming)"
        if record.state == "Locked":
            return f"milestone {wanted!r} is locked: it {record.message}"
        if record.state == "Completed":
            return f"milestone {wanted!r} is already completed"
    else:
        available = [m for m in inputs.roadmap.milestones if by_id[m.id].state == "Available"]
        required_first = [m for m in available if not m.optional] or available
        if not required_first:
            if running is not None:
                return f"milestone {running.id!r} is still running in lab {running.lab}"
            locked = [r.id for r in records if r.state == "Locked"]
            if locked:
                return f"no milestone can start yet: {', '.join(locked)} locked"
            return "every milestone with a lab is completed"
        milestone = required_first[0]
    gone = inputs.labs.get(milestone.id)
    if gone is not None and gone.ended:
        return (
            f"the previous lab {gone.name} of milestone {milestone.id!r} is still being "
            "removed: ask again in a moment"
        )
    if running is not None:
        if running.id == milestone.id:
            return f"milestone {running.id!r} is already running in lab {running.lab}"
        return (
            f"milestone {running.id!r} is still running in lab {running.lab}: complete it "
            "(or delete its Lab) before starting another"
        )
    return milestone


def lab_manifest(inputs: Inputs, milestone: Milestone) -> dict[str, Any]:
    """The Lab of a milestone: the learner's, owned by the Enrollment (deleting the
    Enrollment deletes it), holding the finalizer that keeps its result from being lost."""
    assert milestone.lab is not None
    spec: dict[str, Any] = {
        "lab": milestone.lab,
        "learner": inputs.spec.learner,
        "parameters": dict(milestone.parameters),
    }
    ttl = milestone.ttl or inputs.spec.lab_ttl
    if ttl:
        spec["ttl"] = ttl
    return {
        "apiVersion": naming.API_VERSION,
        "kind": naming.KIND,
        "metadata": {
            "name": naming.milestone_lab_name(inputs.name, milestone.id),
            "labels": {
                naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
                naming.LABEL_ENROLLMENT: inputs.name,
                naming.LABEL_MILESTONE: milestone.id,
                naming.LABEL_ROADMAP: inputs.spec.roadmap,
            },
            "finalizers": [naming.ENROLLMENT_RECORD_FINALIZER],
            "ownerReferences": [
                {
                    "apiVersion": naming.API_VERSION,
                    "kind": "Enrollment",
                    "name": inputs.name,
                    "uid": inputs.uid,
                    "blockOwnerDeletion": False,
                    "controller": True,
                }
            ],
        },
        "spec": spec,
    }


def _start(
    inputs: Inputs, plan: Plan, records: list[MilestoneRecord], milestone: Milestone
) -> None:
    manifest = lab_manifest(inputs, milestone)
    plan.start = LabToStart(milestone.id, manifest)
    index = next(i for i, r in enumerate(records) if r.id == milestone.id)
    previous = records[index]
    records[index] = MilestoneRecord(
        id=milestone.id,
        state="Running",
        lab=manifest["metadata"]["name"],
        attempts=previous.attempts + 1,
        message=f"lab {manifest['metadata']['name']} starting",
    )
    plan.happenings.append(
        Happening("MilestoneStarted", f"{milestone.id}: lab {manifest['metadata']['name']}")
    )


ConditionValues = tuple[ConditionStatus, str, str]  # status, reason, message


def _conditions(
    inputs: Inputs, ready: ConditionValues, completed: ConditionValues
) -> list[Condition]:
    conditions: list[Condition] = list(inputs.status.conditions)
    for type_, (status, reason, message) in ((cond.READY, ready), (cond.COMPLETED, completed)):
        conditions = cond.set_condition(
            conditions,
            type_,
            status,
            reason,
            message,
            inputs.now,
            inputs.generation,
        )
    return conditions


def _answer(
    inputs: Inputs, state: RequestState, message: str, milestone: str | None
) -> StartRequest | None:
    if inputs.request is None:
        return inputs.status.last_start
    return StartRequest(
        token=inputs.request.token,
        milestone=milestone,
        state=state,
        message=message,
        at=format_timestamp(inputs.now),
    )


def plan_enrollment(inputs: Inputs, sign: Signer | None) -> Plan:
    """The Enrollment's next status and what to do to get there. `inputs.request` is a start
    request not answered yet (its token differs from status.lastStart's)."""
    status = inputs.status
    if inputs.roadmap is None or inputs.roadmap_problems:
        reason, message = (
            (REASON_ROADMAP_NOT_FOUND, f"roadmap {inputs.spec.roadmap!r} does not exist")
            if not inputs.roadmap_problems
            else (REASON_ROADMAP_INVALID, "; ".join(inputs.roadmap_problems))
        )
        plan = Plan(status=status)
        # Nothing is started on a roadmap that cannot be followed; a Lab that goes meanwhile
        # is still recorded (by its milestone id) before its finalizer is released.
        records = list(status.milestones)
        for milestone_id, lab in inputs.labs.items():
            if not (lab.deleting and lab.holds_finalizer):
                continue
            plan.release.append(lab.name)
            previous = status.record(milestone_id)
            if lab.completed and (previous is None or previous.state != "Completed"):
                result = _completed_record(
                    milestone_id, lab, previous, inputs.definition_digests, inputs.now
                )
                records = [r for r in records if r.id != milestone_id] + [result]
        plan.status = status.model_copy(
            update={
                "milestones": records,
                "conditions": _conditions(
                    inputs, (cond.FALSE, reason, message), (cond.FALSE, reason, message)
                ),
                "last_start": _answer(
                    inputs, "Refused", message, inputs.request.milestone if inputs.request else None
                ),
                "observed_generation": inputs.generation,
            }
        )
        return plan
    roadmap = inputs.roadmap
    plan = Plan(status=status)
    records = _records(inputs, plan)
    last_start = status.last_start
    if inputs.request is not None:
        choice = _refusal(inputs, records, inputs.request.milestone)
        if isinstance(choice, str):
            last_start = _answer(inputs, "Refused", choice, inputs.request.milestone)
            plan.happenings.append(Happening("StartRefused", choice, warning=True))
        else:
            _start(inputs, plan, records, choice)
            last_start = _answer(
                inputs,
                "Accepted",
                f"lab {plan.start.manifest['metadata']['name']} starting" if plan.start else "",
                choice.id,
            )
    elif inputs.spec.advance == "Automatic":
        choice = _refusal(inputs, records, None)
        # Only a milestone never tried: a Lab the learner deleted is not started again.
        if (
            isinstance(choice, Milestone)
            and next(r for r in records if r.id == choice.id).attempts == 0
        ):
            _start(inputs, plan, records, choice)
    if sign is not None:
        records = [_certified(inputs, roadmap, r, sign) for r in records]
    required = [m for m in roadmap.milestones if not m.optional and not m.coming]
    done = {r.id for r in records if r.state == "Completed"}
    required_done = [m for m in required if m.id in done]
    # A roadmap with no required lab yet (every milestone coming) has nothing to complete.
    all_done = bool(required) and len(required_done) == len(required)
    current = next((r.id for r in records if r.state == "Running"), None) or next(
        (r.id for r in records if r.state == "Available"), None
    )
    completed_at = status.completed_at
    certificate = status.certificate
    if all_done:
        times = [r.completed_at for r in records if r.id in done and r.completed_at]
        completed_at = completed_at or (max(times) if times else format_timestamp(inputs.now))
        if status.completed_at is None:
            plan.roadmap_completed_now = True
            plan.happenings.append(
                Happening(
                    "RoadmapCompleted",
                    f"every required milestone of {inputs.spec.roadmap} is completed",
                )
            )
        if certificate is None and sign is not None:
            certificate = _roadmap_certificate(inputs, roadmap, records, completed_at, sign)
    coming = sum(1 for m in roadmap.milestones if m.coming)
    summary = f"{len(required_done)} of {len(required)} required milestones completed" + (
        f"; {coming} more coming (no lab yet)" if coming else ""
    )
    plan.status = status.model_copy(
        update={
            "milestones": records,
            "current": current,
            "progress": f"{len(required_done)}/{len(required)}",
            "completed_at": completed_at,
            "certificate": certificate,
            "last_start": last_start,
            "observed_generation": inputs.generation,
            "conditions": _conditions(
                inputs,
                (cond.TRUE, REASON_ALL_COMPLETED if all_done else REASON_IN_PROGRESS, summary),
                (cond.TRUE, REASON_ALL_COMPLETED, summary)
                if all_done
                else (cond.FALSE, REASON_PENDING, summary),
            ),
        }
    )
    return plan


def _certified(
    inputs: Inputs, roadmap: RoadmapSpec, record: MilestoneRecord, sign: Signer
) -> MilestoneRecord:
    if record.state != "Completed" or record.certificate or not record.completed_at:
        return record
    milestone = next(m for m in roadmap.milestones if m.id == record.id)
    lab = inputs.labs.get(record.id)
    facts = certs.MilestoneFacts(
        learner=inputs.spec.learner,
        enrollment=inputs.name,
        roadmap=inputs.spec.roadmap,
        roadmap_title=roadmap.title,
        milestone=milestone.id,
        milestone_title=milestone.title,
        lab_id=milestone.lab or "",
        lab_name=record.lab or "",
        lab_definition_sha256=record.lab_definition_sha256 or "",
        parameters=dict(lab.parameters) if lab is not None else dict(milestone.parameters),
        tasks=[certs.TaskClaim(t.id, t.state, t.evidence_sha256) for t in record.tasks],
        started_at=record.started_at,
        completed_at=record.completed_at,
        completed_epoch=int(parse_timestamp(record.completed_at).timestamp()),
        time_spent_seconds=record.time_spent_seconds,
        checks_run=record.checks_run,
    )
    return record.model_copy(update={"certificate": sign(certs.milestone_claims(facts))})


def _roadmap_certificate(
    inputs: Inputs,
    roadmap: RoadmapSpec,
    records: Sequence[MilestoneRecord],
    completed_at: str,
    sign: Signer,
) -> str | None:
    refs = [
        certs.MilestoneCertificateRef(r.id, r.completed_at or "", r.certificate)
        for r in records
        if r.state == "Completed" and r.certificate
    ]
    return sign(
        certs.roadmap_claims(
            inputs.spec.learner,
            inputs.name,
            inputs.spec.roadmap,
            roadmap.title,
            refs,
            completed_at,
            int(parse_timestamp(completed_at).timestamp()),
        )
    )
