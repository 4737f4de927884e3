"""Tenant isolation on the network: what a pod in a lab can and cannot reach.

The isolation suite's other half (test_isolation.py) is about the API. Here a learner runs
a client pod in their own lab, with their own kubeconfig, and tries another lab's pod and
Service, and the operator's namespace (the warm checker that runs every short check). The
lab's NetworkPolicies (default deny; allow the same namespace and the operator's) and the
chart's policy on the operator's namespace (closed to labs) are enforced by the cluster's
CNI: kube-router in firewall-only mode on the local cluster, kindnet on kind. Without
enforcement the refusals below fail: every lab could reach every other.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.stream import stream

from .operator_fixtures import OPERATOR_NAMESPACE, Labs, learner_kubeconfig
from .test_isolation import Learner, pod
from .test_operator import unique, wait_ready
from .waiting import wait_until

SERVER, CLIENT = "net-server", "net-client"
ANSWER = "hello from"  # what `web serve` answers on /
WEB = "/web"  # the web image's one binary (FROM scratch: no PATH to find it on)
# How Go's net/http says a connection failed: refused (a REJECT), or no answer (a DROP).
CONNECTION_FAILED = ("connect: connection refused", "Client.Timeout exceeded", "i/o timeout")
WARM_CHECKER = "roadlab-checker"  # the chart's warm checker: Deployment and Service


def server_objects() -> list[dict[str, Any]]:
    """A web server pod and its Service (port 80), as a learner would make them."""
    server = pod(SERVER)
    server["metadata"]["labels"] = {"app": SERVER}
    server["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVER},
        "spec": {"selector": {"app": SERVER}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    return [server, service]


@dataclass(frozen=True)
class Network:
    learner: Learner  # of lab A, where the client pod runs
    other_namespace: str  # lab B's
    own_server_ip: str
    other_server_ip: str

    def get(self, url: str) -> tuple[bool, str]:
        """`web get URL` from the learner's client pod: (answered 2xx, what it printed)."""
        done = self.learner.run("exec", CLIENT, "--", WEB, "get", url)
        return done.returncode == 0, (done.stdout + done.stderr).strip()

    def assert_reaches(self, url: str) -> None:
        ok, output = self.get(url)
        assert ok and ANSWER in output, f"{url} should answer from lab A's client: {output}"

    def assert_refused(self, url: str) -> None:
        ok, output = self.get(url)
        assert not ok, f"{url} answered a pod in another lab: {output!r}"
        # The connection itself failed, not the exec, DNS or an HTTP request that got through.
        assert any(failure in output for failure in CONNECTION_FAILED), output


