from __future__ import annotations

import copy
from typing import Any

import pytest

from roadlab.api import naming
from roadlab.catalog.schema import EnvironmentDef, LimitRangeDef, PolicyRule
from roadlab.controller import guardrails

NS = "lab-demo"


def rule(**fields: Any) -> PolicyRule:
    return PolicyRule.model_validate(
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], **fields}
    )


def rules_for(role: dict[str, Any], group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for item in role["rules"]:
        if group in item["apiGroups"] and resource in item["resources"]:
            verbs |= set(item["verbs"])
    return verbs


def test_owner_reference() -> None:
    body = {
        "apiVersion": "roadlab.dev/v1alpha1",
        "kind": "Lab",
        "metadata": {"name": "x", "uid": "u"},
    }
    assert guardrails.owner_reference(body) == {
        "apiVersion": "roadlab.dev/v1alpha1",
        "kind": "Lab",
        "name": "x",
        "uid": "u",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    with pytest.raises(ValueError, match="uid"):
        guardrails.owner_reference({**body, "metadata": {"name": "x"}})


@pytest.mark.parametrize("level", ["restricted", "baseline"])
def test_namespace(level: str) -> None:
    namespace = guardrails.namespace_manifest("demo", "alice@example.com", level)
    labels = namespace["metadata"]["labels"]
    assert namespace["metadata"]["name"] == NS
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == level
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "latest"
    assert labels["roadlab.dev/component"] == "namespace"
    assert namespace["metadata"]["annotations"] == {"roadlab.dev/learner": "alice@example.com"}
    with pytest.raises(ValueError, match="Pod Security"):
        guardrails.namespace_manifest("demo", "a", "privileged")


def test_quota_and_limits() -> None:
    env = EnvironmentDef()
    quota = guardrails.resource_quota("demo", NS, env.quota)
    assert quota["spec"]["hard"]["services.loadbalancers"] == "0"
    assert quota["metadata"]["namespace"] == NS
    limits = guardrails.limit_range("demo", NS, LimitRangeDef())
    assert limits["spec"]["limits"] == [
        {
            "type": "Container",
            "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
            "default": {"cpu": "500m", "memory": "512Mi"},
        }
    ]


def test_network_policies() -> None:
    deny, same, operator = guardrails.network_policies("demo", NS, "ops")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert same["spec"]["ingress"] == [{"from": [{"podSelector": {}}]}]
    assert operator["spec"]["ingress"] == [
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}]}
    ]
    assert all(p["spec"]["policyTypes"] == ["Ingress"] for p in (deny, same, operator))


def test_learner_role_grants_exercise_objects_but_not_guardrails() -> None:
    role = guardrails.learner_role("demo", NS)
    assert role["metadata"]["name"] == naming.LEARNER_ROLE
    assert {"create", "delete", "update"} <= rules_for(role, "apps", "deployments")
    assert "patch" in rules_for(role, "apps", "deployments/scale")
    assert "create" in rules_for(role, "", "pods/exec")
    assert rules_for(role, "", "pods/log") == {"get", "list", "watch"}
    for group, resource in [
        ("", "resourcequotas"),
        ("", "limitranges"),
        ("networking.k8s.io", "networkpolicies"),
        ("", "serviceaccounts"),
        ("", "events"),
    ]:
        assert rules_for(role, group, resource) == {"get", "list", "watch"}, resource
    for item in role["rules"]:
        assert "rbac.authorization.k8s.io" not in item["apiGroups"]
        assert "namespaces" not in item["resources"]
        assert all(
            "*" not in value for key in ("apiGroups", "resources", "verbs") for value in item[key]
        )


