from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from roadlab.catalog.loader import (
    CatalogError,
    ParameterError,
    check_known_parameters,
    load_catalog,
    load_lab_definition,
    resolve_parameters,
)
from roadlab.catalog.schema import LabDefinition


def write_lab(root: Path, lab_id: str = "demo", **overrides: Any) -> Path:
    lab_dir = root / lab_id
    (lab_dir / "templates").mkdir(parents=True)
    (lab_dir / "templates" / "cm.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: "{{ params.a }}"\n'
    )
    body: dict[str, Any] = {
        "id": lab_id,
        "title": "Demo",
        "difficulty": "beginner",
        "duration": 10,
        "parameters": {"a": {"type": "string", "default": "x"}},
        "environment": {"templates": ["templates/cm.yaml"]},
        "tasks": [
            {
                "id": "t1",
                "title": "T1",
                "check": {
                    "probe": "resource",
                    "args": {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm"},
                },
            }
        ],
    }
    body.update(overrides)
    (lab_dir / "lab.yaml").write_text(yaml.safe_dump(body))
    return lab_dir


def test_real_catalog_loads(catalog: dict[str, LabDefinition], labs_root: Path) -> None:
    assert "smoke" in catalog
    smoke = catalog["smoke"]
    assert smoke.difficulty == "beginner"
    assert smoke.duration == 5
    assert [t.id for t in smoke.tasks] == ["scale-web", "configmap-answer"]
    assert smoke.tasks[0].check.args["fieldEquals"] == {"spec.replicas": 2}
    assert set(smoke.template_sources) == {"templates/app.yaml"}
    assert smoke.solution is not None
    assert (labs_root / "smoke" / smoke.solution).is_file()


def test_load_lab_definition(tmp_path: Path) -> None:
    definition = load_lab_definition(write_lab(tmp_path))
    assert definition.id == "demo"
    assert "params.a" in definition.template_sources["templates/cm.yaml"]


def test_load_catalog_skips_hidden_and_files(tmp_path: Path) -> None:
    write_lab(tmp_path, "one")
    write_lab(tmp_path, "two")
    (tmp_path / "_shared").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "README.md").write_text("hi")
    assert sorted(load_catalog(tmp_path)) == ["one", "two"]


