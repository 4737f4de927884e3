"""Manifests that fence a lab namespace in: Pod Security, quota, limits, network, RBAC.

Everything here is a pure builder returning plain dicts, ready for server-side apply.
Note for deployment: Kubernetes RBAC forbids granting permissions one does not hold, so the
operator's own ClusterRole must include every rule of the learner Role (or `bind`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from roadlab.api import naming
from roadlab.catalog.policy import RBAC_GROUP, check_learner_rules
from roadlab.catalog.schema import (
    CheckerPatchGrant,
    EnvironmentDef,
    IngressAllowance,
    LimitRangeDef,
    PolicyRule,
)
from roadlab.probes.helm import release_secret_names

_CRUD = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
_READ = ["get", "list", "watch"]

# What a learner can do inside their lab namespace. Deliberately nothing on RBAC objects,
# and read-only on the guardrails themselves.
LEARNER_BASE_RULES: tuple[dict[str, Any], ...] = (
    {
        "apiGroups": [""],
        "resources": ["pods", "services", "configmaps", "secrets", "persistentvolumeclaims"],
        "verbs": _CRUD,
    },
    {"apiGroups": [""], "resources": ["pods/log", "pods/status"], "verbs": _READ},
    {
        "apiGroups": [""],
        "resources": ["pods/exec", "pods/attach", "pods/portforward"],
        "verbs": ["get", "create"],
    },
    {
        "apiGroups": [""],
        "resources": ["serviceaccounts", "events", "resourcequotas", "limitranges", "endpoints"],
        "verbs": _READ,
    },
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": _READ},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "replicasets", "statefulsets"],
        "verbs": _CRUD,
    },
    {
        # kubectl scale goes through the scale subresource.
        "apiGroups": ["apps"],
        "resources": ["deployments/scale", "replicasets/scale", "statefulsets/scale"],
        "verbs": ["get", "update", "patch"],
    },
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": _CRUD},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _CRUD},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": _CRUD},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _READ},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _CRUD},
)


def owner_reference(lab_body: Mapping[str, Any]) -> dict[str, Any]:
    """A controller ownerReference to the Lab, so deleting the Lab deletes its Namespace."""
    metadata = lab_body.get("metadata") or {}
    values = {
        "apiVersion": lab_body.get("apiVersion"),
        "kind": lab_body.get("kind"),
        "name": metadata.get("name"),
        "uid": metadata.get("uid"),
    }
    missing = sorted(key for key, value in values.items() if not value)
    if missing:
        raise ValueError(f"cannot build an ownerReference without {missing}")
    return {**values, "controller": True, "blockOwnerDeletion": True}


def holds(observed: Any, desired: Any) -> bool:
    """Whether `observed` still has every field of `desired`, with the same values.

    Extra fields are fine: defaults the API server filled in, status, labels others added
    (a learner's istio-injection). A value the server normalised ("0.5" to "500m") reads
    as a difference, which costs one no-op apply, never a loop: a no-op apply changes
    nothing, so it sends no watch event.
    """
    if isinstance(desired, Mapping):
        return isinstance(observed, Mapping) and all(
            key in observed and holds(observed[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(observed) == len(desired)
            and all(holds(o, d) for o, d in zip(observed, desired, strict=True))
        )
    return bool(observed == desired)


def _meta(name: str, lab_name: str, component: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": naming.labels(lab_name, component)}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def namespace_manifest(
    lab_name: str, learner: str, pod_security: str, learner_labels: Sequence[str] = ()
) -> dict[str, Any]:
    """The lab Namespace, with Pod Security Admission enforcing the lab's level, and the list
    of labels its learner may set (enforced by the chart's admission policy)."""
    if pod_security not in ("restricted", "baseline"):
        raise ValueError(f"unsupported Pod Security level {pod_security!r}")
    metadata = _meta(naming.namespace_for(lab_name), lab_name, naming.COMPONENT_NAMESPACE, None)
    for mode in ("enforce", "warn", "audit"):
        metadata["labels"][f"pod-security.kubernetes.io/{mode}"] = pod_security
        metadata["labels"][f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    metadata["annotations"] = {naming.ANNOTATION_LEARNER: learner}
    if learner_labels:
        metadata["annotations"][naming.ANNOTATION_LEARNER_LABELS] = ",".join(learner_labels)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def resource_quota(lab_name: str, namespace: str, hard: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(naming.RESOURCE_QUOTA, lab_name, naming.COMPONENT_GUARDRAIL, namespace),
        "spec": {"hard": dict(hard)},
    }


def limit_range(lab_name: str, namespace: str, limits: LimitRangeDef) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _meta(naming.LIMIT_RANGE, lab_name, naming.COMPONENT_GUARDRAIL, namespace),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": dict(limits.default_request),
                    "default": dict(limits.default),
                }
            ]
        },
    }


