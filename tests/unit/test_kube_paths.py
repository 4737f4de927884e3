"""roadlab.kube.client.request_resource: how requests are counted (roadlab_kube_api_requests)."""

from __future__ import annotations

import pytest

from roadlab.kube.client import request_resource


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/api/v1/namespaces/lab-a/configmaps/x", "configmaps"),
        ("/api/v1/namespaces/lab-a/configmaps", "configmaps"),
        ("/api/v1/namespaces/lab-a", "namespaces"),
        ("/api/v1/namespaces", "namespaces"),
        ("/api/v1/namespaces/lab-a/status", "namespaces/status"),
        ("/api/v1/namespaces/lab-a/serviceaccounts/learner/token", "serviceaccounts/token"),
        ("/apis/roadlab.dev/v1alpha1/labs/x/status", "labs/status"),
        ("/apis/apps/v1/namespaces/lab-a/deployments/web?fieldManager=roadlab", "deployments"),
        ("/apis/rbac.authorization.k8s.io/v1/namespaces/lab-a/roles/r", "roles"),
        ("/api/v1", "discovery"),
        ("/apis/apps/v1", "discovery"),
        ("/apis", "discovery"),
        ("/version", "discovery"),
        ("/healthz", "other"),
    ],
)
def test_request_resource(path: str, resource: str) -> None:
    assert request_resource(path) == resource
