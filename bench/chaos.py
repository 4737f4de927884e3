#!/usr/bin/env python3
"""Chaos: SIGKILL the operator at random points while Labs provision and validate; then
restart the API server and etcd under it.

1. --labs Labs (default 50: 40 `light`, 10 `smoke` with check Jobs) are created at once;
   the operator is SIGKILLed --kills times (default 8) at random moments 0.2-4 s apart and
   restarted each time, while checks are requested on the smoke Labs. Then: every Lab must
   converge to Ready, every smoke Lab's last requested check must have its results, no two
   check Jobs may exist for one (Lab, request), and deleting the Labs must leave no
   namespace, RBAC object or Job behind.
2. etcd and kube-apiserver of the local cluster are SIGKILLed and started again
   (cluster/up.sh); the time from the API answering again to a new Lab being Ready shows
   how fast the operator recovers (goal: within 30 s).

Prints what it found; exits non-zero when a convergence property fails.

    python3 bench/chaos.py [--labs 50] [--kills 8] [--no-apiserver]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from kubernetes import client  # noqa: E402
from provisioning import kubeconfig, wait_all_ready  # noqa: E402
from tests.e2e.lifecycle import leftovers, operator_jobs  # noqa: E402
from tests.e2e.operator_fixtures import (  # noqa: E402
    ANNOTATION_CHECK_REQUESTED,
    OPERATOR_NAMESPACE,
    Labs,
    OperatorProcess,
    combined_catalog,
    install_crd_and_prereqs,
)
from tests.e2e.waiting import wait_until  # noqa: E402

from roadlab.kube.client import load_api_client  # noqa: E402

STATE_DIR = Path(os.environ.get("ROADLAB_STATE", "/var/lib/roadlab-cluster"))
SMOKE_SHARE = 5  # one Lab in five is a smoke Lab (check Jobs)


def source_operator(kubeconfig_path: str) -> OperatorProcess:
    """The operator from source, with the product's and the test labs' catalog."""
    catalog = combined_catalog(Path(tempfile.mkdtemp()))
    return OperatorProcess(kubeconfig_path, Path(tempfile.mkdtemp()), ROADLAB_CATALOG=str(catalog))


def kill_loop(
    operator: OperatorProcess, labs: Labs, smoke: list[str], kills: int
) -> dict[str, str]:
    """Kill and restart the operator `kills` times, requesting checks in between."""
    requested: dict[str, str] = {}
    rng = random.Random(7)
    for round_ in range(kills):
        time.sleep(rng.uniform(0.2, 4.0))
        for name in rng.sample(smoke, k=min(3, len(smoke))):
            requested[name] = labs.request_check(name)
        operator.kill()
        print(f"  kill {round_ + 1}/{kills}: SIGKILL, restart", flush=True)
        time.sleep(rng.uniform(0.0, 1.0))
        operator.start()
    return requested


def converged_checks(labs: Labs, requested: dict[str, str]) -> list[str]:
    """Smoke Labs whose last requested check has no results yet."""
    missing = []
    for name, token in requested.items():
        status = labs.get(name).get("status") or {}
        last = status.get("lastCheck") or {}
        tasks = status.get("tasks") or []
        if (
            last.get("token") != token
            or not last.get("finishedAt")
            or not tasks
            or any(t.get("state") not in ("Passed", "Failed") for t in tasks)
        ):
            missing.append(name)
    return missing


def describe_run(labs: Labs, batch: client.BatchV1Api, name: str, token: str) -> str:
    """What a Lab whose last check has no results shows: its status and its Jobs."""
    body = labs.get(name)
    annotation = (body["metadata"].get("annotations") or {}).get(ANNOTATION_CHECK_REQUESTED)
    jobs = batch.list_namespaced_job(OPERATOR_NAMESPACE, label_selector=f"roadlab.dev/lab={name}")
    seen = [
        (j.metadata.name, (j.metadata.annotations or {}).get("roadlab.dev/check-token"),
         j.status.succeeded, j.status.failed)
        for j in jobs.items
    ]  # fmt: skip
    last = (body.get("status") or {}).get("lastCheck")
    return f"  {name}: requested {token}; annotation {annotation}; lastCheck {last}; jobs {seen}"


def duplicate_jobs(batch: client.BatchV1Api, prefix: str) -> list[str]:
    jobs = batch.list_namespaced_job(OPERATOR_NAMESPACE, label_selector="roadlab.dev/lab").items
    keys = collections.Counter(
        (j.metadata.labels["roadlab.dev/lab"], (j.metadata.annotations or {}).get(
            "roadlab.dev/check-token"))
        for j in jobs
        if j.metadata.labels["roadlab.dev/lab"].startswith(prefix)
    )  # fmt: skip
    return [f"{lab}@{token} x{count}" for (lab, token), count in keys.items() if count > 1]


def operator_chaos(args: argparse.Namespace, api: client.ApiClient, path: str) -> bool:
    labs = Labs(api)
    batch = client.BatchV1Api(api)
    operator = source_operator(path)
    operator.start()
    prefix = f"chaos{uuid.uuid4().hex[:4]}"
    names = [f"{prefix}-{i}" for i in range(args.labs)]
    smoke = names[::SMOKE_SHARE]
    ok = True
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: labs.create(n, lab="smoke" if n in smoke else "light"), names))
        requested = kill_loop(operator, labs, smoke, args.kills)
        wait_all_ready(labs, names, timeout=600)
        print(f"[chaos] {args.labs} Labs Ready {time.monotonic() - started:.0f} s after "
              f"creation, through {args.kills} SIGKILLs")  # fmt: skip
        try:
            wait_until(lambda: not converged_checks(labs, requested), "checks", timeout=300)
        except AssertionError:
            ok = False
        missing = converged_checks(labs, requested)
        print(f"[chaos] last requested check with results: {len(requested) - len(missing)}/"
              f"{len(requested)} smoke Labs {missing or ''}")  # fmt: skip
        for name in missing:
            print(describe_run(labs, batch, name, requested[name]))
        duplicates = duplicate_jobs(batch, prefix)
        print(f"[chaos] duplicate check Jobs (same Lab and request): {len(duplicates)} "
              f"{duplicates or ''}")  # fmt: skip
        ok = ok and not duplicates
    finally:
        labs.cleanup()
        for name in names:
            wait_until(lambda n=name: not labs.exists(n), f"{name} deleted", timeout=300)
        operator.stop()
    core = client.CoreV1Api(api)
    wait_until(
        lambda: not [n for n in core.list_namespace().items
                     if n.metadata.name.startswith(f"lab-{prefix}")],
        "lab namespaces to go", timeout=600,
    )  # fmt: skip
    left, jobs = leftovers(api, prefix), operator_jobs(batch, prefix)
    print(f"[chaos] after deleting them: left behind {left or 'nothing'}; check Jobs {len(jobs)}")
    return ok and not left and not jobs


def pid_of(component: str) -> int:
    return int((STATE_DIR / "pids" / f"{component}.pid").read_text())


def apiserver_chaos(api: client.ApiClient, path: str) -> bool:
    labs = Labs(api)
    operator = source_operator(path)
    operator.start()
    name = f"apichaos{uuid.uuid4().hex[:4]}"
    try:
        labs.create(f"{name}-before", lab="light")
        wait_all_ready(labs, [f"{name}-before"], timeout=120)
        for component in ("kube-apiserver", "etcd"):
            os.kill(pid_of(component), signal.SIGKILL)
        print("[apiserver] etcd and kube-apiserver SIGKILLed", flush=True)
        time.sleep(5)
        began = time.monotonic()
        subprocess.run([str(REPO / "cluster" / "up.sh")], check=True, capture_output=True)
        back = time.monotonic()
        print(f"[apiserver] control plane restarted by cluster/up.sh in {back - began:.0f} s")
        labs.create(f"{name}-after", lab="light")
        wait_all_ready(labs, [f"{name}-after"], timeout=300)
        recovered = time.monotonic() - back
        alive = operator.alive()
        print(f"[apiserver] a new Lab Ready {recovered:.1f} s after the API answered again "
              f"(goal <= 30); operator process alive: {alive}")  # fmt: skip
        return recovered <= 30 and alive
    finally:
        labs.cleanup()
        operator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", type=int, default=50)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--no-apiserver", action="store_true", help="skip the API restart")
    args = parser.parse_args()
    path = kubeconfig()
    install_crd_and_prereqs(path)
    api = load_api_client(path)
    ok = operator_chaos(args, api, path)
    if not args.no_apiserver:
        ok = apiserver_chaos(api, path) and ok
    print("[chaos] all properties held" if ok else "[chaos] FAILED: see above")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
