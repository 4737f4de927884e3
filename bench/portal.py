#!/usr/bin/env python3
"""Benchmark: the learner portal under load, on the local cluster.

--labs smoke Labs (each with its workspace pod), --pages-per-lab open pages per Lab (one
SSE stream each, as the page opens: 25 x 8 = 200 by default) and --terminals busy
terminals (a shell printing a line every 20 ms). The portal is the chart's, reached through
`kubectl port-forward`; the operator runs from source. While they run: the portal pod's CPU
and memory from metrics-server, and, --samples times, a check requested from one Lab's
page until every open page of that Lab has the result (status change -> page). Prints
figures; asserts nothing.

    python3 bench/portal.py [--labs 25] [--pages-per-lab 8] [--terminals 20] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))
sys.path.insert(0, str(REPO))

from kubernetes import client  # noqa: E402
from tests.e2e.operator_fixtures import (  # noqa: E402
    OPERATOR_NAMESPACE,
    Labs,
    OperatorProcess,
    combined_catalog,
    free_port,
    install_crd_and_prereqs,
)

from bench.provisioning import kubeconfig, wait_all_ready  # noqa: E402
from roadlab.kube.client import load_api_client  # noqa: E402

TOOLBOX_IMAGE = "localhost/roadlab/toolbox:0.1.0"
CACHE_BIN = Path.home() / ".cache" / "roadlab" / "bin"
SIGN_IN_SPACING = 6.5  # the portal allows 10 sign-ins a minute per client address


def run(*args: str, stdin: str | None = None, path: str) -> str:
    env = {"KUBECONFIG": path, "PATH": f"{CACHE_BIN}:/usr/local/bin:/usr/bin:/bin"}
    return subprocess.run(
        args, input=stdin, check=True, capture_output=True, text=True, env=env
    ).stdout


def deploy_portal(path: str) -> tuple[str, subprocess.Popen[bytes]]:
    chart = str(REPO / "charts/roadlab")
    rendered = run("helm", "template", "roadlab", chart, "--namespace", OPERATOR_NAMESPACE,
                   "--show-only", "templates/portal.yaml", path=path)  # fmt: skip
    run("kubectl", "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=rendered,
        path=path)  # fmt: skip
    run("kubectl", "rollout", "status", "-n", OPERATOR_NAMESPACE, "deployment/roadlab-portal",
        "--timeout=180s", path=path)  # fmt: skip
    port = free_port()
    forward = subprocess.Popen(
        [str(CACHE_BIN / "kubectl"), "--kubeconfig", path, "port-forward", "-n",
         OPERATOR_NAMESPACE, "svc/roadlab-portal", f"{port}:8080"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if requests.get(f"{base}/healthz", timeout=2).ok:
                return base, forward
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit("the portal did not answer")


def sign_in(base: str, lab: str, path: str) -> tuple[requests.Session, str]:
    """A signed-in session of the Lab's page, and its CSRF token."""
    link = subprocess.run(
        [sys.executable, "-m", "roadlab.cli", "--kubeconfig", path, "url", lab, "--portal-url",
         base],
        check=True, capture_output=True, text=True, cwd=REPO,
    ).stdout.strip()  # fmt: skip
    session = requests.Session()
    page = session.get(link, timeout=20)
    page.raise_for_status()
    match = re.search(r'data-csrf="([^"]+)"', page.text)
    if match is None:
        raise SystemExit(f"no CSRF token on the page of {lab}")
    return session, match.group(1)


class Page(threading.Thread):
    """One open page's live status (SSE): the time each lastCheck token first arrived."""

    def __init__(self, base: str, lab: str, session: requests.Session) -> None:
        super().__init__(daemon=True)
        self.url, self.session, self.lab = f"{base}/labs/{lab}/events", session, lab
        self.seen: dict[str, float] = {}
        self.events = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with self.session.get(self.url, stream=True, timeout=(10, 120)) as stream:
            for line in stream.iter_lines(decode_unicode=True):
                if self.stop.is_set():
                    return
                if line and line.startswith("data:"):
                    self.events += 1
                    data: dict[str, Any] = json.loads(line[5:])
                    token = (data.get("lastCheck") or {}).get("token")
                    if token and data.get("lastCheck", {}).get("finishedAt"):
                        self.seen.setdefault(token, time.monotonic())


class Terminal(threading.Thread):
    """A busy terminal: a shell printing a line every 20 ms; counts the bytes it gets."""

    def __init__(self, base: str, lab: str, session: requests.Session, csrf: str) -> None:
        super().__init__(daemon=True)
        cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
        self.url = base.replace("http", "ws", 1) + f"/labs/{lab}/terminal?csrf={csrf}"
        self.headers = {"Cookie": cookie, "Origin": base}
        self.received = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with connect(self.url, additional_headers=self.headers, open_timeout=30) as socket:
            socket.send(b"while :; do date; sleep 0.02; done\r")
            while not self.stop.is_set():
                try:
                    message = socket.recv(timeout=1)
                except TimeoutError:
                    continue
                self.received += len(message)
            socket.send(b"\x03")


