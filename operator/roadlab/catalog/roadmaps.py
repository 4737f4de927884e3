"""A Roadmap checked against the catalog, and the digest that names a lab's definition in
certificates. No I/O."""

from __future__ import annotations

from collections.abc import Mapping

from roadlab.api.certificates import sha256_of
from roadlab.api.roadmap import RoadmapSpec, structure_problems
from roadlab.catalog.loader import resolve_parameters
from roadlab.catalog.schema import LabDefinition, ParameterError


def roadmap_problems(spec: RoadmapSpec, catalog: Mapping[str, LabDefinition]) -> list[str]:
    """Everything that keeps a roadmap from being followed: its order (structure_problems),
    milestones naming a lab the catalog lacks, and parameters the lab refuses."""
    problems = structure_problems(spec)
    for milestone in spec.milestones:
        if milestone.lab is None:
            if milestone.parameters:
                problems.append(f"milestone {milestone.id!r} has parameters but no lab")
            continue
        definition = catalog.get(milestone.lab)
        if definition is None:
            known = ", ".join(sorted(catalog)) or "none"
            problems.append(
                f"milestone {milestone.id!r} names lab {milestone.lab!r}, which is not in the "
                f"catalog (known: {known})"
            )
            continue
        try:
            resolve_parameters(definition, milestone.parameters)
        except ParameterError as error:
            problems.append(f"milestone {milestone.id!r}: {error}")
    return problems


def definition_sha256(definition: LabDefinition) -> str:
    """SHA-256 of a lab's definition with its template texts: a certificate names the exact
    exercise that was passed, and a changed lab gets a new digest."""
    return sha256_of(
        {
            "definition": definition.model_dump(mode="json", by_alias=True),
            "templates": definition.template_sources,
        }
    )
