"""`helm_release`: a Helm release as Helm itself recorded it, read from its release Secrets.

check:
  probe: helm_release
  args:
    release: greeter
    status: deployed                      # of the current (latest) revision; the default
    chartName: greeter
    chartVersion: 0.1.0                   # of the current revision
    values: {replicaCount: 2, version: blue}   # the values it was rendered with
    minRevision: 3
    descriptionMatches: "^Rollback to 1$"
    historyChartVersions: [0.2.0]         # each run by some revision kept

Helm 3 keeps each revision in a Secret `sh.helm.release.v1.<release>.v<revision>` of type
helm.sh/release.v1, its `release` key the release as JSON, gzipped, base64-encoded (then
base64 again by the Secret). The checker may read these Secrets by name only (a Role the
operator makes for labs that list the release in environment.checkerHelmReleases), never
list them, so the probe asks for revisions 1 to MAX_REVISIONS one by one.

A learner can write any Secret in their namespace, so the content is untrusted: its size is
capped before and after decompression, and anything that is not a release reads as one.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from roadlab.probes.base import (
    CheckResult,
    Evidence,
    Probe,
    ProbeArgs,
    ProbeContext,
    evidence_value,
    optional_regex,
    plural,
    show,
)
from roadlab.probes.paths import MISSING, parse_path, resolve
from roadlab.probes.values import values_equal

# Helm's own limit on release names (53: room for suffixes in the names of what it makes).
RELEASE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$"
ReleaseName = Annotated[str, StringConstraints(pattern=RELEASE_NAME_PATTERN)]
# Revisions the checker may read (its Role names each Secret). `helm upgrade` keeps 10 by
# default (--history-max); an install, a few upgrades and a rollback stay well within.
MAX_REVISIONS = 20
RELEASE_SECRET_TYPE = "helm.sh/release.v1"
# A release of a lab's chart is a few KB; these caps keep a hostile Secret from costing more.
MAX_ENCODED_BYTES = 1024 * 1024
MAX_DECODED_BYTES = 8 * 1024 * 1024


def release_secret_name(release: str, revision: int) -> str:
    return f"sh.helm.release.v1.{release}.v{revision}"


def release_secret_names(release: str) -> list[str]:
    """Every Secret name the checker may read for a release, revision 1 to MAX_REVISIONS."""
    return [release_secret_name(release, n) for n in range(1, MAX_REVISIONS + 1)]


class ReleaseDecodeError(ValueError):
    """A Secret with a release's name holds no readable Helm release."""


@dataclass(frozen=True)
class Revision:
    """One revision of a release, the fields the probe judges."""

    number: int
    status: str
    description: str
    chart_name: str
    chart_version: str
    # The values the templates saw: the chart's values.yaml merged with the user's.
    values: dict[str, Any]

    @property
    def chart(self) -> str:
        return f"{self.chart_name}-{self.chart_version}"


