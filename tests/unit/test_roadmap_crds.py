"""crds/roadmap.yaml, enrollment.yaml and cohort.yaml agree with roadlab.api.roadmap, and
their chart copies with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from tests.unit.conftest import REPO_ROOT
from tests.unit.test_crd import model_aliases, walk

from roadlab.api import roadmap as rm
from roadlab.api.lab import LAB_ID_PATTERN, LEARNER_PATTERN, Condition

CRDS = {name: REPO_ROOT / "crds" / f"{name}.yaml" for name in ("roadmap", "enrollment", "cohort")}


def schema_of(name: str) -> dict[str, Any]:
    crd = yaml.safe_load(CRDS[name].read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("crd", "model", "path"),
    [
        ("roadmap", rm.RoadmapSpec, ".spec"),
        ("roadmap", rm.Milestone, ".spec.milestones[]"),
        ("roadmap", rm.RoadmapStatus, ".status"),
        ("enrollment", rm.EnrollmentSpec, ".spec"),
        ("enrollment", rm.EnrollmentStatus, ".status"),
        ("enrollment", rm.MilestoneRecord, ".status.milestones[]"),
        ("enrollment", rm.TaskRecord, ".status.milestones[].tasks[]"),
        ("enrollment", rm.StartRequest, ".status.lastStart"),
        ("enrollment", Condition, ".status.conditions[]"),
        ("cohort", rm.CohortSpec, ".spec"),
        ("cohort", rm.CohortStatus, ".status"),
    ],
)
def test_every_model_field_is_in_the_schema(crd: str, model: type[BaseModel], path: str) -> None:
    node = dict(walk(schema_of(crd)))[path]
    assert model_aliases(model) == set(node["properties"]), model.__name__


def test_patterns_match_the_models() -> None:
    roadmap = dict(walk(schema_of("roadmap")))
    assert roadmap[".spec.milestones[].id"]["pattern"] == rm.MILESTONE_ID_PATTERN
    assert roadmap[".spec.milestones[].requires[]"]["pattern"] == rm.MILESTONE_ID_PATTERN
    assert roadmap[".spec.milestones[].lab"]["pattern"] == LAB_ID_PATTERN
    assert roadmap[".spec.milestones"]["maxItems"] == rm.MAX_MILESTONES
    for crd in ("enrollment", "cohort"):
        nodes = dict(walk(schema_of(crd)))
        assert nodes[".spec.roadmap"]["pattern"] == rm.OBJECT_NAME_PATTERN
        learner = nodes[".spec.learner"] if crd == "enrollment" else nodes[".spec.learners[]"]
        assert learner["pattern"] == LEARNER_PATTERN
    cohort = dict(walk(schema_of("cohort")))
    assert cohort[".spec.learners"]["maxItems"] == rm.MAX_COHORT_LEARNERS


@pytest.mark.parametrize("name", sorted(CRDS))
def test_the_chart_ships_the_same_crd(name: str) -> None:
    chart_copy = REPO_ROOT / "charts" / "roadlab" / "crds" / f"{name}.yaml"
    assert chart_copy.read_text() == CRDS[name].read_text(), (
        f"run: cp crds/{name}.yaml charts/roadlab/crds/"
    )


def test_short_names_and_printer_columns() -> None:
    for name, short in (("roadmap", "rmap"), ("enrollment", "enr"), ("cohort", "coh")):
        crd = yaml.safe_load(Path(CRDS[name]).read_text())
        assert crd["spec"]["names"]["shortNames"] == [short]
        columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
        assert "Ready" in columns and "Age" in columns
