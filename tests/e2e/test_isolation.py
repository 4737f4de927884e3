"""Tenant isolation: the Kubernetes multi-tenancy benchmark's level-1 behavioural checks,
run with the learner's own kubeconfig (`kubectl lab kubeconfig`) against a lab namespace.

Each MTB check is one test. The MTB ids are in the test names' docstrings; "self-service"
checks that L1 *allows* (a tenant creating Roles or NetworkPolicies) are deliberately refused
here: a learner must not loosen their own fences.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .operator_fixtures import Labs, learner_kubeconfig
from .test_operator import unique, wait_ready


class Learner:
    """kubectl with the learner's kubeconfig, defaulting to their lab namespace."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.kubeconfig, self.namespace = kubeconfig, namespace

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip

    def refused(self, *args: str, stdin: str | None = None) -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode != 0, f"kubectl {' '.join(args)} was allowed: {done.stdout}"
        return done.stderr

    def create(self, manifest: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.run("create", "-f", "-", stdin=json.dumps(manifest))


@pytest.fixture(scope="module")
def tenants(labs_module: Labs) -> Iterator[tuple[Learner, str]]:
    """Two labs: the learner of the first, and the namespace of the second (another tenant)."""
    mine, theirs = unique("tenant-a"), unique("tenant-b")
    for name in (mine, theirs):
        labs_module.create(name, lab="light")
    for name in (mine, theirs):
        wait_ready(labs_module, name, timeout=120)
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = learner_kubeconfig(mine, Path(tmp))
        yield Learner(kubeconfig, f"lab-{mine}"), f"lab-{theirs}"


def pod(name: str, **spec: Any) -> dict[str, Any]:
    """A pod that passes Pod Security "restricted" except for what `spec` adds."""
    container = {
        "name": "c",
        "image": "localhost/roadlab/web:0.1.0",
        "args": ["serve"],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    container_overrides = spec.pop("container", {})
    security = container_overrides.pop("securityContext", {})
    container["securityContext"].update(security)  # type: ignore[union-attr]
    container.update(container_overrides)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], **spec},
    }


def assert_pod_refused(learner: Learner, manifest: dict[str, Any], reason: str) -> None:
    done = learner.create(manifest)
    assert done.returncode != 0, f"the pod was admitted: {done.stdout}"
    assert "violates PodSecurity" in done.stderr and reason in done.stderr, done.stderr


def test_the_baseline_pod_is_admitted(tenants: tuple[Learner, str]) -> None:
    """Control: the checks below fail for their one deviation, not for anything else."""
    learner, _ = tenants
    done = learner.create(pod("control"))
    assert done.returncode == 0, done.stderr
    learner.run("delete", "pod", "control", "--wait=false")


@pytest.mark.parametrize(
    ("verb", "resource"),
    [
        ("list", "nodes"),
        ("list", "namespaces"),
        ("list", "persistentvolumes"),
        ("list", "clusterroles"),
        ("list", "clusterrolebindings"),
        ("list", "customresourcedefinitions"),
        ("list", "storageclasses"),
        ("list", "validatingadmissionpolicies"),
        ("create", "namespaces"),
        ("list", "labs.roadlab.dev"),
    ],
)
def test_block_access_to_cluster_resources(
    tenants: tuple[Learner, str], verb: str, resource: str
) -> None:
    """MTB-PL1-CC-CPI-1: tenants cannot see or change cluster-wide resources."""
    learner, _ = tenants
    assert learner.run("auth", "can-i", verb, resource).stdout.strip() == "no"
    if verb == "list":
        assert "forbidden" in learner.refused("get", resource)


@pytest.mark.parametrize("resource", ["pods", "secrets", "configmaps", "services", "roles"])
def test_block_access_to_other_tenant_resources(
    tenants: tuple[Learner, str], resource: str
) -> None:
    """MTB-PL1-BC-TI-1 (block access to other tenant resources)."""
    learner, other = tenants
    assert "forbidden" in learner.refused("-n", other, "get", resource)
    assert learner.run("-n", other, "auth", "can-i", "create", resource).stdout.strip() == "no"


@pytest.mark.parametrize(
    ("resource", "verbs"),
    [
        ("resourcequotas", ("create", "update", "patch", "delete")),
        ("limitranges", ("create", "update", "patch", "delete")),
        ("networkpolicies", ("create", "update", "patch", "delete")),
        ("roles", ("create", "update", "patch", "delete", "bind", "escalate")),
        ("rolebindings", ("create", "update", "patch", "delete")),
    ],
)
def test_block_modification_of_guardrails(
    tenants: tuple[Learner, str], resource: str, verbs: tuple[str, ...]
) -> None:
    """MTB-PL1-CC-TI-2 (block modification of resource quotas), and the other fences."""
    learner, _ = tenants
    for verb in verbs:
        answer = learner.run("auth", "can-i", verb, resource).stdout.strip()
        assert answer == "no", f"learner can {verb} {resource}"