def test_load_catalog_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match=r"empty: missing lab.yaml"):
        load_catalog(tmp_path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"id": "other"}, "must equal the directory name 'demo'"),
        ({"titel": "x"}, "titel: Extra inputs are not permitted"),
        ({"environment": {"templates": ["templates/missing.yaml"]}}, "does not exist"),
        ({"solution": "solution/none.sh"}, "solution 'solution/none.sh' does not exist"),
        (
            {"tasks": [{"id": "t1", "title": "T1", "check": {"probe": "nope"}}]},
            r"lab 'demo', task 't1': check: unknown probe 'nope' "
            r"\(known: flux, gitops_drift, helm_release, http, http_latency, kafka, kserve_v2, ",
        ),
        (
            {
                "tasks": [
                    {
                        "id": "t1",
                        "title": "T1",
                        "check": {
                            "probe": "resource",
                            "args": {"apiVersion": "v1", "kind": "ConfigMap", "nmae": "x"},
                        },
                    }
                ]
            },
            r"task 't1': check: probe 'resource': invalid args: name: Field required; "
            r"nmae: Extra inputs are not permitted",
        ),
        (
            {
                "tasks": [
                    {
                        "id": "t1",
                        "title": "T1",
                        "check": {
                            "probe": "rollout",
                            "args": {"name": "web", "minReady": -1},
                        },
                    }
                ]
            },
            r"task 't1': check: probe 'rollout': invalid args: minReady: Input should be "
            r"greater than or equal to 0",
        ),
        (
            {
                "environment": {
                    "learnerRules": [
                        {
                            "apiGroups": ["rbac.authorization.k8s.io"],
                            "resources": ["roles"],
                            "verbs": ["get"],
                        }
                    ]
                }
            },
            "RBAC",
        ),
    ],
)
def test_load_lab_definition_errors_name_the_file(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    lab_dir = write_lab(tmp_path, **overrides)
    with pytest.raises(CatalogError, match=message) as info:
        load_lab_definition(lab_dir)
    assert str(lab_dir) in str(info.value)


def test_invalid_yaml_and_non_mapping(tmp_path: Path) -> None:
    lab_dir = write_lab(tmp_path)
    (lab_dir / "lab.yaml").write_text("id: [unclosed")
    with pytest.raises(CatalogError, match=r"lab\.yaml: invalid YAML"):
        load_lab_definition(lab_dir)
    (lab_dir / "lab.yaml").write_text("- a list")
    with pytest.raises(CatalogError, match="expected a mapping"):
        load_lab_definition(lab_dir)
    with pytest.raises(CatalogError, match="cannot read"):
        load_lab_definition(tmp_path / "missing")


def test_bad_template_is_caught_at_load(tmp_path: Path) -> None:
    lab_dir = write_lab(tmp_path)
    (lab_dir / "templates" / "cm.yaml").write_text('data:\n  a: "{{ params.a "\n')
    with pytest.raises(CatalogError, match=r"cm.yaml: at data.a"):
        load_lab_definition(lab_dir)
    (lab_dir / "templates" / "cm.yaml").write_text("data:\n  a: {{ params.a }}\n")
    with pytest.raises(CatalogError, match=r"cm\.yaml: invalid YAML"):
        load_lab_definition(lab_dir)


def test_template_symlink_outside_lab_is_refused(tmp_path: Path) -> None:
    lab_dir = write_lab(tmp_path)
    outside = tmp_path / "secret.yaml"
    outside.write_text("x: 1")
    (lab_dir / "templates" / "cm.yaml").unlink()
    (lab_dir / "templates" / "cm.yaml").symlink_to(outside)
    with pytest.raises(CatalogError, match="outside the lab directory"):
        load_lab_definition(lab_dir)


def test_resolve_parameters_defaults_and_overrides(smoke: LabDefinition) -> None:
    assert resolve_parameters(smoke, {}) == {"greeting": "hello", "replicas": 1}
    assert resolve_parameters(smoke, {"replicas": 3}) == {"greeting": "hello", "replicas": 3}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"color": "red"},
            r"unknown parameter\(s\) 'color' for lab 'smoke' \(declared: greeting, replicas\)",
        ),
        ({"replicas": "2"}, r"'replicas': got '2' \(string\), expected an integer >= 1 and <= 3"),
        ({"replicas": True}, r"'replicas': got True \(boolean\)"),
        ({"replicas": 4}, r"'replicas': got 4"),
        ({"replicas": 2.0}, r"'replicas': got 2.0 \(float\)"),
        (
            {"greeting": "Hello!"},
            r"'greeting': got 'Hello!' \(string\), expected a string .*\^\[a-z \]",
        ),
        ({"greeting": 5}, r"'greeting': got 5 \(integer\)"),
    ],
)
def test_resolve_parameters_rejects(
    smoke: LabDefinition, given: dict[str, object], message: str
) -> None:
    with pytest.raises(ParameterError, match=message):
        resolve_parameters(smoke, given)


def test_resolve_parameters_required() -> None:
    definition = LabDefinition.model_validate(
        {
            "id": "demo",
            "title": "Demo",
            "difficulty": "advanced",
            "duration": 60,
            "parameters": {
                "enabled": {"type": "boolean"},
                "size": {"type": "integer", "enum": [1, 2]},
            },
            "tasks": [{"id": "t", "title": "T", "check": {"probe": "p"}}],
        }
    )
    with pytest.raises(ParameterError, match="'enabled' is required"):
        resolve_parameters(definition, {"size": 1})
    with pytest.raises(ParameterError, match=r"'size': got 3 \(integer\), expected one of 1, 2"):
        resolve_parameters(definition, {"enabled": True, "size": 3})
    assert resolve_parameters(definition, {"enabled": False, "size": 2}) == {
        "enabled": False,
        "size": 2,
    }


