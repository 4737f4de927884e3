"""scripts/k8s_schemas.py --crds: the JSON schemas chart-lint validates the chart's own
custom resources with (the built-in Roadmaps), written from the repository's CRD files.
The server's document cannot serve them: a fresh cluster has no Roadmap CRD yet."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BUILTIN_ROADMAPS = REPO / "charts" / "roadlab" / "roadmaps"


@pytest.fixture(scope="module")
def k8s_schemas() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "k8s_schemas", REPO / "scripts" / "k8s_schemas.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def schemas(k8s_schemas: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crd-schemas")
    files = sorted(str(path) for path in (REPO / "crds").glob("*.yaml"))
    assert k8s_schemas.crd_schemas(out, files) == len(files)
    return out


def roadmap_schema(schemas: Path) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((schemas / "roadmap-roadlab-v1alpha1.json").read_text())
    del schema["$schema"]  # kubeconform's draft URL; jsonschema warns of it and uses the latest
    return schema


def test_one_schema_per_kind_named_as_kubeconform_looks_it_up(schemas: Path) -> None:
    assert sorted(path.name for path in schemas.iterdir()) == [
        "cohort-roadlab-v1alpha1.json",
        "enrollment-roadlab-v1alpha1.json",
        "lab-roadlab-v1alpha1.json",
        "roadmap-roadlab-v1alpha1.json",
    ]


@pytest.mark.parametrize("path", sorted(BUILTIN_ROADMAPS.glob("*.yaml")))
def test_builtin_roadmaps_are_valid(schemas: Path, path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), roadmap_schema(schemas))


def test_unknown_fields_are_refused_and_preserved_ones_kept(schemas: Path) -> None:
    roadmap = yaml.safe_load(
        (REPO / "charts/roadlab/roadmaps/backend-cloud-mlops.yaml").read_text()
    )
    schema = roadmap_schema(schemas)
    typo = copy.deepcopy(roadmap)
    typo["spec"]["milestones"][0]["tittle"] = "a typo"
    with pytest.raises(jsonschema.ValidationError, match="tittle"):
        jsonschema.validate(typo, schema)
    with_params = copy.deepcopy(roadmap)
    lab_milestone = next(m for m in with_params["spec"]["milestones"] if "lab" in m)
    # Parameters are free-form (x-kubernetes-preserve-unknown-fields): the catalog checks them.
    lab_milestone["parameters"] = {"anyName": 3}
    jsonschema.validate(with_params, schema)


def test_int_or_string_and_nullable_become_json_schema(k8s_schemas: ModuleType) -> None:
    converted = k8s_schemas.structural(
        {
            "type": "object",
            "properties": {
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
            },
        }
    )
    assert converted == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "port": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "note": {"type": ["string", "null"]},
        },
    }
