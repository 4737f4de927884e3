#!/usr/bin/env python3
"""Benchmark: check request -> results in the Lab status, on both paths, against the floor
of a trivial Job; and a learner's fix -> the task Passed, with no check asked for.

Creates one smoke Lab (operator run from source), then N times: set the check-requested
annotation and time until status.lastCheck carries that token and a finishedAt. First with
the warm checker (the default for short checks), then with the operator restarted with
ROADLAB_WARM_CHECKER=false (check Jobs, recorded from their pod the moment it ends). The
floor: N times a trivial Job (the web image, `sleep 0`) from creation to Complete. Then, on
the warm path, M times: delete the ConfigMap a task checks, wait for the re-check to fail
it, create it again and time until the task is Passed. Prints p50 and p95 of each and the
ratios. Not a test: it asserts nothing.

    python3 bench/checks.py [--runs 20] [--fixes 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))
sys.path.insert(0, str(REPO))

from kubernetes import client  # noqa: E402
from tests.e2e.operator_fixtures import Labs, OperatorProcess, install_crd_and_prereqs  # noqa: E402

from bench.provisioning import kubeconfig  # noqa: E402
from roadlab.api.durations import parse_timestamp  # noqa: E402
from roadlab.kube.client import load_api_client  # noqa: E402

WEB_IMAGE = "localhost/roadlab/web:0.1.0"


def wait(predicate: object, timeout: float = 300, interval: float = 0.1) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(interval)
    raise SystemExit("timed out")


def trivial_job_seconds(batch: client.BatchV1Api, namespace: str) -> float:
    name = f"trivial-{uuid.uuid4().hex[:6]}"
    restricted = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 60,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "c",
                            "image": WEB_IMAGE,
                            "args": ["sleep", "0"],
                            "securityContext": restricted,
                        }
                    ],
                }
            },
        },
    }
    started = time.monotonic()
    batch.create_namespaced_job(namespace, job)
    wait(lambda: batch.read_namespaced_job_status(name, namespace).status.succeeded)
    return time.monotonic() - started


PHASES = (
    "Job created",
    "pod created",
    "checker container started",
    "checker container finished",
    "results in the Lab status",
)


def _at(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return parse_timestamp(str(value)) if value else None


def check_phases(
    labs: Labs, batch: client.BatchV1Api, name: str, requested_at: datetime
) -> dict[str, float]:
    """Seconds from the request to each step of the run that answered it."""
    last = (labs.get(name).get("status") or {}).get("lastCheck") or {}
    core = client.CoreV1Api(batch.api_client)
    moments: dict[str, datetime | None] = {"results in the Lab status": _at(last.get("finishedAt"))}
    job_name = last.get("job")
    if job_name:
        job = batch.read_namespaced_job(job_name, "roadlab-system")
        moments["Job created"] = job.metadata.creation_timestamp
        pods = core.list_namespaced_pod("roadlab-system", label_selector=f"job-name={job_name}")
        for pod in pods.items[:1]:
            moments["pod created"] = pod.metadata.creation_timestamp
            for status in pod.status.container_statuses or []:
                terminated = status.state.terminated
                if terminated:
                    moments["checker container started"] = terminated.started_at
                    moments["checker container finished"] = terminated.finished_at
    return {
        phase: (moment - requested_at).total_seconds()
        for phase, moment in moments.items()
        if moment is not None
    }


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def summary(label: str, values: list[float]) -> str:
    return (
        f"{label:40} p50 {percentile(values, 0.5):5.2f} s  p95 {percentile(values, 0.95):5.2f} s"
        f"  (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
    )


def timed_checks(
    labs: Labs, name: str, runs: int, after: Callable[[datetime], None] | None = None
) -> tuple[list[float], list[str]]:
    """Seconds from each check request to its results in the status, and the runs' jobs;
    after(request time) once each run is written."""
    seconds, jobs = [], []
    for _ in range(runs):
        token = f"bench-{time.time():.3f}"
        started = time.monotonic()
        requested_at = datetime.now(UTC)
        labs.request_check(name, token)

        def written(token: str = token) -> bool:
            last = (labs.get(name).get("status") or {}).get("lastCheck") or {}
            return last.get("token") == token and bool(last.get("finishedAt"))

        wait(written, interval=0.02)
        seconds.append(time.monotonic() - started)
        jobs.append(str(((labs.get(name).get("status") or {}).get("lastCheck") or {}).get("job")))
        if after is not None:
            after(requested_at)
    return seconds, jobs


def task_state(labs: Labs, name: str, task: str) -> str:
    tasks = (labs.get(name).get("status") or {}).get("tasks") or []
    return next((str(t.get("state")) for t in tasks if t.get("id") == task), "")


def timed_fixes(labs: Labs, core: client.CoreV1Api, name: str, fixes: int) -> list[float]:
    """Seconds from a learner's fix (the ConfigMap created) to the task Passed, unasked."""
    namespace, seconds = f"lab-{name}", []
    answer = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="answer"), data={"answer": "42"})
    for _ in range(fixes):
        if task_state(labs, name, "configmap-answer") == "Passed":
            core.delete_namespaced_config_map("answer", namespace)
            wait(lambda: task_state(labs, name, "configmap-answer") == "Failed", 30, 0.02)
        time.sleep(1.5)  # past the re-check's spacing, as a learner's pause would be
        started = time.monotonic()
        core.create_namespaced_config_map(namespace, answer)
        wait(lambda: task_state(labs, name, "configmap-answer") == "Passed", 30, 0.02)
        seconds.append(time.monotonic() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--fixes", type=int, default=5)
    args = parser.parse_args()
    path = kubeconfig()
    install_crd_and_prereqs(path)
    api = load_api_client(path)
    labs = Labs(api)
    batch = client.BatchV1Api(api)
    core = client.CoreV1Api(api)
    name = f"bench-check-{uuid.uuid4().hex[:5]}"
    results: dict[str, list[float]] = {}
    phases = []
    operator = OperatorProcess(path, Path(tempfile.mkdtemp()))
    operator.start()
    try:
        labs.create(name, learner="bench")
        wait(lambda: (labs.condition(name, "Ready") or {}).get("status") == "True")
        wait(lambda: (labs.get(name).get("status") or {}).get("lastCheck", {}).get("finishedAt"))
        results["warm checker: request -> status"], warm_jobs = timed_checks(labs, name, args.runs)
        results["fix -> task Passed (no request)"] = timed_fixes(labs, core, name, args.fixes)
        operator.stop()
        operator = OperatorProcess(path, Path(tempfile.mkdtemp()), ROADLAB_WARM_CHECKER="false")
        operator.start()
        results["check Job: request -> status"], job_jobs = timed_checks(
            labs, name, args.runs, lambda at: phases.append(check_phases(labs, batch, name, at))
        )
        results["trivial Job (the floor)"] = [
            trivial_job_seconds(batch, "roadlab-system") for _ in range(args.runs)
        ]
    finally:
        labs.cleanup()
        operator.stop()
    print(f"runs: {args.runs} per path, {args.fixes} fixes (local cluster, 2 cores)")
    for label, values in results.items():
        print(summary(label, values))
    by_job = sum(j.startswith("check-") for j in job_jobs)
    print(f"warm-path runs the warm checker answered: {warm_jobs.count('warm')}/{len(warm_jobs)}")
    print(f"Job-path runs made by a Job: {by_job}/{len(job_jobs)}")
    floor = percentile(results["trivial Job (the floor)"], 0.5)
    for label in ("warm checker: request -> status", "check Job: request -> status"):
        print(f"ratio to the floor, p50, {label.split(':')[0]}: "
              f"{percentile(results[label], 0.5) / floor:.2f}")  # fmt: skip
    print("where a check Job's time goes (median seconds after the request; API timestamps")
    print("are whole seconds):")
    for phase in PHASES:
        values = [p[phase] for p in phases if phase in p]
        if values:
            print(f"  {phase:34} {statistics.median(values):6.1f}")


if __name__ == "__main__":
    main()
