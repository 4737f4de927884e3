"""Validation on a real cluster: check Jobs out of the learner's reach, results in status."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

from kubernetes import client

from .conftest import REPO, kubectl
from .operator_fixtures import Labs
from .test_operator import can, unique, wait_ready
from .waiting import wait_until


def request_check(name: str) -> str:
    token = f"{time.time():.3f}"
    kubectl("annotate", "--overwrite", f"lab/{name}", f"roadlab.dev/check-requested={token}")
    return token


def last_check(labs: Labs, name: str) -> dict[str, Any]:
    return dict((labs.get(name).get("status") or {}).get("lastCheck") or {})


def tasks(labs: Labs, name: str) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in labs.get(name)["status"].get("tasks", [])}


def run_as_learner(lab_namespace: str, script: str) -> None:
    """Run a lab solution with the learner's own permissions (kubectl --as)."""
    run_command_as_learner(lab_namespace, str(REPO / script))


def run_command_as_learner(lab_namespace: str, *command: str) -> None:
    """Run a command whose kubectl and helm act as the lab's learner (tests/e2e/bin)."""
    wrapper = REPO / "tests" / "e2e" / "bin"
    env = {
        **os.environ,
        "LAB_NAMESPACE": lab_namespace,
        "KUBECTL_AS": f"system:serviceaccount:{lab_namespace}:learner",
        "PATH": f"{wrapper}{os.pathsep}{os.environ['PATH']}",
    }
    subprocess.run(list(command), check=True, env=env, capture_output=True, text=True)


def test_tasks_fail_with_hints_then_pass_after_the_solution(
    labs: Labs, core: client.CoreV1Api
) -> None:
    name = unique("validate")
    labs.create(name)
    wait_ready(labs, name)
    # The run made right after provisioning shows what is left to do.
    wait_until(lambda: last_check(labs, name).get("finishedAt"), "the initial check", timeout=120)
    before = tasks(labs, name)
    assert before["scale-web"]["state"] == "Failed"
    assert "spec.replicas" in before["scale-web"]["message"]
    assert "2" in before["scale-web"]["message"]
    assert before["configmap-answer"]["state"] == "Failed"
    assert before["configmap-answer"]["hint"]
    assert labs.get(name)["status"]["progress"] == "0/2"

    run_as_learner(f"lab-{name}", "labs/smoke/solution/apply.sh")
    token = request_check(name)
    # The requested run, not the Completed condition alone: the operator's re-check after
    # the solution's changes can complete the Lab before it (lab_phases explains).
    wait_until(
        lambda: (
            last_check(labs, name).get("token") == token
            and last_check(labs, name).get("finishedAt")
        ),
        "the check of the solution",
        timeout=180,
    )
    result = kubectl(
        "wait", "--for=condition=Completed", f"lab/{name}", "--timeout=10s", check=False
    )
    assert result.returncode == 0, result.stderr
    status = labs.get(name)["status"]
    assert status["progress"] == "2/2"
    assert status["completedAt"]
    assert status["lastCheck"]["token"] == token
    assert status["lastCheck"]["state"] == "Passed"
    assert all(t["state"] == "Passed" for t in status["tasks"])
    events = core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={name}"
    ).items
    reasons = {e.reason for e in events}
    assert {"TaskPassed", "TaskFailed"} <= reasons, reasons


def test_learner_cannot_reach_checks_or_results(labs: Labs, api: client.ApiClient) -> None:
    name = unique("tamper")
    labs.create(name)
    wait_ready(labs, name)
    me = f"system:serviceaccount:lab-{name}:learner"
    for verb in ("create", "delete", "patch", "update"):
        assert not can(api, me, verb, "jobs", "roadlab-system", "batch")
    assert not can(api, me, "create", "pods", "roadlab-system")
    assert not can(api, me, "patch", "rolebindings", f"lab-{name}", "rbac.authorization.k8s.io")
    assert not can(api, me, "delete", "rolebindings", f"lab-{name}", "rbac.authorization.k8s.io")
    assert not can(api, me, "patch", "labs", "", "roadlab.dev")
    review = client.AuthorizationV1Api(api).create_subject_access_review(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": me,
                "resourceAttributes": {
                    "verb": "patch",
                    "group": "roadlab.dev",
                    "resource": "labs",
                    "subresource": "status",
                    "name": name,
                },
            },
        }
    )
    assert not review.status.allowed
    # The checker itself may only read the lab's namespace.
    checker = "system:serviceaccount:roadlab-system:roadlab-checker"
    assert can(api, checker, "get", "deployments", f"lab-{name}", "apps")
    assert not can(api, checker, "create", "deployments", f"lab-{name}", "apps")
    assert not can(api, checker, "delete", "pods", f"lab-{name}")


def serving_endpoints(api: client.ApiClient, namespace: str, service: str) -> bool:
    """A ready endpoint of the Service is published (what kube-proxy programs)."""
    slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}"
    )
    return any(
        endpoint.conditions and endpoint.conditions.ready
        for item in slices.items
        for endpoint in item.endpoints or []
    )


def test_hanging_check_ends_as_an_error_within_its_deadline(
    labs: Labs, api: client.ApiClient
) -> None:
    name = unique("hang")
    labs.create(name, lab="hang", validation={"timeoutSeconds": 10})
    wait_ready(labs, name)
    # The run made right after provisioning may find the slow server not yet up ("could not
    # reach", an Error that is no timeout). A run requested once it serves must hang.
    wait_until(lambda: last_check(labs, name).get("finishedAt"), "the initial run", timeout=120)
    wait_until(lambda: serving_endpoints(api, f"lab-{name}", "web"), "the slow server to serve")
    token = request_check(name)
    started = time.monotonic()
    wait_until(
        lambda: (
            last_check(labs, name).get("token") == token
            and last_check(labs, name).get("finishedAt")
        ),
        "the hanging check to end",
        timeout=120,
    )
    elapsed = time.monotonic() - started
    run = last_check(labs, name)
    assert run["state"] == "TimedOut", run
    task = tasks(labs, name)["never-finishes"]
    assert task["state"] == "Error"
    assert "10" in task["message"]
    assert elapsed < 90
    completed = labs.condition(name, "Completed")
    assert completed and completed["status"] == "False"


def test_at_most_one_run_per_lab_is_in_flight(labs: Labs, api: client.ApiClient) -> None:
    name = unique("single")
    labs.create(name, lab="hang", validation={"timeoutSeconds": 20})
    wait_ready(labs, name)
    wait_until(lambda: last_check(labs, name).get("job"), "the initial run to start", timeout=60)
    for _ in range(3):
        request_check(name)
        time.sleep(0.5)
    jobs = (
        client.BatchV1Api(api)
        .list_namespaced_job("roadlab-system", label_selector=f"roadlab.dev/lab={name}")
        .items
    )
    running = [j for j in jobs if not (j.status.succeeded or j.status.failed)]
    assert len(running) <= 1, [j.metadata.name for j in jobs]
