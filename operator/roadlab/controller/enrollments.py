"""Roadmaps, Enrollments and Cohorts carried out: gather, decide (controller.progress, pure),
apply. Every step is idempotent: Labs and rights have fixed names (409 or a repeated apply
change nothing), the status is rebuilt from what exists, and a Lab's record finalizer goes
only after its result is in the Enrollment's status. So the operator may be killed at any
line and converges on its next pass.

No Kopf here: handlers.py and actions call these and turn the outcome into Events.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError
from pydantic import ValidationError

from roadlab.api import certificates as certs
from roadlab.api import conditions as cond
from roadlab.api import naming
from roadlab.api.roadmap import (
    COHORT_KIND,
    COHORT_PLURAL,
    ENROLLMENT_KIND,
    ENROLLMENT_PLURAL,
    ROADMAP_KIND,
    ROADMAP_PLURAL,
    CohortSpec,
    CohortStatus,
    EnrollmentSpec,
    EnrollmentStatus,
    RoadmapSpec,
    RoadmapStatus,
    parse_start_request,
)
from roadlab.catalog.loader import format_validation_error
from roadlab.catalog.roadmaps import definition_sha256, roadmap_problems
from roadlab.catalog.schema import LabDefinition
from roadlab.controller import enrollee, progress
from roadlab.kube.operator_api import RoadmapApi

REASON_VALID = "Valid"
REASON_INVALID = "InvalidRoadmap"
REASON_ENROLLED = "Enrolled"
REASON_INVALID_SPEC = "InvalidSpec"

# One pass at a time per Enrollment: a Lab event and a start request arriving together
# would otherwise both decide from the same status (the status patch's resourceVersion
# catches what slips through another process).
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())


class ConflictError(Exception):
    """The object changed while it was worked on: do the pass again."""


# --- signing key ----------------------------------------------------------------------------


def ensure_signing_key(api: RoadmapApi, namespace: str) -> str:
    """The private key that signs certificates: read from its Secret, made once if absent
    (two operators racing: the second create is a 409 and both read the one that won); its
    public half published in a ConfigMap anyone may read."""
    private = api.secret_value(namespace, naming.SIGNING_KEY_SECRET, naming.SIGNING_KEY_PRIVATE)
    if private is None:
        api.create_if_absent(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": naming.SIGNING_KEY_SECRET,
                    "namespace": namespace,
                    "labels": {naming.LABEL_MANAGED_BY: naming.MANAGED_BY},
                },
                "type": "Opaque",
                "stringData": {naming.SIGNING_KEY_PRIVATE: certs.new_private_key_pem()},
            }
        )
        private = api.secret_value(namespace, naming.SIGNING_KEY_SECRET, naming.SIGNING_KEY_PRIVATE)
        if private is None:
            raise RuntimeError(f"the signing key Secret {naming.SIGNING_KEY_SECRET} has no key")
    public = certs.public_key_pem(private)
    # Earlier keys stay published: a certificate signed before a new key was made (its
    # Secret deleted) must still verify.
    published = api.get("v1", "ConfigMap", naming.PUBLIC_KEYS_CONFIGMAP, namespace) or {}
    keys = {**(published.get("data") or {}), f"{certs.key_id(public)}.pem": public}
    api.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": naming.PUBLIC_KEYS_CONFIGMAP,
                "namespace": namespace,
                "labels": {naming.LABEL_MANAGED_BY: naming.MANAGED_BY},
                "annotations": {
                    f"{naming.GROUP}/about": "Public keys that verify Roadlab certificates "
                    "(kubectl lab verify); each key is <key id>.pem"
                },
            },
            "data": keys,
        }
    )
    return private


# --- Roadmaps -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoadmapOutcome:
    valid: bool
    problems: list[str]
    transition: cond.Transition | None


def _parse_roadmap(body: Mapping[str, Any]) -> tuple[RoadmapSpec | None, list[str]]:
    try:
        return RoadmapSpec.model_validate(body.get("spec") or {}), []
    except ValidationError as error:
        return None, [format_validation_error(error)]


def roadmap_view(
    body: Mapping[str, Any] | None, catalog: Mapping[str, LabDefinition]
) -> tuple[RoadmapSpec | None, list[str]]:
    """A Roadmap's spec and what keeps it from being followed (empty: it can be)."""
    if body is None:
        return None, []
    spec, problems = _parse_roadmap(body)
    if spec is None:
        return None, problems
    return spec, roadmap_problems(spec, catalog)


