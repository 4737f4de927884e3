"""The hpa catalog lab on a real cluster: environment, wrong answer, solution, real scaling.

Needs metrics-server (cluster/up.sh and cluster/kind.sh install it). Slow: the scaling
check generates load until the HPA adds a replica (about a minute), and the wrong answer's
scaling check runs its full duration before it fails. Phase timings print with `pytest -s`.
"""

from __future__ import annotations

import pytest

from .conftest import kubectl
from .lab_phases import Phases, check_now, check_solution, finished_run
from .operator_fixtures import Labs
from .test_operator import unique, wait_ready
from .test_validation import run_as_learner, tasks
from .waiting import wait_until

# The scaling check loads the app for up to its durationSeconds (labs/hpa/lab.yaml); the
# run's deadline must leave room for it and the two quick checks.
CHECK_TIMEOUT_SECONDS = 300


def metrics_served() -> bool:
    result = kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", check=False)
    return result.returncode == 0 and '"usage"' in result.stdout


def test_hpa_lab_wrong_answer_then_solution_scales(labs: Labs) -> None:
    if not metrics_served():
        pytest.fail("the metrics API does not answer: install metrics-server (cluster/up.sh)")
    phases = Phases("hpa")
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
    token = check_now(labs, name, "the wrong answer", timeout=CHECK_TIMEOUT_SECONDS + 60)
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
    token, status = check_solution(labs, name, timeout=CHECK_TIMEOUT_SECONDS + 60)
    assert status["progress"] == "3/3"
    assert status["lastCheck"]["token"] == token
    assert status["lastCheck"]["state"] == "Passed"
    scaled = tasks(labs, name)["hpa-scales"]
    assert scaled["state"] == "Passed"
    assert scaled["evidence"]["maxReplicas"] >= 2
    print(f"[hpa lab] scaling: {scaled['message']} evidence={scaled['evidence']}")
    phases.done("solution checked: Completed")
