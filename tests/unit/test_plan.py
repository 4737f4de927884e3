from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from roadlab.api import conditions as cond
from roadlab.api.lab import Condition, LabStatus, TaskResult
from roadlab.catalog.schema import LabDefinition
from roadlab.controller.plan import (
    PREREQUISITE_RETRY_SECONDS,
    LabPlan,
    apply_task_results,
    live_guardrails,
    mark_apply_failed,
    mark_provisioned,
    merge_tasks,
    plan_lab,
)

SPEC: dict[str, Any] = {"lab": "smoke", "learner": "alice"}
METRICS = "metrics.k8s.io/v1beta1/pods"


def plan(  # noqa: PLR0917 - test shorthand
    catalog: dict[str, LabDefinition],
    now: datetime,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    served: set[str] | None = None,
    name: str = "smoke-alice",
    generation: int = 1,
) -> LabPlan:
    return plan_lab(
        name, "uid-1", generation, SPEC if spec is None else spec, status, catalog, now,
        served or set(),
    )  # fmt: skip


def condition(p: LabPlan | LabStatus, type_: str) -> Condition:
    status = p.status if isinstance(p, LabPlan) else p
    found = cond.get_condition(status.conditions, type_)
    assert found is not None, type_
    return found


def test_first_plan(catalog: dict[str, LabDefinition], now: datetime) -> None:
    p = plan(catalog, now, {**SPEC, "parameters": {"replicas": 2}})
    assert (p.permanent_error, p.retry_after, p.expired) == (None, None, False)
    assert p.namespace == "lab-smoke-alice"
    assert p.expires_at == now + timedelta(hours=2)
    assert p.parameters == {"greeting": "hello", "replicas": 2}
    kinds = [o["kind"] for o in p.objects]
    assert kinds[0] == "Namespace"
    assert kinds[-3:] == ["ConfigMap", "Deployment", "Service"]
    assert kinds.index("RoleBinding") < kinds.index("ConfigMap")
    assert p.objects[0]["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "roadlab.dev/v1alpha1",
            "kind": "Lab",
            "name": "smoke-alice",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert p.objects[-2]["spec"]["replicas"] == 2
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    assert all(
        o["metadata"].get("namespace") == p.namespace
        for o in p.objects[1:]
        if o["kind"] not in cluster_scoped
    )
    # Cluster-scoped objects are owned by the Lab, so they go when it goes.
    for o in p.objects:
        if o["kind"] in cluster_scoped:
            assert o["metadata"]["ownerReferences"] == p.objects[0]["metadata"]["ownerReferences"]
            assert "namespace" not in o["metadata"]

    patch = p.status_patch()
    assert patch["startedAt"] == "2026-11-21T10:00:00Z"
    assert patch["expiresAt"] == "2026-11-21T12:00:00Z"
    assert patch["namespace"] == "lab-smoke-alice"
    assert patch["observedGeneration"] == 1
    assert patch["progress"] == "0/2"
    assert (patch["tasksPassed"], patch["tasksTotal"]) == (0, 2)
    assert patch["tasks"][0] == {
        "id": "scale-web",
        "title": "Scale the web Deployment to 2 replicas",
        "state": "Pending",
        "message": "",
        "hint": "kubectl scale deployment web --replicas=2",
    }
    assert [c["type"] for c in patch["conditions"]] == [
        "Ready",
        "Provisioned",
        "Completed",
        "Expired",
    ]
    assert condition(p, cond.PROVISIONED).reason == cond.REASON_PROVISIONING
    assert (condition(p, cond.READY).status, condition(p, cond.READY).reason) == (
        "False",
        "Provisioning",
    )
    assert condition(p, cond.EXPIRED).status == "False"
    assert condition(p, cond.COMPLETED).reason == cond.REASON_TASKS_PENDING
    assert all(c.observed_generation == 1 for c in p.status.conditions)


def test_provisioned_then_replanned(catalog: dict[str, LabDefinition], now: datetime) -> None:
    first = plan(catalog, now)
    later = now + timedelta(minutes=30)
    done = mark_provisioned(first.status, later, 1)
    assert condition(done, cond.READY).status == "True"
    assert condition(done, cond.PROVISIONED).last_transition_time == "2026-11-21T10:30:00Z"

    # Re-plan (e.g. operator restart, or a ttl change at generation 2): stays provisioned,
    # startedAt is kept, expiresAt follows the new ttl.
    again = plan(catalog, later, {**SPEC, "ttl": "3h"}, done.to_patch(), generation=2)
    assert condition(again, cond.PROVISIONED).status == "True"
    assert condition(again, cond.READY).status == "True"
    assert again.status.started_at == "2026-11-21T10:00:00Z"
    assert again.status.expires_at == "2026-11-21T13:00:00Z"
    assert again.status.observed_generation == 2
    assert len(again.objects) == len(first.objects)


def test_expired(catalog: dict[str, LabDefinition], now: datetime) -> None:
    first = plan(catalog, now, {**SPEC, "ttl": "5m"})
    p = plan(catalog, now + timedelta(minutes=5), {**SPEC, "ttl": "5m"}, first.status_patch())
    assert p.expired is True
    assert p.objects == []
    assert p.retry_after is None
    assert p.permanent_error is None
    assert condition(p, cond.EXPIRED).status == "True"
    ready = condition(p, cond.READY)
    assert (ready.status, ready.reason) == ("False", cond.REASON_EXPIRED)
    assert "expired at 2026-11-21T10:05:00Z" in ready.message


def test_expired_even_if_catalog_lost_the_lab(now: datetime) -> None:
    status = {"startedAt": "2026-11-20T00:00:00Z"}
    p = plan({}, now, SPEC, status)
    assert p.expired is True


@pytest.mark.parametrize(
    ("spec", "name", "needle"),
    [
        ({"lab": "smoke"}, "smoke-alice", "learner: Field required"),
        ({**SPEC, "ttl": "30d"}, "smoke-alice", "ttl"),
        ({**SPEC, "parameters": {"replicas": 1.5}}, "smoke-alice", "parameters.replicas"),
        (SPEC, "a" * 60, "at most 59"),
        (SPEC, "has.dot", "DNS-1123"),
    ],
)
def test_invalid_spec_is_permanent(
    catalog: dict[str, LabDefinition], now: datetime, spec: dict[str, Any], name: str, needle: str
) -> None:
    p = plan(catalog, now, spec, name=name)
    assert p.objects == []
    assert p.permanent_error is not None and needle in p.permanent_error
    assert p.retry_after is None
    assert condition(p, cond.PROVISIONED).reason == cond.REASON_INVALID_SPEC
    assert condition(p, cond.READY).reason == cond.REASON_INVALID_SPEC


def test_unknown_lab(catalog: dict[str, LabDefinition], now: datetime) -> None:
    p = plan(catalog, now, {**SPEC, "lab": "nope"})
    known = ", ".join(sorted(catalog))
    assert p.permanent_error == f"lab 'nope' is not in the catalog (known: {known})"
    assert condition(p, cond.READY).reason == cond.REASON_UNKNOWN_LAB
    assert p.status.expires_at is not None  # still expires and gets cleaned up


def test_invalid_parameters(catalog: dict[str, LabDefinition], now: datetime) -> None:
    p = plan(catalog, now, {**SPEC, "parameters": {"replicas": 9}})
    assert p.permanent_error is not None and "'replicas': got 9" in p.permanent_error
    assert condition(p, cond.PROVISIONED).reason == cond.REASON_INVALID_PARAMETERS
    assert [t.id for t in p.status.tasks] == ["scale-web", "configmap-answer"]
    assert p.objects == []


def with_prerequisite(smoke: LabDefinition) -> dict[str, LabDefinition]:
    raw = smoke.model_dump(by_alias=True)
    raw["prerequisites"] = [
        {
            "name": "metrics-server",
            "apiGroup": "metrics.k8s.io",
            "apiVersion": "v1beta1",
            "resource": "pods",
        }
    ]
    return {
        "smoke": LabDefinition.model_validate(raw).with_template_sources(smoke.template_sources)
    }


def test_missing_prerequisite_is_retryable(smoke: LabDefinition, now: datetime) -> None:
    catalog = with_prerequisite(smoke)
    p = plan(catalog, now)
    assert p.retry_after == PREREQUISITE_RETRY_SECONDS
    assert p.permanent_error is None
    assert p.objects == []
    reason = condition(p, cond.READY)
    assert reason.reason == cond.REASON_PREREQUISITE_MISSING
    assert "metrics-server (metrics.k8s.io/v1beta1/pods)" in reason.message
    ok = plan(catalog, now, served={METRICS, "v1/pods"})
    assert ok.retry_after is None and ok.objects


def test_render_failure_is_permanent(smoke: LabDefinition, now: datetime) -> None:
    broken = smoke.with_template_sources(
        {
            "templates/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
            "  namespace: default\n"
        }
    )
    p = plan({"smoke": broken}, now)
    assert p.permanent_error is not None and "templates/app.yaml" in p.permanent_error
    assert condition(p, cond.PROVISIONED).reason == cond.REASON_RENDER_FAILED
    assert p.objects == []


def test_structure_first_rendering_through_plan(smoke: LabDefinition, now: datetime) -> None:
    # A lab whose string parameter has no pattern: a hostile value must still stay data.
    raw = smoke.model_dump(by_alias=True)
    raw["parameters"]["greeting"] = {"type": "string", "default": "hello"}
    free = LabDefinition.model_validate(raw).with_template_sources(smoke.template_sources)
    hostile = (
        "x\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
        "metadata: {name: pwn}\nroleRef: {kind: ClusterRole, name: cluster-admin}\n{{ 7*7 }}"
    )
    benign = plan({"smoke": free}, now, {**SPEC, "parameters": {"greeting": "hi"}})
    evil = plan({"smoke": free}, now, {**SPEC, "parameters": {"greeting": hostile}})
    assert [o["kind"] for o in evil.objects] == [o["kind"] for o in benign.objects]
    welcome = next(o for o in evil.objects if o["metadata"]["name"] == "welcome")
    assert welcome["data"] == {"greeting": hostile}
    # With the real pattern the value is refused up front.
    refused = plan({"smoke": smoke}, now, {**SPEC, "parameters": {"greeting": hostile}})
    assert condition(refused, cond.PROVISIONED).reason == cond.REASON_INVALID_PARAMETERS


def test_mark_apply_failed(catalog: dict[str, LabDefinition], now: datetime) -> None:
    status = mark_apply_failed(plan(catalog, now).status, "conflict", now, 1)
    assert (condition(status, cond.READY).reason, condition(status, cond.READY).message) == (
        cond.REASON_APPLY_FAILED,
        "conflict",
    )


def test_task_results_and_completion(catalog: dict[str, LabDefinition], now: datetime) -> None:
    status = mark_provisioned(plan(catalog, now).status, now, 1)
    t1 = now + timedelta(minutes=1)
    status = apply_task_results(
        status,
        [
            TaskResult(id="scale-web", state="Passed", checked_at="2026-11-21T10:01:00Z"),
            TaskResult(id="not-a-task", state="Passed"),
        ],
        t1,
        1,
    )
    assert status.progress == "1/2"
    assert status.tasks[0].title == "Scale the web Deployment to 2 replicas"  # kept
    assert status.tasks[0].hint == "kubectl scale deployment web --replicas=2"
    assert [t.id for t in status.tasks] == ["scale-web", "configmap-answer"]
    assert condition(status, cond.COMPLETED).status == "False"

    t2 = now + timedelta(minutes=2)
    status = apply_task_results(status, [TaskResult(id="configmap-answer", state="Passed")], t2, 1)
    assert (status.progress, status.tasks_passed, status.tasks_total) == ("2/2", 2, 2)
    completed = condition(status, cond.COMPLETED)
    assert (completed.status, completed.reason) == ("True", cond.REASON_ALL_TASKS_PASSED)
    assert status.completed_at == "2026-11-21T10:02:00Z"
    assert condition(status, cond.READY).status == "True"  # finished labs stay usable

    t3 = now + timedelta(minutes=3)
    status = apply_task_results(
        status, [TaskResult(id="scale-web", state="Failed", message="replicas is 1")], t3, 1
    )
    assert condition(status, cond.COMPLETED).status == "False"
    assert status.completed_at == "2026-11-21T10:02:00Z"

    # Re-planning keeps recorded results.
    again = plan(catalog, t3, status=status.to_patch())
    assert again.status.tasks[0].state == "Failed"
    assert again.status.tasks[1].state == "Passed"


def test_merge_tasks_drops_unknown_and_refreshes_titles(smoke: LabDefinition) -> None:
    merged = merge_tasks(
        [
            TaskResult(id="gone", state="Passed"),
            TaskResult(id="scale-web", title="old", state="Passed"),
        ],
        smoke,
    )
    assert [(t.id, t.state, t.title) for t in merged] == [
        ("scale-web", "Passed", "Scale the web Deployment to 2 replicas"),
        (
            "configmap-answer",
            "Pending",
            'Create a ConfigMap named answer with data.answer set to "42"',
        ),
    ]


def test_garbage_status_is_reset(catalog: dict[str, LabDefinition], now: datetime) -> None:
    p = plan(catalog, now, status={"conditions": "nonsense", "startedAt": "yesterday"})
    assert p.status.started_at == "2026-11-21T10:00:00Z"
    assert p.objects


def test_operator_namespace_and_naive_time(
    catalog: dict[str, LabDefinition], now: datetime
) -> None:
    p = plan_lab("smoke-alice", "u", 1, SPEC, None, catalog, now, set(), operator_namespace="ops")
    checker = next(o for o in p.objects if o["metadata"]["name"] == "roadlab-checker")
    assert checker["subjects"][0]["namespace"] == "ops"
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_lab("x", "u", 1, SPEC, None, catalog, now.replace(tzinfo=None), set())


def test_live_guardrails_are_plan_labs_guardrails(
    catalog: dict[str, LabDefinition], now: datetime
) -> None:
    first = plan(catalog, now)
    done = mark_provisioned(first.status, now, 1).to_patch()
    live = live_guardrails("smoke-alice", "uid-1", SPEC, done, catalog, now)
    # The plan's objects less the smoke lab's environment (ConfigMap, Deployment, Service).
    assert live == first.objects[:-3]
    assert live[0]["kind"] == "Namespace"
    assert live[0]["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_no_live_guardrails_before_provisioning_after_expiry_or_for_bad_specs(
    catalog: dict[str, LabDefinition], now: datetime
) -> None:
    first = plan(catalog, now, {**SPEC, "ttl": "5m"})
    done = mark_provisioned(first.status, now, 1).to_patch()
    spec = {**SPEC, "ttl": "5m"}
    assert live_guardrails("smoke-alice", "u", spec, first.status_patch(), catalog, now) == []
    later = now + timedelta(minutes=5)
    assert live_guardrails("smoke-alice", "u", spec, done, catalog, later) == []
    assert (
        live_guardrails("smoke-alice", "u", {"lab": "gone", "learner": "a"}, done, catalog, now)
        == []
    )
    assert live_guardrails("smoke-alice", "u", {"lab": "smoke"}, done, catalog, now) == []
    assert live_guardrails("smoke-alice", "u", spec, done, catalog, now) != []


def test_a_failure_is_permanent_exactly_when_the_contract_says_so(
    catalog: dict[str, LabDefinition], smoke: LabDefinition, now: datetime
) -> None:
    """plan_lab's permanent failures are api.conditions.PERMANENT_REASONS, all of them."""
    broken = smoke.with_template_sources(
        {  # a template may not pick its own namespace
            "templates/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
            "  namespace: default\n"
        }
    )
    failures = [
        plan(catalog, now, {**SPEC, "ttl": "1s"}),
        plan(catalog, now, {**SPEC, "lab": "nope"}),
        plan(catalog, now, {**SPEC, "parameters": {"replicas": 9}}),
        plan(with_prerequisite(smoke), now),
        plan({"smoke": broken}, now),
    ]
    permanent = set()
    for p in failures:
        reason = condition(p, cond.PROVISIONED).reason
        assert (p.permanent_error is not None) == (reason in cond.PERMANENT_REASONS), reason
        assert (p.retry_after is None) == (reason in cond.PERMANENT_REASONS), reason
        if p.permanent_error is not None:
            permanent.add(reason)
    assert permanent == cond.PERMANENT_REASONS
