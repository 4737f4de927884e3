#!/usr/bin/env python3
"""Benchmark: check request -> results in the Lab status, against a trivial Job.

Creates one smoke Lab (operator run from source), then N times: set the
check-requested annotation and time until status.lastCheck carries that token and a
finishedAt. The floor, in the same run: N times a trivial Job (the web image, `sleep 0`)
from creation to Complete. Prints both and the ratio. Not a test: it asserts nothing.

    python3 bench/checks.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
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


def wait(predicate: object, timeout: float = 300) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.1)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    path = kubeconfig()
    install_crd_and_prereqs(path)
    api = load_api_client(path)
    labs = Labs(api)
    batch = client.BatchV1Api(api)
    operator = OperatorProcess(path, Path(tempfile.mkdtemp()))
    operator.start()
    name = f"bench-check-{uuid.uuid4().hex[:5]}"
    try:
        labs.create(name, learner="bench")
        wait(lambda: (labs.condition(name, "Ready") or {}).get("status") == "True")
        wait(lambda: (labs.get(name).get("status") or {}).get("lastCheck", {}).get("finishedAt"))
        checks, jobs, phases = [], [], []
        for _ in range(args.runs):
            token = f"bench-{time.time():.3f}"
            started = time.monotonic()
            requested_at = datetime.now(UTC)
            labs.request_check(name, token)

            def written(token: str = token) -> bool:
                last = (labs.get(name).get("status") or {}).get("lastCheck") or {}
                return last.get("token") == token and bool(last.get("finishedAt"))

            wait(written)
            checks.append(time.monotonic() - started)
            phases.append(check_phases(labs, batch, name, requested_at))
            jobs.append(trivial_job_seconds(batch, "roadlab-system"))
    finally:
        labs.cleanup()
        operator.stop()
    check, floor = statistics.median(checks), statistics.median(jobs)
    print(f"runs: {args.runs}")
    for label, values in (("check request -> status written", checks), ("trivial Job", jobs)):
        median = statistics.median(values)
        print(f"{label:32} median {median:.2f} s (min {min(values):.2f}, max {max(values):.2f})")
    print(f"ratio: {check / floor:.2f}")
    print("where a check's time goes (median seconds after the request; API timestamps are")
    print("whole seconds):")
    for phase in PHASES:
        values = [p[phase] for p in phases if phase in p]
        if values:
            print(f"  {phase:34} {statistics.median(values):6.1f}")


if __name__ == "__main__":
    main()