def test_require_resource_quotas(tenants: tuple[Learner, str]) -> None:
    """MTB-PL1-CC-FNS-1: the tenant namespace has a ResourceQuota on CPU and memory."""
    learner, _ = tenants
    quotas = json.loads(learner.run("get", "resourcequota", "-o", "json").stdout)["items"]
    hard = quotas[0]["spec"]["hard"]
    for key in ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "pods"):
        assert key in hard, hard


def test_block_privileged_containers(tenants: tuple[Learner, str]) -> None:
    """MTB-PL1-BC-CPI-5."""
    # (privileged implies privilege escalation: the API refuses one without the other)
    security = {"privileged": True, "allowPrivilegeEscalation": True}
    manifest = pod("privileged", container={"securityContext": security})
    assert_pod_refused(tenants[0], manifest, "privileged")


def test_block_add_capabilities(tenants: tuple[Learner, str]) -> None:
    """MTB-PL1-BC-CPI-3."""
    capabilities = {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    manifest = pod("caps", container={"securityContext": {"capabilities": capabilities}})
    assert_pod_refused(tenants[0], manifest, "NET_ADMIN")


def test_require_run_as_non_root(tenants: tuple[Learner, str]) -> None:
    """MTB-PL1-BC-CPI-6."""
    manifest = pod("root", container={"securityContext": {"runAsNonRoot": False, "runAsUser": 0}})
    assert_pod_refused(tenants[0], manifest, "runAsNonRoot")


def test_block_privilege_escalation(tenants: tuple[Learner, str]) -> None:
    """MTB-PL1-BC-CPI-8."""
    manifest = pod("escalate", container={"securityContext": {"allowPrivilegeEscalation": True}})
    assert_pod_refused(tenants[0], manifest, "allowPrivilegeEscalation")


@pytest.mark.parametrize("field", ["hostNetwork", "hostPID", "hostIPC"])
def test_block_host_namespaces(tenants: tuple[Learner, str], field: str) -> None:
    """MTB-PL1-BC-HI-1 (host networking, PID and IPC)."""
    assert_pod_refused(tenants[0], pod(field.lower(), **{field: True}), field)


def test_block_host_ports(tenants: tuple[Learner, str]) -> None:
    """MTB-PL1-BC-HI-1 (host ports)."""
    ports = [{"containerPort": 8080, "hostPort": 8080}]
    assert_pod_refused(tenants[0], pod("hostport", container={"ports": ports}), "hostPort")


def test_block_host_path_volumes(tenants: tuple[Learner, str]) -> None:
    """MTB-PL1-BC-HI-1 (hostPath volumes)."""
    volumes = [{"name": "root", "hostPath": {"path": "/"}}]
    assert_pod_refused(tenants[0], pod("hostpath", volumes=volumes), "hostPath")


@pytest.mark.parametrize("service_type", ["NodePort", "LoadBalancer"])
def test_block_node_port_services(tenants: tuple[Learner, str], service_type: str) -> None:
    """MTB-PL1-BC-HI-2 (NodePort); LoadBalancer Services open node ports too."""
    learner, _ = tenants
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service_type.lower()},
        "spec": {"type": service_type, "selector": {"a": "b"}, "ports": [{"port": 80}]},
    }
    done = learner.create(service)
    assert done.returncode != 0, f"a {service_type} Service was admitted"
    assert "are ClusterIP" in done.stderr, done.stderr


def test_block_external_ips(tenants: tuple[Learner, str]) -> None:
    """CVE-2020-8554: a Service's externalIPs could capture other tenants' traffic."""
    learner, _ = tenants
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "external"},
        "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}], "externalIPs": ["10.0.0.1"]},
    }
    done = learner.create(service)
    assert done.returncode != 0 and "externalIPs" in done.stderr, done.stderr


def test_learner_cannot_relabel_their_namespace(tenants: tuple[Learner, str]) -> None:
    """A lab without learner labels grants no right over the Namespace at all."""
    learner, _ = tenants
    refused = learner.refused(
        "label", "namespace", learner.namespace, "pod-security.kubernetes.io/enforce=privileged",
        "--overwrite",
    )  # fmt: skip
    assert "forbidden" in refused
