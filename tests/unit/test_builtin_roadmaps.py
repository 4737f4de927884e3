"""The chart's side of Roadmaps: the built-in Roadmaps (charts/roadlab/roadmaps/*.yaml)
against the catalog, the admission policy that limits a learner's patch of their
Enrollment, the operator's RBAC for what it grants enrolled learners, the public key's
Role, and the dashboard's Roadmaps row. No cluster, no helm (rendering: test_chart.py)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from roadlab.api import naming
from roadlab.api.roadmap import (
    OBJECT_NAME_PATTERN,
    START_REQUEST_RE2,
    RoadmapSpec,
    parse_start_request,
)
from roadlab.catalog.roadmaps import roadmap_problems
from roadlab.catalog.schema import LabDefinition
from roadlab.controller.enrollee import enrollee_objects

CHART = Path(__file__).resolve().parents[2] / "charts" / "roadlab"
ROADMAP_FILES = sorted((CHART / "roadmaps").glob("*.yaml"))
# The labs planned next: a milestone they will teach is listed, without a lab, under this id.
PLANNED_LAB_IDS = {"helm", "gitops", "observability", "streaming", "model-api"}
NAMESPACE = "roadlab-system"


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def spec_of(path: Path) -> RoadmapSpec:
    return RoadmapSpec.model_validate(load(path)["spec"])


def chart_documents(template: str) -> list[dict[str, Any]]:
    """The template's YAML documents, in release namespace NAMESPACE, with the other Helm
    directives' lines left out."""
    text = (
        (CHART / "templates" / template).read_text().replace("{{ .Release.Namespace }}", NAMESPACE)
    )
    plain = "\n".join(line for line in text.splitlines() if "{{" not in line)
    return [doc for doc in yaml.safe_load_all(plain) if doc]


def find(template: str, kind: str, name: str) -> dict[str, Any]:
    for doc in chart_documents(template):
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name} in templates/{template}")


# --- the built-in Roadmaps -----------------------------------------------------------------


def test_there_is_one_builtin_roadmap_per_learners_roadmap() -> None:
    sources = sorted(spec_of(path).source for path in ROADMAP_FILES)
    assert sources == [
        "backend-cloud-mlops-roadmap.ko.md",
        "career-map.ko.md",
        "cloud-mlops-java-architect-3y.zh.md",
        "data-science-production.ko.md",
    ]


@pytest.mark.parametrize("path", ROADMAP_FILES, ids=lambda p: p.stem)
def test_builtin_roadmap_is_a_full_roadmap_object(path: Path) -> None:
    document = load(path)
    assert document["apiVersion"] == naming.API_VERSION
    assert document["kind"] == "Roadmap"
    name = document["metadata"]["name"]
    assert re.fullmatch(OBJECT_NAME_PATTERN, name), name
    assert len(name) <= 40
    assert path.stem == name  # one file per Roadmap, named after it
    spec = spec_of(path)
    assert spec.description, "say whose plan it follows"
    assert spec.description.isascii() and spec.title.isascii()  # English


@pytest.mark.parametrize("path", ROADMAP_FILES, ids=lambda p: p.stem)
def test_builtin_roadmap_has_no_problems_against_the_catalog(
    path: Path, catalog: dict[str, LabDefinition]
) -> None:
    assert roadmap_problems(spec_of(path), catalog) == []


@pytest.mark.parametrize("path", ROADMAP_FILES, ids=lambda p: p.stem)
def test_builtin_roadmap_names_a_coming_milestone(path: Path) -> None:
    assert any(milestone.coming for milestone in spec_of(path).milestones)


@pytest.mark.parametrize("path", ROADMAP_FILES, ids=lambda p: p.stem)
def test_no_lab_milestone_waits_for_a_coming_one(path: Path) -> None:
    # A coming milestone is never completed: a lab requiring it would stay locked forever.
    spec = spec_of(path)
    coming = {m.id for m in spec.milestones if m.coming}
    blocked = [
        (m.id, r) for m in spec.milestones if not m.coming for r in m.requires if r in coming
    ]
    assert not blocked


