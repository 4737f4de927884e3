"""Static checks of crds/lab.yaml: structure, agreement with the models, and a mini validator.

The real API server check (structural schema, CEL compilation) runs in the e2e suite.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from roadlab.api import naming
from roadlab.api.durations import DURATION_PATTERN, DurationError, parse_duration
from roadlab.api.lab import (
    DEFAULT_TTL,
    LAB_ID_PATTERN,
    LEARNER_PATTERN,
    MAX_PARAMETERS,
    REASON_PATTERN,
    TASK_ID_PATTERN,
    Condition,
    LabSpec,
    LabStatus,
    TaskResult,
    ValidationSpec,
)
from roadlab.catalog.schema import LabDefinition
from roadlab.controller.plan import apply_task_results, mark_provisioned, plan_lab

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def crd(crd_path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(crd_path.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def version(crd: dict[str, Any]) -> dict[str, Any]:
    (only,) = crd["spec"]["versions"]
    assert isinstance(only, dict)
    return only


@pytest.fixture(scope="module")
def schema(version: dict[str, Any]) -> Schema:
    root = version["schema"]["openAPIV3Schema"]
    assert isinstance(root, dict)
    return root


def test_identity(crd: dict[str, Any], version: dict[str, Any]) -> None:
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{naming.PLURAL}.{naming.GROUP}"
    spec = crd["spec"]
    assert spec["group"] == naming.GROUP
    assert spec["scope"] == "Cluster"
    names = spec["names"]
    assert (names["kind"], names["plural"], names["singular"]) == (
        naming.KIND,
        naming.PLURAL,
        naming.SINGULAR,
    )
    assert names["shortNames"] == ["rl"]
    assert names["categories"] == ["roadlab"]
    assert version["name"] == naming.VERSION
    assert version["served"] is True and version["storage"] is True
    assert version["subresources"] == {"status": {}}


def test_printer_columns(version: dict[str, Any]) -> None:
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    expected = {
        "Lab": ".spec.lab",
        "Learner": ".spec.learner",
        "Ready": '.status.conditions[?(@.type=="Ready")].status',
        "Progress": ".status.progress",
        "Expires": ".status.expiresAt",
        "Age": ".metadata.creationTimestamp",
    }
    for name, path in expected.items():
        assert columns[name]["jsonPath"] == path
    # A date column shows a future time as "<invalid>"; the timestamp itself is clearer.
    assert columns["Expires"]["type"] == "string"
    assert columns["Age"]["type"] == "date"


def walk(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    yield path, node
    for key, child in (node.get("properties") or {}).items():
        yield from walk(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def test_schema_is_structural(schema: Schema) -> None:
    for path, node in walk(schema):
        untyped_ok = node.get("x-kubernetes-int-or-string") or node.get(
            "x-kubernetes-preserve-unknown-fields"
        )
        assert "type" in node or untyped_ok, f"{path or '<root>'} needs a type"
        for junctor in ("allOf", "anyOf", "oneOf", "not"):
            assert junctor not in node, f"{path}: keep the schema junctor-free"
        if "properties" in node and "additionalProperties" in node:
            pytest.fail(f"{path}: properties and additionalProperties are exclusive")
        if node.get("type") == "string" and "x-kubernetes-validations" in node:
            assert "maxLength" in node, f"{path}: bound strings used in CEL (cost budget)"
        if "x-kubernetes-validations" in node and path:
            # CEL cannot see untyped (preserve-unknown-fields) values.
            assert "type" in node, f"{path}: CEL rule on a node CEL cannot see"
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["rule"] and len(rule["message"]) > 20, path
    assert schema["properties"]["metadata"] == {"type": "object"}


def model_aliases(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (LabSpec, ".spec"),
        (ValidationSpec, ".spec.validation"),
        (LabStatus, ".status"),
        (Condition, ".status.conditions[]"),
        (TaskResult, ".status.tasks[]"),
    ],
)
def test_every_model_field_is_in_the_schema(
    schema: Schema, model: type[BaseModel], path: str
) -> None:
    node = dict(walk(schema))[path]
    assert model_aliases(model) <= set(node["properties"]), model.__name__
    # And nothing in the schema that the model would drop (kopf bookkeeping excepted).
    assert set(node["properties"]) - model_aliases(model) <= {"kopf"}


def test_patterns_and_bounds_match_models(schema: Schema) -> None:
    nodes = dict(walk(schema))
    assert nodes[".spec.lab"]["pattern"] == LAB_ID_PATTERN
    assert nodes[".spec.learner"]["pattern"] == LEARNER_PATTERN
    assert nodes[".spec.learner"]["maxLength"] == 63
    assert nodes[".status.conditions[].reason"]["pattern"] == REASON_PATTERN
    assert nodes[".status.tasks[].id"]["pattern"] == TASK_ID_PATTERN
    assert nodes[".spec.parameters"]["maxProperties"] == MAX_PARAMETERS
    assert nodes[".spec.ttl"]["default"] == DEFAULT_TTL
    assert DURATION_PATTERN in nodes[".spec.ttl"]["x-kubernetes-validations"][0]["rule"]
    assert schema["properties"]["spec"]["required"] == ["lab", "learner"]
    defaults = ValidationSpec()
    assert nodes[".spec.validation.intervalSeconds"]["default"] == defaults.interval_seconds
    # No default: an unset timeout means the lab's own checkTimeoutSeconds.
    assert defaults.timeout_seconds is None
    assert "default" not in nodes[".spec.validation.timeoutSeconds"]
    assert nodes[".status.conditions[].status"]["enum"] == ["True", "False", "Unknown"]
    assert nodes[".status.tasks[].state"]["enum"] == ["Pending", "Passed", "Failed", "Error"]
    assert nodes[".status.conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert nodes[".status.tasks"]["x-kubernetes-list-map-keys"] == ["id"]


def test_cel_rules(schema: Schema) -> None:
    nodes = dict(walk(schema))
    root_rules = " ".join(r["rule"] for r in schema["x-kubernetes-validations"])
    assert f"size(self.metadata.name) <= {naming.MAX_LAB_NAME_LENGTH}" in root_rules
    for field in ("lab", "learner"):
        (rule,) = nodes[f".spec.{field}"]["x-kubernetes-validations"]
        assert rule["rule"] == "self == oldSelf"
        assert rule["message"] == (
            f"spec.{field} is immutable: delete the Lab and create a new one"
        )


@pytest.mark.parametrize("ttl", ["90m", "2h", "1h30m", "7d", "45s", "1d2h3m4s", "", "1.5h", "1m1h"])
def test_cel_ttl_regex_agrees_with_parser(ttl: str) -> None:
    try:
        parse_duration(ttl)
        parsed = True
    except DurationError:
        parsed = False
    assert (ttl != "" and re.search(DURATION_PATTERN, ttl) is not None) == parsed


# --- a small OpenAPI validator, enough to catch model/CRD drift on real objects ------------


def validate(value: Any, node: Schema, path: str = "") -> list[str]:
    errors: list[str] = []
    kind = node.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }
    if kind is not None and not checks[kind](value):
        return [f"{path}: expected {kind}, got {value!r}"]
    if "enum" in node and value not in node["enum"]:
        errors.append(f"{path}: {value!r} not in enum")
    if isinstance(value, str):
        if "pattern" in node and re.search(node["pattern"], value) is None:
            errors.append(f"{path}: {value!r} does not match {node['pattern']}")
        if len(value) > node.get("maxLength", len(value)):
            errors.append(f"{path}: too long")
        if node.get("format") == "date-time":
            datetime.fromisoformat(value)
    out_of_range = isinstance(value, int) and not (
        node.get("minimum", value) <= value <= node.get("maximum", value)
    )
    if out_of_range and not isinstance(value, bool):
        errors.append(f"{path}: {value} out of range")
    if isinstance(value, dict):
        errors += [f"{path}.{r}: required" for r in node.get("required", []) if r not in value]
        if len(value) > node.get("maxProperties", len(value)):
            errors.append(f"{path}: too many properties")
        properties = node.get("properties", {})
        for key, child in value.items():
            if key in properties:
                errors += validate(child, properties[key], f"{path}.{key}")
            elif "additionalProperties" in node:
                errors += validate(child, node["additionalProperties"], f"{path}.{key}")
            elif not node.get("x-kubernetes-preserve-unknown-fields"):
                errors.append(f"{path}.{key}: would be pruned")
    if isinstance(value, list):
        if len(value) > node.get("maxItems", len(value)):
            errors.append(f"{path}: too many items")
        errors += [
            e for i, v in enumerate(value) for e in validate(v, node["items"], f"{path}[{i}]")
        ]
    return errors


def test_real_spec_and_status_validate_against_schema(
    schema: Schema, catalog: dict[str, LabDefinition], now: datetime
) -> None:
    spec = LabSpec.model_validate(
        {
            "lab": "smoke",
            "learner": "alice@example.com",
            "ttl": "1h30m",
            "parameters": {"replicas": 2, "greeting": "hi"},
            "validation": {"intervalSeconds": 60},
        }
    ).to_wire()
    assert validate(spec, schema["properties"]["spec"], "spec") == []

    plan = plan_lab("smoke-alice", "u", 1, spec, None, catalog, now, set())
    status = mark_provisioned(plan.status, now, 1)
    status = apply_task_results(
        status,
        [
            TaskResult(
                id="scale-web",
                state="Passed",
                checked_at="2026-11-21T10:00:00Z",
                evidence={"replicas": 2},
            )
        ],
        now,
        1,
    )
    assert validate(status.to_patch(), schema["properties"]["status"], "status") == []


def test_mini_validator_catches_drift(schema: Schema) -> None:
    spec_schema = schema["properties"]["spec"]
    assert validate({"lab": "Bad", "learner": "a"}, spec_schema)
    assert validate({"lab": "ok"}, spec_schema)
    assert validate({"lab": "ok", "learner": "a", "typo": 1}, spec_schema)


def test_chart_ships_the_same_crd(crd_path: Path) -> None:
    chart_copy = crd_path.parents[1] / "charts" / "roadlab" / "crds" / "lab.yaml"
    assert chart_copy.read_text() == crd_path.read_text(), (
        "run: cp crds/lab.yaml charts/roadlab/crds/"
    )
