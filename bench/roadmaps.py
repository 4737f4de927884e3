#!/usr/bin/env python3
"""Benchmark: a cohort enrolled at once, then many learners asking for their next milestone.

1. Enroll: a Cohort of --learners (default 200) on a two-milestone roadmap of the `light`
   test lab; time until every Enrollment has its map in status and the Cohort counts them
   all; the operator's API requests per Enrollment (its own roadlab_kube_api_requests_total);
   its RSS before and after.
2. Advance: --starts of them (default 50) ask for their next milestone at once (the
   annotation `kubectl lab next` sets); per request, the time until status.lastStart says
   Accepted, and until its Lab is Ready; the RSS and CPU meanwhile.
3. Record: those Labs completed by hand (status written as a check would), then deleted;
   the time until every one is recorded in its Enrollment and gone (the record finalizer).

The operator runs from source with the e2e catalog, as in the e2e suite. Prints figures and
ratios; asserts nothing.

    python3 bench/roadmaps.py [--learners 200] [--starts 50]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from kubernetes import client  # noqa: E402
from provisioning import kubeconfig, wait_all_ready  # noqa: E402
from scale import Sampler  # noqa: E402
from tests.e2e.operator_fixtures import (  # noqa: E402
    Labs,
    OperatorProcess,
    install_crd_and_prereqs,
    metric_sum,
)

from roadlab.api import naming  # noqa: E402
from roadlab.kube.client import load_api_client  # noqa: E402

G, V = naming.GROUP, naming.VERSION


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def enrollments_of(custom: client.CustomObjectsApi, cohort: str) -> list[dict[str, Any]]:
    listing = custom.list_cluster_custom_object(
        G, V, "enrollments", label_selector=f"{naming.LABEL_COHORT}={cohort}"
    )
    return list(listing["items"])


def wait_for(what: str, check: Any, timeout: float = 900) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)
    return time.monotonic() - started


def main() -> None:  # noqa: PLR0915 - three phases, printed as they go
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--starts", type=int, default=50)
    args = parser.parse_args()
    path = kubeconfig()
    install_crd_and_prereqs(path)
    api_client = load_api_client(path)
    custom = client.CustomObjectsApi(api_client)
    operator = OperatorProcess(
        path, Path(tempfile.mkdtemp()), ROADLAB_CATALOG=str(REPO / "tests" / "e2e" / "labs")
    )
    operator.start()
    assert operator.process is not None
    sampler = Sampler(operator.process.pid)
    run = f"rb{uuid.uuid4().hex[:4]}"
    roadmap, cohort = f"{run}-two", f"{run}-c"
    labs = Labs(api_client)
    try:
        custom.create_cluster_custom_object(G, V, "roadmaps", {
            "apiVersion": f"{G}/{V}", "kind": "Roadmap", "metadata": {"name": roadmap},
            "spec": {"title": "Bench", "milestones": [
                {"id": "one", "title": "One", "lab": "light"},
                {"id": "two", "title": "Two", "lab": "light", "requires": ["one"]},
            ]},
        })  # fmt: skip
        time.sleep(3)
        rss0, _ = sampler.window(0, time.monotonic())
        before = metric_sum(operator.metrics(), "roadlab_kube_api_requests_total")
        learners = [f"l{i:04d}" for i in range(args.learners)]
        started = time.monotonic()
        custom.create_cluster_custom_object(G, V, "cohorts", {
            "apiVersion": f"{G}/{V}", "kind": "Cohort", "metadata": {"name": cohort},
            "spec": {"roadmap": roadmap, "learners": learners},
        })  # fmt: skip

        def all_mapped() -> bool:
            found = enrollments_of(custom, cohort)
            return len(found) == args.learners and all(
                (e.get("status") or {}).get("milestones") for e in found
            )

        wait_for("every Enrollment mapped", all_mapped)
        mapped = time.monotonic() - started
        wait_for(
            "the Cohort's count",
            lambda: (custom.get_cluster_custom_object(G, V, "cohorts", cohort).get("status") or {})
            .get("enrolled") == args.learners,
        )  # fmt: skip
        after = metric_sum(operator.metrics(), "roadlab_kube_api_requests_total")
        rss1, cpu1 = sampler.window(started, time.monotonic())
        print(f"[enroll] {args.learners} learners: every Enrollment mapped in {mapped:.1f} s "
              f"({mapped / args.learners * 1000:.0f} ms each); API requests per Enrollment "
              f"{(after - before) / args.learners:.1f}; operator RSS {rss0:.0f} -> {rss1:.0f} MB, "
              f"CPU {cpu1:.0f} %")  # fmt: skip

        chosen = [e["metadata"]["name"] for e in enrollments_of(custom, cohort)][: args.starts]
        asked: dict[str, float] = {}

        def ask(name: str) -> None:
            asked[name] = time.monotonic()
            custom.patch_cluster_custom_object(G, V, "enrollments", name, {
                "metadata": {"annotations": {naming.ANNOTATION_START_REQUESTED: f"b-{run}"}}
            })  # fmt: skip

        phase = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(ask, chosen))
        accepted: dict[str, float] = {}
        while len(accepted) < len(chosen) and time.monotonic() - phase < 600:
            for e in enrollments_of(custom, cohort):
                name, last = e["metadata"]["name"], (e.get("status") or {}).get("lastStart") or {}
                if name in asked and name not in accepted and last.get("state") == "Accepted":
                    accepted[name] = time.monotonic() - asked[name]
            time.sleep(0.2)
        lab_names = [naming.milestone_lab_name(name, "one") for name in chosen]
        ready_after = wait_all_ready(labs, lab_names, timeout=900)
        all_ready = time.monotonic() - phase
        rss2, cpu2 = sampler.window(phase, time.monotonic())
        waits = list(accepted.values())
        print(f"[advance] {len(chosen)} start requests at once: Accepted p50 "
              f"{statistics.median(waits):.2f} s, p95 {percentile(waits, 0.95):.2f} s; every Lab "
              f"Ready {all_ready:.1f} s after the first request (waited {ready_after:.1f} s); "
              f"operator peak RSS {rss2:.0f} MB, CPU {cpu2:.0f} %")  # fmt: skip

        record_start = time.monotonic()
        completed = {"type": "Completed", "status": "True", "reason": "AllTasksPassed",
                     "message": "bench", "lastTransitionTime": "2026-12-02T00:00:00Z"}  # fmt: skip
        for lab in lab_names:
            labs.patch_status(
                lab, {"conditions": [completed], "completedAt": "2026-12-02T00:00:00Z"}
            )
            labs.delete(lab)

        def recorded() -> bool:
            done = [
                e for e in enrollments_of(custom, cohort)
                if any(m["id"] == "one" and m["state"] == "Completed"
                       for m in (e.get("status") or {}).get("milestones") or [])
            ]  # fmt: skip
            return len(done) >= len(chosen) and not any(labs.exists(lab) for lab in lab_names)

        wait_for("every milestone recorded and its Lab gone", recorded)
        print(
            f"[record] {len(chosen)} Labs completed and deleted: every one recorded, "
            f"certificate signed and Lab released in {time.monotonic() - record_start:.1f} s"
        )
    finally:
        sampler.stop()
        for plural, name in (("cohorts", cohort), ("roadmaps", roadmap)):
            with contextlib.suppress(client.ApiException):
                custom.delete_cluster_custom_object(G, V, plural, name)
        time.sleep(10)  # the Enrollments' Labs go through the operator (record finalizer)
        operator.stop()


if __name__ == "__main__":
    main()