def reconcile_roadmap(
    api: RoadmapApi, catalog: Mapping[str, LabDefinition], body: Mapping[str, Any], now: datetime
) -> RoadmapOutcome:
    """Check a Roadmap against the catalog and say so in its status."""
    metadata = body["metadata"]
    generation = int(metadata.get("generation") or 0)
    spec, problems = roadmap_view(body, catalog)
    old = RoadmapStatus.model_validate(body.get("status") or {})
    valid = spec is not None and not problems
    conditions = cond.set_condition(
        old.conditions,
        cond.READY,
        cond.TRUE if valid else cond.FALSE,
        REASON_VALID if valid else REASON_INVALID,
        "every milestone can be followed" if valid else "; ".join(problems),
        now,
        generation,
    )
    milestones = spec.milestones if spec else []
    status = RoadmapStatus(
        conditions=conditions,
        milestones=len(milestones),
        with_labs=sum(1 for m in milestones if not m.coming),
        observed_generation=generation,
    )
    api.patch_status(naming.API_VERSION, ROADMAP_PLURAL, metadata["name"], status.to_wire(), None)
    changes = cond.transitions(old.conditions, conditions)
    return RoadmapOutcome(valid, problems, changes[0] if changes else None)


# --- Enrollments ----------------------------------------------------------------------------


@dataclass
class EnrollmentOutcome:
    plan: progress.Plan | None
    body: Mapping[str, Any] | None = None  # the Enrollment as read for the pass
    invalid: str | None = None  # the spec cannot be followed (reported in status)
    lab_started: bool = False
    released: list[str] = field(default_factory=list)


# The catalog is loaded once per process, so its digests are taken once too.
_digest_cache: dict[int, dict[str, str]] = {}


def definition_digests(catalog: Mapping[str, LabDefinition]) -> dict[str, str]:
    key = id(catalog)
    if key not in _digest_cache:
        _digest_cache[key] = {lab_id: definition_sha256(d) for lab_id, d in catalog.items()}
    return _digest_cache[key]


def reconcile_enrollment(  # noqa: PLR0917 - gathered inputs of one pass
    api: RoadmapApi,
    catalog: Mapping[str, LabDefinition],
    name: str,
    now: datetime,
    operator_namespace: str,
    signing_key: str | None,
) -> EnrollmentOutcome:
    """One pass over an Enrollment: read it fresh, decide, carry out. Conflict if it changed
    meanwhile (the caller runs the pass again)."""
    with _lock(name):
        body = api.get(naming.API_VERSION, ENROLLMENT_KIND, name)
        if body is None:
            return EnrollmentOutcome(plan=None)
        return _reconcile(api, catalog, body, now, operator_namespace, signing_key)


# The rights last applied per Enrollment (uid, learner, Labs): applied again only when they
# change, or once after a restart.
_rights_applied: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {}


def forget(name: str) -> None:
    _rights_applied.pop(name, None)
    with _locks_guard:
        _locks.pop(name, None)


