"""The operator core on a real cluster: provisioning, bad input, isolation, cleanup."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .conftest import kubectl
from .operator_fixtures import Labs, OperatorProcess
from .waiting import wait_until


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def wait_ready(labs: Labs, name: str, timeout: float = 120) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        c = labs.condition(name, "Ready")
        return c if c and c["status"] == "True" else None

    return wait_until(ready, f"Lab {name} to be Ready", timeout=timeout)


def wait_reason(labs: Labs, name: str, reason: str, timeout: float = 60) -> dict[str, Any]:
    def reasoned() -> dict[str, Any] | None:
        c = labs.condition(name, "Ready")
        return c if c and c["reason"] == reason else None

    return wait_until(reasoned, f"Lab {name} to report {reason}", timeout=timeout)


def namespace_gone(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
    except ApiException as error:
        return error.status == 404
    return False


def can(  # noqa: PLR0917 - reads like the SubjectAccessReview it sends
    api: client.ApiClient, user: str, verb: str, resource: str, namespace: str, group: str = ""
) -> bool:
    review = client.AuthorizationV1Api(api).create_subject_access_review(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": [
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{namespace}",
                    "system:authenticated",
                ],
                "resourceAttributes": {
                    "verb": verb,
                    "resource": resource,
                    "group": group,
                    "namespace": namespace,
                },
            },
        }
    )
    return bool(review.status.allowed)


def test_lab_becomes_ready_with_its_environment(
    labs: Labs, core: client.CoreV1Api, api: client.ApiClient
) -> None:
    name = unique("ready")
    labs.create(name, parameters={"greeting": "good morning", "replicas": 2})
    # What a user runs: kubectl wait on the Ready condition.
    result = kubectl("wait", "--for=condition=Ready", f"lab/{name}", "--timeout=120s", check=False)
    assert result.returncode == 0, result.stderr
    lab = labs.get(name)
    namespace = lab["status"]["namespace"]
    assert namespace == f"lab-{name}"
    ns = core.read_namespace(namespace)
    assert ns.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns.metadata.owner_references[0].name == name
    assert core.read_namespaced_resource_quota("roadlab-quota", namespace).spec.hard["pods"]
    assert core.read_namespaced_limit_range("roadlab-limits", namespace)
    policies = client.NetworkingV1Api(api).list_namespaced_network_policy(namespace).items
    assert {p.metadata.name for p in policies} >= {
        "roadlab-default-deny-ingress",
        "roadlab-allow-same-namespace",
    }
    assert core.read_namespaced_service_account("learner", namespace)
    rbac = client.RbacAuthorizationV1Api(api)
    assert rbac.read_namespaced_role("roadlab-learner", namespace)
    assert rbac.read_namespaced_role_binding("roadlab-checker", namespace)
    # The typed parameters reached the environment: a string and an integer.
    assert core.read_namespaced_config_map("welcome", namespace).data["greeting"] == "good morning"
    deployment = client.AppsV1Api(api).read_namespaced_deployment("web", namespace)
    assert deployment.spec.replicas == 2
    status = lab["status"]
    # The first check ran on the warm checker inside the write that made the Lab Ready: the
    # replicas parameter (2) already meets scale-web; the ConfigMap is the learner's to make.
    assert status["lastCheck"]["token"] == "initial" and status["lastCheck"]["finishedAt"]
    assert status["progress"] == "1/2"
    assert [t["id"] for t in status["tasks"]] == ["scale-web", "configmap-answer"]
    assert [t["state"] for t in status["tasks"]] == ["Passed", "Failed"]
    assert status["startedAt"] and status["expiresAt"]
    assert status["observedGeneration"] == lab["metadata"]["generation"]
    # The printer columns show it.
    table = kubectl("get", "lab", name).stdout
    assert "READY" in table and "1/2" in table and "smoke" in table
    events = core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={name}"
    ).items
    assert any(e.reason == "Ready" for e in events), [e.reason for e in events]


@pytest.mark.parametrize(
    ("spec", "name", "fragment"),
    [
        ({"lab": "Not_A_Lab"}, None, "spec.lab"),
        ({"ttl": "forever"}, None, "ttl"),
        ({"learner": ""}, None, "learner"),
        ({}, "x" * 60, "59"),
    ],
)
def test_api_server_refuses_bad_specs(
    api: client.ApiClient, crd: None, spec: dict[str, Any], name: str | None, fragment: str
) -> None:
    body = {
        "apiVersion": "roadlab.dev/v1alpha1",
        "kind": "Lab",
        "metadata": {"name": name or unique("bad")},
        "spec": {"lab": "smoke", "learner": "alice", "ttl": "1h", **spec},
    }
    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(api).create_cluster_custom_object(
            "roadlab.dev", "v1alpha1", "labs", body
        )
    assert refused.value.status == 422
    assert fragment in refused.value.body


def test_spec_lab_is_immutable(labs: Labs) -> None:
    name = unique("immutable")
    labs.create(name)
    with pytest.raises(ApiException) as refused:
        labs.patch(name, {"spec": {"lab": "other"}})
    assert refused.value.status == 422
    assert "immutable" in refused.value.body


def test_unknown_lab_and_bad_parameter_become_conditions(
    labs: Labs, operator: OperatorProcess
) -> None:
    unknown, bad = unique("unknown"), unique("badparam")
    labs.create(unknown, lab="no-such-lab")
    labs.create(bad, parameters={"replicas": 99})
    condition = wait_reason(labs, unknown, "UnknownLab")
    assert "no-such-lab" in condition["message"] and condition["status"] == "False"
    condition = wait_reason(labs, bad, "InvalidParameters")
    assert "replicas" in condition["message"] and "99" in condition["message"]
    # No crash loop: the operator is alive and still provisions good labs.
    assert operator.alive()
    good = unique("good")
    labs.create(good)
    wait_ready(labs, good)


@pytest.mark.parametrize(
    "payload",
    [
        "x\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
        "metadata: {name: pwned}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"
        "subjects: [{kind: ServiceAccount, name: learner, namespace: default}]",
        "{{ ''.__class__.__mro__ }}",
        'hello", "injected": "yes',
    ],
)
def test_injection_through_parameters_is_rejected(
    labs: Labs, api: client.ApiClient, payload: str
) -> None:
    name = unique("inject")
    labs.create(name, parameters={"greeting": payload})
    condition = wait_reason(labs, name, "InvalidParameters")
    assert "greeting" in condition["message"]
    bindings = client.RbacAuthorizationV1Api(api).list_cluster_role_binding().items
    assert "pwned" not in {b.metadata.name for b in bindings}


def test_learner_is_confined_to_their_lab(labs: Labs, api: client.ApiClient) -> None:
    mine, theirs = unique("mine"), unique("theirs")
    labs.create(mine)
    labs.create(theirs, learner="bob")
    wait_ready(labs, mine)
    wait_ready(labs, theirs)
    me = f"system:serviceaccount:lab-{mine}:learner"
    assert can(api, me, "create", "deployments", f"lab-{mine}", "apps")
    assert can(api, me, "list", "pods", f"lab-{mine}")
    assert not can(api, me, "list", "pods", f"lab-{theirs}")
    assert not can(api, me, "get", "configmaps", f"lab-{theirs}")
    assert not can(api, me, "update", "resourcequotas", f"lab-{mine}")
    assert not can(api, me, "delete", "networkpolicies", f"lab-{mine}", "networking.k8s.io")
    assert not can(api, me, "create", "rolebindings", f"lab-{mine}", "rbac.authorization.k8s.io")
    assert not can(api, me, "list", "clusterrolebindings", "", "rbac.authorization.k8s.io")


def test_guardrails_are_restored_and_learner_work_is_kept(
    labs: Labs, core: client.CoreV1Api, api: client.ApiClient
) -> None:
    name = unique("guard")
    labs.create(name)
    wait_ready(labs, name)
    namespace = f"lab-{name}"
    apps = client.AppsV1Api(api)
    # The learner's own work: scaling the Deployment the lab seeded.
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 2}})
    # Someone loosens the quota and deletes the default-deny policy.
    core.patch_namespaced_resource_quota(
        "roadlab-quota", namespace, {"spec": {"hard": {"pods": "1000"}}}
    )
    client.NetworkingV1Api(api).delete_namespaced_network_policy(
        "roadlab-default-deny-ingress", namespace
    )
    wait_until(
        lambda: (
            core.read_namespaced_resource_quota("roadlab-quota", namespace).spec.hard["pods"]
            != "1000"
        ),
        "the quota to be restored",
        timeout=60,
    )
    wait_until(
        lambda: client.NetworkingV1Api(api).read_namespaced_network_policy(
            "roadlab-default-deny-ingress", namespace
        ),
        "the default-deny policy to come back",
        timeout=60,
    )
    # A spec change reconciles the whole lab again; the learner's replicas stay.
    labs.patch(name, {"spec": {"ttl": "3h"}})
    wait_until(
        lambda: labs.get(name)["status"].get("observedGeneration") == 2,
        "generation 2 to be observed",
    )
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 2


def test_only_a_changed_guardrail_is_applied_again(
    labs: Labs, operator: OperatorProcess, core: client.CoreV1Api
) -> None:
    name = unique("quiet")
    labs.create(name)
    wait_ready(labs, name)
    namespace = f"lab-{name}"

    def patches(resource: str) -> float:
        return operator.metric("roadlab_kube_api_requests_total", method="PATCH", resource=resource)

    def used_services() -> str:
        quota = core.read_namespaced_resource_quota("roadlab-quota", namespace)
        return str((quota.status.used or {}).get("services"))

    wait_until(lambda: used_services() == "1", "the quota to count the lab's Service")
    time.sleep(2)  # the operator handles the quota controller's update
    before = {r: patches(r) for r in ("resourcequotas", "namespaces", "networkpolicies")}
    # The cluster's own changes: quota usage (a new Service), someone's annotation.
    core.create_namespaced_service(
        namespace, {"metadata": {"name": "extra"}, "spec": {"ports": [{"port": 80}]}}
    )
    core.patch_namespace(namespace, {"metadata": {"annotations": {"team": "blue"}}})
    wait_until(lambda: used_services() == "2", "the quota to count the new Service")
    time.sleep(3)
    assert {r: patches(r) for r in before} == before, "no guardrail was applied again"
    # A loosened quota is applied again, alone.
    core.patch_namespaced_resource_quota(
        "roadlab-quota", namespace, {"spec": {"hard": {"services": "500"}}}
    )
    wait_until(
        lambda: (
            core.read_namespaced_resource_quota("roadlab-quota", namespace).spec.hard["services"]
            != "500"
        ),
        "the quota to be restored",
    )
    time.sleep(3)
    after = {r: patches(r) for r in before}
    # The quota, and nothing else. More than one apply is possible: the quota controller's
    # status update can still carry the loosened spec when the operator sees it.
    assert after["resourcequotas"] > before["resourcequotas"]
    assert {**after, "resourcequotas": 0} == {**before, "resourcequotas": 0}
    assert core.read_namespace(namespace).metadata.annotations["team"] == "blue"


def test_a_deleted_lab_namespace_comes_back_whole(
    labs: Labs, core: client.CoreV1Api, api: client.ApiClient
) -> None:
    name = unique("renew")
    labs.create(name)
    wait_ready(labs, name)
    namespace = f"lab-{name}"
    old_uid = core.read_namespace(namespace).metadata.uid
    core.delete_namespace(namespace)

    def renewed() -> bool:
        try:
            found = core.read_namespace(namespace)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return bool(found.metadata.uid != old_uid and found.status.phase == "Active")

    wait_until(renewed, "the lab namespace to be made again", timeout=180)
    wait_until(
        lambda: client.AppsV1Api(api).list_namespaced_deployment(namespace).items,
        "the lab's Deployment to be seeded again",
    )
    assert len(core.list_namespaced_resource_quota(namespace).items) == 1
    assert len(client.NetworkingV1Api(api).list_namespaced_network_policy(namespace).items) == 3
    assert core.read_namespace(namespace).metadata.owner_references[0].name == name


def test_deleting_the_lab_removes_everything(labs: Labs, core: client.CoreV1Api) -> None:
    name = unique("delete")
    labs.create(name)
    wait_ready(labs, name)
    labs.delete(name)
    wait_until(
        lambda: namespace_gone(core, f"lab-{name}"), "the lab namespace to be deleted", timeout=180
    )


def test_lab_expires(labs: Labs, core: client.CoreV1Api) -> None:
    name = unique("expire")
    labs.create(name, ttl="5m")
    wait_ready(labs, name)
    # Wind the lab's clock back instead of waiting five minutes.
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
    labs.patch_status(name, {"startedAt": past, "expiresAt": past})
    wait_until(
        lambda: (labs.condition(name, "Expired") or {}).get("status") == "True",
        "the Lab to be Expired",
        timeout=60,
    )
    ready = labs.condition(name, "Ready")
    assert ready and ready["status"] == "False" and ready["reason"] == "Expired"
    wait_until(
        lambda: namespace_gone(core, f"lab-{name}"),
        "the expired namespace to be deleted",
        timeout=180,
    )
    events = core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={name}"
    ).items
    assert any("Expired" in (e.reason or "") for e in events), [e.reason for e in events]


def test_killed_operator_converges_without_duplicates(
    labs: Labs, operator: OperatorProcess, core: client.CoreV1Api, api: client.ApiClient
) -> None:
    names = [unique("chaos") for _ in range(5)]
    for name in names:
        labs.create(name)
    time.sleep(1.5)  # some labs are half provisioned now
    operator.kill()
    operator.start()
    for name in names:
        wait_ready(labs, name, timeout=180)
    for name in names:
        namespace = f"lab-{name}"
        assert len(core.list_namespaced_resource_quota(namespace).items) == 1
        assert len(core.list_namespaced_limit_range(namespace).items) == 1
        assert len(client.AppsV1Api(api).list_namespaced_deployment(namespace).items) == 1
        assert len(client.NetworkingV1Api(api).list_namespaced_network_policy(namespace).items) == 3


def test_metrics_count_labs(labs: Labs, operator: OperatorProcess) -> None:
    name = unique("metrics")
    labs.create(name)
    wait_ready(labs, name)
    text = operator.metrics()
    assert 'roadlab_labs_provisioned_total{lab="smoke"}' in text
    assert "roadlab_provisioning_duration_seconds_bucket" in text
    assert 'roadlab_labs{lab="smoke",state="Ready"}' in text
