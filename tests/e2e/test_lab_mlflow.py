"""The mlflow catalog lab on a real cluster: tracking server, wrong answer, solution.

Needs the image localhost/roadlab/mlflow:0.1.0 on the node (cluster/project-images.sh
builds and loads it). The tracking server takes 10-20 s to become ready; each training or
promotion Job imports MLflow for a few seconds. Phase timings print with `pytest -s`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import kubectl
from .lab_phases import Phases, check_now, check_solution, finished_run
from .operator_fixtures import Labs
from .test_operator import unique, wait_ready
from .test_validation import run_as_learner, tasks
from .waiting import wait_until

MLFLOW_IMAGE = "localhost/roadlab/mlflow:0.1.0"
# The lab's own checkTimeoutSeconds (the default): the MLflow checks are a few REST calls.
CHECK_TIMEOUT_SECONDS = 180
# Deterministic (a seeded dataset), as train.py logs them for the solution's alphas.
BEST_RMSE = "2.27833"  # alpha 10, version 2
WORST_RMSE = "3.13312"  # alpha 1000, version 3: the newest
MLFLOW_TASKS = ("experiment-runs", "registered-model", "champion")


def image_on_node(image: str) -> bool:
    """Whether a node reports the image (a node lists at most 50 images, largest first)."""
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    for node in nodes:
        images = node.get("status", {}).get("images") or []
        # An image whose tag moved to a newer build is listed with names: null.
        if len(images) >= 50 or any(image in (entry.get("names") or []) for entry in images):
            return True
    return False


def checked(labs: Labs, name: str, what: str) -> dict[str, dict[str, Any]]:
    """Request a check, wait for its run to finish, and return the tasks."""
    check_now(labs, name, what, timeout=CHECK_TIMEOUT_SECONDS + 60)
    return tasks(labs, name)


def assert_empty_server(found: dict[str, dict[str, Any]]) -> None:
    """The server is up and empty: each MLflow task says what is missing."""
    assert found["tracking-server"]["state"] == "Passed", found["tracking-server"]
    message = found["experiment-runs"]["message"]
    assert found["experiment-runs"]["state"] == "Failed", found["experiment-runs"]
    assert 'MLflow experiment "ridge-sweep" not found' in message, message
    assert 'mlflow.set_experiment("ridge-sweep")' in message, message
    message = found["registered-model"]["message"]
    assert found["registered-model"]["state"] == "Failed", found["registered-model"]
    assert 'registered model "ridge-regressor" not found' in message, message
    assert found["champion"]["state"] == "Failed", found["champion"]
    assert 'experiment "ridge-sweep" not found' in found["champion"]["message"]


def assert_wrong_champion(found: dict[str, dict[str, Any]]) -> str:
    """Training and registration pass; the alias on the newest (worst) version fails."""
    for task in ("tracking-server", "experiment-runs", "registered-model"):
        assert found[task]["state"] == "Passed", found[task]
    assert found["experiment-runs"]["evidence"]["runsWithMetric"] == 3
    assert found["registered-model"]["evidence"]["latestVersion"] == "3"
    champion = found["champion"]
    message = champion["message"]
    assert champion["state"] == "Failed", champion
    assert message.startswith('alias "champion" points to version 3 (run '), message
    assert f"rmse={WORST_RMSE}), but the best run of experiment" in message, message
    assert '"ridge-sweep" by rmse (min) is ' in message, message
    assert message.endswith(f"(rmse={BEST_RMSE})"), message
    assert champion["evidence"]["aliasVersion"] == "3"
    return str(message)


def test_mlflow_lab_wrong_answer_then_solution(labs: Labs) -> None:
    if not image_on_node(MLFLOW_IMAGE):
        pytest.fail(f"{MLFLOW_IMAGE} is not on the node: build and load it (make images)")
    phases = Phases("mlflow")
    name = unique("mlflow")
    namespace = f"lab-{name}"
    labs.create(name, lab="mlflow")
    wait_ready(labs, name, timeout=180)
    phases.done("Lab Ready")

    # The run made right after provisioning: nothing done yet. The server may still be
    # starting (its checks are then Errors: unreachable), but nothing passes but the server.
    wait_until(lambda: finished_run(labs, name), "the initial check", timeout=180)
    initial = tasks(labs, name)
    for task in MLFLOW_TASKS:
        assert initial[task]["state"] in {"Failed", "Error"}, initial[task]
        assert initial[task]["hint"], initial[task]
    assert labs.get(name)["status"]["progress"] in {"0/4", "1/4"}
    assignment = kubectl(
        "-n",
        namespace,
        "get",
        "configmap",
        "assignment",
        "-o",
        "jsonpath={.data.experiment}/{.data.minRuns}/{.data.modelName}/{.data.alias}",
    )
    assert assignment.stdout == "ridge-sweep/3/ridge-regressor/champion"
    phases.done("initial check")

    # Once the server is up, each task says what is missing.
    kubectl("-n", namespace, "rollout", "status", "deployment/mlflow", "--timeout=300s")
    phases.done("tracking server rolled out")
    assert_empty_server(checked(labs, name, "the empty server"))
    assert labs.get(name)["status"]["progress"] == "1/4"
    phases.done("empty server checked")

    # A wrong answer: right training and registration, champion on the newest version.
    run_as_learner(namespace, "labs/mlflow/solution/wrong/apply.sh")
    phases.done("wrong answer applied (3 runs trained and registered, newest promoted)")
    message = assert_wrong_champion(checked(labs, name, "the wrong answer"))
    print(f"[mlflow lab] wrong answer: {message}")
    phases.done("wrong answer checked")

    # The reference solution, with the learner's own permissions: the finished Job train
    # is reused, the promote Job moves the alias to the best run's version.
    run_as_learner(namespace, "labs/mlflow/solution/apply.sh")
    phases.done("solution applied (champion moved)")
    token, status = check_solution(labs, name, timeout=CHECK_TIMEOUT_SECONDS + 60)
    assert status["progress"] == "4/4"
    assert status["lastCheck"]["token"] == token
    assert status["lastCheck"]["state"] == "Passed"
    champion = tasks(labs, name)["champion"]
    assert champion["state"] == "Passed"
    assert champion["evidence"]["aliasVersion"] == "2"
    assert f"the best run by rmse (rmse={BEST_RMSE})" in champion["message"]
    print(f"[mlflow lab] champion: {champion['message']} evidence={champion['evidence']}")
    phases.done("solution checked: Completed")