def _reconcile(  # noqa: PLR0917 - gathered inputs of one pass
    api: RoadmapApi,
    catalog: Mapping[str, LabDefinition],
    body: Mapping[str, Any],
    now: datetime,
    operator_namespace: str,
    signing_key: str | None,
) -> EnrollmentOutcome:
    metadata = body["metadata"]
    name = metadata["name"]
    generation = int(metadata.get("generation") or 0)
    try:
        spec = EnrollmentSpec.model_validate(body.get("spec") or {})
        status = EnrollmentStatus.model_validate(body.get("status") or {})
    except ValidationError as error:
        message = format_validation_error(error)
        conditions = cond.set_condition(
            [], cond.READY, cond.FALSE, REASON_INVALID_SPEC, message, now, generation
        )
        api.patch_status(
            naming.API_VERSION,
            ENROLLMENT_PLURAL,
            name,
            {"conditions": [c.to_wire() for c in conditions]},
            metadata.get("resourceVersion"),
        )
        return EnrollmentOutcome(plan=None, body=body, invalid=message)
    roadmap_body = api.get(naming.API_VERSION, ROADMAP_KIND, spec.roadmap)
    roadmap, problems = roadmap_view(roadmap_body, catalog)
    if roadmap_body is not None and roadmap is None:
        problems = problems or ["the roadmap's spec is invalid"]
    labs = {
        str(lab["metadata"]["labels"].get(naming.LABEL_MILESTONE, "")): progress.lab_view(lab)
        for lab in api.list_cluster_objects(
            naming.API_VERSION, naming.KIND, f"{naming.LABEL_ENROLLMENT}={name}"
        )
    }
    request_value = (metadata.get("annotations") or {}).get(naming.ANNOTATION_START_REQUESTED)
    request = parse_start_request(request_value) if request_value else None
    if (
        request is not None
        and status.last_start is not None
        and status.last_start.token == request.token
    ):
        request = None  # answered already
    sign = (lambda claims: certs.sign(claims, signing_key)) if signing_key else None
    plan = progress.plan_enrollment(
        progress.Inputs(
            name=name,
            uid=metadata["uid"],
            generation=generation,
            spec=spec,
            status=status,
            roadmap=roadmap,
            roadmap_problems=problems,
            labs=labs,
            definition_digests=definition_digests(catalog),
            request=request,
            now=now,
        ),
        sign,
    )
    outcome = EnrollmentOutcome(plan=plan, body=body)
    if roadmap_body is not None and roadmap is not None and not problems:
        # Rights first: the learner can follow their new Lab as soon as it exists.
        started = plan.start.manifest["metadata"]["name"] if plan.start is not None else None
        _apply_rights(api, name, metadata["uid"], spec.learner, labs, started, operator_namespace)
        if plan.start is not None:
            outcome.lab_started = api.create_if_absent(plan.start.manifest)
    labels = metadata.get("labels") or {}
    if labels.get(naming.LABEL_ROADMAP) != spec.roadmap:
        # So that a Roadmap's change finds its Enrollments by label.
        api.patch_metadata(
            naming.API_VERSION,
            ENROLLMENT_KIND,
            name,
            {"labels": {naming.LABEL_ROADMAP: spec.roadmap}},
        )
        metadata = {**metadata, "resourceVersion": None}
    try:
        api.patch_status(
            naming.API_VERSION,
            ENROLLMENT_PLURAL,
            name,
            _status_patch(plan.status),
            metadata.get("resourceVersion"),
        )
    except ApiException as error:
        if error.status == 409:
            raise ConflictError(f"enrollment {name} changed meanwhile") from error
        raise
    for lab_name in plan.delete:
        api.delete(naming.API_VERSION, naming.KIND, lab_name)
    # Only now that the status holds their result may the Labs go.
    for lab_name in plan.release:
        api.remove_finalizer(
            naming.API_VERSION, naming.KIND, lab_name, naming.ENROLLMENT_RECORD_FINALIZER
        )
        outcome.released.append(lab_name)
    return outcome


def _apply_rights(  # noqa: PLR0917 - the pass's own helper
    api: RoadmapApi,
    name: str,
    uid: str,
    learner: str,
    labs: Mapping[str, progress.LabView],
    started: str | None,
    operator_namespace: str,
) -> None:
    """The enrollee's ServiceAccount, ClusterRole and binding, and a RoleBinding in each
    lab namespace that exists (a Lab just created has none yet: its provisioning brings
    another pass). Applied only when they change, or once after a restart."""
    lab_names = [lab.name for lab in labs.values() if not lab.deleting]
    if started is not None:
        lab_names.append(started)
    namespaces = tuple(
        sorted(
            lab.status.namespace for lab in labs.values() if lab.status.namespace and not lab.ended
        )
    )
    rights = (uid, learner, tuple(sorted(set(lab_names))), namespaces)
    if _rights_applied.get(name) == rights:
        return
    for manifest in enrollee.enrollee_objects(name, uid, learner, lab_names, operator_namespace):
        api.apply(manifest)
    for namespace in namespaces:
        try:
            api.apply(enrollee.lab_role_binding(name, uid, namespace, operator_namespace))
        except (ApiException, DynamicApiError) as error:
            if error.status not in (403, 404):  # a namespace going or gone
                raise
    _rights_applied[name] = rights


def _status_patch(status: EnrollmentStatus) -> dict[str, Any]:
    patch = status.to_wire()
    # A merge patch leaves out what is None: say null for what must be cleared.
    for key in ("current", "lastStart", "certificate", "completedAt"):
        patch.setdefault(key, None)
    return patch


