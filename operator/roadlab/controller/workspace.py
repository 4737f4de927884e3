"""Pure builders of what the portal needs of a Lab: its access token Secret (in the
operator's namespace, owned by the Lab) and the learner's workspace (the shell behind the
portal's terminal, in the lab namespace, running as the learner)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from roadlab.api import naming

WORKSPACE_PORT_NAME = "shell"
_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def owned_by_lab(lab_name: str, lab_uid: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": naming.API_VERSION,
            "kind": naming.KIND,
            "name": lab_name,
            "uid": lab_uid,
            "controller": True,
            "blockOwnerDeletion": False,
        }
    ]


def access_secret(
    lab_name: str, lab_uid: str, operator_namespace: str, token: str
) -> dict[str, Any]:
    """The Lab's portal access token: created once (then only read), owned by the Lab so
    it dies with it; deleting it revokes every link (the operator makes a new token)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": naming.portal_access_secret(lab_name),
            "namespace": operator_namespace,
            "labels": naming.labels(lab_name, naming.COMPONENT_PORTAL),
            "ownerReferences": owned_by_lab(lab_name, lab_uid),
        },
        "type": "Opaque",
        "data": {naming.PORTAL_ACCESS_KEY: base64.b64encode(token.encode()).decode()},
    }


def token_of(secret: Mapping[str, Any]) -> str:
    return base64.b64decode(secret["data"][naming.PORTAL_ACCESS_KEY]).decode()


def token_digest(token: str) -> str:
    """What the Lab's status.portalTokenSHA256 holds: the portal compares a link's token
    with it (constant time), never with the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def workspace_deployment(lab_name: str, namespace: str, image: str) -> dict[str, Any]:
    """The learner's shell: one pod, as the learner ServiceAccount (so kubectl in it has
    the learner's rights and no more), Pod Security "restricted", seeded once like the
    lab's environment (the learner may restart it by deleting its pod)."""
    labels = {**naming.labels(lab_name, naming.COMPONENT_ENVIRONMENT), "app": "workspace"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": naming.WORKSPACE_POD, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "workspace"}},
            # Recreate: never two shells, and a tmux session is not worth a surge.
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": naming.LEARNER_SERVICE_ACCOUNT,
                    "automountServiceAccountToken": True,
                    "terminationGracePeriodSeconds": 1,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "fsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": naming.WORKSPACE_CONTAINER,
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sleep", "infinity"],
                            "resources": {
                                "requests": {"cpu": "20m", "memory": "64Mi"},
                                "limits": {"cpu": "500m", "memory": "512Mi"},
                            },
                            "securityContext": _RESTRICTED_CONTAINER,
                        }
                    ],
                },
            },
        },
    }
