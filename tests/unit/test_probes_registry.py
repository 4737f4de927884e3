"""The probe registry: validation at catalog load, and run_check's never-raise contract."""

from __future__ import annotations

import json
from typing import Any

import pytest
from probe_support import FakeContext

from roadlab.catalog.schema import LabDefinition
from roadlab.probes import PROBES, Probe, ProbeHttpError, run_check, validate_check
from roadlab.probes.base import CheckResult, ProbeArgs, show


def test_registry_names() -> None:
    assert sorted(PROBES) == [
        "flux",
        "gitops_drift",
        "helm_release",
        "http",
        "http_latency",
        "kafka",
        "kserve_v2",
        "load_then_assert",
        "mlflow",
        "plaintext_refused",
        "pod_metrics",
        "pods_ready",
        "prometheus",
        "resource",
        "rollout",
        "traffic_split",
    ]
    for name, probe in PROBES.items():
        assert probe.name == name
        assert probe.summary
        assert issubclass(probe.args_model, ProbeArgs)
        assert probe.args_model.model_config["extra"] == "forbid"


def test_validate_check_accepts_the_real_catalog(catalog: dict[str, LabDefinition]) -> None:
    # Loading the catalog validated every check as rendered; plain args validate as they are.
    plain = [
        task.check
        for definition in catalog.values()
        for task in definition.tasks
        if "{{" not in json.dumps(task.check.args)
    ]
    assert plain
    for check in plain:
        validate_check(check.probe, check.args)


def test_validate_check_unknown_probe() -> None:
    with pytest.raises(
        ValueError,
        match=r"^unknown probe 'resources' \(known: flux, gitops_drift, helm_release, http, "
        r"http_latency, kafka, kserve_v2, ",
    ):
        validate_check("resources", {})


@pytest.mark.parametrize(
    ("probe", "args", "message"),
    [
        (
            "resource",
            {"apiVersion": "v1", "kind": "ConfigMap"},
            "probe 'resource': invalid args: name: Field required",
        ),
        (
            "pods_ready",
            {"labelSelector": "app=web", "minCount": "two"},
            "probe 'pods_ready': invalid args: minCount: Input should be a valid integer",
        ),
        (
            "pods_ready",
            {"labelSelector": "app=web", "containerHas": [{"nmae": "x"}]},
            "containerHas.0.name: Field required; containerHas.0.nmae: Extra inputs",
        ),
        ("http", [], "probe 'http': args must be a mapping"),
    ],
)
def test_validate_check_bad_args(probe: str, args: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_check(probe, args)
    assert message in str(info.value)
    assert "https://errors.pydantic.dev" not in str(info.value)


def test_run_check_never_raises_on_http_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def exploding(ctx: Any, args: Any) -> CheckResult:
        raise ProbeHttpError("connection reset")

    original = PROBES["rollout"]
    monkeypatch.setitem(PROBES, "rollout", Probe("rollout", original.args_model, exploding))
    result = run_check(FakeContext(), "rollout", {"name": "web"})
    assert result.state == "Error"
    assert result.message == "probe rollout could not complete an HTTP request: connection reset"


def test_run_check_unknown_probe_and_bad_args() -> None:
    unknown = run_check(FakeContext(), "nope", {})
    assert unknown.state == "Error"
    assert unknown.message.startswith("the check is misconfigured: unknown probe 'nope'")
    bad = run_check(FakeContext(), "rollout", {"name": ""})
    assert bad.message == (
        "the check is misconfigured: probe 'rollout': invalid args: name: String should have "
        "at least 1 character"
    )


def test_check_result_states_and_show() -> None:
    assert CheckResult.ok("x").state == "Passed"
    assert CheckResult.fail("x").state == "Failed"
    assert CheckResult.err("x").state == "Error"
    assert not CheckResult.err("x").passed
    assert show("42") == '"42"'
    assert show(2) == "2"
    assert show(None) == "null"
    assert show("x" * 200).endswith("...") and len(show("x" * 200)) == 80
