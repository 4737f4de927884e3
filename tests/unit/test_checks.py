"""Validation runs: the check Job, its phase, and when runs are due."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from roadlab.api import naming
from roadlab.api.durations import format_timestamp
from roadlab.api.lab import CheckRun, LabStatus
from roadlab.catalog.rendering import render_context
from roadlab.catalog.schema import LabDefinition
from roadlab.controller import checks
from roadlab.controller.settings import CheckSettings, Settings, secret_names

REQUEST = checks.CheckRequest("alice-smoke", "uid-1", "t1", "lab-alice-smoke")


CONTEXT = render_context({"replicas": 2}, "alice-smoke", "alice", "lab-alice-smoke")


def job(catalog: dict[str, LabDefinition], timeout: int = 60, **options: Any) -> dict[str, Any]:
    """The smoke lab's check Job; options go to check_job (image_pull_secrets, meshed, ...)."""
    spec = checks.check_spec(catalog["smoke"], CONTEXT, "alice-smoke", timeout)
    return checks.check_job(
        REQUEST,
        spec,
        image="img:1",
        operator_namespace="roadlab-system",
        timeout=timeout,
        **options,
    )


def test_check_spec_lists_every_task_and_leaves_the_checker_a_margin(
    catalog: dict[str, LabDefinition],
) -> None:
    spec = json.loads(checks.check_spec(catalog["smoke"], CONTEXT, "alice-smoke", 60))
    assert spec["namespace"] == "lab-alice-smoke"
    assert spec["deadlineSeconds"] == 60 - checks.CHECKER_DEADLINE_MARGIN_SECONDS
    assert [t["id"] for t in spec["tasks"]] == [t.id for t in catalog["smoke"].tasks]
    assert spec["tasks"][0]["probe"] == "resource"


def test_check_job_runs_out_of_the_learners_reach(catalog: dict[str, LabDefinition]) -> None:
    manifest = job(catalog)
    assert manifest["metadata"]["namespace"] == "roadlab-system"
    assert manifest["metadata"]["name"] == naming.check_job_name("alice-smoke", "t1")
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert manifest["metadata"]["labels"][naming.LABEL_COMPONENT] == naming.COMPONENT_CHECK
    spec = manifest["spec"]
    assert spec["activeDeadlineSeconds"] == 60
    assert spec["backoffLimit"] == 0
    assert spec["ttlSecondsAfterFinished"] > 0
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == naming.CHECKER_SERVICE_ACCOUNT
    container = pod["containers"][0]
    assert container["command"] == ["roadlab-check"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_check_job_pulls_with_the_operators_pull_secrets(
    catalog: dict[str, LabDefinition],
) -> None:
    # Same image as the operator: a private registry needs the same secrets.
    manifest = job(catalog, image_pull_secrets=("regcred", "mirror"))
    pod = manifest["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]
    # None configured: no empty list for the API server to store.
    assert "imagePullSecrets" not in job(catalog)["spec"]["template"]["spec"]


def test_a_meshed_check_job_gets_a_sidecar_that_only_service_traffic_goes_through(
    catalog: dict[str, LabDefinition],
) -> None:
    manifest = job(catalog, meshed=True, pod_cidr="10.42.0.0/16")
    template = manifest["spec"]["template"]
    assert template["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    annotations = template["metadata"]["annotations"]
    assert annotations["sidecar.istio.io/nativeSidecar"] == "true"  # the Job can end
    assert annotations["traffic.sidecar.istio.io/excludeOutboundIPRanges"] == "10.42.0.0/16"
    assert annotations["traffic.sidecar.istio.io/excludeOutboundPorts"] == "443"
    assert annotations[checks.TOKEN_ANNOTATION] == "t1"
    # The Job's own labels (what the operator lists Jobs by) are not the pod's extra label.
    assert "sidecar.istio.io/inject" not in manifest["metadata"]["labels"]
    # Not meshed: neither the label nor the annotations.
    plain = job(catalog)["spec"]["template"]["metadata"]
    assert "sidecar.istio.io/inject" not in plain["labels"]
    assert set(plain["annotations"]) == {checks.TOKEN_ANNOTATION}


def test_the_istio_lab_is_checked_from_the_mesh(catalog: dict[str, LabDefinition]) -> None:
    assert catalog["istio"].check_runner == "mesh"
    assert not checks.runs_warm(catalog["istio"], warm_checker=True)


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("", ()),
        ("regcred", ("regcred",)),
        ("regcred,mirror", ("regcred", "mirror")),
        (" regcred , ,mirror,regcred,", ("regcred", "mirror")),
    ],
)
def test_pull_secrets_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, names: tuple[str, ...]
) -> None:
    assert secret_names(value) == names
    monkeypatch.setenv("ROADLAB_IMAGE_PULL_SECRETS", value)
    assert Settings.from_environment().checks.image_pull_secrets == names


