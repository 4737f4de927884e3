"""The triton catalog lab on a real cluster: environment, wrong answer, solution, real serving.

Needs the image localhost/roadlab/triton:0.1.0 in the cluster (cluster/project-images.sh
builds and loads it). Triton loads the lab's Python model in a few seconds, so the whole
test takes about a minute or two; phase timings print with `pytest -s`.
"""

from __future__ import annotations

from .conftest import kubectl
from .lab_phases import Phases, check_now, check_solution, finished_run
from .operator_fixtures import Labs
from .test_operator import unique, wait_ready
from .test_validation import run_as_learner, tasks
from .waiting import wait_until

# The lab's own checkTimeoutSeconds (labs/triton/lab.yaml): the inference checks send 21
# requests each and are done in seconds once the server answers.
CHECK_TIMEOUT_SECONDS = 180
TASK_IDS = ["deployed", "rolled-out", "service", "model-ready-v1", "second-version"]


def assert_initial_state(labs: Labs, name: str, namespace: str) -> None:
    """The run made right after provisioning: no server yet, each task says why."""
    before = tasks(labs, name)
    assert sorted(before) == sorted(TASK_IDS)
    assert before["deployed"]["state"] == "Failed"
    assert "Deployment triton not found" in before["deployed"]["message"]
    assert before["deployed"]["hint"]
    assert before["rolled-out"]["state"] == "Failed"
    assert before["service"]["state"] == "Failed"
    assert "Service triton not found" in before["service"]["message"]
    for task in ("model-ready-v1", "second-version"):
        # No Service to call: the probe cannot reach the server (an Error, not a verdict).
        assert before[task]["state"] in {"Failed", "Error"}, before[task]
        assert "Service triton port 8000" in before[task]["message"], before[task]
        assert before[task]["hint"]
    assert labs.get(name)["status"]["progress"] == "0/5"
    # The environment: the model in a ConfigMap, and the assignment the learner may read.
    keys = kubectl(
        "-n", namespace, "get", "configmap", "model-repository", "-o", "jsonpath={.data}"
    ).stdout
    for key in ("linear-config.pbtxt", "linear-1-model.py", "linear-2-model.py"):
        assert key in keys
    config = kubectl(
        "-n",
        namespace,
        "get",
        "configmap",
        "model-repository",
        "-o",
        r"jsonpath={.data.linear-config\.pbtxt}",
    ).stdout
    assert 'backend: "python"' in config
    assert "version_policy" not in config  # serving version 1 is the learner's fix
    assignment = kubectl(
        "-n", namespace, "get", "configmap", "assignment", "-o", "jsonpath={.data.maxP95Ms}"
    )
    assert assignment.stdout == "500"


def assert_wrong_answer_rejected(labs: Labs, name: str) -> None:
    """Triton runs and is ready, but serves version 2 only and states no requests."""
    wrong = tasks(labs, name)
    assert wrong["deployed"]["state"] == "Failed"
    message = wrong["deployed"]["message"]
    assert (
        "spec.template.spec.containers[name=triton].resources.requests.cpu is not set" in message
    ), message
    assert wrong["rolled-out"]["state"] == "Passed", wrong["rolled-out"]
    assert wrong["service"]["state"] == "Passed", wrong["service"]
    assert wrong["model-ready-v1"]["state"] == "Failed", wrong["model-ready-v1"]["message"]
    v1_message = wrong["model-ready-v1"]["message"]
    assert "model linear version 1 is not ready" in v1_message, v1_message
    assert "/v2/models/linear/versions/1/ready returned 400, expected 200" in v1_message
    # Version 2 is what the default policy serves: that check passes, with its latency.
    assert wrong["second-version"]["state"] == "Passed", wrong["second-version"]
    assert "p95Ms" in wrong["second-version"]["evidence"]
    assert labs.get(name)["status"]["progress"] == "3/5"
    print(f"[triton lab] wrong answer, deployed: {message}")
    print(f"[triton lab] wrong answer, version 1: {v1_message}")


def test_triton_lab_wrong_answer_then_solution_serves_both_versions(labs: Labs) -> None:
    phases = Phases("triton")
    name = unique("triton")
    namespace = f"lab-{name}"
    labs.create(name, lab="triton")  # default parameters: maxP95Ms 500
    wait_ready(labs, name, timeout=180)
    phases.done("Lab Ready")

    wait_until(lambda: finished_run(labs, name), "the initial check", timeout=180)
    assert_initial_state(labs, name, namespace)
    phases.done("initial check")

    # A wrong answer: the default version policy (version 2 only), no resource requests.
    run_as_learner(namespace, "labs/triton/solution/wrong/apply.sh")
    phases.done("wrong answer applied (rolled out)")
    token = check_now(labs, name, "the wrong answer", timeout=CHECK_TIMEOUT_SECONDS + 60)
    assert_wrong_answer_rejected(labs, name)
    phases.done("wrong answer checked")

    # The reference solution, with the learner's own permissions: the version policy in the
    # ConfigMap, requests, and a restart of the running server so that it reads the change.
    run_as_learner(namespace, "labs/triton/solution/apply.sh")
    phases.done("solution applied (ConfigMap patched, server restarted and rolled out)")
    token, status = check_solution(labs, name, timeout=CHECK_TIMEOUT_SECONDS + 60)
    assert status["progress"] == "5/5"
    assert status["lastCheck"]["token"] == token
    assert status["lastCheck"]["state"] == "Passed"
    done = tasks(labs, name)
    assert done["model-ready-v1"]["evidence"]["outputsMatched"] == 1
    served = done["second-version"]
    assert served["state"] == "Passed"
    evidence = served["evidence"]
    assert evidence["outputsMatched"] == 1
    assert evidence["requests"] == 20
    assert evidence["failedRequests"] == 0
    assert evidence["p50Ms"] <= evidence["p95Ms"] <= 500
    print(f"[triton lab] serving: {served['message']} evidence={evidence}")
    phases.done("solution checked: Completed")
