"""The enrolled learner's rights, as manifests (pure builders; enrollments.py applies them).

One ServiceAccount in the operator's namespace (its token is the learner's credential for
the whole roadmap: `kubectl lab kubeconfig --enrollment`), and a ClusterRole and binding
limited by resourceNames: get, watch and patch the one Enrollment (the admission policy
roadlab-learner-enrollment-requests lets the patch change only the start request), read
Roadmaps, and get, watch and patch the Enrollment's own Labs (the Lab policy limits that
patch to check and extension requests). Subjects: that ServiceAccount, the person named in
spec.learner, and the learner ServiceAccount of each of the Enrollment's Labs (so the lab's
own kubeconfig and the portal see the map too). In each provisioned Lab's namespace, a
RoleBinding gives that ServiceAccount the lab's own learner Role, so one credential does the
whole roadmap. All owned by the Enrollment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from roadlab.api import naming
from roadlab.api.roadmap import ENROLLMENT_KIND, ENROLLMENT_PLURAL, ROADMAP_PLURAL


def _owner(enrollment: str, uid: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": naming.API_VERSION,
            "kind": ENROLLMENT_KIND,
            "name": enrollment,
            "uid": uid,
            "blockOwnerDeletion": False,
        }
    ]


def _metadata(name: str, enrollment: str, uid: str, namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {naming.LABEL_MANAGED_BY: naming.MANAGED_BY, naming.LABEL_ENROLLMENT: enrollment},
        "ownerReferences": _owner(enrollment, uid),
    }
    if namespace:
        metadata["namespace"] = namespace
    return metadata


ENROLLEE_ROLE_BINDING = "roadlab-enrollee"


def lab_role_binding(
    enrollment: str, uid: str, lab_namespace: str, operator_namespace: str
) -> dict[str, Any]:
    """The lab's learner Role (naming.LEARNER_ROLE) for the enrollee ServiceAccount too."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(ENROLLEE_ROLE_BINDING, enrollment, uid, lab_namespace),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": naming.LEARNER_ROLE,
        },
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": naming.enrollee_name(enrollment),
                "namespace": operator_namespace,
            }
        ],
    }


def enrollee_objects(
    enrollment: str, uid: str, learner: str, lab_names: Sequence[str], operator_namespace: str
) -> list[dict[str, Any]]:
    name = naming.enrollee_name(enrollment)
    rules: list[dict[str, Any]] = [
        {
            "apiGroups": [naming.GROUP],
            "resources": [ENROLLMENT_PLURAL],
            "resourceNames": [enrollment],
            "verbs": ["get", "watch", "patch"],
        },
        {
            "apiGroups": [naming.GROUP],
            "resources": [ROADMAP_PLURAL],
            "verbs": ["get", "list", "watch"],
        },
    ]
    labs = sorted(set(lab_names))
    if labs:  # an empty resourceNames would mean every Lab
        rules.append(
            {
                "apiGroups": [naming.GROUP],
                "resources": [naming.PLURAL],
                "resourceNames": labs,
                "verbs": ["get", "watch", "patch"],
            }
        )
    subjects: list[dict[str, Any]] = [
        {"kind": "ServiceAccount", "name": name, "namespace": operator_namespace},
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": learner},
    ]
    subjects += [
        {
            "kind": "ServiceAccount",
            "name": naming.LEARNER_SERVICE_ACCOUNT,
            "namespace": naming.namespace_for(lab),
        }
        for lab in labs
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _metadata(name, enrollment, uid, operator_namespace),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _metadata(name, enrollment, uid),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _metadata(name, enrollment, uid),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": subjects,
        },
    ]
