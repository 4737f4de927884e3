"""The gitops catalog lab on a real cluster: Flux's real source-controller and
kustomize-controller (built from their Go modules, cluster/flux.sh) and the lab's real Git
server (git http-backend, images/git-server), used with the learner's own permissions: Flux's
objects made with kubectl as the learner, the repository cloned and pushed through a
port-forward made as the learner. The checker compares what Flux applied with the head of
main on the lab's Git server and makes drift itself.

The wrong answer (labs/gitops/solution/wrong/README.md) must give, with the default
parameters (3 replicas of version green):
  source              Passed
  sync                Failed  'Kustomization shop: spec.prune is false, expected true'
  change-through-git  Failed  '... Deployment shop: spec.replicas is 3, but Git
                               (apps/shop/deployment.yaml at main@sha1:...) does not set it: it
                               was set by hand (kubectl scale records no field manager); ...'
  serving             Passed
  drift-corrected     Failed  '... and left it so: Flux restores only the fields Git declares
                               ...; the check put spec.replicas back to 3 itself'
"""

from __future__ import annotations

import subprocess

import pytest

from .conftest import kubectl
from .lab_phases import Phases, check_now, check_solution, finished_run
from .operator_fixtures import Labs
from .test_lab_mlflow import image_on_node
from .test_operator import unique, wait_ready
from .test_validation import run_as_learner, tasks
from .waiting import wait_until

IMAGES = ("localhost/roadlab/web:0.1.0", "localhost/roadlab/git-server:0.1.0")
TASK_IDS = ["source", "sync", "change-through-git", "serving", "drift-corrected"]
# The lab's checkTimeoutSeconds (labs/gitops/lab.yaml) and a margin for the check to start
# and report.
CHECK_SECONDS = 240 + 60


def flux_running() -> bool:
    found = kubectl(
        "-n", "flux-system", "get", "deployments", "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.status.availableReplicas}{' '}{end}",
        check=False,
    )  # fmt: skip
    return found.returncode == 0 and {"source-controller=1", "kustomize-controller=1"} <= set(
        found.stdout.split()
    )


