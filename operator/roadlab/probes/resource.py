"""`resource`: an object exists (or is absent) and its fields have the expected values.

check:
  probe: resource
  args:
    apiVersion: apps/v1
    kind: Deployment
    name: web
    fieldEquals: {spec.replicas: 2}
    fieldAtLeast: {"spec.template.spec.containers[name=web].resources.requests.cpu": 100m}
    fieldMatches: {"metadata.labels[\"app\"]": "^web$"}
    fieldPresent: [spec.template.spec.containers[name=web].readinessProbe]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator, model_validator

from roadlab.probes.base import (
    CheckResult,
    Evidence,
    Probe,
    ProbeArgs,
    ProbeContext,
    evidence_value,
    not_found_message,
    show,
)
from roadlab.probes.paths import MISSING, parse_path, resolve
from roadlab.probes.quantity import QuantityError, parse_quantity
from roadlab.probes.values import as_text, compare, values_equal

Name = Annotated[str, StringConstraints(min_length=1, max_length=253)]


def _check_paths(paths: Any) -> Any:
    for path in paths:
        parse_path(path)
    return paths


def _check_bounds(bounds: dict[str, Any]) -> dict[str, Any]:
    for path, bound in bounds.items():
        parse_path(path)
        try:
            parse_quantity(bound)
        except QuantityError as exc:
            raise ValueError(f"{path}: bound {bound!r} is not a number or quantity") from exc
    return bounds


class FieldChecks(ProbeArgs):
    """Expectations on an object's fields (shared by the probes that judge objects)."""

    field_equals: dict[str, Any] = Field(default_factory=dict)
    field_at_least: dict[str, int | float | str] = Field(default_factory=dict)
    field_at_most: dict[str, int | float | str] = Field(default_factory=dict)
    field_matches: dict[str, str] = Field(default_factory=dict)
    field_present: list[str] = Field(default_factory=list)

    _paths = field_validator("field_equals", "field_present", mode="after")(_check_paths)
    _bounds = field_validator("field_at_least", "field_at_most", mode="after")(_check_bounds)

    @field_validator("field_matches", mode="after")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for path, pattern in value.items():
            parse_path(path)
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{path}: invalid regular expression {pattern!r}: {exc}") from exc
        return value

    def has_field_checks(self) -> bool:
        return bool(
            self.field_equals
            or self.field_at_least
            or self.field_at_most
            or self.field_matches
            or self.field_present
        )

    def checked_paths(self) -> list[str]:
        return [
            *self.field_equals,
            *self.field_at_least,
            *self.field_at_most,
            *self.field_matches,
            *self.field_present,
        ]


class ResourceArgs(FieldChecks):
    api_version: Name
    kind: Name
    name: Name
    exists: bool = True

    @model_validator(mode="after")
    def _absent_has_no_fields(self) -> ResourceArgs:
        if not self.exists and self.has_field_checks():
            raise ValueError("exists: false cannot be combined with field checks")
        return self


def _observed(value: Any) -> str:
    return "is not set" if value is MISSING or value is None else f"is {show(value)}"


@dataclass
class FieldFindings:
    """What an object's fields showed: what is wrong, what is right, what was seen."""

    problems: list[str]
    good: list[str]
    evidence: Evidence


def judge_fields(obj: Mapping[str, Any], checks: FieldChecks) -> FieldFindings:
    findings = FieldFindings([], [], {})
    problems, good, evidence = findings.problems, findings.good, findings.evidence

    def observe(path: str) -> Any:
        value = resolve(obj, path)
        evidence[path] = "<unset>" if value is MISSING else evidence_value(value)
        return value

    for path, expected in checks.field_equals.items():
        actual = observe(path)
        if actual is not MISSING and values_equal(actual, expected):
            good.append(f"{path} is {show(actual)}")
        else:
            problems.append(f"{path} {_observed(actual)}, expected {show(expected)}")
    for bounds, word, wanted in (
        (checks.field_at_least, "at least", (0, 1)),
        (checks.field_at_most, "at most", (-1, 0)),
    ):
        for path, bound in bounds.items():
            actual = observe(path)
            order = None if actual is MISSING else compare(actual, bound)
            if order is not None and order in wanted:
                good.append(f"{path} is {show(actual)}")
            elif actual is not MISSING and actual is not None and order is None:
                problems.append(
                    f"{path} {_observed(actual)}, which is not a number; expected {word} "
                    f"{show(bound)}"
                )
            else:
                problems.append(f"{path} {_observed(actual)}, expected {word} {show(bound)}")
    for path, pattern in checks.field_matches.items():
        actual = observe(path)
        if actual is not MISSING and actual is not None and re.search(pattern, as_text(actual)):
            good.append(f"{path} is {show(actual)}")
        else:
            problems.append(f"{path} {_observed(actual)}, expected to match {pattern}")
    for path in checks.field_present:
        actual = observe(path)
        if actual is MISSING or actual is None:
            problems.append(f"{path} is not set, expected it to be present")
        else:
            good.append(f"{path} is set")
    return findings


def run(ctx: ProbeContext, args: ResourceArgs) -> CheckResult:
    what = f"{args.kind} {args.name}"
    obj = ctx.get_object(args.api_version, args.kind, args.name)
    if not args.exists:
        if obj is None:
            return CheckResult.ok(f"{what} is absent from namespace {ctx.namespace}, as expected")
        return CheckResult.fail(
            f"{what} still exists in namespace {ctx.namespace}: expected it to be deleted "
            f"(`kubectl delete {args.kind.lower()} {args.name}`)",
            {"exists": True},
        )
    if obj is None:
        return CheckResult.fail(not_found_message(args.kind, args.name, ctx.namespace))

    found = judge_fields(obj, args)
    if found.problems:
        return CheckResult.fail(f"{what}: " + "; ".join(found.problems), found.evidence)
    if not found.good:
        return CheckResult.ok(f"{what} exists in namespace {ctx.namespace}", found.evidence)
    return CheckResult.ok(f"{what}: " + ", ".join(found.good) + " as expected", found.evidence)


PROBE = Probe(
    name="resource",
    args_model=ResourceArgs,
    run=run,
    summary="an object exists (or not) and its fields have the expected values",
)