def pod_ready(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    conditions = core.read_namespaced_pod(name, namespace).status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def exec_in_pod(core: client.CoreV1Api, namespace: str, name: str, *command: str) -> str:
    """What COMMAND printed (stdout and stderr) in the pod, run as the admin."""
    output: str = stream(
        core.connect_get_namespaced_pod_exec, name, namespace, command=list(command),
        stderr=True, stdout=True, stdin=False, tty=False,
    )  # fmt: skip
    return output


def pod_ip(core: client.CoreV1Api, namespace: str, name: str) -> str:
    ip = core.read_namespaced_pod(name, namespace).status.pod_ip
    assert ip, f"pod {namespace}/{name} has no IP"
    return str(ip)


@pytest.fixture(scope="module")
def network(labs_module: Labs, core: client.CoreV1Api) -> Iterator[Network]:
    mine, theirs = unique("net-a"), unique("net-b")
    for name in (mine, theirs):
        labs_module.create(name, lab="light")
    for name in (mine, theirs):
        wait_ready(labs_module, name, timeout=120)
    own_ns, other_ns = f"lab-{mine}", f"lab-{theirs}"
    # The other tenant's server first, so its firewall is in place before the client runs.
    for manifest in server_objects():
        if manifest["kind"] == "Pod":
            core.create_namespaced_pod(other_ns, manifest)
        else:
            core.create_namespaced_service(other_ns, manifest)
    with tempfile.TemporaryDirectory() as tmp:
        learner = Learner(learner_kubeconfig(mine, Path(tmp)), own_ns)
        client_pod = pod(CLIENT, container={"args": ["sleep", "3600"]})
        for manifest in [*server_objects(), client_pod]:
            done = learner.create(manifest)
            assert done.returncode == 0, done.stderr
        waited = learner.run(
            "wait", "--for=condition=Ready", "--timeout=120s", "pod", SERVER, CLIENT
        )
        assert waited.returncode == 0, waited.stderr
        wait_until(lambda: pod_ready(core, other_ns, SERVER), f"{other_ns}/{SERVER} Ready")
        yield Network(
            learner, other_ns, pod_ip(core, own_ns, SERVER), pod_ip(core, other_ns, SERVER)
        )


def test_traffic_inside_the_lab_is_allowed(network: Network) -> None:
    """Control: the lab's own Service (by its DNS name) and pod answer the client."""
    network.assert_reaches(f"http://{SERVER}/")
    network.assert_reaches(f"http://{network.own_server_ip}:8080/")


def test_another_labs_pod_is_refused(network: Network) -> None:
    network.assert_refused(f"http://{network.other_server_ip}:8080/")


def test_another_labs_service_is_refused_though_its_name_resolves(network: Network) -> None:
    """DNS still works across namespaces (the name resolves); the connection does not."""
    network.assert_refused(f"http://{SERVER}.{network.other_namespace}.svc.cluster.local/")


def test_the_operators_namespace_is_refused(network: Network, core: client.CoreV1Api) -> None:
    """The warm checker (every short check runs in it) cannot be reached from a lab: by its
    Service nor by its pod's IP."""
    network.assert_refused(
        f"http://{WARM_CHECKER}.{OPERATOR_NAMESPACE}.svc.cluster.local:8080/healthz"
    )
    checker_ip = pod_ip(core, OPERATOR_NAMESPACE, warm_checker_pod(core))
    network.assert_refused(f"http://{checker_ip}:8080/healthz")


def warm_checker_pod(core: client.CoreV1Api) -> str:
    pods = core.list_namespaced_pod(
        OPERATOR_NAMESPACE, label_selector=f"app.kubernetes.io/name={WARM_CHECKER}"
    ).items
    running = [p.metadata.name for p in pods if p.status.phase == "Running"]
    assert running, "the warm checker is not running"
    return str(running[0])


def test_the_checker_still_reaches_the_lab(network: Network, core: client.CoreV1Api) -> None:
    """The other direction stays open: the warm checker, from the operator's namespace, gets
    the lab's Service answer (what every http probe of a check does)."""
    url = f"http://{SERVER}.{network.learner.namespace}.svc.cluster.local/"
    fetch = (
        f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    )
    output = exec_in_pod(core, OPERATOR_NAMESPACE, warm_checker_pod(core), "python3", "-c", fetch)
    assert ANSWER in output, output


def test_the_learner_cannot_open_their_lab_with_a_policy(network: Network) -> None:
    """The fences cannot be loosened from inside: NetworkPolicies are read-only to learners."""
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all"},
        "spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]},
    }
    done = network.learner.create(policy)
    assert done.returncode != 0 and "forbidden" in done.stderr, done.stderr


def test_a_platform_allowance_opens_one_port_of_one_app_to_flux_only(
    network: Network, labs_module: Labs, core: client.CoreV1Api
) -> None:
    """The gitops lab lets Flux's source-controller (namespace flux-system, pods labelled
    app=source-controller) fetch from its Git server, port 8080 only (environment.ingressFrom).
    That opens nothing else: not to another lab, not to another pod of flux-system."""
    name = unique("net-git")
    labs_module.create(name, lab="gitops")
    wait_ready(labs_module, name, timeout=180)
    namespace = f"lab-{name}"
    wait_until(
        lambda: any(
            pod_ready(core, namespace, p.metadata.name)
            for p in core.list_namespaced_pod(namespace, label_selector="app=git").items
        ),
        f"{namespace}'s Git server Ready",
        timeout=120,
    )
    git_url = f"http://git.{namespace}.svc.cluster.local/lab.git/info/refs"
    network.assert_refused(git_url)
    # A pod of flux-system that is not source-controller (made here by the admin).
    outsider = pod(unique("not-source-controller"), container={"args": ["sleep", "600"]})
    core.create_namespaced_pod("flux-system", outsider)
    outsider_name = outsider["metadata"]["name"]
    try:
        wait_until(lambda: pod_ready(core, "flux-system", outsider_name), "the outsider Ready")
        output = exec_in_pod(core, "flux-system", outsider_name, WEB, "get", git_url)
        assert any(failure in output for failure in CONNECTION_FAILED), output
        # Control: labelled as source-controller, the same pod is let in (the selector is
        # what refused it, not the route).
        core.patch_namespaced_pod(
            outsider_name, "flux-system", {"metadata": {"labels": {"app": "source-controller"}}}
        )
        wait_until(
            lambda: (
                "git-upload-pack"
                in exec_in_pod(
                    core,
                    "flux-system",
                    outsider_name,
                    WEB,
                    "get",
                    git_url + "?service=git-upload-pack",
                )
            ),
            "the Git server answering a pod labelled app=source-controller",
            timeout=30,
        )
    finally:
        core.delete_namespaced_pod(outsider_name, "flux-system", grace_period_seconds=0)
        labs_module.delete(name)
