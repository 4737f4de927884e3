"""The cluster under the product works for real: node, pods, DNS, Jobs, admission, GC."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import WEB_IMAGE
from .waiting import pods_report, wait_until

RESTRICTED_CONTAINER = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
        "readOnlyRootFilesystem": True,
    },
    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
}


def web_deployment(name: str) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": WEB_IMAGE,
                            "ports": [{"containerPort": 8080}],
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                            **RESTRICTED_CONTAINER,
                        }
                    ]
                },
            },
        },
    }


def client_job(name: str, url: str) -> dict[str, object]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 6,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "get",
                            "image": WEB_IMAGE,
                            "args": ["get", url],
                            **RESTRICTED_CONTAINER,
                        }
                    ],
                }
            },
        },
    }


def job_complete(batch: client.BatchV1Api, namespace: str, name: str) -> bool:
    status = batch.read_namespaced_job_status(name, namespace).status
    return bool(status.succeeded)


def test_node_is_ready(core: client.CoreV1Api) -> None:
    def ready() -> bool:
        nodes = core.list_node().items
        return bool(nodes) and all(
            any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            for n in nodes
        )

    wait_until(ready, "every node to be Ready", timeout=180)


def test_cluster_dns_is_ready(apps: client.AppsV1Api) -> None:
    def coredns_available() -> bool:
        deployments = apps.list_namespaced_deployment(
            "kube-system", label_selector="k8s-app=kube-dns"
        )
        return any((d.status.available_replicas or 0) >= 1 for d in deployments.items)

    wait_until(
        coredns_available,
        "CoreDNS to be available",
        timeout=180,
        explain=lambda: pods_report(client.CoreV1Api(apps.api_client), "kube-system"),
    )


def test_deployment_of_local_image_serves_through_service_dns(
    api: client.ApiClient,
    apps: client.AppsV1Api,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
    namespace: str,
) -> None:
    apps.create_namespaced_deployment(namespace, web_deployment("web"))
    core.create_namespaced_service(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    wait_until(
        lambda: (
            (apps.read_namespaced_deployment_status("web", namespace).status.ready_replicas or 0)
            >= 1
        ),
        "the web Deployment to be ready",
        timeout=180,
        explain=lambda: pods_report(core, namespace),
    )
    # Another pod reaches it by its DNS name, through kube-proxy's Service rules.
    url = f"http://web.{namespace}.svc.cluster.local/"
    batch.create_namespaced_job(namespace, client_job("get-web", url))
    wait_until(
        lambda: job_complete(batch, namespace, "get-web"),
        "the client Job to complete",
        timeout=180,
        explain=lambda: pods_report(core, namespace),
    )
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=get-web").items
    logs = "".join(
        core.read_namespaced_pod_log(p.metadata.name, namespace)
        for p in pods
        if p.status.phase == "Succeeded"
    )
    assert "hello from web-" in logs


def test_job_runs_to_complete(
    core: client.CoreV1Api, batch: client.BatchV1Api, namespace: str
) -> None:
    job = client_job("done", "unused")
    job["spec"]["template"]["spec"]["containers"][0]["args"] = ["sleep", "1"]  # type: ignore[index]
    batch.create_namespaced_job(namespace, job)
    wait_until(
        lambda: job_complete(batch, namespace, "done"),
        "the Job to complete",
        timeout=180,
        explain=lambda: pods_report(core, namespace),
    )
    conditions = batch.read_namespaced_job_status("done", namespace).status.conditions
    assert any(c.type == "Complete" and c.status == "True" for c in conditions)


def test_pods_reach_the_api_server_through_its_service(
    core: client.CoreV1Api, batch: client.BatchV1Api, namespace: str
) -> None:
    # TLS verified against the service account's CA: the `kubernetes` Service VIP, the
    # API server's certificate SANs and the pod network all have to be right.
    url = "https://kubernetes.default.svc.cluster.local/readyz"
    batch.create_namespaced_job(namespace, client_job("readyz", url))
    wait_until(
        lambda: job_complete(batch, namespace, "readyz"),
        "a pod to reach /readyz",
        timeout=180,
        explain=lambda: pods_report(core, namespace),
    )


def test_pod_security_admission_rejects_privileged_pod(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {"name": "c", "image": WEB_IMAGE, "securityContext": {"privileged": True}}
            ]
        },
    }
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, pod)
    assert refused.value.status == 403
    assert "violates PodSecurity" in refused.value.body
    assert "privileged" in refused.value.body


def test_resource_quota_is_enforced(core: client.CoreV1Api, namespace: str) -> None:
    # Services, because nothing but this test creates one in a fresh namespace: the usage the
    # quota controller first counts is then exactly 0. (ConfigMaps raced the root-CA
    # publisher: a "0" counted before kube-root-ca.crt appeared is only recounted at the
    # controller's full resync, minutes away.)
    core.create_namespaced_resource_quota(
        namespace,
        {"metadata": {"name": "small"}, "spec": {"hard": {"services": "1"}}},
    )

    def counted_services() -> str | None:
        status = core.read_namespaced_resource_quota_status("small", namespace).status
        # Admission refuses every Service until the controller has published `hard`.
        return (status.used or {}).get("services") if status.hard else None

    wait_until(lambda: counted_services() == "0", "the quota controller to count the namespace")

    # Admission charges each create to the quota's usage before it is stored: one fits, the
    # second is refused.
    def service(name: str) -> dict[str, object]:
        return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}

    core.create_namespaced_service(namespace, service("one"))
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_service(namespace, service("two"))
    assert refused.value.status == 403
    assert "exceeded quota" in refused.value.body


def test_namespace_deletion_finishes(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    name = f"e2e-delete-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    apps.create_namespaced_deployment(name, web_deployment("web"))
    wait_until(
        lambda: (
            (apps.read_namespaced_deployment_status("web", name).status.ready_replicas or 0) >= 1
        ),
        "the Deployment to be ready",
        timeout=180,
        explain=lambda: pods_report(core, name),
    )
    core.delete_namespace(name)

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as error:
            return error.status == 404
        return False

    # The namespace controller empties it and the garbage collector removes the pods.
    wait_until(gone, "the namespace to be deleted", timeout=180)
