from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from roadlab.api.lab import Condition, LabSpec, LabStatus, TaskResult, ValidationSpec
from roadlab.catalog.schema import (
    DEFAULT_QUOTA,
    LEARNER_NAMESPACE_POLICY_PREREQUISITE,
    EnvironmentDef,
    LabDefinition,
    ParameterDef,
    ParameterError,
    Prerequisite,
)

BASE: dict[str, Any] = {"lab": "smoke", "learner": "alice@example.com"}


def spec(**extra: Any) -> LabSpec:
    return LabSpec.model_validate({**BASE, **extra})


def test_spec_defaults_and_aliases() -> None:
    parsed = spec()
    assert parsed.ttl == "2h"
    assert parsed.ttl_delta() == timedelta(hours=2)
    assert parsed.parameters == {}
    assert parsed.validation == ValidationSpec(interval_seconds=0, timeout_seconds=None)
    wire = spec(validation={"intervalSeconds": 60, "timeoutSeconds": 30}).to_wire()
    assert wire["validation"] == {"intervalSeconds": 60, "timeoutSeconds": 30}
    # populate_by_name: Python names work too.
    assert LabSpec(lab="smoke", learner="bob", validation=ValidationSpec(interval_seconds=30))


def test_spec_parameters_keep_exact_types() -> None:
    parsed = spec(parameters={"flag": True, "count": 1, "text": "1"})
    assert [type(v) for v in parsed.parameters.values()] == [bool, int, str]


def test_spec_ignores_unknown_fields() -> None:
    assert spec(somethingNew=1).lab == "smoke"


@pytest.mark.parametrize(
    ("extra", "location"),
    [
        ({"lab": "Smoke"}, "lab"),
        ({"lab": "a" * 41}, "lab"),
        ({"lab": "-x"}, "lab"),
        ({"learner": ""}, "learner"),
        ({"learner": "a" * 64}, "learner"),
        ({"learner": "alice!"}, "learner"),
        ({"ttl": "1m"}, "ttl"),
        ({"ttl": "8d"}, "ttl"),
        ({"ttl": "soon"}, "ttl"),
        ({"parameters": {"1bad": 1}}, "parameters"),
        ({"parameters": {"x": 1.5}}, "parameters"),
        ({"parameters": {"x": None}}, "parameters"),
        ({"parameters": {"x": ["a"]}}, "parameters"),
        ({"parameters": {"x": "y" * 257}}, "parameters"),
        ({"parameters": {f"p{i}": i for i in range(33)}}, "parameters"),
        ({"validation": {"intervalSeconds": 10}}, "validation"),
        ({"validation": {"intervalSeconds": 86401}}, "validation"),
        ({"validation": {"timeoutSeconds": 5}}, "validation"),
        ({"validation": {"timeoutSeconds": "60"}}, "validation"),
    ],
)
def test_spec_rejects(extra: dict[str, Any], location: str) -> None:
    with pytest.raises(ValidationError) as info:
        spec(**extra)
    assert info.value.errors()[0]["loc"][0] == location


def test_spec_ttl_bounds_inclusive() -> None:
    assert spec(ttl="5m").ttl_delta() == timedelta(minutes=5)
    assert spec(ttl="7d").ttl_delta() == timedelta(days=7)
    assert spec(ttl="1h30m").ttl_delta() == timedelta(minutes=90)


def test_condition_shape() -> None:
    condition = Condition.model_validate(
        {
            "type": "Ready",
            "status": "True",
            "reason": "Ready",
            "message": "ok",
            "lastTransitionTime": "2026-11-21T10:00:00Z",
            "observedGeneration": 3,
        }
    )
    assert condition.to_wire()["lastTransitionTime"] == "2026-11-21T10:00:00Z"
    for bad in (
        {"status": "Yes"},
        {"reason": "not camel"},
        {"reason": ""},
        {"lastTransitionTime": "now"},
    ):
        with pytest.raises(ValidationError):
            Condition.model_validate({**condition.to_wire(), **bad})


def test_task_result() -> None:
    result = TaskResult(id="scale-web", evidence={"replicas": 2, "ok": True, "ratio": 0.5})
    assert result.state == "Pending"
    assert result.to_wire() == {
        "id": "scale-web",
        "title": "",
        "state": "Pending",
        "message": "",
        "evidence": {"replicas": 2, "ok": True, "ratio": 0.5},
    }
    with pytest.raises(ValidationError):
        TaskResult(id="x", state="Maybe")
    with pytest.raises(ValidationError):
        TaskResult(id="x", evidence={str(i): i for i in range(17)})


def test_empty_status_parses_and_patches() -> None:
    status = LabStatus.model_validate({})
    assert status.to_patch() == {"conditions": [], "tasks": []}
    full = LabStatus.model_validate(
        {"progress": "1/2", "tasksPassed": 1, "expiresAt": "2026-11-21T12:00:00Z", "kopf": {}}
    )
    assert full.to_patch()["tasksPassed"] == 1
    assert "kopf" not in full.to_patch()