def test_learner_role_extra_rules_and_isolation() -> None:
    extra = rule(
        apiGroups=["monitoring.coreos.com"], resources=["servicemonitors"], verbs=["get", "create"]
    )
    role = guardrails.learner_role("demo", NS, [extra])
    assert role["rules"][-1] == {
        "apiGroups": ["monitoring.coreos.com"],
        "resources": ["servicemonitors"],
        "verbs": ["get", "create"],
    }
    role["rules"][0]["verbs"].append("escalate")
    assert "escalate" not in guardrails.learner_role("demo", NS)["rules"][0]["verbs"]


@pytest.mark.parametrize(
    "bad",
    [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"]},
        {"apiGroups": ["*"]},
        {"resources": ["*"]},
        {"verbs": ["*"]},
        {"resources": ["pods"], "resourceNames": ["a*"]},
        {"resources": ["resourcequotas"]},
        {"resources": ["limitranges"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"]},
        {"resources": ["namespaces"]},
        {"resources": ["resourcequotas/status"]},
        {"verbs": ["escalate"]},
        {"verbs": ["impersonate"]},
    ],
)
def test_learner_rules_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"learnerRules\[0\]"):
        guardrails.learner_role("demo", NS, [rule(**bad)])


def test_role_bindings() -> None:
    learner = guardrails.learner_role_binding("demo", NS, "alice@example.com")
    assert learner["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "roadlab-learner",
    }
    assert learner["subjects"] == [
        {"kind": "ServiceAccount", "name": "learner", "namespace": NS},
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice@example.com"},
    ]
    checker = guardrails.checker_role_binding("demo", NS)
    assert checker["metadata"]["name"] == "roadlab-checker"
    assert checker["roleRef"]["kind"] == "ClusterRole"
    assert checker["subjects"] == [
        {"kind": "ServiceAccount", "name": "roadlab-checker", "namespace": "roadlab-system"}
    ]


def test_all_guardrail_objects_order_and_labels() -> None:
    env = EnvironmentDef(pod_security="baseline")
    objects = guardrails.all_guardrail_objects("demo", "alice", env, "ops")
    kinds = [o["kind"] for o in objects]
    assert kinds == [
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "NetworkPolicy",
        "NetworkPolicy",
        "NetworkPolicy",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    ]
    assert objects[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    for obj in objects[1:-2]:
        assert obj["metadata"]["namespace"] == NS
    for obj in objects[1:]:
        assert obj["metadata"]["labels"]["roadlab.dev/lab"] == "demo"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "roadlab"
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(set(names)) == len(names)


def test_namespace_labels_the_learner_may_set() -> None:
    environment = EnvironmentDef.model_validate({"learnerNamespaceLabels": ["istio-injection"]})
    objects = guardrails.all_guardrail_objects("lab1", "alice", environment)
    namespace, role = objects[0], next(o for o in objects if o["kind"] == "Role")
    annotations = namespace["metadata"]["annotations"]
    assert annotations[naming.ANNOTATION_LEARNER_LABELS] == "istio-injection"
    assert {
        "apiGroups": [""],
        "resources": ["namespaces"],
        "resourceNames": ["lab-lab1"],
        "verbs": ["get", "patch"],
    } in role["rules"]


def test_no_namespace_rights_without_learner_labels() -> None:
    objects = guardrails.all_guardrail_objects("lab1", "alice", EnvironmentDef())
    role = next(o for o in objects if o["kind"] == "Role")
    assert naming.ANNOTATION_LEARNER_LABELS not in objects[0]["metadata"]["annotations"]
    assert not any("namespaces" in rule["resources"] for rule in role["rules"])


@pytest.mark.parametrize(
    "label",
    [
        "pod-security.kubernetes.io/enforce",
        "roadlab.dev/lab",
        "kubernetes.io/metadata.name",
        "node-role.kubernetes.io/x",
        "x.k8s.io/y",
        "bad label",
        "-x",
    ],
)
def test_reserved_or_invalid_learner_labels_are_refused(label: str) -> None:
    with pytest.raises(ValueError, match=r"reserved|valid label"):
        EnvironmentDef.model_validate({"learnerNamespaceLabels": [label]})


def test_holds_ignores_what_others_added() -> None:
    desired = guardrails.resource_quota("a", "lab-a", {"pods": "20"})
    observed = {
        **desired,
        "metadata": {**desired["metadata"], "resourceVersion": "9", "uid": "x"},
        "spec": {"hard": {"pods": "20"}, "scopes": None},
        "status": {"hard": {"pods": "20"}, "used": {"pods": "3"}},
    }
    assert guardrails.holds(observed, desired)
    policy = guardrails.network_policies("a", "lab-a")[1]
    defaulted = copy.deepcopy(policy)
    defaulted["spec"]["ingress"][0]["ports"] = None
    assert guardrails.holds(defaulted, policy)


def test_holds_sees_changed_missing_and_extra_list_items() -> None:
    desired = guardrails.resource_quota("a", "lab-a", {"pods": "20"})
    loosened = copy.deepcopy(desired)
    loosened["spec"]["hard"]["pods"] = "1000"
    assert not guardrails.holds(loosened, desired)
    unlabelled = copy.deepcopy(desired)
    del unlabelled["metadata"]["labels"][naming.LABEL_LAB]
    assert not guardrails.holds(unlabelled, desired)
    binding = guardrails.learner_role_binding("a", "lab-a", "alice")
    widened = copy.deepcopy(binding)
    widened["subjects"].append({"kind": "User", "name": "mallory"})
    assert not guardrails.holds(widened, binding)
    assert not guardrails.holds(None, binding)
    assert not guardrails.holds({"rules": "x"}, {"rules": [{}]})


def test_the_learner_may_read_and_patch_their_own_lab_only() -> None:
    role = guardrails.learner_lab_role("demo")
    binding = guardrails.learner_lab_role_binding("demo", "alice")
    assert role["metadata"]["name"] == binding["roleRef"]["name"] == "roadlab-learner-demo"
    assert "namespace" not in role["metadata"]
    assert role["rules"] == [
        {
            "apiGroups": ["roadlab.dev"],
            "resources": ["labs"],
            "resourceNames": ["demo"],
            "verbs": ["get", "watch", "patch"],
        }
    ]
    assert binding["roleRef"]["kind"] == "ClusterRole"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "learner", "namespace": "lab-demo"},
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
    ]


