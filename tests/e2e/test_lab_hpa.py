"""The hpa catalog lab on a real cluster: environment, wrong answer, solution, real scaling.

Needs metrics-server (cluster/up.sh and cluster/kind.sh install it). Slow: the scaling
check generates load until the HPA adds a replica (about a minute), and the wrong answer's
scaling check runs its full duration before it fails. Phase timings print with `pytest -s`.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from .conftest import kubectl
from .lab_phases import wait_solution_completed
from .operator_fixtures import Labs
from .test_operator import unique, wait_ready
from .test_validation import last_check, request_check, run_as_learner, tasks
from .waiting import wait_until

# The scaling check loads the app for up to its durationSeconds (labs/hpa/lab.yaml); the
# run's deadline must leave room for it and the two quick checks.
CHECK_TIMEOUT_SECONDS = 300


class Phases:
    """Wall-clock time of each phase, printed as they end (visible with pytest -s)."""

    def __init__(self, label: str = "hpa lab") -> None:
        self.label = label
        self.started = self.last = time.monotonic()

    def done(self, what: str) -> None:
        now = time.monotonic()
        print(f"[{self.label}] {what}: {now - self.last:.1f} s (total {now - self.started:.1f} s)")
        self.last = now


def metrics_served() -> bool:
    result = kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", check=False)
    return result.returncode == 0 and '"usage"' in result.stdout


def finished_run(labs: Labs, name: str, token: str | None = None) -> dict[str, Any] | None:
    run = last_check(labs, name)
    if not run.get("finishedAt") or (token is not None and run.get("token") != token):
        return None
    return run


def test_hpa_lab_wrong_answer_then_solution_scales(labs: Labs) -> None:
    if not metrics_served():
        pytest.fail("the metrics API does not answer: install metrics-server (cluster/up.sh)")
    phases = Phases()
    name = unique("hpa")
    namespace = f"lab-{name}"
    labs.create(name, lab="hpa")  # the lab's own check timeout (checkTimeoutSeconds)
    wait_ready(labs, name, timeout=180)
    phases.done("Lab Ready")

    # The run made right after provisioning: nothing done yet, each task says why.
    wait_until(lambda: finished_run(labs, name), "the initial check", timeout=180)
    before = tasks(labs, name)
    assert before["cpu-requests"]["state"] == "Failed"
    assert "resources.requests.cpu is not set" in before["cpu-requests"]["message"]
    assert before["cpu-requests"]["hint"]
    assert before["hpa-configured"]["state"] == "Failed"
    assert "HorizontalPodAutoscaler" in before["hpa-configured"]["message"]
    assert "web" in before["hpa-configured"]["message"]
    assert before["hpa-scales"]["state"] == "Failed"
    assert labs.get(name)["status"]["progress"] == "0/3"
    # The environment's Deployment has no requests; the learner may read the assignment.
    assignment = kubectl(
        "-n",
        namespace,
        "get",
        "configmap",
        "assignment",
        "-o",
        "jsonpath={.data.minReplicas}/{.data.maxReplicas}/{.data.targetCPUUtilizationPercent}",
    )
    assert assignment.stdout == "1/4/50"
    phases.done("initial check")

    # A wrong HPA: it targets Deployment "webapp" and may never exceed 1 replica.
    run_as_learner(namespace, "labs/hpa/solution/wrong/apply.sh")
    token = request_check(name)
    wait_until(
        lambda: finished_run(labs, name, token),
        "the check of the wrong answer",
        timeout=CHECK_TIMEOUT_SECONDS + 60,
        interval=3,
    )
    wrong = tasks(labs, name)
    assert wrong["hpa-configured"]["state"] == "Failed"
    message = wrong["hpa-configured"]["message"]
    assert 'spec.scaleTargetRef.name is "webapp", expected "web"' in message, message
    assert "spec.maxReplicas is 1, expected 4" in message, message
    assert wrong["hpa-scales"]["state"] in {"Failed", "Error"}, wrong["hpa-scales"]
    print(f"[hpa lab] wrong answer: {message}")
    print(f"[hpa lab] wrong answer, scaling: {wrong['hpa-scales']['message']}")
    phases.done("wrong answer checked")

    # The reference solution, with the learner's own permissions.
    run_as_learner(namespace, "labs/hpa/solution/apply.sh")
    phases.done("solution applied (requests rolled out, HPA created)")
    token = request_check(name)
    status = wait_solution_completed(labs, name, token, timeout=CHECK_TIMEOUT_SECONDS + 60)
    assert status["progress"] == "3/3"
    assert status["lastCheck"]["token"] == token
    assert status["lastCheck"]["state"] == "Passed"
    scaled = tasks(labs, name)["hpa-scales"]
    assert scaled["state"] == "Passed"
    assert scaled["evidence"]["maxReplicas"] >= 2
    print(f"[hpa lab] scaling: {scaled['message']} evidence={scaled['evidence']}")
    phases.done("solution checked: Completed")