def test_no_pull_secrets_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROADLAB_IMAGE_PULL_SECRETS", raising=False)
    assert Settings.from_environment().checks.image_pull_secrets == ()
    assert CheckSettings("ns", "img").image_pull_secrets == ()


def test_same_request_same_job_name(catalog: dict[str, LabDefinition]) -> None:
    assert job(catalog)["metadata"]["name"] == job(catalog)["metadata"]["name"]


def test_job_phase() -> None:
    def with_condition(type_: str, reason: str = "") -> dict:  # type: ignore[type-arg]
        return {"status": {"conditions": [{"type": type_, "status": "True", "reason": reason}]}}

    assert checks.job_phase({}) == "Running"
    assert checks.job_phase({"status": {"active": 1}}) == "Running"
    assert checks.job_phase(with_condition("Complete")) == "Succeeded"
    assert checks.job_phase(with_condition("Failed", "BackoffLimitExceeded")) == "Failed"
    assert checks.job_phase(with_condition("Failed", "DeadlineExceeded")) == "TimedOut"
    not_yet = {"status": {"conditions": [{"type": "Complete", "status": "False"}]}}
    assert checks.job_phase(not_yet) == "Running"


def test_periodic_runs_are_due_after_the_interval(now: datetime) -> None:
    started = format_timestamp(now - timedelta(minutes=10))
    status = LabStatus(started_at=started)
    assert checks.periodic_token(status, 0, now) is None
    assert checks.periodic_token(status, 300, now) == f"periodic-{int(now.timestamp())}"
    assert checks.periodic_token(status, 900, now) is None
    recent = CheckRun(
        token="x",
        job="j",
        finished_at=format_timestamp(now - timedelta(seconds=30)),
        state="Failed",
    )
    assert checks.periodic_token(status.model_copy(update={"last_check": recent}), 60, now) is None
    running = CheckRun(token="x", job="j", state="Running")
    assert checks.periodic_token(status.model_copy(update={"last_check": running}), 60, now) is None


def test_pending_request_is_the_annotation_not_yet_run() -> None:
    key = naming.ANNOTATION_CHECK_REQUESTED
    assert checks.pending_request({}, LabStatus()) is None
    assert checks.pending_request({key: "t1"}, LabStatus()) == "t1"
    done = LabStatus(last_check=CheckRun(token="t1", job="j"))
    assert checks.pending_request({key: "t1"}, done) is None
    assert checks.pending_request({key: "t2"}, done) == "t2"
    # A later run for another reason (a re-check after a change) leaves it answered.
    rechecked = LabStatus(last_check=CheckRun(token="auto-1", job="warm"), last_request="t1")
    assert checks.pending_request({key: "t1"}, rechecked) is None
    assert checks.pending_request({key: "t2"}, rechecked) == "t2"


def test_run_state() -> None:
    assert checks.run_state(["Passed", "Passed"], "Succeeded") == "Passed"
    assert checks.run_state(["Passed", "Failed"], "Succeeded") == "Failed"
    assert checks.run_state(["Passed", "Error"], "Succeeded") == "Error"
    assert checks.run_state(["Error"], "TimedOut") == "TimedOut"


def test_check_args_are_rendered_with_the_labs_parameters(
    catalog: dict[str, LabDefinition],
) -> None:
    definition = catalog["smoke"]
    task = definition.tasks[0]
    templated = task.model_copy(
        update={
            "check": task.check.model_copy(update={"args": {"replicas": "{{ params.replicas }}"}})
        }
    )
    spec = json.loads(
        checks.check_spec(
            definition.model_copy(update={"tasks": [templated]}), CONTEXT, "alice-smoke", 60
        )
    )
    assert spec["tasks"][0]["args"] == {"replicas": 2}