def test_checker_reads_listed_helm_releases_by_secret_name_only() -> None:
    environment = EnvironmentDef.model_validate({"checkerHelmReleases": ["greeter"]})
    objects = guardrails.all_guardrail_objects("lab1", "alice", environment, "ops")
    role, binding = (
        o for o in objects if o["metadata"]["name"] == naming.CHECKER_HELM_RELEASES_ROLE
    )
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == "lab-lab1"
    (rule,) = role["rules"]
    assert rule["resources"] == ["secrets"] and rule["verbs"] == ["get"]
    assert rule["resourceNames"][0] == "sh.helm.release.v1.greeter.v1"
    assert len(rule["resourceNames"]) == 20
    assert binding["kind"] == "RoleBinding"
    assert binding["roleRef"]["name"] == naming.CHECKER_HELM_RELEASES_ROLE
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "roadlab-checker", "namespace": "ops"}
    ]
    # Before the learner's Lab rights, after the namespace's own RBAC: the safe order holds.
    kinds = [o["kind"] for o in objects]
    assert kinds[-2:] == ["ClusterRole", "ClusterRoleBinding"]


def test_no_secret_rights_for_the_checker_without_helm_releases() -> None:
    objects = guardrails.all_guardrail_objects("lab1", "alice", EnvironmentDef())
    assert not any(
        "secrets" in rule["resources"]
        for o in objects
        if o["kind"] == "Role" and o["metadata"]["name"] != naming.LEARNER_ROLE
        for rule in o["rules"]
    )