def _network_policy(
    name: str,
    lab_name: str,
    namespace: str,
    ingress: list[dict[str, Any]],
    pod_selector: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An ingress policy of the pods pod_selector labels select (every pod: None)."""
    selected = {"matchLabels": dict(pod_selector)} if pod_selector else {}
    spec: dict[str, Any] = {"podSelector": selected, "policyTypes": ["Ingress"]}
    if ingress:
        spec["ingress"] = ingress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(name, lab_name, naming.COMPONENT_GUARDRAIL, namespace),
        "spec": spec,
    }


def network_policies(
    lab_name: str, namespace: str, operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE
) -> list[dict[str, Any]]:
    """Deny ingress by default; allow it from the same namespace and from the operator's.

    Policies are additive, so the deny-all policy plus the two allow policies together mean:
    only lab pods and Roadlab's check Jobs can reach lab pods.
    """
    from_operator = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": operator_namespace}}
    }
    return [
        _network_policy(naming.NETPOL_DEFAULT_DENY, lab_name, namespace, []),
        _network_policy(
            naming.NETPOL_SAME_NAMESPACE, lab_name, namespace, [{"from": [{"podSelector": {}}]}]
        ),
        _network_policy(
            naming.NETPOL_FROM_OPERATOR, lab_name, namespace, [{"from": [from_operator]}]
        ),
    ]


def platform_ingress_policies(
    lab_name: str, namespace: str, allowances: Sequence[IngressAllowance]
) -> list[dict[str, Any]]:
    """One policy per allowance: the selected lab pods accept the platform pods on one port.

    The default-deny policy stays; these add exactly one way in each."""
    return [
        _network_policy(
            f"{naming.NETPOL_FROM_PLATFORM_PREFIX}{index}",
            lab_name,
            namespace,
            [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": allowance.namespace}
                            },
                            "podSelector": {"matchLabels": dict(allowance.pods)},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": allowance.port}],
                }
            ],
            pod_selector=allowance.to,
        )
        for index, allowance in enumerate(allowances)
    ]


def learner_service_account(lab_name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(
            naming.LEARNER_SERVICE_ACCOUNT, lab_name, naming.COMPONENT_LEARNER, namespace
        ),
    }


def learner_role(
    lab_name: str,
    namespace: str,
    extra_rules: Sequence[PolicyRule] = (),
    may_label_namespace: bool = False,
) -> dict[str, Any]:
    """The learner's Role: exercise objects read/write, guardrails read-only, RBAC nothing.

    With may_label_namespace, the learner may also patch their own Namespace (a RoleBinding
    reaches the Namespace object of its own namespace); the admission policy then allows
    only the lab's learner labels to change.
    """
    check_learner_rules(extra_rules)
    extra = [rule.model_dump(by_alias=True, exclude_none=True, mode="json") for rule in extra_rules]
    if may_label_namespace:
        extra.append(
            {
                "apiGroups": [""],
                "resources": ["namespaces"],
                "resourceNames": [namespace],
                "verbs": ["get", "patch"],
            }
        )
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "Role",
        "metadata": _meta(naming.LEARNER_ROLE, lab_name, naming.COMPONENT_LEARNER, namespace),
        "rules": copy.deepcopy(list(LEARNER_BASE_RULES)) + extra,
    }


def learner_role_binding(lab_name: str, namespace: str, learner: str) -> dict[str, Any]:
    """Bind the learner Role to the lab's learner ServiceAccount and to the human user."""
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": _meta(
            naming.LEARNER_ROLE_BINDING, lab_name, naming.COMPONENT_LEARNER, namespace
        ),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": naming.LEARNER_ROLE},
        "subjects": learner_subjects(namespace, learner),
    }


def learner_subjects(namespace: str, learner: str) -> list[dict[str, Any]]:
    """Who the learner is: the lab's learner ServiceAccount, and the person by user name."""
    return [
        {"kind": "ServiceAccount", "name": naming.LEARNER_SERVICE_ACCOUNT, "namespace": namespace},
        {"apiGroup": RBAC_GROUP, "kind": "User", "name": learner},
    ]


def learner_lab_role(lab_name: str) -> dict[str, Any]:
    """The learner's rights on their own Lab, a cluster-scoped object, so a ClusterRole
    limited by resourceNames: read it (get, and watch of that one name) and patch it.

    The patch is pinned down by the chart's admission policy (naming.LEARNER_LAB_POLICY) to
    the two request annotations: ask for a check, ask for more time. No list (another
    Lab's name or existence), no labs/status, no update, no delete.
    """
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": _meta(
            naming.learner_lab_role_name(lab_name), lab_name, naming.COMPONENT_LEARNER, None
        ),
        "rules": [
            {
                "apiGroups": [naming.GROUP],
                "resources": [naming.PLURAL],
                "resourceNames": [lab_name],
                "verbs": ["get", "watch", "patch"],
            }
        ],
    }


def learner_lab_role_binding(lab_name: str, learner: str) -> dict[str, Any]:
    name = naming.learner_lab_role_name(lab_name)
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(name, lab_name, naming.COMPONENT_LEARNER, None),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
        "subjects": learner_subjects(naming.namespace_for(lab_name), learner),
    }


