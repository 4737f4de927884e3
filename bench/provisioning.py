#!/usr/bin/env python3
"""Benchmark: Lab created -> Ready, against creating the same objects directly.

For N in (1, 20, 100): create N Labs of the `light` test lab (tests/e2e/labs: a
ConfigMap, a Service, a Deployment scaled to zero, and the guardrails) at once and time
until every one is Ready
(the operator runs from source, as in the e2e suite). Then, in the same run, create the
same objects (as plan_lab renders them, in the same order) directly with one Python
client: the floor. Prints figures and the ratio. Not a test: it asserts nothing.

    python3 bench/provisioning.py [--sizes 1,20,100]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))
sys.path.insert(0, str(REPO))

from kubernetes import client  # noqa: E402
from tests.e2e.operator_fixtures import Labs, OperatorProcess, install_crd_and_prereqs  # noqa: E402

from roadlab.catalog.loader import load_catalog  # noqa: E402
from roadlab.controller.plan import plan_lab  # noqa: E402
from roadlab.kube.client import load_api_client  # noqa: E402
from roadlab.kube.operator_api import KubeApi  # noqa: E402


def kubeconfig() -> str:
    out = subprocess.run(
        [str(REPO / "cluster" / "ensure.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def wait_all_ready(labs: Labs, names: list[str], timeout: float = 900) -> float:
    started = time.monotonic()
    pending = set(names)
    while pending and time.monotonic() - started < timeout:
        items = labs.objects.list_cluster_custom_object("roadlab.dev", "v1alpha1", "labs")["items"]
        for item in items:
            for c in (item.get("status") or {}).get("conditions") or []:
                if c["type"] == "Ready" and c["status"] == "True":
                    pending.discard(item["metadata"]["name"])
        time.sleep(0.2)
    if pending:
        raise SystemExit(f"{len(pending)} labs not Ready after {timeout}s")
    return time.monotonic() - started


def wait_namespaces_gone(core: client.CoreV1Api, prefix: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [n for n in core.list_namespace().items if n.metadata.name.startswith(prefix)]:
            return
        time.sleep(1)


def direct_floor(api: KubeApi, count: int, run: str) -> float:
    """Create what `count` Labs would provision, directly, with one client (sequential)."""
    catalog = load_catalog(REPO / "tests" / "e2e" / "labs")
    now = datetime.now(UTC)
    plans = [
        plan_lab(
            f"{run}-d{i}",
            str(uuid.uuid4()),
            1,
            {"lab": "light", "learner": "bench", "ttl": "1h"},
            None,
            catalog,
            now,
            set(),
        )
        for i in range(count)
    ]
    started = time.monotonic()
    for plan in plans:
        for manifest in plan.objects:
            manifest["metadata"].pop("ownerReferences", None)  # no Lab owns these
            api.apply(manifest)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,20,100")
    args = parser.parse_args()
    path = kubeconfig()
    install_crd_and_prereqs(path)
    api_client = load_api_client(path)
    kube = KubeApi(api_client)
    core = client.CoreV1Api(api_client)
    operator = OperatorProcess(
        path, Path(tempfile.mkdtemp()), ROADLAB_CATALOG=str(REPO / "tests" / "e2e" / "labs")
    )
    operator.start()
    print(f"{'labs':>5} {'operator s':>11} {'per lab s':>10} {'direct s':>9} {'ratio':>6}")
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            run = f"bench{uuid.uuid4().hex[:5]}"
            labs = Labs(api_client)
            names = [f"{run}-{i}" for i in range(size)]
            started = time.monotonic()
            create = partial(labs.create, lab="light", learner="bench")
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(create, names))
            create_seconds = time.monotonic() - started
            ready_seconds = wait_all_ready(labs, names) + create_seconds
            direct_seconds = direct_floor(kube, size, run)
            print(
                f"{size:>5} {ready_seconds:>11.2f} {ready_seconds / size:>10.3f} "
                f"{direct_seconds:>9.2f} {ready_seconds / direct_seconds:>6.2f}",
                flush=True,
            )
            labs.cleanup()
            for i in range(size):
                kube.delete("v1", "Namespace", f"lab-{run}-d{i}")
            wait_namespaces_gone(core, f"lab-{run}")
    finally:
        operator.stop()
    print(
        "operator s: all N Labs created at once until every one is Ready;"
        " direct s: the same objects applied by one client, one after another."
    )


if __name__ == "__main__":
    main()