def test_parameter_def_checks() -> None:
    replicas = ParameterDef(type="integer", default=1, minimum=1, maximum=3)
    assert replicas.required is False
    assert replicas.check("replicas", 3) == 3
    with pytest.raises(ParameterError, match=r"'replicas': got 4 \(integer\), expected an integer"):
        replicas.check("replicas", 4)
    with pytest.raises(ParameterError, match=r"got True \(boolean\)"):
        replicas.check("replicas", True)
    with pytest.raises(ParameterError, match=r"got '2' \(string\)"):
        replicas.check("replicas", "2")

    flag = ParameterDef(type="boolean")
    assert flag.required is True
    assert flag.check("flag", False) is False
    with pytest.raises(ParameterError, match="boolean"):
        flag.check("flag", 0)

    greeting = ParameterDef(type="string", pattern="^[a-z ]{1,40}$", default="hello")
    assert greeting.check("greeting", "hi there") == "hi there"
    # fullmatch: a trailing newline does not sneak past "$".
    with pytest.raises(ParameterError, match="matching"):
        greeting.check("greeting", "hi\n")
    choice = ParameterDef(type="string", enum=["a", "b"], default="a")
    with pytest.raises(ParameterError, match="one of 'a', 'b'"):
        choice.check("choice", "c")
    short = ParameterDef(type="string", min_length=2, max_length=3)
    with pytest.raises(ParameterError, match="2-3 characters"):
        short.check("short", "abcd")


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "integer", "pattern": "x"},
        {"type": "string", "minimum": 1},
        {"type": "string", "pattern": "("},
        {"type": "integer", "default": "1"},
        {"type": "integer", "default": 5, "maximum": 3},
        {"type": "string", "enum": [1]},
        {"type": "float"},
        {"type": "string", "typo": 1},
    ],
)
def test_parameter_def_rejects_inconsistent(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ParameterDef.model_validate(raw)


def test_environment_defaults_and_quota_merge() -> None:
    env = EnvironmentDef()
    assert env.pod_security == "restricted"
    assert env.quota == dict(DEFAULT_QUOTA)
    assert env.limit_range.default_request == {"cpu": "100m", "memory": "128Mi"}
    assert env.limit_range.default == {"cpu": "500m", "memory": "512Mi"}
    merged = EnvironmentDef.model_validate({"quota": {"pods": 5, "requests.cpu": "500m"}})
    assert merged.quota["pods"] == "5"
    assert merged.quota["requests.cpu"] == "500m"
    assert merged.quota["services.nodeports"] == "0"


@pytest.mark.parametrize(
    "raw",
    [
        {"podSecurity": "privileged"},
        {"quota": {"pods": "lots"}},
        {"quota": {"pods": True}},
        {"templates": ["/etc/passwd"]},
        {"templates": ["../other/x.yaml"]},
        {"templates": ["a.yaml", "a.yaml"]},
        {"learnerRules": [{"apiGroups": [""], "resources": [], "verbs": ["get"]}]},
        {"quotas": {}},
    ],
)
def test_environment_rejects(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EnvironmentDef.model_validate(raw)


def test_prerequisite_served_key() -> None:
    metrics = Prerequisite(
        name="metrics", api_group="metrics.k8s.io", api_version="v1beta1", resource="pods"
    )
    assert metrics.served_key == "metrics.k8s.io/v1beta1/pods"
    core = Prerequisite.model_validate({"name": "pods", "apiVersion": "v1", "resource": "pods"})
    assert core.served_key == "v1/pods"


def definition(**extra: Any) -> dict[str, Any]:
    return {
        "id": "demo",
        "title": "Demo",
        "difficulty": "beginner",
        "duration": 10,
        "tasks": [{"id": "t1", "title": "T1", "check": {"probe": "resource"}}],
        **extra,
    }


def test_lab_definition_minimal_and_template_sources() -> None:
    parsed = LabDefinition.model_validate(definition())
    assert parsed.template_sources == {}
    loaded = parsed.with_template_sources({"a.yaml": "x: 1"})
    assert loaded.template_sources == {"a.yaml": "x: 1"}
    assert parsed.template_sources == {}
    assert loaded.tasks[0].check.args == {}


def test_lab_definition_without_tasks_is_a_playground() -> None:
    base = {
        "id": "play",
        "title": "Playground",
        "description": "d",
        "difficulty": "beginner",
        "duration": 5,
    }
    assert LabDefinition.model_validate({**base, "tasks": []}).tasks == []
    assert LabDefinition.model_validate(base).tasks == []


@pytest.mark.parametrize(
    "extra",
    [
        {"difficulty": "expert"},
        {"duration": 0},
        {
            "tasks": [
                {"id": "t1", "title": "A", "check": {"probe": "p"}},
                {"id": "t1", "title": "B", "check": {"probe": "p"}},
            ]
        },
        {"tasks": [{"id": "T1", "title": "A", "check": {"probe": "p"}}]},
        {"parameters": {"bad-name": {"type": "string"}}},
        {"solution": "../x"},
        {"titel": "typo"},
        {"prerequisites": [{"name": "x", "apiVersion": "v1"}]},
    ],
)
def test_lab_definition_rejects(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LabDefinition.model_validate(definition(**extra))


def test_learner_namespace_labels_imply_the_admission_policy_prerequisite() -> None:
    base = {"id": "x", "title": "X", "difficulty": "beginner", "duration": 5}
    plain = LabDefinition.model_validate(base)
    assert plain.required_prerequisites == []
    labelled = LabDefinition.model_validate(
        {**base, "environment": {"learnerNamespaceLabels": ["istio-injection"]}}
    )
    assert labelled.required_prerequisites == [LEARNER_NAMESPACE_POLICY_PREREQUISITE]
    key = LEARNER_NAMESPACE_POLICY_PREREQUISITE.served_key
    assert key == (
        "admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/"
        "roadlab-learner-namespace-labels"
    )