@pytest.mark.parametrize("path", ROADMAP_FILES, ids=lambda p: p.stem)
def test_planned_lab_ids_are_still_coming(path: Path) -> None:
    # A planned lab's milestone has no lab (it shows as coming, honestly) until that lab is
    # in the catalog, and then that one.
    for milestone in spec_of(path).milestones:
        if milestone.id in PLANNED_LAB_IDS and milestone.lab != milestone.id:
            assert milestone.coming and not milestone.parameters, milestone.id


def test_every_catalog_lab_but_smoke_is_in_a_builtin_roadmap(
    catalog: dict[str, LabDefinition],
) -> None:
    used = {m.lab for path in ROADMAP_FILES for m in spec_of(path).milestones if m.lab}
    assert "smoke" not in used  # a test of Roadlab itself, not a milestone
    assert set(catalog) - {"smoke"} <= used


# --- the Enrollment admission policy -------------------------------------------------------


def enrollment_policy() -> tuple[dict[str, Any], dict[str, Any]]:
    name = naming.LEARNER_ENROLLMENT_POLICY
    return (
        find("lab-policies.yaml", "ValidatingAdmissionPolicy", name),
        find("lab-policies.yaml", "ValidatingAdmissionPolicyBinding", name),
    )


def variable(policy: dict[str, Any], name: str) -> str:
    expression: str = next(v for v in policy["spec"]["variables"] if v["name"] == name)[
        "expression"
    ]
    return expression


def test_enrollment_policy_is_bound_and_matches_learners_updates_of_enrollments() -> None:
    policy, binding = enrollment_policy()
    assert binding["spec"] == {
        "policyName": naming.LEARNER_ENROLLMENT_POLICY,
        "validationActions": ["Deny"],
    }
    assert policy["spec"]["failurePolicy"] == "Fail"
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == [naming.GROUP]
    assert rule["operations"] == ["UPDATE"]
    assert rule["resources"] == ["enrollments"]
    (condition,) = policy["spec"]["matchConditions"]
    expression = condition["expression"]
    assert "!('system:masters' in request.userInfo.groups)" in expression
    operator = f"system:serviceaccount:{NAMESPACE}:roadlab-operator"
    assert f"request.userInfo.username != '{operator}'" in expression
    enrollee = f"system:serviceaccount:{NAMESPACE}:{naming.enrollee_name('')}"
    assert f"'{enrollee}' + oldObject.metadata.name" in expression
    assert "request.userInfo.username == oldObject.spec.learner" in expression
    assert "startsWith('system:serviceaccount:lab-')" in expression
    assert f"endsWith(':{naming.LEARNER_SERVICE_ACCOUNT}')" in expression


def test_a_learner_may_change_only_the_start_request() -> None:
    policy, _ = enrollment_policy()
    keys = ast.literal_eval(variable(policy, "requestKeys"))
    assert keys == [naming.ANNOTATION_START_REQUESTED]
    unchanged = " ".join(v["expression"] for v in policy["spec"]["validations"])
    for field in ("object.spec ==", "labels", "ownerReferences", "finalizers"):
        assert field in unchanged


def policy_start_request_re2() -> str:
    policy, _ = enrollment_policy()
    key = re.escape(naming.ANNOTATION_START_REQUESTED)
    patterns = [
        match[1]
        for validation in policy["spec"]["validations"]
        for match in re.finditer(rf"\['{key}'\]\.matches\('([^']*)'\)", validation["expression"])
    ]
    assert len(patterns) == 1, patterns
    return patterns[0]


def test_the_policy_checks_the_operators_start_request_pattern() -> None:
    assert policy_start_request_re2() == START_REQUEST_RE2


