"""Create/validate/delete cycles and a census of what Roadlab left behind.

Shared by the leak test (a few cycles in CI) and bench/leaks.py (100 cycles, with the
operator's memory over the cycles).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client
from kubernetes.dynamic import DynamicClient

from .operator_fixtures import OPERATOR_NAMESPACE, Labs
from .waiting import wait_until

LAB_LABEL = "roadlab.dev/lab"
# What a Lab may create, by API: everything here must be gone once its Lab is deleted.
CENSUS_KINDS = (
    ("v1", "Namespace"),
    ("v1", "ServiceAccount"),
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("v1", "Pod"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
)


def census(api: client.ApiClient, label_selector: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, metadata) of every object of CENSUS_KINDS that the label selector matches."""
    dynamic = DynamicClient(api)
    for api_version, kind in CENSUS_KINDS:
        resource = dynamic.resources.get(api_version=api_version, kind=kind)
        for item in resource.get(label_selector=label_selector).to_dict().get("items") or []:
            yield kind, item["metadata"]


def leftovers(api: client.ApiClient, prefix: str) -> dict[str, list[str]]:
    """Objects labelled for a Lab whose name starts with prefix, by kind; plus namespaces
    found by name, in case a label was lost."""
    found: dict[str, list[str]] = {}
    for kind, meta in census(api, LAB_LABEL):
        if str(meta.get("labels", {}).get(LAB_LABEL, "")).startswith(prefix):
            where = f"{meta.get('namespace', '')}/{meta['name']}".lstrip("/")
            found.setdefault(kind, []).append(where)
    core = client.CoreV1Api(api)
    stray = [
        n.metadata.name
        for n in core.list_namespace().items
        if n.metadata.name.startswith(f"lab-{prefix}")
    ]
    if stray and "Namespace" not in found:
        found["Namespace"] = stray
    return found


def one_cycle(labs: Labs, core: client.CoreV1Api, name: str, lab: str = "smoke") -> float:
    """Create a Lab, wait for its first validation run, delete it, wait until it is all gone.
    Returns the cycle's seconds."""
    started = time.monotonic()
    labs.create(name, lab=lab)

    def checked() -> bool:
        status = labs.get(name).get("status") or {}
        return bool((status.get("lastCheck") or {}).get("finishedAt"))

    wait_until(checked, f"the first check of {name}", timeout=240, interval=1)
    labs.delete(name)

    def gone() -> bool:
        names = {n.metadata.name for n in core.list_namespace().items}
        return f"lab-{name}" not in names and not labs.exists(name)

    wait_until(gone, f"{name} and its namespace to go", timeout=240, interval=1)
    return time.monotonic() - started


def run_cycles(
    labs: Labs,
    core: client.CoreV1Api,
    prefix: str,
    cycles: int,
    *,
    parallel: int = 4,
    after_each: Callable[[int, float], Any] | None = None,
) -> list[float]:
    """`cycles` create/validate/delete cycles, `parallel` at a time; cycle seconds in order."""
    done: list[float] = []

    def cycle(index: int) -> float:
        seconds = one_cycle(labs, core, f"{prefix}-{index}")
        done.append(seconds)
        if after_each:
            after_each(len(done), seconds)
        return seconds

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(cycle, range(cycles)))


def operator_jobs(batch: client.BatchV1Api, prefix: str) -> list[str]:
    jobs = batch.list_namespaced_job(OPERATOR_NAMESPACE, label_selector=LAB_LABEL).items
    return [j.metadata.name for j in jobs if j.metadata.labels[LAB_LABEL].startswith(prefix)]
