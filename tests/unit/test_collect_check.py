"""check_runs.collect_check: which finished check Jobs may write a Lab's results.

The Kubernetes API is replaced by a small in-memory stand-in for the three reads and the
one write that collect_check makes; what it decides is the subject here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from roadlab.catalog.loader import load_catalog
from roadlab.controller import check_runs
from roadlab.controller.settings import CheckSettings

REPO = Path(__file__).resolve().parents[2]

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
SETTINGS = CheckSettings(operator_namespace="roadlab-system", checker_image="img")
RESULTS = json.dumps(
    {"version": 1, "results": [
        {"id": "scale-web", "state": "Passed", "message": "ok"},
        {"id": "configmap-answer", "state": "Failed", "message": "no"},
    ]}
)  # fmt: skip


class LabStore:
    """The Lab, the Job's termination message, and the status patches written."""

    def __init__(self, last_check: dict[str, Any] | None) -> None:
        status: dict[str, Any] = {
            "namespace": "lab-a",
            "conditions": [],
            "tasks": [
                {"id": "scale-web", "state": "Pending"},
                {"id": "configmap-answer", "state": "Pending"},
            ],
        }
        if last_check:
            status["lastCheck"] = last_check
        self.lab = {
            "apiVersion": "roadlab.dev/v1alpha1", "kind": "Lab",
            "metadata": {"name": "a", "uid": "u", "generation": 1, "resourceVersion": "7"},
            "spec": {"lab": "smoke", "learner": "alice"}, "status": status,
        }  # fmt: skip
        self.patches: list[dict[str, Any]] = []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        return self.lab if kind == "Lab" else None

    def termination_message(self, namespace: str, job: str, container: str) -> str:
        return RESULTS

    def patch_lab_status(self, name: str, status: dict[str, Any], version: str | None) -> None:
        self.patches.append(status)


def finished_job(name: str, token: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"roadlab.dev/lab": "a"},
            "annotations": {"roadlab.dev/check-token": token},
        },
        "spec": {},
        "status": {"conditions": [{"type": "Complete", "status": "True"}]},
    }


def collect(store: LabStore, job: dict[str, Any]) -> check_runs.CheckCollected | None:
    catalog = load_catalog(REPO / "labs")
    return check_runs.collect_check(store, catalog, job, NOW, SETTINGS)  # type: ignore[arg-type]


RUNNING = {"token": "t2", "job": "check-a-2", "requestedAt": "2026-11-22T02:59:00Z",
           "state": "Running"}  # fmt: skip


def test_the_current_run_is_recorded_once() -> None:
    store = LabStore(RUNNING)
    collected = collect(store, finished_job("check-a-2", "t2"))
    assert collected is not None and collected.state == "Failed"
    (patch,) = store.patches
    assert patch["lastCheck"]["token"] == "t2"
    assert patch["lastCheck"]["finishedAt"]
    assert patch["progress"] == "1/2"
    # The Job's events repeat: once recorded, nothing more is written.
    store.lab["status"]["lastCheck"] = patch["lastCheck"]
    assert collect(store, finished_job("check-a-2", "t2")) is None
    assert len(store.patches) == 1


def test_an_older_job_never_overwrites_a_newer_run() -> None:
    store = LabStore(RUNNING)
    assert collect(store, finished_job("check-a-1", "t1")) is None
    assert store.patches == []


@pytest.mark.parametrize("last_check", [None, {**RUNNING, "job": "check-a-9"}])
def test_a_job_whose_start_was_not_recorded_waits_for_its_request(
    last_check: dict[str, Any] | None,
) -> None:
    store = LabStore(last_check)
    assert collect(store, finished_job("check-a-2", "t2")) is None


def test_a_run_marked_running_over_a_finished_time_is_recorded() -> None:
    # A stale write can leave finishedAt from the results beside state Running; the run
    # must still be recorded rather than stay Running for ever.
    store = LabStore({**RUNNING, "finishedAt": "2026-11-22T02:59:30Z"})
    assert collect(store, finished_job("check-a-2", "t2")) is not None
    assert store.patches[0]["lastCheck"]["state"] == "Failed"


def check_pod(
    job: str, token: str, exit_code: int | None, message: str = RESULTS
) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {}}
    if exit_code is not None:
        state = {"terminated": {"exitCode": exit_code, "message": message}}
    return {
        "metadata": {
            "name": f"{job}-x1",
            "labels": {"roadlab.dev/lab": "a", "batch.kubernetes.io/job-name": job},
            "annotations": {"roadlab.dev/check-token": token},
        },
        "status": {"containerStatuses": [{"name": "check", "state": state}]},
    }


def test_the_run_is_recorded_from_its_pod_the_moment_the_checker_ends() -> None:
    store = LabStore(RUNNING)
    catalog = load_catalog(REPO / "labs")
    assert (
        check_runs.collect_check_pod(store, catalog, check_pod("check-a-2", "t2", None), NOW)
        is None
    )  # type: ignore[arg-type]
    collected = check_runs.collect_check_pod(store, catalog, check_pod("check-a-2", "t2", 0), NOW)  # type: ignore[arg-type]
    assert collected is not None
    assert store.patches[-1]["lastCheck"]["state"] == "Failed"
    assert store.patches[-1]["lastCheck"]["job"] == "check-a-2"
    # The Job's own event afterwards finds the run recorded.
    store.lab["status"]["lastCheck"] = store.patches[-1]["lastCheck"]
    assert collect(store, finished_job("check-a-2", "t2")) is None
    assert len(store.patches) == 1


def test_a_killed_or_failed_checker_is_left_to_its_job() -> None:
    store = LabStore(RUNNING)
    catalog = load_catalog(REPO / "labs")
    for exit_code in (1, 137):
        pod = check_pod("check-a-2", "t2", exit_code, message="")
        assert check_runs.collect_check_pod(store, catalog, pod, NOW) is None  # type: ignore[arg-type]
    assert store.patches == []