def portal_usage(api: client.ApiClient) -> tuple[float, float]:
    """(CPU millicores, memory MiB) of the portal pod, from metrics-server."""
    metrics = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", OPERATOR_NAMESPACE, "pods",
        label_selector="app.kubernetes.io/name=roadlab-portal",
    )  # fmt: skip
    usage = metrics["items"][0]["containers"][0]["usage"]
    cpu = usage["cpu"]
    millicores = float(cpu[:-1]) / 1e6 if cpu.endswith("n") else float(cpu.rstrip("m"))
    memory = usage["memory"]
    mib = float(memory[:-2]) / 1024 if memory.endswith("Ki") else float(memory[:-2])
    return millicores, mib


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def main() -> None:  # noqa: PLR0915 - one bench, in order
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", type=int, default=25)
    parser.add_argument("--pages-per-lab", type=int, default=8)
    parser.add_argument("--terminals", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()
    path = kubeconfig()
    install_crd_and_prereqs(path)
    api = load_api_client(path)
    labs = Labs(api)
    operator = OperatorProcess(
        path, Path(tempfile.mkdtemp()), ROADLAB_WORKSPACE_IMAGE=TOOLBOX_IMAGE,
        ROADLAB_CATALOG=str(combined_catalog(Path(tempfile.mkdtemp()))),
    )  # fmt: skip
    operator.start()
    base, forward = deploy_portal(path)
    run_id = uuid.uuid4().hex[:4]
    names = [f"bench-portal-{run_id}-{i}" for i in range(args.labs)]
    pages: list[Page] = []
    terminals: list[Terminal] = []
    try:
        for name in names:
            labs.create(name, learner="bench")
        wait_all_ready(labs, names)
        apps = client.AppsV1Api(api)
        for name in names:
            while not apps.read_namespaced_deployment(
                "workspace", f"lab-{name}"
            ).status.available_replicas:
                time.sleep(1)
        print(f"{args.labs} Labs Ready with their workspaces; signing in (10 a minute) ...")
        sessions = {}
        for name in names:
            sessions[name] = sign_in(base, name, path)
            time.sleep(SIGN_IN_SPACING)
        idle = portal_usage(api)
        for name in names:
            for _ in range(args.pages_per_lab):
                page = Page(base, name, sessions[name][0])
                page.start()
                pages.append(page)
        for name in names[: args.terminals]:
            terminal = Terminal(base, name, *sessions[name])
            terminal.start()
            terminals.append(terminal)
        time.sleep(10)
        latencies: list[float] = []
        usage: list[tuple[float, float]] = []
        started = time.monotonic()
        for index in range(args.samples):
            name = names[index % len(names)]
            session, csrf = sessions[name]
            asked = time.monotonic()
            token = session.post(
                f"{base}/labs/{name}/check", headers={"X-CSRF-Token": csrf, "Origin": base},
                timeout=20,
            ).json()["token"]  # fmt: skip
            mine = [p for p in pages if p.lab == name]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all(token in p.seen for p in mine):
                time.sleep(0.01)
            latencies += [p.seen[token] - asked for p in mine if token in p.seen]
            usage.append(portal_usage(api))
            time.sleep(max(0.0, args.seconds / args.samples - (time.monotonic() - asked)))
        elapsed = time.monotonic() - started
        received = sum(t.received for t in terminals)
        print(f"open pages (SSE streams): {len(pages)}, busy terminals: {len(terminals)}")
        print(f"portal before the load: CPU {idle[0]:.0f}m, memory {idle[1]:.0f} MiB")
        print(f"portal under the load: CPU mean {statistics.mean(u[0] for u in usage):.0f}m "
              f"(max {max(u[0] for u in usage):.0f}m), memory max {max(u[1] for u in usage):.0f}"
              " MiB (metrics-server)")  # fmt: skip
        print(
            f"terminal output relayed: {received / elapsed / 1024:.0f} KiB/s in all "
            f"({received / max(1, len(terminals)) / elapsed / 1024:.1f} KiB/s each)"
        )
        if latencies:
            print(f"check from a page -> result on every open page of its Lab: p50 "
                  f"{percentile(latencies, 0.5):.2f} s, p95 {percentile(latencies, 0.95):.2f} s, "
                  f"n={len(latencies)} of {args.samples * args.pages_per_lab}")  # fmt: skip
    finally:
        for worker in [*pages, *terminals]:
            worker.stop.set()
        labs.cleanup()
        forward.terminate()
        operator.stop()


if __name__ == "__main__":
    main()
