"""metrics-server on the cluster: the metrics API, `kubectl top`, and a real HPA scaling out.

Timings print with `pytest -s` (first metrics of a new pod; HPA 1 -> >=2 under load).
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client

from .conftest import kubectl
from .test_cluster import web_deployment
from .waiting import wait_until

LOAD_JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "load"},
    "spec": {
        "backoffLimit": 0,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "load",
                        "image": "localhost/roadlab/web:0.1.0",
                        "args": ["load", "http://web/work?ms=100", "3000", "8"],
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    }
                ],
            }
        },
    },
}


def hpa(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50},
                    },
                }
            ],
        },
    }


def test_metrics_api_is_available_and_top_answers(api: client.ApiClient) -> None:
    service = client.ApiregistrationV1Api(api).read_api_service("v1beta1.metrics.k8s.io")
    available = {c.type: c.status for c in service.status.conditions or []}
    assert available.get("Available") == "True", service.status.conditions
    nodes = kubectl("top", "nodes", "--no-headers", check=False)
    assert nodes.returncode == 0, nodes.stderr
    assert nodes.stdout.strip()
    pods = kubectl("top", "pods", "-n", "kube-system", "--no-headers", check=False)
    assert pods.returncode == 0, pods.stderr
    assert "metrics-server" in pods.stdout


def test_hpa_scales_a_cpu_bound_deployment_under_load(
    api: client.ApiClient, core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str
) -> None:
    autoscaling = client.AutoscalingV2Api(api)
    deployment = web_deployment("web")
    container = deployment["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    container["args"] = ["serve"]
    container["resources"] = {"requests": {"cpu": "100m", "memory": "32Mi"}}
    started = time.monotonic()
    apps.create_namespaced_deployment(namespace, deployment)
    core.create_namespaced_service(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, hpa("web"))

    def utilisation() -> bool:
        status = autoscaling.read_namespaced_horizontal_pod_autoscaler("web", namespace).status
        return any(
            m.resource and m.resource.current.average_utilization is not None
            for m in status.current_metrics or []
        )

    wait_until(utilisation, "the HPA to see the pod's CPU utilisation", timeout=120)
    print(f"[metrics] HPA sees CPU utilisation {time.monotonic() - started:.1f} s after apply")

    client.BatchV1Api(api).create_namespaced_job(namespace, LOAD_JOB)
    loaded = time.monotonic()

    def scaled() -> int | None:
        status = autoscaling.read_namespaced_horizontal_pod_autoscaler("web", namespace).status
        return status.current_replicas if (status.current_replicas or 0) >= 2 else None

    replicas = wait_until(scaled, "the HPA to scale web out", timeout=180, interval=2)
    print(f"[metrics] HPA scaled 1 -> {replicas} after {time.monotonic() - loaded:.1f} s of load")