def test_templated_check_args_are_validated_as_rendered(tmp_path: Path) -> None:
    def task(args: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": "t1", "title": "T1", "check": {"probe": "rollout", "args": args}}]

    parameters = {"a": {"type": "string", "default": "x"}, "n": {"type": "integer", "minimum": 2}}
    good = write_lab(
        tmp_path / "good",
        parameters=parameters,
        tasks=task({"name": "{{ params.a }}", "minReady": "{{ params.n }}"}),
    )
    assert load_lab_definition(good).tasks[0].check.args["minReady"] == "{{ params.n }}"
    bad = write_lab(
        tmp_path / "bad",
        parameters=parameters,
        tasks=task({"name": "web", "minReady": "{{ params.a }}"}),
    )
    with pytest.raises(
        CatalogError, match=r"task 't1': check: probe 'rollout': invalid args: minReady"
    ):
        load_lab_definition(bad)
    broken = write_lab(
        tmp_path / "broken", parameters=parameters, tasks=task({"name": "{{ params.nope }}"})
    )
    with pytest.raises(CatalogError, match=r"task 't1': check: args: at name: UndefinedError"):
        load_lab_definition(broken)


RANGE_PARAMETERS = {
    "low": {"type": "integer", "default": 1, "minimum": 0, "maximum": 9},
    "high": {"type": "integer", "default": 4, "minimum": 0, "maximum": 9},
}


def test_parameter_rules_relate_parameters(tmp_path: Path) -> None:
    rule = {"rule": "params.low < params.high", "message": "high must exceed low"}
    definition = load_lab_definition(
        write_lab(tmp_path, parameters=RANGE_PARAMETERS, parameterRules=[rule])
    )
    assert resolve_parameters(definition, {"low": 2, "high": 3}) == {"low": 2, "high": 3}
    with pytest.raises(ParameterError, match=r"high must exceed low \(parameters: high=2, low=3\)"):
        resolve_parameters(definition, {"low": 3, "high": 2})


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("params.low > params.high", "the default parameters break the rule"),
        ("params.low <", "parameter rule"),
        ("params.nothing", "parameter rule"),
    ],
)
def test_parameter_rules_are_checked_at_load(tmp_path: Path, rule: str, message: str) -> None:
    lab_dir = write_lab(
        tmp_path, parameters=RANGE_PARAMETERS, parameterRules=[{"rule": rule, "message": "m"}]
    )
    with pytest.raises(CatalogError, match=message):
        load_lab_definition(lab_dir)


def test_the_hpa_lab_refuses_crossed_bounds(catalog: dict[str, LabDefinition]) -> None:
    with pytest.raises(ParameterError, match="maxReplicas must be greater than minReplicas"):
        resolve_parameters(catalog["hpa"], {"minReplicas": 3, "maxReplicas": 2})


def test_unknown_parameters_read_the_same_for_the_operator_and_the_cli(
    smoke: LabDefinition,
) -> None:
    """One check: quoted for a Lab's status, as typed for kubectl lab."""
    check_known_parameters(smoke, ["replicas", "greeting"])
    declared = ", ".join(sorted(smoke.parameters))
    with pytest.raises(ParameterError) as quoted:
        check_known_parameters(smoke, ["replicas", "colour"])
    assert (
        str(quoted.value) == f"unknown parameter(s) 'colour' for lab 'smoke' (declared: {declared})"
    )
    with pytest.raises(ParameterError) as typed:
        check_known_parameters(smoke, ["colour"], quoted=False)
    assert str(typed.value) == f"unknown parameter(s) colour for lab smoke (declared: {declared})"


def test_a_helm_release_check_needs_the_release_readable() -> None:
    lab: dict[str, Any] = {
        "id": "demo",
        "title": "Demo",
        "difficulty": "beginner",
        "duration": 10,
        "tasks": [
            {
                "id": "t1",
                "title": "T",
                "check": {"probe": "helm_release", "args": {"release": "web"}},
            }
        ],
    }
    with pytest.raises(ValueError, match=r"release 'web' must be listed in environment\.checker"):
        LabDefinition.model_validate(lab)
    lab["environment"] = {"checkerHelmReleases": ["web"]}
    assert LabDefinition.model_validate(lab).environment.checker_helm_releases == ["web"]
