"""Loading the lab catalog (labs/<id>/lab.yaml) and resolving a Lab's parameters.

All file I/O happens here, at startup, so that planning a Lab stays pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from roadlab.api.lab import ParamValue
from roadlab.catalog.policy import check_learner_rules
from roadlab.catalog.rendering import (
    RenderError,
    check_template,
    evaluate_rule,
    render_context,
    render_data,
)
from roadlab.catalog.schema import LabDefinition, ParameterError, ParameterRule
from roadlab.probes import validate_check

__all__ = [
    "LAB_FILE",
    "CatalogError",
    "ParameterError",
    "format_validation_error",
    "load_catalog",
    "load_lab_definition",
    "resolve_parameters",
]

LAB_FILE = "lab.yaml"


class CatalogError(ValueError):
    """The catalog on disk is broken; the message names the offending file."""


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem, "path.to.field: message", without pydantic's URLs."""
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "<root>"
        lines.append(f"{location}: {error['msg']}")
    return "; ".join(lines)


def _inside(root: Path, relative: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise CatalogError(f"{root / relative}: points outside the lab directory")
    return path


def _sample_parameters(definition: LabDefinition) -> dict[str, ParamValue]:
    """Defaults, and for required parameters a plausible value of the declared type."""
    sample: dict[str, ParamValue] = {}
    for name, declaration in definition.parameters.items():
        if declaration.default is not None:
            sample[name] = declaration.default
        elif declaration.enum:
            sample[name] = declaration.enum[0]
        elif declaration.type == "integer":
            sample[name] = next(
                (v for v in (declaration.minimum, declaration.maximum) if v is not None), 1
            )
        else:
            sample[name] = False if declaration.type == "boolean" else "sample"
    return sample


def broken_rule(
    definition: LabDefinition, params: Mapping[str, ParamValue]
) -> ParameterRule | None:
    """The first parameter rule the values break, if any (RenderError if one fails)."""
    for rule in definition.parameter_rules:
        if not evaluate_rule(rule.rule, params):
            return rule
    return None


def _validate_parameter_rules(lab_file: Path, definition: LabDefinition) -> None:
    """Rules compile, and the sample parameters (the defaults) satisfy them."""
    try:
        broken = broken_rule(definition, _sample_parameters(definition))
    except RenderError as exc:
        raise CatalogError(f"{lab_file}: lab {definition.id!r}: {exc}") from exc
    if broken is not None:
        raise CatalogError(
            f"{lab_file}: lab {definition.id!r}: the default parameters break the rule "
            f"{broken.rule!r}"
        )


def _validate_checks(lab_file: Path, definition: LabDefinition) -> None:
    """Each task's probe exists and its args fit it, as rendered for sample parameters."""
    context = render_context(_sample_parameters(definition), definition.id, "learner", "lab-x")
    for task in definition.tasks:
        try:
            args = render_data("args", task.check.args, context)
            validate_check(task.check.probe, args)
        except ValueError as exc:  # RenderError is a ValueError too
            raise CatalogError(
                f"{lab_file}: lab {definition.id!r}, task {task.id!r}: check: {exc}"
            ) from exc


def load_lab_definition(lab_dir: Path | str) -> LabDefinition:
    """Read and validate one lab directory, attaching its template texts."""
    lab_dir = Path(lab_dir)
    lab_file = lab_dir / LAB_FILE
    try:
        raw = yaml.safe_load(lab_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"{lab_file}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise CatalogError(f"{lab_file}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{lab_file}: expected a mapping at the top level")
    try:
        definition = LabDefinition.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(f"{lab_file}: {format_validation_error(exc)}") from exc
    if definition.id != lab_dir.name:
        raise CatalogError(
            f"{lab_file}: id {definition.id!r} must equal the directory name {lab_dir.name!r}"
        )
    _validate_parameter_rules(lab_file, definition)
    _validate_checks(lab_file, definition)
    try:
        check_learner_rules(definition.environment.learner_rules)
    except ValueError as exc:
        raise CatalogError(f"{lab_file}: environment.{exc}") from exc

    sources: dict[str, str] = {}
    for relative in definition.environment.templates:
        path = _inside(lab_dir, relative)
        if not path.is_file():
            raise CatalogError(f"{lab_file}: template {relative!r} does not exist")
        sources[relative] = path.read_text(encoding="utf-8")
        try:
            check_template(str(lab_dir / relative), sources[relative])
        except RenderError as exc:
            raise CatalogError(str(exc)) from exc
    if definition.solution is not None and not _inside(lab_dir, definition.solution).exists():
        raise CatalogError(f"{lab_file}: solution {definition.solution!r} does not exist")
    return definition.with_template_sources(sources)


def lab_dirs(labs_root: Path) -> list[Path]:
    """The catalog's lab directories, sorted: every subdirectory not starting with '.' or '_'."""
    return [
        lab_dir
        for lab_dir in sorted(labs_root.iterdir())
        if lab_dir.is_dir() and not lab_dir.name.startswith((".", "_"))
    ]


def load_catalog(labs_root: Path | str) -> dict[str, LabDefinition]:
    """Every lab under labs_root, by id. Directories starting with '.' or '_' are skipped."""
    labs_root = Path(labs_root)
    if not labs_root.is_dir():
        raise CatalogError(f"{labs_root}: catalog directory does not exist")
    catalog: dict[str, LabDefinition] = {}
    for lab_dir in lab_dirs(labs_root):
        if not (lab_dir / LAB_FILE).is_file():
            raise CatalogError(f"{lab_dir}: missing {LAB_FILE}")
        definition = load_lab_definition(lab_dir)
        catalog[definition.id] = definition
    return catalog


def load_catalog_leniently(root: Path) -> tuple[dict[str, LabDefinition], list[str]]:
    """Like load_catalog, but one broken lab leaves the others usable: (labs, problems).

    The operator refuses a broken catalog; a learner's CLI should still list what works.
    """
    try:
        return load_catalog(root), []
    except CatalogError:
        if not root.is_dir():
            raise
    catalog: dict[str, LabDefinition] = {}
    problems: list[str] = []
    for lab_dir in lab_dirs(root):
        try:
            definition = load_lab_definition(lab_dir)
        except CatalogError as error:
            problems.append(str(error))
            continue
        catalog[definition.id] = definition
    return catalog, problems


def check_known_parameters(
    definition: LabDefinition, names: Iterable[str], *, quoted: bool = True
) -> None:
    """ParameterError naming the parameters the lab does not declare, if any (quoted: as
    Python reprs, as in a Lab's status; unquoted, as a learner typed them)."""
    unknown = sorted(set(names) - set(definition.parameters))
    if unknown:
        show = repr if quoted else str
        declared = ", ".join(sorted(definition.parameters)) or "none"
        raise ParameterError(
            f"unknown parameter(s) {', '.join(map(show, unknown))} for lab "
            f"{show(definition.id)} (declared: {declared})"
        )


def resolve_parameters(
    definition: LabDefinition, given: Mapping[str, object]
) -> dict[str, ParamValue]:
    """Declared defaults overlaid with the Lab's values, strictly type-checked."""
    check_known_parameters(definition, given)
    resolved: dict[str, ParamValue] = {}
    for name, declaration in definition.parameters.items():
        if name in given:
            resolved[name] = declaration.check(name, given[name])
        elif declaration.default is not None:
            resolved[name] = declaration.default
        else:
            raise ParameterError(
                f"parameter {name!r} is required (no default), expected {declaration.expectation()}"
            )
    try:
        broken = broken_rule(definition, resolved)
    except RenderError as exc:
        raise ParameterError(str(exc)) from exc
    if broken is not None:
        values = ", ".join(f"{key}={value!r}" for key, value in resolved.items())
        raise ParameterError(f"{broken.message} (parameters: {values})")
    return resolved
