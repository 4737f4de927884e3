"""Roadmaps and Enrollments: the roadmap's checks, the pure progress decision, certificates,
and one pass of the reconciler over the typed fake API."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.conftest import REPO_ROOT
from tests.unit.kube_fake import FakeKubeApi

from roadlab.api import certificates as certs
from roadlab.api import naming
from roadlab.api.lab import LabStatus
from roadlab.api.roadmap import (
    EnrollmentSpec,
    EnrollmentStatus,
    ParsedStart,
    RoadmapSpec,
    format_start_request,
    parse_start_request,
    structure_problems,
)
from roadlab.catalog.loader import load_catalog
from roadlab.catalog.roadmaps import definition_sha256, roadmap_problems
from roadlab.controller import enrollments, progress
from roadlab.kube.operator_api import KubeApi, RoadmapApi

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
KEY = certs.new_private_key_pem()
PUBLIC = certs.public_key_pem(KEY)
CATALOG = load_catalog(REPO_ROOT / "labs")


def two_step(**second: Any) -> RoadmapSpec:
    return RoadmapSpec.model_validate(
        {
            "title": "Two steps",
            "milestones": [
                {"id": "first", "title": "First", "lab": "smoke"},
                {
                    "id": "second",
                    "title": "Second",
                    "lab": "smoke",
                    "requires": ["first"],
                    **second,
                },
                {"id": "later", "title": "Later", "requires": ["second"]},
            ],
        }
    )


def lab(
    name: str, *, completed: bool = False, deleting: bool = False, expired: bool = False
) -> progress.LabView:
    conditions = [
        {
            "type": "Completed",
            "status": "True" if completed else "False",
            "reason": "AllTasksPassed" if completed else "TasksPending",
            "lastTransitionTime": "2026-12-02T07:30:00Z",
        },
        {
            "type": "Expired",
            "status": "True" if expired else "False",
            "reason": "Expired" if expired else "WithinTTL",
            "lastTransitionTime": "2026-12-02T07:30:00Z",
        },
    ]
    status = LabStatus.model_validate(
        {
            "conditions": conditions,
            "startedAt": "2026-12-02T07:00:00Z",
            "completedAt": "2026-12-02T07:30:00Z" if completed else None,
            "checksRun": 3,
            "progress": "1/1" if completed else "0/1",
            "tasks": [
                {
                    "id": "hello",
                    "state": "Passed" if completed else "Failed",
                    "evidence": {"replicas": 1},
                }
            ],
        }
    )
    return progress.LabView(
        name=name,
        lab_id="smoke",
        parameters={},
        created_at="2026-12-02T06:59:00Z",
        status=status,
        deleting=deleting,
        holds_finalizer=True,
    )


def inputs(
    *,
    status: EnrollmentStatus | None = None,
    labs: dict[str, progress.LabView] | None = None,
    request: ParsedStart | None = None,
    roadmap: RoadmapSpec | None = two_step(),  # noqa: B008 - an immutable model
    problems: list[str] | None = None,
    advance: str = "OnRequest",
) -> progress.Inputs:
    return progress.Inputs(
        name="alice-path",
        uid="uid-1",
        generation=1,
        spec=EnrollmentSpec.model_validate(
            {"roadmap": "two", "learner": "alice", "advance": advance}
        ),
        status=status or EnrollmentStatus(),
        roadmap=roadmap,
        roadmap_problems=problems or [],
        labs=labs or {},
        definition_digests={"smoke": "d" * 64},
        request=request,
        now=NOW,
    )


def sign(claims: Any) -> str:
    return certs.sign(claims, KEY)


def states(plan: progress.Plan) -> dict[str, str]:
    return {r.id: r.state for r in plan.status.milestones}


# --- the roadmap's own checks ---------------------------------------------------------------


def test_requirements_must_point_back() -> None:
    spec = RoadmapSpec.model_validate(
        {
            "title": "Bad",
            "milestones": [
                {"id": "a", "title": "A", "lab": "smoke", "requires": ["b"]},
                {"id": "b", "title": "B", "lab": "smoke", "requires": ["b", "zzz"]},
                {"id": "a", "title": "A again"},
            ],
        }
    )
    problems = structure_problems(spec)
    assert "milestone 'a' appears twice" in problems
    assert any("'a' requires 'b', which comes later" in p for p in problems)
    assert any("'b' requires itself" in p for p in problems)
    assert any("'zzz', which is not a milestone" in p for p in problems)


def test_roadmap_against_the_catalog() -> None:
    spec = RoadmapSpec.model_validate(
        {
            "title": "Catalog",
            "milestones": [
                {"id": "a", "title": "A", "lab": "nope"},
                {"id": "b", "title": "B", "lab": "hpa", "parameters": {"bogus": 1}},
                {"id": "c", "title": "C", "parameters": {"x": 1}},
                {"id": "d", "title": "D", "lab": "smoke"},
            ],
        }
    )
    problems = roadmap_problems(spec, CATALOG)
    assert any("lab 'nope', which is not in the catalog" in p for p in problems)
    assert any("'b'" in p and "unknown parameter(s) 'bogus'" in p for p in problems)
    assert any("'c' has parameters but no lab" in p for p in problems)
    assert len(problems) == 3
    assert roadmap_problems(two_step(), CATALOG) == []


def test_start_request_format() -> None:
    assert parse_start_request("1764662400123") == ParsedStart("1764662400123", None)
    assert parse_start_request(format_start_request("t1", "second")) == ParsedStart("t1", "second")
    assert parse_start_request("t:1/x/y") is None
    assert parse_start_request("/second") is None


def test_names_stay_within_limits() -> None:
    long = "e" * 63
    name = naming.milestone_lab_name(long, "milestone-with-a-long-id")
    assert len(name) <= naming.MAX_LAB_NAME_LENGTH and naming.is_dns1123_label(name)
    assert name != naming.milestone_lab_name(long, "milestone-with-a-long-id2")
    assert naming.milestone_lab_name("alice", "hpa") == "alice-hpa"
    assert naming.cohort_enrollment_name("c1", "bob") == "c1-bob"
    upper, lower = (
        naming.cohort_enrollment_name("c1", "Bob"),
        naming.cohort_enrollment_name("c1", "bob"),
    )
    assert upper != lower and naming.is_dns1123_label(upper)
    assert naming.is_dns1123_label(naming.cohort_enrollment_name("c1", "bob.smith@example.org"))


# --- the decision ---------------------------------------------------------------------------


def test_a_new_enrollment_waits_for_the_learner() -> None:
    plan = progress.plan_enrollment(inputs(), sign)
    assert states(plan) == {"first": "Available", "second": "Locked", "later": "Coming"}
    assert plan.start is None
    assert plan.status.current == "first"
    assert plan.status.progress == "0/2"
    second = plan.status.record("second")
    assert second is not None and second.message == "requires first first"


def test_a_request_starts_the_next_milestone_once() -> None:
    plan = progress.plan_enrollment(inputs(request=ParsedStart("t1", None)), sign)
    assert plan.start is not None
    manifest = plan.start.manifest
    assert manifest["metadata"]["name"] == "alice-path-first"
    assert manifest["metadata"]["labels"][naming.LABEL_MILESTONE] == "first"
    assert manifest["metadata"]["finalizers"] == [naming.ENROLLMENT_RECORD_FINALIZER]
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert manifest["spec"] == {"lab": "smoke", "learner": "alice", "parameters": {}}
    assert states(plan)["first"] == "Running"
    assert plan.status.last_start is not None and plan.status.last_start.state == "Accepted"
    # Killed after creating the Lab, before the status: the next pass finds the Lab.
    again = progress.plan_enrollment(
        inputs(labs={"first": lab("alice-path-first")}, request=ParsedStart("t1", None)), sign
    )
    assert again.start is None or again.start.manifest["metadata"]["name"] == "alice-path-first"
    record = again.status.record("first")
    assert record is not None and record.state == "Running" and record.attempts == 1


def test_refusals_say_why() -> None:
    running = progress.plan_enrollment(inputs(labs={"first": lab("alice-path-first")}), sign).status
    asked = progress.plan_enrollment(
        inputs(
            status=running, labs={"first": lab("alice-path-first")}, request=ParsedStart("t2", None)
        ),
        sign,
    )
    assert asked.start is None
    assert asked.status.last_start is not None
    assert asked.status.last_start.state == "Refused"
    assert "'first' is still running in lab alice-path-first" in asked.status.last_start.message
    locked = progress.plan_enrollment(inputs(request=ParsedStart("t3", "second")), sign)
    assert locked.start is None and locked.status.last_start is not None
    assert "locked: it requires first first" in locked.status.last_start.message
    coming = progress.plan_enrollment(inputs(request=ParsedStart("t4", "later")), sign)
    assert coming.status.last_start is not None
    assert "has no lab yet" in coming.status.last_start.message
    unknown = progress.plan_enrollment(inputs(request=ParsedStart("t5", "nope")), sign)
    assert unknown.status.last_start is not None
    assert "no milestone 'nope'" in unknown.status.last_start.message


def test_a_completed_milestone_is_recorded_signed_and_kept() -> None:
    done = progress.plan_enrollment(
        inputs(labs={"first": lab("alice-path-first", completed=True, deleting=True)}), sign
    )
    record = done.status.record("first")
    assert record is not None and record.state == "Completed"
    assert record.time_spent_seconds == 1800 and record.checks_run == 3
    assert record.tasks[0].evidence_sha256 == certs.sha256_of({"replicas": 1})
    assert done.release == ["alice-path-first"]
    assert [r.id for r in done.completed_now] == ["first"]
    assert states(done)["second"] == "Available"
    assert record.certificate is not None
    verified = certs.verify(record.certificate, [PUBLIC])
    claims = verified.claims["roadlab"]
    assert verified.claims["sub"] == "alice"
    assert claims["lab"]["definitionSHA256"] == "d" * 64
    assert claims["tasks"] == [
        {"id": "hello", "state": "Passed", "evidenceSHA256": certs.sha256_of({"replicas": 1})}
    ]
    # The Lab is gone: the record stays, the same certificate (nothing signed again).
    later = progress.plan_enrollment(inputs(status=done.status), sign)
    kept = later.status.record("first")
    assert kept == record
    assert later.completed_now == []


def test_a_lab_ended_unfinished_makes_the_milestone_available_again() -> None:
    running = progress.plan_enrollment(inputs(labs={"first": lab("alice-path-first")}), sign).status
    ended = progress.plan_enrollment(
        inputs(status=running, labs={"first": lab("alice-path-first", deleting=True)}), sign
    )
    record = ended.status.record("first")
    assert record is not None and record.state == "Available"
    assert "before it was completed (attempt 1)" in record.message
    assert ended.release == ["alice-path-first"]
    assert any(h.reason == "MilestoneEnded" for h in ended.happenings)


def test_automatic_advance_starts_each_milestone_once() -> None:
    first = progress.plan_enrollment(inputs(advance="Automatic"), sign)
    assert first.start is not None and first.start.milestone == "first"
    # Deleted by the learner before completing: not started again by itself.
    status = progress.plan_enrollment(
        inputs(status=first.status, labs={"first": lab("alice-path-first")}, advance="Automatic"),
        sign,
    ).status
    gone = progress.plan_enrollment(inputs(status=status, advance="Automatic"), sign)
    assert gone.start is None
    done = progress.plan_enrollment(
        inputs(
            status=status,
            labs={"first": lab("alice-path-first", completed=True)},
            advance="Automatic",
        ),
        sign,
    )
    assert done.start is not None and done.start.milestone == "second"


def test_the_whole_roadmap_completed_gets_its_certificate() -> None:
    status = progress.plan_enrollment(
        inputs(labs={"first": lab("alice-path-first", completed=True)}), sign
    ).status
    both = progress.plan_enrollment(
        inputs(
            status=status,
            labs={
                "first": lab("alice-path-first", completed=True),
                "second": lab("alice-path-second", completed=True),
            },
        ),
        sign,
    )
    assert both.status.progress == "2/2"
    assert both.roadmap_completed_now
    completed = next(c for c in both.status.conditions if c.type == "Completed")
    assert completed.status == "True" and "1 more coming" in completed.message
    assert both.status.certificate is not None
    claims = certs.verify(both.status.certificate, [PUBLIC]).claims["roadlab"]
    assert claims["kind"] == "roadmap"
    assert [m["id"] for m in claims["milestones"]] == ["first", "second"]
    nothing_left = progress.plan_enrollment(
        inputs(status=both.status, request=ParsedStart("t9", None)), sign
    )
    assert nothing_left.status.last_start is not None
    assert nothing_left.status.last_start.message == "every milestone with a lab is completed"


def test_optional_milestones_do_not_hold_the_roadmap() -> None:
    roadmap = two_step(optional=True)
    plan = progress.plan_enrollment(
        inputs(roadmap=roadmap, labs={"first": lab("alice-path-first", completed=True)}), sign
    )
    assert plan.status.progress == "1/1"
    assert plan.status.certificate is not None


def test_a_roadmap_that_cannot_be_followed_starts_nothing_but_records() -> None:
    missing = progress.plan_enrollment(inputs(roadmap=None, request=ParsedStart("t1", None)), sign)
    assert missing.start is None
    ready = next(c for c in missing.status.conditions if c.type == "Ready")
    assert ready.reason == progress.REASON_ROADMAP_NOT_FOUND
    assert missing.status.last_start is not None and missing.status.last_start.state == "Refused"
    broken = progress.plan_enrollment(
        inputs(
            problems=["milestone 'a' names lab 'nope'"],
            labs={"first": lab("alice-path-first", completed=True, deleting=True)},
        ),
        sign,
    )
    assert broken.start is None and broken.release == ["alice-path-first"]
    record = broken.status.record("first")
    assert record is not None and record.state == "Completed"
    ready = next(c for c in broken.status.conditions if c.type == "Ready")
    assert ready.reason == progress.REASON_ROADMAP_INVALID


# --- certificates ---------------------------------------------------------------------------


def test_a_tampered_certificate_is_refused() -> None:
    claims = certs.milestone_claims(
        certs.MilestoneFacts(
            learner="alice", enrollment="e", roadmap="r", roadmap_title="R", milestone="m",
            milestone_title="M", lab_id="smoke", lab_name="e-m",
            lab_definition_sha256=definition_sha256(CATALOG["smoke"]), parameters={},
            tasks=[certs.TaskClaim("hello", "Passed", None)], started_at=None,
            completed_at="2026-12-02T07:30:00Z", completed_epoch=1796196600,
            time_spent_seconds=None, checks_run=1,
        )
    )  # fmt: skip
    certificate = sign(claims)
    assert certs.sign(claims, KEY) == certificate  # deterministic: a repeat signs the same
    header, payload, signature = certificate.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["sub"] = "mallory"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    with pytest.raises(certs.CertificateError, match="altered"):
        certs.verify(f"{header}.{forged_payload}.{signature}", [PUBLIC])
    other = certs.public_key_pem(certs.new_private_key_pem())
    with pytest.raises(certs.CertificateError, match="not among the given keys"):
        certs.verify(certificate, [other])
    with pytest.raises(certs.CertificateError, match="not a certificate"):
        certs.verify("hello", [PUBLIC])


# --- one pass over the fake API -------------------------------------------------------------


def enrollment(name: str = "alice-path", token: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "uid": "uid-1", "generation": 1}
    if token:
        metadata["annotations"] = {naming.ANNOTATION_START_REQUESTED: token}
    return {
        "apiVersion": naming.API_VERSION,
        "kind": "Enrollment",
        "metadata": metadata,
        "spec": {"roadmap": "two", "learner": "alice"},
    }


def roadmap_object() -> dict[str, Any]:
    return {
        "apiVersion": naming.API_VERSION,
        "kind": "Roadmap",
        "metadata": {"name": "two", "generation": 1},
        "spec": two_step().to_wire(),
    }


def test_a_pass_starts_the_lab_with_rights_first_then_records_and_releases() -> None:
    api = FakeKubeApi()
    api.add(roadmap_object())
    api.add(enrollment(token="t1"))
    key = enrollments.ensure_signing_key(api, "roadlab-system")
    assert enrollments.ensure_signing_key(api, "roadlab-system") == key  # made once
    public = api.get("v1", "ConfigMap", naming.PUBLIC_KEYS_CONFIGMAP, "roadlab-system")
    assert public is not None and list(public["data"].values()) == [certs.public_key_pem(key)]
    # The key's Secret deleted: a new key, and the old one still published.
    del api.objects[("v1", "Secret", "roadlab-system", naming.SIGNING_KEY_SECRET)]
    newer = enrollments.ensure_signing_key(api, "roadlab-system")
    republished = api.get("v1", "ConfigMap", naming.PUBLIC_KEYS_CONFIGMAP, "roadlab-system")
    assert republished is not None and newer != key
    assert sorted(republished["data"].values()) == sorted(
        [certs.public_key_pem(key), certs.public_key_pem(newer)]
    )
    key = newer

    outcome = enrollments.reconcile_enrollment(
        api, CATALOG, "alice-path", NOW, "roadlab-system", key
    )
    assert outcome.lab_started
    assert [k[1] for k in api.applied][-3:] == [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
    ]
    role = api.get("rbac.authorization.k8s.io/v1", "ClusterRole", "roadlab-enrollee-alice-path")
    assert role is not None
    assert {"resources": ["labs"], "resourceNames": ["alice-path-first"]}.items() <= role["rules"][
        2
    ].items()
    lab_object = api.get(naming.API_VERSION, "Lab", "alice-path-first")
    assert lab_object is not None
    stored = api.get(naming.API_VERSION, "Enrollment", "alice-path")
    assert stored is not None and stored["status"]["lastStart"]["state"] == "Accepted"
    assert stored["metadata"]["labels"][naming.LABEL_ROADMAP] == "two"

    # The same request again (the operator restarted): no second Lab.
    created = len(api.created)
    enrollments.reconcile_enrollment(api, CATALOG, "alice-path", NOW, "roadlab-system", key)
    assert len(api.created) == created

    lab_object["status"] = {
        "conditions": [
            {"type": "Completed", "status": "True", "reason": "AllTasksPassed",
             "lastTransitionTime": "2026-12-02T07:30:00Z"}
        ],
        "startedAt": "2026-12-02T07:00:00Z",
        "completedAt": "2026-12-02T07:30:00Z",
        "tasks": [{"id": "hello", "state": "Passed"}],
    }  # fmt: skip
    lab_object["metadata"]["deletionTimestamp"] = "2026-12-02T07:40:00Z"
    api.add(lab_object)
    outcome = enrollments.reconcile_enrollment(
        api, CATALOG, "alice-path", NOW, "roadlab-system", key
    )
    assert outcome.released == ["alice-path-first"]
    assert api.get(naming.API_VERSION, "Lab", "alice-path-first") is None  # finalizer gone
    stored = api.get(naming.API_VERSION, "Enrollment", "alice-path")
    assert stored is not None
    first = stored["status"]["milestones"][0]
    assert first["state"] == "Completed" and first["certificate"]
    assert stored["status"]["milestones"][1]["state"] == "Available"


def test_a_cohort_enrolls_every_learner() -> None:
    api = FakeKubeApi()
    api.add(roadmap_object())
    learners = [f"learner{i:02d}" for i in range(20)]
    cohort = {
        "apiVersion": naming.API_VERSION,
        "kind": "Cohort",
        "metadata": {"name": "spring", "uid": "c-1", "generation": 1},
        "spec": {"roadmap": "two", "learners": learners},
    }
    api.add(cohort)
    outcome = enrollments.reconcile_cohort(api, cohort, NOW, enroll=True)
    assert outcome.enrolled == 20
    made = api.list_cluster_objects(
        naming.API_VERSION, "Enrollment", f"{naming.LABEL_COHORT}=spring"
    )
    assert sorted(e["spec"]["learner"] for e in made) == learners
    assert made[0]["metadata"]["ownerReferences"][0]["uid"] == "c-1"
    stored = api.get(naming.API_VERSION, "Cohort", "spring")
    assert stored is not None and stored["status"]["enrolled"] == 20


def test_an_orphan_lab_is_let_go() -> None:
    api = FakeKubeApi()
    orphan = {
        "apiVersion": naming.API_VERSION,
        "kind": "Lab",
        "metadata": {
            "name": "gone-first",
            "labels": {naming.LABEL_ENROLLMENT: "gone"},
            "finalizers": [naming.ENROLLMENT_RECORD_FINALIZER],
            "deletionTimestamp": (NOW - timedelta(minutes=1)).isoformat(),
        },
    }
    api.add(orphan)
    assert enrollments.release_orphan(api, orphan)
    assert api.get(naming.API_VERSION, "Lab", "gone-first") is None


def test_the_fake_serves_the_roadmap_verbs() -> None:
    assert isinstance(FakeKubeApi(), RoadmapApi)
    assert all(hasattr(KubeApi, verb) for verb in ("list_cluster_objects", "remove_finalizer"))


def test_a_roadmap_of_coming_milestones_is_never_completed() -> None:
    coming = RoadmapSpec.model_validate(
        {"title": "Later", "milestones": [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]}
    )
    plan = progress.plan_enrollment(inputs(roadmap=coming), sign)
    assert plan.status.progress == "0/0" and plan.status.certificate is None
    assert not plan.roadmap_completed_now
    completed = next(c for c in plan.status.conditions if c.type == "Completed")
    assert completed.status == "False"


def test_an_expired_unfinished_lab_is_deleted_and_its_milestone_free_again() -> None:
    running = progress.plan_enrollment(inputs(labs={"first": lab("alice-path-first")}), sign).status
    expired = progress.plan_enrollment(
        inputs(
            status=running,
            labs={"first": lab("alice-path-first", expired=True)},
            request=ParsedStart("t2", None),
        ),
        sign,
    )
    record = expired.status.record("first")
    assert record is not None and record.state == "Available" and "expired" in record.message
    assert expired.delete == ["alice-path-first"] and expired.start is None
    assert expired.status.last_start is not None
    assert "still being removed" in expired.status.last_start.message
    # Gone: asked again, the same name is used for the second attempt.
    again = progress.plan_enrollment(
        inputs(status=expired.status, request=ParsedStart("t3", None)), sign
    )
    assert again.start is not None
    assert again.start.manifest["metadata"]["name"] == "alice-path-first"
    retried = again.status.record("first")
    assert retried is not None and retried.attempts == 2
    # Expired after completing: it counts as completed, and is not deleted by the operator.
    done = progress.plan_enrollment(
        inputs(labs={"first": lab("alice-path-first", completed=True, expired=True)}), sign
    )
    assert states(done)["first"] == "Completed" and done.delete == []