def as_learner(
    namespace: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return kubectl(
        "--as", f"system:serviceaccount:{namespace}:learner", "-n", namespace, *args,
        check=False, input=stdin,
    )  # fmt: skip


def assert_flux_is_held_to_the_lab(namespace: str) -> None:
    """What a curious learner tries: Flux fetching another lab's repository, or applying
    through a kubeconfig of its own, is refused by the chart's admission policy."""
    other = as_learner(
        namespace, "apply", "-f", "-",
        stdin=(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
            "metadata: {name: other}\nspec:\n  interval: 1m\n"
            "  url: http://git.lab-someone-else.svc.cluster.local/lab.git\n"
        ),
    )  # fmt: skip
    assert other.returncode != 0
    assert "fetches from a Service of its own namespace" in other.stderr, other.stderr
    remote = as_learner(
        namespace, "apply", "-f", "-",
        stdin=(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
            "metadata: {name: remote}\nspec:\n  interval: 1m\n  prune: true\n"
            "  sourceRef: {kind: GitRepository, name: lab}\n"
            "  kubeConfig: {secretRef: {name: elsewhere}}\n"
        ),
    )  # fmt: skip
    assert remote.returncode != 0
    assert "never through a kubeconfig of its own" in remote.stderr, remote.stderr
    # The delegate account holds the learner's rights in the lab, and nothing outside it.
    assert kubectl(
        "auth", "can-i", "create", "deployments", "-n", namespace,
        "--as", f"system:serviceaccount:{namespace}:flux-applier", check=False,
    ).stdout.strip() == "yes"  # fmt: skip
    assert kubectl(
        "auth", "can-i", "create", "deployments", "-n", "default",
        "--as", f"system:serviceaccount:{namespace}:flux-applier", check=False,
    ).stdout.strip() == "no"  # fmt: skip
    assert kubectl(
        "auth", "can-i", "create", "rolebindings", "-n", namespace,
        "--as", f"system:serviceaccount:{namespace}:flux-applier", check=False,
    ).stdout.strip() == "no"  # fmt: skip


def assert_initial_state(labs: Labs, name: str, namespace: str) -> None:
    before = tasks(labs, name)
    assert sorted(before) == sorted(TASK_IDS)
    for task in TASK_IDS:
        print(f"[gitops lab] initial, {task}: {before[task]['state']}: {before[task]['message']}")
        assert before[task]["hint"]
    for task in ("source", "sync", "change-through-git", "drift-corrected"):
        assert before[task]["state"] == "Failed", before[task]
    # No Service shop yet (nothing applied it): the request cannot be made at all.
    assert before["serving"]["state"] == "Error", before["serving"]
    assert before["source"]["message"] == (
        f"GitRepository lab not found in namespace {namespace}: create it with a manifest "
        "(`kubectl apply -f`)"
    )
    assert before["sync"]["message"].startswith("Kustomization shop not found")
    assert before["drift-corrected"]["message"].startswith("Kustomization shop not found")
    assert labs.get(name)["status"]["progress"] == "0/5"


def assert_wrong_answer_rejected(labs: Labs, name: str) -> None:
    wrong = tasks(labs, name)
    for task in TASK_IDS:
        print(
            f"[gitops lab] wrong answer, {task}: {wrong[task]['state']}: {wrong[task]['message']}"
        )
    assert wrong["source"]["state"] == "Passed", wrong["source"]
    assert wrong["serving"]["state"] == "Passed", wrong["serving"]
    assert wrong["sync"]["state"] == "Failed"
    assert wrong["sync"]["message"] == "Kustomization shop: spec.prune is false, expected true"
    change = wrong["change-through-git"]
    assert change["state"] == "Failed"
    # Read from Flux's own artifact of the applied revision; kubectl scale goes through the
    # scale subresource, which records no field manager.
    assert (
        "Deployment shop: spec.replicas is 3, but Git (apps/shop/deployment.yaml at main@sha1:"
        in change["message"]
    ), change
    assert (
        ") does not set it: it was set by hand (kubectl scale records no field manager)"
        in change["message"]
    ), change
    drift = wrong["drift-corrected"]
    assert drift["state"] == "Failed"
    assert (
        "reconciled after the check set Deployment shop's spec.replicas to 1, and left it so: "
        "Flux restores only the fields Git declares" in drift["message"]
    ), drift
    assert drift["message"].endswith("the check put spec.replicas back to 3 itself"), drift
    assert labs.get(name)["status"]["progress"] == "2/5"


def assert_solution_passes(labs: Labs, name: str, namespace: str, token: str) -> None:
    status = labs.get(name)["status"]
    assert status["progress"] == "5/5"
    assert status["lastCheck"]["token"] == token
    done = tasks(labs, name)
    change = done["change-through-git"]["evidence"]
    # The revision Flux applied is main's head on the lab's Git server.
    assert change["revision"].endswith(change["gitHead"]) or change["gitHead"] in change["revision"]
    assert change["Deployment.spec.replicas"] == 3
    drift = done["drift-corrected"]["evidence"]
    assert drift["gitValue"] == 3 and drift["driftedTo"] == 1, drift
    # Flux put it back: the Deployment runs Git's replicas again.
    replicas = kubectl(
        "-n", namespace, "get", "deployment", "shop", "-o", "jsonpath={.spec.replicas}"
    )
    assert replicas.stdout == "3"
    for task in TASK_IDS:
        print(f"[gitops lab] solution, {task}: {done[task]['message']}")
        print(f"[gitops lab] solution, {task} evidence: {done[task]['evidence']}")


def test_gitops_lab_wrong_answer_then_solution(labs: Labs) -> None:
    for image in IMAGES:
        if not image_on_node(image):
            pytest.fail(f"{image} is not on the node: build and load it (make images)")
    if not flux_running():
        pytest.fail("Flux's controllers do not run in flux-system: cluster/up.sh installs them")
    phases = Phases("gitops")
    name = unique("gitops")
    namespace = f"lab-{name}"
    labs.create(name, lab="gitops")  # default parameters: 3 replicas of green
    wait_ready(labs, name, timeout=180)
    phases.done("Lab Ready")
    wait_until(lambda: finished_run(labs, name), "the initial check", timeout=CHECK_SECONDS)
    assert_initial_state(labs, name, namespace)
    assert_flux_is_held_to_the_lab(namespace)
    phases.done("initial check, admission refusals")

    run_as_learner(namespace, "labs/gitops/solution/wrong/apply.sh")
    phases.done("wrong answer applied (pushed, synced, scaled by hand)")
    token = check_now(labs, name, "the wrong answer", timeout=CHECK_SECONDS)
    assert_wrong_answer_rejected(labs, name)
    phases.done("wrong answer checked")

    run_as_learner(namespace, "labs/gitops/solution/apply.sh")
    phases.done("solution applied (pushed, synced)")
    token, _ = check_solution(labs, name, timeout=CHECK_SECONDS)
    assert_solution_passes(labs, name, namespace, token)
    phases.done("solution checked: Completed")