@pytest.mark.parametrize(
    "value",
    ["1764629000", "tok:1", "a/autoscaling", "a.b_c-d:e/m1", "", "/m", "a/", "a/B", "a b", "a/-m"],
)
def test_the_policy_pattern_accepts_what_the_operator_parses(value: str) -> None:
    # RE2 and Python's re agree on this pattern (no look-around, no back-references).
    accepted = re.search(policy_start_request_re2(), value) is not None
    assert accepted == (parse_start_request(value) is not None)


def test_enrollees_may_patch_their_lab_only_through_its_enrollment_label() -> None:
    lab_policy = find(
        "lab-policies.yaml", "ValidatingAdmissionPolicy", "roadlab-learner-lab-requests"
    )
    (condition,) = lab_policy["spec"]["matchConditions"]
    expression = " ".join(condition["expression"].split())
    label = f"oldObject.metadata.?labels[?'{naming.LABEL_ENROLLMENT}'].orValue('')"
    # Guarded: a Lab without the label (or with an empty one) never matches the bare prefix.
    assert f"({label} != '' &&" in expression
    enrollee = f"system:serviceaccount:{NAMESPACE}:{naming.enrollee_name('')}"
    assert f"request.userInfo.username == '{enrollee}' + {label}" in expression


# --- RBAC ----------------------------------------------------------------------------------


def operator_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = find("rbac.yaml", "ClusterRole", "roadlab-operator")["rules"]
    return rules


def holds(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and verb in rule.get("verbs", [])
        and not rule.get("resourceNames")
        for rule in rules
    )


def test_operator_holds_every_permission_it_grants_enrolled_learners() -> None:
    # RBAC escalation prevention: the enrollee ClusterRole is refused unless the operator
    # holds each of its rules itself.
    objects = enrollee_objects("e", "uid", "alice", ["e-autoscaling"], "roadlab-system")
    (role,) = [o for o in objects if o["kind"] == "ClusterRole"]
    missing = [
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        if not holds(operator_rules(), group, resource, verb)
    ]
    assert not missing


@pytest.mark.parametrize(
    ("resource", "verbs"),
    [
        ("roadmaps", {"get", "list", "watch", "patch", "update", "create"}),
        ("cohorts", {"get", "list", "watch", "patch", "update", "create"}),
        ("enrollments", {"get", "list", "watch", "patch", "update", "create", "delete"}),
        ("labs", {"get", "list", "watch", "patch", "update", "create", "delete"}),
        ("roadmaps/status", {"get", "patch", "update"}),
        ("enrollments/status", {"get", "patch", "update"}),
        ("cohorts/status", {"get", "patch", "update"}),
    ],
)
def test_operator_may_run_roadmaps(resource: str, verbs: set[str]) -> None:
    granted = {
        verb
        for rule in operator_rules()
        if naming.GROUP in rule["apiGroups"] and resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == verbs


def test_everyone_signed_in_may_read_the_public_keys_and_nothing_else() -> None:
    role = find("rbac.yaml", "Role", naming.PUBLIC_KEYS_CONFIGMAP)
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [naming.PUBLIC_KEYS_CONFIGMAP],
            "verbs": ["get"],
        }
    ]
    binding = find("rbac.yaml", "RoleBinding", naming.PUBLIC_KEYS_CONFIGMAP)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": naming.PUBLIC_KEYS_CONFIGMAP,
    }
    assert binding["subjects"] == [
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"}
    ]


# --- values and the dashboard ---------------------------------------------------------------


def test_builtin_roadmaps_are_on_by_default() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["roadmaps"] == {"builtin": True}
    template = (CHART / "templates" / "roadmaps.yaml").read_text()
    assert ".Values.roadmaps.builtin" in template
    assert '.Files.Glob "roadmaps/*.yaml"' in template


def test_dashboard_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = json.loads((CHART / "dashboards" / "roadlab.json").read_text())["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
    exprs = " ".join(t["expr"] for panel in panels for t in panel.get("targets", []))
    for metric in (
        "roadlab_milestones_completed_total",
        "roadlab_milestone_completion_seconds_bucket",
        "roadlab_enrollments",
    ):
        assert metric in exprs
