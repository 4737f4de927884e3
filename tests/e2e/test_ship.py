"""Shipping: Helm install from the repo, the kubectl plugin, metrics, clean uninstall.

Runs the operator in-cluster from its image (no operator from source in this module).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .conftest import REPO, kubectl
from .operator_fixtures import OPERATOR_NAMESPACE, install_crd_and_prereqs
from .test_isolation import pod
from .test_network import CONNECTION_FAILED, WEB, exec_in_pod, pod_ready
from .waiting import wait_until

RELEASE = "roadlab"


def run(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True, env=env, timeout=600)


def lab_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("kubectl", "lab", *args, check=check)


@pytest.fixture(scope="module")
def release(kubeconfig: str) -> Iterator[str]:
    """The chart installed from the repo; uninstalled (with its CRD) at the end."""
    result = run(
        "helm", "upgrade", "--install", RELEASE, str(REPO / "charts" / "roadlab"),
        "--namespace", OPERATOR_NAMESPACE, "--create-namespace", "--take-ownership",
        "--wait", "--timeout", "5m",
    )  # fmt: skip
    assert "STATUS: deployed" in result.stdout
    assert "kubectl lab start" in result.stdout  # NOTES.txt tells the user what to do next
    yield RELEASE
    run("helm", "uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait", check=False)
    kubectl("delete", "crd", "labs.roadlab.dev", "--wait=true", check=False)
    # Put back what the rest of the suite expects (the CRD and the chart's RBAC).
    install_crd_and_prereqs(kubeconfig)


def test_operator_pod_is_ready_and_restricted(release: str, core: client.CoreV1Api) -> None:
    pods = core.list_namespaced_pod(
        OPERATOR_NAMESPACE, label_selector="app.kubernetes.io/name=roadlab"
    ).items
    assert len(pods) == 1
    pod = pods[0]
    assert all(c.ready for c in pod.status.container_statuses)
    # The pod meets Pod Security "restricted": the API server says so for this namespace.
    check = run(
        "kubectl", "label", "--dry-run=server", "--overwrite", "namespace", OPERATOR_NAMESPACE,
        "pod-security.kubernetes.io/enforce=restricted",
    )  # fmt: skip
    assert "violate" not in check.stderr, check.stderr


def test_lab_to_completed_through_the_plugin(release: str, core: client.CoreV1Api) -> None:
    name = "ship-smoke"
    lab_cli("delete", name, "--wait", check=False)
    started = lab_cli(
        "start", "smoke", "--name", name, "--learner", "ship", "--wait", "--timeout", "180"
    )
    assert started.returncode == 0, started.stderr
    listing = json.loads(lab_cli("list", "-o", "json").stdout)
    assert name in {item["metadata"]["name"] for item in listing["items"]}
    status = lab_cli("status", name)
    assert "scale-web" in status.stdout
    hint = lab_cli("hint", name, "scale-web")
    assert "kubectl scale" in hint.stdout

    # The learner works with their own kubeconfig, scoped to the lab namespace.
    with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig", delete=False) as learner:
        learner.write(lab_cli("kubeconfig", name).stdout)
    env = {**os.environ, "KUBECONFIG": learner.name, "LAB_NAMESPACE": f"lab-{name}"}
    try:
        denied = run("kubectl", "get", "pods", "-n", "kube-system", env=env, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
        run(str(REPO / "labs" / "smoke" / "solution" / "apply.sh"), env=env)
    finally:
        Path(learner.name).unlink()

    checked = lab_cli("check", name, "--wait", "--timeout", "180", check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = kubectl("wait", "--for=condition=Completed", f"lab/{name}", "--timeout=30s", check=False)
    assert done.returncode == 0, done.stderr


def test_metrics_are_scraped_from_the_operator_pod(release: str) -> None:
    service = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/services/roadlab-operator-metrics:9090"
    path = f"{service}/proxy/metrics"

    def scraped() -> str | None:
        text = kubectl("get", "--raw", path, check=False).stdout
        return (
            text if 'roadlab_validation_runs_total{lab="smoke",result="Passed"}' in text else None
        )

    text = wait_until(scraped, "the operator's metrics to count the lab", timeout=60)
    assert 'roadlab_labs_provisioned_total{lab="smoke"}' in text
    assert "roadlab_check_latency_seconds_bucket" in text


def test_a_lab_pod_cannot_reach_the_operator_pod(release: str, core: client.CoreV1Api) -> None:
    """The chart's NetworkPolicy: the metrics the API server proxies above are closed to a
    pod in a lab (here the smoke lab's namespace, from the test before)."""
    namespace, name = "lab-ship-smoke", "net-client"
    core.create_namespaced_pod(namespace, pod(name, container={"args": ["sleep", "600"]}))
    wait_until(lambda: pod_ready(core, namespace, name), f"{namespace}/{name} Ready")
    (operator,) = core.list_namespaced_pod(
        OPERATOR_NAMESPACE, label_selector="app.kubernetes.io/name=roadlab"
    ).items
    url = f"http://{operator.status.pod_ip}:9090/metrics"
    output = exec_in_pod(core, namespace, name, WEB, "get", url)
    assert "roadlab_" not in output, f"a lab pod read the operator's metrics: {output[:200]}"
    assert any(failure in output for failure in CONNECTION_FAILED), output


def test_helm_test_hook_passes(release: str) -> None:
    # The chart's test pod reads the operator's metrics through its Service.
    tested = run(
        "helm", "test", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--timeout", "3m", check=False
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "Phase:          Succeeded" in tested.stdout, tested.stdout


def test_uninstall_leaves_nothing_behind(
    release: str, api: client.ApiClient, kubeconfig: str
) -> None:
    lab_cli(
        "start",
        "smoke",
        "--name",
        "ship-leftover",
        "--learner",
        "ship",
        "--wait",
        "--timeout",
        "180",
    )
    run("helm", "uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait")
    kubectl("delete", "crd", "labs.roadlab.dev", "--wait=true")
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)

    def nothing_left() -> bool:
        namespaces = [n.metadata.name for n in core.list_namespace().items]
        roles = [r.metadata.name for r in rbac.list_cluster_role().items]
        bindings = [b.metadata.name for b in rbac.list_cluster_role_binding().items]
        jobs = (
            client.BatchV1Api(api)
            .list_job_for_all_namespaces(label_selector="app.kubernetes.io/managed-by=roadlab")
            .items
        )
        return (
            not [n for n in namespaces if n.startswith("lab-ship")]
            and not [r for r in roles if r.startswith("roadlab")]
            and not [b for b in bindings if b.startswith("roadlab")]
            and not jobs
        )

    wait_until(nothing_left, "every Roadlab object to be gone", timeout=180)
    with pytest.raises(ApiException):
        client.ApiextensionsV1Api(api).read_custom_resource_definition("labs.roadlab.dev")
