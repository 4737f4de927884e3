"""The helm catalog lab on a real cluster: Helm itself (the binary cluster/build.sh builds)
run with the learner's own identity (--kube-as-user), the checks reading the release as
Helm recorded it through the checker's by-name grant on the release Secrets.

The wrong answer (labs/helm/solution/wrong/apply.sh: the chart's defaults, upgraded to
0.2.0, never rolled back) must give, with the default parameters (replicas 2, version blue):
  installed        Passed
  managed-by-helm  Passed
  assigned-values  Failed  "value replicaCount is 1, expected 2; value version is "v1", ..."
  serving          Failed  (the app answers "(v1)", the chart's default, not "(blue)")
  replicas-ready   Failed  "Deployment greeter: 1 of 1 replicas ready, expected at least 2"
  upgraded         Passed
  rolled-back      Failed  "revision 2 runs chart version "0.2.0", expected "0.1.0"; ..."
"""

from __future__ import annotations

import pytest

from .conftest import kubectl
from .lab_phases import Phases, check_now, check_solution, finished_run
from .operator_fixtures import Labs
from .test_lab_mlflow import image_on_node
from .test_operator import unique, wait_ready
from .test_validation import run_as_learner, run_command_as_learner, tasks
from .waiting import wait_until

WEB_IMAGE = "localhost/roadlab/web:0.1.0"
TASK_IDS = [
    "installed",
    "managed-by-helm",
    "assigned-values",
    "serving",
    "replicas-ready",
    "upgraded",
    "rolled-back",
]


def assert_initial_state(labs: Labs, name: str, namespace: str) -> None:
    before = tasks(labs, name)
    assert sorted(before) == sorted(TASK_IDS)
    for task in ("installed", "assigned-values", "upgraded", "rolled-back"):
        assert before[task]["state"] == "Failed", before[task]
        assert before[task]["message"] == (
            f"Helm release greeter not found in namespace {namespace} (no Secret "
            "sh.helm.release.v1.greeter.v1): install it with `helm install greeter <chart>`"
        ), before[task]
        assert before[task]["hint"]
    assert "Deployment greeter not found" in before["managed-by-helm"]["message"]
    assert labs.get(name)["status"]["progress"] == "0/7"


def assert_wrong_answer_rejected(labs: Labs, name: str) -> None:
    wrong = tasks(labs, name)
    for task in ("installed", "managed-by-helm", "upgraded"):
        assert wrong[task]["state"] == "Passed", wrong[task]
    values = wrong["assigned-values"]
    assert values["state"] == "Failed", values
    assert values["message"] == (
        'Helm release greeter: value replicaCount is 1, expected 2; value version is "v1", '
        'expected "blue"'
    ), values
    assert wrong["serving"]["state"] == "Failed", wrong["serving"]
    assert "(blue)" in wrong["serving"]["message"], wrong["serving"]
    replicas = wrong["replicas-ready"]
    assert replicas["state"] == "Failed", replicas
    assert "Deployment greeter: 1 of 1 replicas ready, expected at least 2" in replicas["message"]
    rollback = wrong["rolled-back"]
    assert rollback["state"] == "Failed", rollback
    assert rollback["message"] == (
        'Helm release greeter: revision 2 runs chart version "0.2.0", expected "0.1.0"; '
        "it has 2 revisions, expected at least 3 (`helm history` lists them); "
        'revision 2 says "Upgrade complete", expected it to match "^Rollback to 1$"'
    ), rollback
    assert rollback["evidence"]["history"] == "1:greeter-0.1.0:superseded, 2:greeter-0.2.0:deployed"
    assert labs.get(name)["status"]["progress"] == "3/7"
    for task in ("assigned-values", "serving", "replicas-ready", "rolled-back"):
        print(f"[helm lab] wrong answer, {task}: {wrong[task]['message']}")


def test_helm_lab_wrong_answer_then_install_upgrade_rollback(labs: Labs) -> None:
    if not image_on_node(WEB_IMAGE):
        pytest.fail(f"{WEB_IMAGE} is not on the node: build and load it (make images)")
    phases = Phases("helm")
    name = unique("helm")
    namespace = f"lab-{name}"
    labs.create(name, lab="helm")  # default parameters: replicas 2, version blue
    wait_ready(labs, name, timeout=180)
    phases.done("Lab Ready")
    wait_until(lambda: finished_run(labs, name), "the initial check", timeout=120)
    assert_initial_state(labs, name, namespace)
    phases.done("initial check")

    # The checker reads the release Secrets by name, and nothing else of the lab's Secrets.
    can_i = kubectl(
        "auth", "can-i", "get", "secrets/sh.helm.release.v1.greeter.v1", "-n", namespace,
        "--as", "system:serviceaccount:roadlab-system:roadlab-checker", check=False,
    )  # fmt: skip
    assert can_i.stdout.strip() == "yes", can_i
    for verb, resource in (("get", "secrets/portal-token"), ("list", "secrets")):
        can_i = kubectl(
            "auth", "can-i", verb, resource, "-n", namespace,
            "--as", "system:serviceaccount:roadlab-system:roadlab-checker", check=False,
        )  # fmt: skip
        assert can_i.stdout.strip() == "no", (verb, resource, can_i)

    run_as_learner(namespace, "labs/helm/solution/wrong/apply.sh")
    phases.done("wrong answer: installed with the defaults, upgraded (helm as the learner)")
    token = check_now(labs, name, "the wrong answer", timeout=120)
    assert_wrong_answer_rejected(labs, name)
    phases.done("wrong answer checked")

    # The learner starts over: uninstall, then the reference solution.
    run_command_as_learner(namespace, "helm", "uninstall", "greeter", "-n", namespace, "--wait")
    run_as_learner(namespace, "labs/helm/solution/apply.sh")
    phases.done("solution: install, upgrade, rollback (helm as the learner)")
    token, status = check_solution(labs, name, timeout=180)
    assert status["progress"] == "7/7"
    assert status["lastCheck"]["token"] == token
    done = tasks(labs, name)
    rollback = done["rolled-back"]
    assert rollback["evidence"]["history"] == (
        "1:greeter-0.1.0:superseded, 2:greeter-0.2.0:superseded, 3:greeter-0.1.0:deployed"
    )
    assert done["assigned-values"]["evidence"]["values.replicaCount"] == 2
    print(f"[helm lab] solution, rolled-back: {rollback['message']}")
    phases.done("solution checked: Completed")