GITOPS_ENVIRONMENT = {
    "delegateServiceAccounts": ["flux-applier"],
    "ingressFrom": [
        {
            "namespace": "flux-system",
            "pods": {"app": "source-controller"},
            "to": {"app": "git"},
            "port": 8080,
        }
    ],
    "checkerMayPatch": [
        {"apiGroup": "apps", "resource": "deployments", "name": "shop"},
        {"apiGroup": "kustomize.toolkit.fluxcd.io", "resource": "kustomizations", "name": "shop"},
    ],
}


def test_delegate_service_accounts_get_the_learner_role_and_nothing_else() -> None:
    environment = EnvironmentDef.model_validate(GITOPS_ENVIRONMENT)
    objects = guardrails.all_guardrail_objects("lab1", "alice", environment, "ops")
    accounts = [o for o in objects if o["kind"] == "ServiceAccount"]
    assert {a["metadata"]["name"] for a in accounts} == {"learner", "flux-applier"}
    (binding,) = (o for o in objects if o["metadata"]["name"] == naming.DELEGATE_ROLE_BINDING)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": naming.LEARNER_ROLE,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "flux-applier", "namespace": "lab-lab1"}
    ]
    # The Role the binding names is made before it.
    names = [o["metadata"]["name"] for o in objects]
    assert names.index(naming.LEARNER_ROLE) < names.index(naming.DELEGATE_ROLE_BINDING)


@pytest.mark.parametrize("name", ["default", "learner"])
def test_the_default_and_learner_accounts_cannot_be_delegates(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be delegate"):
        EnvironmentDef.model_validate({"delegateServiceAccounts": [name]})


def test_platform_ingress_opens_one_port_of_the_selected_pods_to_the_selected_pods() -> None:
    environment = EnvironmentDef.model_validate(GITOPS_ENVIRONMENT)
    objects = guardrails.all_guardrail_objects("lab1", "alice", environment, "ops")
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    assert len(policies) == 4  # deny, same namespace, operator, and this one
    (platform,) = (
        p for p in policies if p["metadata"]["name"].startswith(naming.NETPOL_FROM_PLATFORM_PREFIX)
    )
    assert platform["spec"]["podSelector"] == {"matchLabels": {"app": "git"}}
    (ingress,) = platform["spec"]["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert ingress["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "flux-system"}},
            "podSelector": {"matchLabels": {"app": "source-controller"}},
        }
    ]


def test_checker_may_patch_the_named_objects_only() -> None:
    environment = EnvironmentDef.model_validate(GITOPS_ENVIRONMENT)
    objects = guardrails.all_guardrail_objects("lab1", "alice", environment, "ops")
    role, binding = (o for o in objects if o["metadata"]["name"] == naming.CHECKER_PATCH_ROLE)
    assert role["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "resourceNames": ["shop"],
            "verbs": ["get", "patch"],
        },
        {
            "apiGroups": ["kustomize.toolkit.fluxcd.io"],
            "resources": ["kustomizations"],
            "resourceNames": ["shop"],
            "verbs": ["get", "patch"],
        },
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "roadlab-checker", "namespace": "ops"}
    ]


@pytest.mark.parametrize(
    ("group", "resource"),
    [("", "secrets"), ("", "pods"), ("", "namespaces"), ("rbac.authorization.k8s.io", "roles")],
)
def test_checker_patch_grants_refuse_guardrails_and_credentials(group: str, resource: str) -> None:
    with pytest.raises(ValueError, match="may not be granted patch"):
        EnvironmentDef.model_validate(
            {"checkerMayPatch": [{"apiGroup": group, "resource": resource, "name": "x"}]}
        )


def test_no_extra_objects_without_the_gitops_features() -> None:
    objects = guardrails.all_guardrail_objects("lab1", "alice", EnvironmentDef())
    names = {o["metadata"]["name"] for o in objects}
    assert naming.CHECKER_PATCH_ROLE not in names
    assert naming.DELEGATE_ROLE_BINDING not in names
    assert not any(n.startswith(naming.NETPOL_FROM_PLATFORM_PREFIX) for n in names)