def checker_role_binding(
    lab_name: str, namespace: str, operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE
) -> dict[str, Any]:
    """Let check Jobs (running as roadlab-checker in the operator namespace) read the lab."""
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": _meta(
            naming.CHECKER_ROLE_BINDING, lab_name, naming.COMPONENT_CHECKER, namespace
        ),
        "roleRef": {
            "apiGroup": RBAC_GROUP,
            "kind": "ClusterRole",
            "name": naming.CHECKER_CLUSTER_ROLE,
        },
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": naming.CHECKER_SERVICE_ACCOUNT,
                "namespace": operator_namespace,
            }
        ],
    }


def delegate_service_accounts(
    lab_name: str, namespace: str, names: Sequence[str]
) -> list[dict[str, Any]]:
    """ServiceAccounts a controller impersonates to act for the learner, bound to the
    learner's Role (none when the lab names none)."""
    if not names:
        return []
    accounts = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(name, lab_name, naming.COMPONENT_LEARNER, namespace),
        }
        for name in names
    ]
    binding = {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": _meta(
            naming.DELEGATE_ROLE_BINDING, lab_name, naming.COMPONENT_LEARNER, namespace
        ),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": naming.LEARNER_ROLE},
        "subjects": [
            {"kind": "ServiceAccount", "name": name, "namespace": namespace} for name in names
        ],
    }
    return [*accounts, binding]


def checker_patch_rbac(
    lab_name: str,
    namespace: str,
    grants: Sequence[CheckerPatchGrant],
    operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE,
) -> list[dict[str, Any]]:
    """A Role and its RoleBinding letting the checker get and patch the named objects (a
    probe that makes drift and asks for a reconcile); none when the lab names none."""
    if not grants:
        return []
    by_resource: dict[tuple[str, str], list[str]] = {}
    for grant in grants:
        by_resource.setdefault((grant.api_group, grant.resource), []).append(grant.name)
    role_name = naming.CHECKER_PATCH_ROLE
    role = {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "Role",
        "metadata": _meta(role_name, lab_name, naming.COMPONENT_CHECKER, namespace),
        "rules": [
            {
                "apiGroups": [group],
                "resources": [resource],
                "resourceNames": sorted(set(names)),
                "verbs": ["get", "patch"],
            }
            for (group, resource), names in sorted(by_resource.items())
        ],
    }
    return [role, _checker_binding(role_name, lab_name, namespace, operator_namespace)]


def _checker_binding(
    role_name: str, lab_name: str, namespace: str, operator_namespace: str
) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": _meta(role_name, lab_name, naming.COMPONENT_CHECKER, namespace),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role_name},
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": naming.CHECKER_SERVICE_ACCOUNT,
                "namespace": operator_namespace,
            }
        ],
    }


def checker_helm_release_rbac(
    lab_name: str,
    namespace: str,
    releases: Sequence[str],
    operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE,
) -> list[dict[str, Any]]:
    """A Role and its RoleBinding letting the checker get the release Secrets of these Helm
    releases, each by name: Kubernetes cannot grant Secrets by label or type, and a list
    would show every Secret of the lab. None when the lab lists no release."""
    if not releases:
        return []
    role_name = naming.CHECKER_HELM_RELEASES_ROLE
    names = [name for release in releases for name in release_secret_names(release)]
    role = {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "Role",
        "metadata": _meta(role_name, lab_name, naming.COMPONENT_CHECKER, namespace),
        "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": names, "verbs": ["get"]}
        ],
    }
    return [role, _checker_binding(role_name, lab_name, namespace, operator_namespace)]


def all_guardrail_objects(
    lab_name: str,
    learner: str,
    environment: EnvironmentDef,
    operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE,
) -> list[dict[str, Any]]:
    """Namespace first, then everything inside it, in a safe apply order.

    Quota, limits and network policies go in before any RBAC so a learner can never act in
    an unfenced namespace.
    """
    namespace = naming.namespace_for(lab_name)
    return [
        namespace_manifest(
            lab_name, learner, environment.pod_security, environment.learner_namespace_labels
        ),
        resource_quota(lab_name, namespace, environment.quota),
        limit_range(lab_name, namespace, environment.limit_range),
        *network_policies(lab_name, namespace, operator_namespace),
        *platform_ingress_policies(lab_name, namespace, environment.ingress_from),
        learner_service_account(lab_name, namespace),
        learner_role(
            lab_name,
            namespace,
            environment.learner_rules,
            may_label_namespace=bool(environment.learner_namespace_labels),
        ),
        learner_role_binding(lab_name, namespace, learner),
        *delegate_service_accounts(lab_name, namespace, environment.delegate_service_accounts),
        checker_role_binding(lab_name, namespace, operator_namespace),
        *checker_helm_release_rbac(
            lab_name, namespace, environment.checker_helm_releases, operator_namespace
        ),
        *checker_patch_rbac(lab_name, namespace, environment.checker_may_patch, operator_namespace),
        learner_lab_role(lab_name),
        learner_lab_role_binding(lab_name, learner),
    ]
