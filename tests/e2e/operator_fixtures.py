"""The operator under test, run from source as a subprocess against the e2e cluster."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

REPO = Path(__file__).resolve().parents[2]
LAB_GROUP, LAB_VERSION, LAB_PLURAL = "roadlab.dev", "v1alpha1", "labs"
OPERATOR_NAMESPACE = "roadlab-system"
ANNOTATION_CHECK_REQUESTED = f"{LAB_GROUP}/check-requested"


def install_crd_and_prereqs(kubeconfig: str) -> None:
    """What the chart installs beside the operator Deployment, for an operator run from
    source: the Lab CRD, the operator namespace, the chart's RBAC (the checker's identity
    among it) and its NetworkPolicy, rendered by Helm so the chart stays the one source."""

    # kubectl and helm as the cluster scripts build them, when they are not on PATH already.
    cache = Path(os.environ.get("ROADLAB_CACHE", Path.home() / ".cache" / "roadlab"))
    env = {**os.environ, "PATH": f"{os.environ['PATH']}{os.pathsep}{cache / 'bin'}"}

    def run(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            args, input=stdin, check=True, capture_output=True, text=True, env=env
        )
        return done.stdout

    kubectl = ("kubectl", "--kubeconfig", kubeconfig)
    # --force-conflicts: the fields may be held by another manager (Helm's, when `make demo`
    # installed the chart on this cluster before); this suite's copy is the one it tests.
    apply = ("apply", "--server-side", "--force-conflicts")
    for crd in ("lab", "roadmap", "enrollment", "cohort"):
        run(*kubectl, *apply, "-f", str(REPO / "crds" / f"{crd}.yaml"))
    run(
        *kubectl, "wait", "--for=condition=Established", "--timeout=60s",
        "crd/labs.roadlab.dev", "crd/roadmaps.roadlab.dev", "crd/enrollments.roadlab.dev",
        "crd/cohorts.roadlab.dev",
    )  # fmt: skip
    namespace = run(
        *kubectl, "create", "namespace", OPERATOR_NAMESPACE, "--dry-run=client", "-o", "yaml"
    )
    run(*kubectl, *apply, "-f", "-", stdin=namespace)
    rbac = run(
        "helm", "template", "roadlab", str(REPO / "charts" / "roadlab"),
        "--namespace", OPERATOR_NAMESPACE, "--show-only", "templates/rbac.yaml",
        "--show-only", "templates/lab-policies.yaml",
        "--show-only", "templates/network-policy.yaml",
    )  # fmt: skip
    run(*kubectl, *apply, "-f", "-", stdin=rbac)
    install_warm_checker(run, kubectl)


def install_warm_checker(run: Any, kubectl: tuple[str, ...]) -> None:
    """The chart's warm checker (Deployment, Service, key Secret), as the chart renders it.

    `helm template` cannot look the Secret up, so it makes a new key each time: an existing
    Secret is kept, or the running checker (which read its key at start) would refuse the
    operator's requests and every check would fall back to a Job.
    """
    rendered = run(
        "helm", "template", "roadlab", str(REPO / "charts" / "roadlab"),
        "--namespace", OPERATOR_NAMESPACE, "--show-only", "templates/checker.yaml",
    )  # fmt: skip
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    secrets = run(*kubectl, "get", "secret", "-n", OPERATOR_NAMESPACE, "-o", "name")
    if "secret/roadlab-checker-key" in secrets.split():
        documents = [d for d in documents if d["kind"] != "Secret"]
    apply = ("apply", "--server-side", "--force-conflicts")
    run(*kubectl, *apply, "-f", "-", stdin=yaml.safe_dump_all(documents))
    # A new pod: one left running by an earlier session still runs the image it started
    # with, under the same tag, and would check with the probes of before this build.
    run(*kubectl, "rollout", "restart", "-n", OPERATOR_NAMESPACE, "deployment/roadlab-checker")
    run(*kubectl, "rollout", "status", "-n", OPERATOR_NAMESPACE, "deployment/roadlab-checker",
        "--timeout=180s")  # fmt: skip


def uninstall_other_roadlabs(kubeconfig: str) -> list[str]:
    """Uninstall every Helm release of the roadlab chart (e.g. the one `make demo` left), so
    the operator under test is the only one acting on Labs. Its Labs are deleted first, while
    its operator still runs their finalizers. Returns what was uninstalled, to be reported."""
    cache = Path(os.environ.get("ROADLAB_CACHE", Path.home() / ".cache" / "roadlab"))
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "PATH": f"{cache / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    listed = subprocess.run(
        ["helm", "list", "--all-namespaces", "--all", "-o", "json"],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    releases = [r for r in json.loads(listed.stdout or "[]") if r["chart"].startswith("roadlab-")]
    if releases:
        subprocess.run(
            ["kubectl", "delete", "labs.roadlab.dev", "--all", "--wait", "--timeout=180s"],
            check=False, capture_output=True, text=True, env=env,
        )  # fmt: skip
    for release in releases:
        subprocess.run(
            ["helm", "uninstall", release["name"], "--namespace", release["namespace"], "--wait"],
            check=True, capture_output=True, text=True, env=env,
        )  # fmt: skip
    return [f"{r['namespace']}/{r['name']} ({r['chart']})" for r in releases]


def combined_catalog(directory: Path) -> Path:
    """The product's catalog plus the test-only labs of tests/e2e/labs, as symlinks."""
    for lab in [*(REPO / "labs").iterdir(), *(REPO / "tests" / "e2e" / "labs").iterdir()]:
        if lab.is_dir():
            (directory / lab.name).symlink_to(lab)
    return directory


