"""The model-api catalog lab on a real cluster: environment, wrong answer, solution, real load.

Needs the image localhost/roadlab/model-api:0.1.0 on the node (cluster/project-images.sh
builds and loads it). Each pod loads its ONNX model in well under a second, so the rollouts
take seconds; the load check (250 requests at concurrency 50 with the default parameters)
runs in a check Job of its own, since http_latency is a long probe. Phase timings print with
`pytest -s`.

The wrong answer (labs/model-api/solution/wrong/README.md) must give:
  deployed           Failed  "Deployment model-api: spec.replicas is 1, expected 3;
                              ...readinessProbe.httpGet.path is "/healthz", expected "/ready""
  replicas-ready     Failed  "Deployment model-api: 1 of 1 replicas ready, expected at least 3"
  disruption-budget  Failed  "PodDisruptionBudget model-api not found in namespace ..."
  service            Passed
  prediction         Passed
  under-load         not asserted (one replica may or may not make the default budget)
"""

from __future__ import annotations

import pytest

from .conftest import kubectl
from .lab_phases import Phases, check_now, check_solution, finished_run
from .operator_fixtures import Labs
from .test_lab_mlflow import image_on_node
from .test_operator import unique, wait_ready
from .test_validation import run_as_learner, tasks
from .waiting import wait_until

MODEL_API_IMAGE = "localhost/roadlab/model-api:0.1.0"
# The lab's own checkTimeoutSeconds (labs/model-api/lab.yaml). The check runs as a Job (the
# load probe is a long one): a pod's start, then seconds of load.
CHECK_TIMEOUT_SECONDS = 180
TASK_IDS = [
    "deployed",
    "replicas-ready",
    "disruption-budget",
    "service",
    "prediction",
    "under-load",
]
# The default parameters (labs/model-api/lab.yaml): requests = max(5 x concurrency, 200).
CONCURRENCY = 50
MAX_P95_MS = 300
REQUESTS = 250


def assert_initial_state(labs: Labs, name: str, namespace: str) -> None:
    """The run made right after provisioning: no service yet, each task says why."""
    before = tasks(labs, name)
    assert sorted(before) == sorted(TASK_IDS)
    assert before["deployed"]["state"] == "Failed"
    assert "Deployment model-api not found" in before["deployed"]["message"]
    assert before["deployed"]["hint"]
    assert before["replicas-ready"]["state"] == "Failed"
    assert before["disruption-budget"]["state"] == "Failed"
    assert "PodDisruptionBudget model-api not found" in before["disruption-budget"]["message"]
    assert before["service"]["state"] == "Failed"
    assert "Service model-api not found" in before["service"]["message"]
    for task in ("prediction", "under-load"):
        # No Service to call: the probe cannot reach the server (an Error, not a verdict).
        assert before[task]["state"] in {"Failed", "Error"}, before[task]
        assert "Service model-api port 80" in before[task]["message"], before[task]
        assert before[task]["hint"]
    assert labs.get(name)["status"]["progress"] == "0/6"
    # The environment: the assignment the learner may read.
    for key, value in (("concurrency", str(CONCURRENCY)), ("maxP95Ms", str(MAX_P95_MS))):
        assignment = kubectl(
            "-n", namespace, "get", "configmap", "assignment", "-o", f"jsonpath={{.data.{key}}}"
        )
        assert assignment.stdout == value, key


def assert_wrong_answer_rejected(labs: Labs, name: str, namespace: str) -> None:
    """The service runs and answers, but as one replica, ready on /healthz, with no PDB."""
    wrong = tasks(labs, name)
    assert wrong["deployed"]["state"] == "Failed", wrong["deployed"]
    message = wrong["deployed"]["message"]
    assert "spec.replicas is 1, expected 3" in message, message
    assert (
        'spec.template.spec.containers[name=model-api].readinessProbe.httpGet.path is "/healthz",'
        ' expected "/ready"'
    ) in message, message
    assert wrong["replicas-ready"]["state"] == "Failed", wrong["replicas-ready"]
    replicas_message = wrong["replicas-ready"]["message"]
    assert "Deployment model-api: 1 of 1 replicas ready, expected at least 3" in replicas_message
    assert wrong["disruption-budget"]["state"] == "Failed", wrong["disruption-budget"]
    pdb_message = wrong["disruption-budget"]["message"]
    assert f"PodDisruptionBudget model-api not found in namespace {namespace}" in pdb_message
    assert wrong["service"]["state"] == "Passed", wrong["service"]
    assert wrong["prediction"]["state"] == "Passed", wrong["prediction"]
    # One replica may or may not make the budget: not asserted, but measured either way.
    load = wrong["under-load"]
    assert load["state"] in {"Passed", "Failed"}, load
    assert load["evidence"]["concurrency"] == CONCURRENCY
    progress = labs.get(name)["status"]["progress"]
    assert progress in {"2/6", "3/6"}, progress
    print(f"[model-api lab] wrong answer, deployed: {message}")
    print(f"[model-api lab] wrong answer, replicas-ready: {replicas_message}")
    print(f"[model-api lab] wrong answer, disruption-budget: {pdb_message}")
    print(f"[model-api lab] wrong answer, under-load ({load['state']}): {load['message']}")


def test_model_api_lab_wrong_answer_then_solution_under_load(labs: Labs) -> None:
    if not image_on_node(MODEL_API_IMAGE):
        pytest.fail(f"{MODEL_API_IMAGE} is not on the node: build and load it (make images)")
    phases = Phases("model-api")
    name = unique("model-api")
    namespace = f"lab-{name}"
    labs.create(name, lab="model-api")  # default parameters: concurrency 50, maxP95Ms 300
    wait_ready(labs, name, timeout=180)
    phases.done("Lab Ready")

    wait_until(lambda: finished_run(labs, name), "the initial check", timeout=180)
    assert_initial_state(labs, name, namespace)
    phases.done("initial check")

    # A wrong answer: one replica, readiness on /healthz, no PodDisruptionBudget.
    run_as_learner(namespace, "labs/model-api/solution/wrong/apply.sh")
    phases.done("wrong answer applied (rolled out)")
    token = check_now(labs, name, "the wrong answer", timeout=CHECK_TIMEOUT_SECONDS + 60)
    assert_wrong_answer_rejected(labs, name, namespace)
    phases.done("wrong answer checked")

    # The reference solution, with the learner's own permissions: 3 replicas with requests,
    # limits and readiness on /ready, the PodDisruptionBudget and the Service.
    run_as_learner(namespace, "labs/model-api/solution/apply.sh")
    phases.done("solution applied (3 replicas rolled out)")
    token, status = check_solution(labs, name, timeout=CHECK_TIMEOUT_SECONDS + 60)
    assert status["progress"] == "6/6"
    assert status["lastCheck"]["token"] == token
    assert status["lastCheck"]["state"] == "Passed"
    done = tasks(labs, name)
    assert done["disruption-budget"]["evidence"]["status.expectedPods"] >= 3
    served = done["under-load"]
    assert served["state"] == "Passed"
    evidence = served["evidence"]
    assert evidence["requests"] == REQUESTS
    assert evidence["errors"] == 0
    assert evidence["concurrency"] == CONCURRENCY
    assert 0 < evidence["p50Ms"] <= evidence["p95Ms"] <= evidence["maxMs"]
    assert evidence["p95Ms"] <= MAX_P95_MS
    print(f"[model-api lab] under load: {served['message']} evidence={evidence}")
    phases.done("solution checked: Completed")