def release_orphan(api: RoadmapApi, lab: Mapping[str, Any]) -> bool:
    """A Lab going whose Enrollment is gone: nothing to record it in; let it go."""
    metadata = lab["metadata"]
    enrollment = (metadata.get("labels") or {}).get(naming.LABEL_ENROLLMENT)
    if not metadata.get("deletionTimestamp"):
        return False
    if naming.ENROLLMENT_RECORD_FINALIZER not in (metadata.get("finalizers") or []):
        return False
    if enrollment and api.get(naming.API_VERSION, ENROLLMENT_KIND, enrollment) is not None:
        return False
    return api.remove_finalizer(
        naming.API_VERSION, naming.KIND, metadata["name"], naming.ENROLLMENT_RECORD_FINALIZER
    )


# --- Cohorts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortOutcome:
    enrolled: int
    completed: int
    invalid: str | None = None


def cohort_enrollment(cohort: str, uid: str, spec: CohortSpec, learner: str) -> dict[str, Any]:
    enrollment_spec: dict[str, Any] = {
        "roadmap": spec.roadmap,
        "learner": learner,
        "advance": spec.advance,
    }
    if spec.lab_ttl:
        enrollment_spec["labTTL"] = spec.lab_ttl
    return {
        "apiVersion": naming.API_VERSION,
        "kind": ENROLLMENT_KIND,
        "metadata": {
            "name": naming.cohort_enrollment_name(cohort, learner),
            "labels": {
                naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
                naming.LABEL_COHORT: cohort,
                naming.LABEL_ROADMAP: spec.roadmap,
            },
            "ownerReferences": [
                {
                    "apiVersion": naming.API_VERSION,
                    "kind": COHORT_KIND,
                    "name": cohort,
                    "uid": uid,
                    "blockOwnerDeletion": False,
                    "controller": True,
                }
            ],
        },
        "spec": enrollment_spec,
    }


def reconcile_cohort(
    api: RoadmapApi, body: Mapping[str, Any], now: datetime, *, enroll: bool
) -> CohortOutcome:
    """Enroll every listed learner (enroll=True: after a change of the Cohort's spec), then
    count. A learner taken off the list keeps their Enrollment: its record is not thrown
    away by an edit of a list."""
    metadata = body["metadata"]
    name = metadata["name"]
    generation = int(metadata.get("generation") or 0)
    old = CohortStatus.model_validate(body.get("status") or {})
    try:
        spec = CohortSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        message = format_validation_error(error)
        conditions = cond.set_condition(
            old.conditions, cond.READY, cond.FALSE, REASON_INVALID_SPEC, message, now, generation
        )
        api.patch_status(
            naming.API_VERSION,
            COHORT_PLURAL,
            name,
            {"conditions": [c.to_wire() for c in conditions]},
            None,
        )
        return CohortOutcome(0, 0, invalid=message)
    if enroll:
        for learner in spec.learners:
            api.apply(cohort_enrollment(name, metadata["uid"], spec, learner))
    enrollments = api.list_cluster_objects(
        naming.API_VERSION, ENROLLMENT_KIND, f"{naming.LABEL_COHORT}={name}"
    )
    completed = sum(
        1
        for e in enrollments
        if cond.is_true(
            EnrollmentStatus.model_validate(e.get("status") or {}).conditions, cond.COMPLETED
        )
    )
    roadmap_known = api.get(naming.API_VERSION, ROADMAP_KIND, spec.roadmap) is not None
    conditions = cond.set_condition(
        old.conditions,
        cond.READY,
        cond.TRUE if roadmap_known else cond.FALSE,
        REASON_ENROLLED if roadmap_known else progress.REASON_ROADMAP_NOT_FOUND,
        f"{len(enrollments)} learners enrolled, {completed} completed the roadmap"
        if roadmap_known
        else f"roadmap {spec.roadmap!r} does not exist",
        now,
        generation,
    )
    status = CohortStatus(
        conditions=conditions,
        enrolled=len(enrollments),
        completed=completed,
        observed_generation=generation,
    )
    api.patch_status(naming.API_VERSION, COHORT_PLURAL, name, status.to_wire(), None)
    return CohortOutcome(len(enrollments), completed)