def learner_kubeconfig(lab: str, directory: Path) -> Path:
    """The learner's kubeconfig of `lab`, as `kubectl lab kubeconfig` writes it."""
    kubeconfig = directory / "learner.kubeconfig"
    done = subprocess.run(
        [sys.executable, "-m", "roadlab.cli", "kubeconfig", lab],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    kubeconfig.write_text(done.stdout)
    return kubeconfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """`python -m roadlab.controller.main`, own ports and log file; killable, restartable."""

    def __init__(self, kubeconfig: str, log_dir: Path, **env: str) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_dir / "operator.log"
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.extra_env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "ROADLAB_METRICS_PORT": str(self.metrics_port),
            "ROADLAB_LIVENESS_PORT": str(self.liveness_port),
            # On the node, not in a pod: every lab pod could reach 0.0.0.0 here.
            "ROADLAB_LISTEN_ADDRESS": "127.0.0.1",
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "roadlab.controller.main"],
            env=env,
            stdout=log,
            stderr=log,
            cwd=REPO,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"operator exited: see {self.log_path}"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"operator did not become live; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies or the OOM killer strikes."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            return str(r.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        return metric_sum(self.metrics(), name, **labels)


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def lab_manifest(
    name: str, lab: str = "smoke", learner: str = "alice", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": f"{LAB_GROUP}/{LAB_VERSION}",
        "kind": "Lab",
        "metadata": {"name": name},
        "spec": {"lab": lab, "learner": learner, "ttl": "2h", **spec},
    }


class Labs:
    """Lab CRUD over the custom objects API, deleting what it created at the end."""

    def __init__(self, api: client.ApiClient) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.created: list[str] = []

    def create(self, name: str, **kwargs: Any) -> dict[str, Any]:
        body = lab_manifest(name, **kwargs)
        result = self.objects.create_cluster_custom_object(LAB_GROUP, LAB_VERSION, LAB_PLURAL, body)
        self.created.append(name)
        return dict(result)

    def get(self, name: str) -> dict[str, Any]:
        return dict(
            self.objects.get_cluster_custom_object(LAB_GROUP, LAB_VERSION, LAB_PLURAL, name)
        )

    def patch(self, name: str, body: dict[str, Any]) -> None:
        self.objects.patch_cluster_custom_object(LAB_GROUP, LAB_VERSION, LAB_PLURAL, name, body)

    def patch_status(self, name: str, status: dict[str, Any]) -> None:
        self.objects.patch_cluster_custom_object_status(
            LAB_GROUP, LAB_VERSION, LAB_PLURAL, name, {"status": status}
        )

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
        except client.ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def delete(self, name: str) -> None:
        try:
            self.objects.delete_cluster_custom_object(LAB_GROUP, LAB_VERSION, LAB_PLURAL, name)
        except client.ApiException as error:
            if error.status != 404:
                raise

    def request_check(self, name: str, token: str | None = None) -> str:
        """Ask for a check run, as `kubectl roadlab check` does; the run's token."""
        token = token or f"{time.time():.3f}"
        self.patch(name, {"metadata": {"annotations": {ANNOTATION_CHECK_REQUESTED: token}}})
        return token

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        for c in (self.get(name).get("status") or {}).get("conditions") or []:
            if c["type"] == type_:
                return dict(c)
        return None

    def cleanup(self) -> None:
        for name in self.created:
            self.delete(name)