def merge_values(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values over the chart's: maps merge, the rest replaces,
    and an override of null deletes the default."""
    merged = dict(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def decode_release(secret: Mapping[str, Any]) -> dict[str, Any]:
    """The release JSON of a Helm release Secret (as the API returns it: data base64)."""
    if secret.get("type") != RELEASE_SECRET_TYPE:
        raise ReleaseDecodeError(f"type is {show(secret.get('type'))}, not {RELEASE_SECRET_TYPE}")
    encoded = (secret.get("data") or {}).get("release")
    if not isinstance(encoded, str) or len(encoded) > MAX_ENCODED_BYTES:
        raise ReleaseDecodeError("no release key of a sensible size")
    try:
        payload = base64.b64decode(base64.b64decode(encoded, validate=True), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReleaseDecodeError("release is not base64") from exc
    if payload[:2] == b"\x1f\x8b":  # gzip, as Helm writes it (older Helms wrote plain JSON)
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            payload = inflater.decompress(payload, MAX_DECODED_BYTES)
        except zlib.error as exc:
            raise ReleaseDecodeError("release is not valid gzip") from exc
        if inflater.unconsumed_tail:
            raise ReleaseDecodeError(f"release is larger than {MAX_DECODED_BYTES} bytes")
    try:
        release = json.loads(payload)
    except ValueError as exc:
        raise ReleaseDecodeError("release is not JSON") from exc
    if not isinstance(release, dict):
        raise ReleaseDecodeError("release is not a JSON object")
    return release


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def revision_of(release: Mapping[str, Any], number: int) -> Revision:
    info = _mapping(release.get("info"))
    chart = _mapping(release.get("chart"))
    metadata = _mapping(chart.get("metadata"))
    return Revision(
        number=number,
        status=_text(info.get("status")),
        description=_text(info.get("description")),
        chart_name=_text(metadata.get("name")),
        chart_version=_text(metadata.get("version")),
        values=merge_values(_mapping(chart.get("values")), _mapping(release.get("config"))),
    )


class HelmReleaseArgs(ProbeArgs):
    release: ReleaseName
    status: Annotated[str, StringConstraints(min_length=1, max_length=40)] = "deployed"
    chart_name: Annotated[str, StringConstraints(min_length=1, max_length=253)] | None = None
    chart_version: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    min_revision: Annotated[int, Field(ge=1, le=MAX_REVISIONS)] | None = None
    description_matches: Annotated[str, StringConstraints(max_length=200)] | None = None
    history_chart_versions: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = (
        Field(default_factory=list, max_length=10)
    )

    @field_validator("values", mode="after")
    @classmethod
    def _paths(cls, value: dict[str, Any]) -> dict[str, Any]:
        for path in value:
            parse_path(path)
        return value

    _regex = field_validator("description_matches", mode="after")(optional_regex)


def read_history(ctx: ProbeContext, release: str) -> tuple[list[Revision], list[str]]:
    """(revisions found, oldest first; Secrets with a release's name that hold none)."""
    revisions: list[Revision] = []
    unreadable: list[str] = []
    for number in range(1, MAX_REVISIONS + 1):
        name = release_secret_name(release, number)
        secret = ctx.get_object("v1", "Secret", name)
        if secret is None:
            # Revisions are numbered without gaps, but --history-max prunes the oldest: a
            # miss ends the history only once a revision was found.
            if revisions or unreadable:
                break
            continue
        try:
            revisions.append(revision_of(decode_release(secret), number))
        except ReleaseDecodeError as exc:
            unreadable.append(f"{name}: {exc}")
    return revisions, unreadable


def _value_problems(
    current: Revision, expected: Mapping[str, Any], evidence: Evidence
) -> list[str]:
    problems = []
    for path, want in expected.items():
        got = resolve(current.values, path)
        evidence[f"values.{path}"] = "<unset>" if got is MISSING else evidence_value(got)
        if got is MISSING or got is None:
            problems.append(f"value {path} is not set, expected {show(want)}")
        elif not values_equal(got, want):
            problems.append(f"value {path} is {show(got)}, expected {show(want)}")
    return problems


def run(ctx: ProbeContext, args: HelmReleaseArgs) -> CheckResult:
    what = f"Helm release {args.release}"
    history, unreadable = read_history(ctx, args.release)
    if not history:
        if unreadable:
            return CheckResult.fail(
                f"{what}: no readable revision ({'; '.join(unreadable)}); install it with "
                "`helm install`, not by writing its Secrets"
            )
        return CheckResult.fail(
            f"{what} not found in namespace {ctx.namespace} (no Secret "
            f"{release_secret_name(args.release, 1)}): install it with "
            f"`helm install {args.release} <chart>`"
        )
    current = history[-1]
    evidence: Evidence = {
        "revision": current.number,
        "status": current.status,
        "chart": current.chart,
        "description": evidence_value(current.description),
        "history": evidence_value(", ".join(f"{r.number}:{r.chart}:{r.status}" for r in history)),
    }
    problems: list[str] = []
    if current.status != args.status:
        status = f"revision {current.number} is {show(current.status)}"
        problems.append(f"{status}, expected {show(args.status)}")
    if args.chart_name is not None and current.chart_name != args.chart_name:
        problems.append(f"chart is {show(current.chart_name)}, expected {show(args.chart_name)}")
    if args.chart_version is not None and current.chart_version != args.chart_version:
        problems.append(
            f"revision {current.number} runs chart version {show(current.chart_version)}, "
            f"expected {show(args.chart_version)}"
        )
    problems += _value_problems(current, args.values, evidence)
    if args.min_revision is not None and current.number < args.min_revision:
        problems.append(
            f"it has {plural(current.number, 'revision')}, expected at least {args.min_revision} "
            "(`helm history` lists them)"
        )
    if args.description_matches is not None and not re.search(
        args.description_matches, current.description
    ):
        problems.append(
            f"revision {current.number} says {show(current.description)}, expected it to match "
            f"{show(args.description_matches)}"
        )
    kept = {r.chart_version for r in history}
    for version in args.history_chart_versions:
        if version not in kept:
            problems.append(f"no revision ran chart version {show(version)}")
    if problems:
        return CheckResult.fail(f"{what}: {'; '.join(problems)}", evidence)
    return CheckResult.ok(
        f"{what}: revision {current.number} ({current.chart}) is {current.status}"
        + (f", {show(current.description)}" if current.description else "")
        + " as expected",
        evidence,
    )


PROBE = Probe(
    name="helm_release",
    args_model=HelmReleaseArgs,
    run=run,
    summary="a Helm release's status, chart, values and history, from its release Secrets",
)
