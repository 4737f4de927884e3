"""Verbs on roadmaps (roadlab.api.roadmap).

For the learner, who may hold only their Enrollment's kubeconfig (`kubectl lab kubeconfig
--enrollment`) or one of its Labs': roadmap (their map), next (start the next milestone's
Lab) and certificate. For the instructor: enroll, cohort (many learners from a CSV file),
report (table, CSV, JSON or JUnit XML, roadlab.cli.report), public-key. For anyone:
verify (offline with --key).

The Enrollment in view is --enrollment, else the one the kubeconfig's context names, else
the one the kubeconfig's Lab was started for (its roadlab.dev/enrollment label).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from roadlab.api import naming
from roadlab.api.certificates import CertificateError, key_id, verify
from roadlab.api.lab import LEARNER_PATTERN
from roadlab.api.roadmap import (
    COHORT_KIND,
    ENROLLMENT_KIND,
    ENROLLMENT_PLURAL,
    MAX_COHORT_LEARNERS,
    MILESTONE_ID_PATTERN,
    OBJECT_NAME_PATTERN,
    CohortSpec,
    EnrollmentSpec,
    RoadmapSpec,
)
from roadlab.catalog.loader import format_validation_error
from roadlab.cli.common import (
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Manifest,
)
from roadlab.cli.kubeconfig_lab import find_kubeconfig_lab
from roadlab.cli.output import clean_lab, lab_list_json, to_json, to_yaml, uses_unicode
from roadlab.cli.report import format_report, report_rows
from roadlab.cli.roadmap_view import (
    START_ANSWERS,
    EnrollmentDoc,
    NoCertificateError,
    choose_certificate,
    format_certificate,
    format_map,
    format_roadmap,
    format_roadmap_list,
    next_outcome,
    parse_enrollment,
    parse_roadmap,
    split_pem,
    start_patch,
    start_wait_step,
)
from roadlab.cli.session import App, poll_until
from roadlab.cli.waiting import WaitStep, new_extension_token

LEARNER_RULE = (
    "letters, digits and -_.@, at most 63 characters, starting and ending with a letter or digit"
)
NAME_RULE = "lowercase letters, digits and '-', at most 40 characters"
CSV_LEARNER_COLUMN = "learner"
STDIN = "-"


# --- the Enrollment in view -----------------------------------------------------------------


@dataclass(frozen=True)
class EnrollmentInView:
    name: str
    # The flags that name it in the commands shown (" --enrollment NAME" when given so:
    # the kubeconfig names none).
    flags: str = ""


def find_enrollment(app: App, args: argparse.Namespace) -> EnrollmentInView | None:
    """--enrollment, else the kubeconfig's Enrollment, else its Lab's; None when none."""
    given: str | None = getattr(args, "enrollment", None)
    if given:
        return EnrollmentInView(given, f" --enrollment {given}")
    found = find_kubeconfig_lab(app.kubeconfig, app.context, app.env)
    if found.enrollment is not None:
        return EnrollmentInView(found.enrollment)
    if found.lab is not None:
        lab = app.api.get_lab(found.lab) or {}
        labels = (lab.get("metadata") or {}).get("labels") or {}
        enrollment = labels.get(naming.LABEL_ENROLLMENT)
        if isinstance(enrollment, str) and enrollment:
            return EnrollmentInView(enrollment)
    return None


def require_enrollment(app: App, args: argparse.Namespace) -> EnrollmentInView:
    found = find_enrollment(app, args)
    if found is None:
        raise CliError(
            f"{args.command}: no enrollment given and the kubeconfig names none; pass "
            "--enrollment NAME (or use the learner's kubeconfig: "
            "kubectl lab kubeconfig --enrollment NAME)",
            EXIT_USAGE,
        )
    return found


def load_enrollment(app: App, name: str) -> tuple[Manifest, EnrollmentDoc]:
    manifest = app.api.get_enrollment(name)
    if manifest is None:
        raise CliError(f"enrollment {name} not found", EXIT_NOT_FOUND)
    try:
        return manifest, parse_enrollment(manifest)
    except ValidationError as error:
        raise CliError(
            f"enrollment {name} is malformed: {format_validation_error(error)}"
        ) from error


def load_roadmap(app: App, name: str) -> tuple[Manifest, RoadmapSpec] | None:
    """The Roadmap and its spec; None when it does not exist or is malformed (a warning)."""
    manifest = app.api.get_roadmap(name)
    if manifest is None:
        return None
    try:
        return manifest, parse_roadmap(manifest)
    except ValidationError as error:
        app.note(f"warning: roadmap {name} is malformed: {format_validation_error(error)}")
        return None


def resource_name(plural: str, name: str) -> str:
    """As -o name prints it, like kubectl: enrollments -> enrollment.roadlab.dev/<name>."""
    return f"{plural.removesuffix('s')}.{naming.GROUP}/{name}"


def show_object(app: App, manifest: Manifest, plural: str, text: Callable[[], str]) -> None:
    """An object as -o asks: the object (json, yaml), its name, or text() for text output."""
    if app.structured:
        app.emit(clean_lab(manifest))
    elif app.output == "name":
        app.print(resource_name(plural, str(manifest["metadata"]["name"])))
    else:
        app.print(text())


def _valid_name(value: str, what: str) -> str:
    if re.fullmatch(OBJECT_NAME_PATTERN, value) is None:
        raise CliError(f"{what} {value!r} is not a valid name ({NAME_RULE})", EXIT_USAGE)
    return value


# --- roadmap --------------------------------------------------------------------------------


def cmd_roadmap(app: App, args: argparse.Namespace) -> int:
    name: str | None = args.roadmap
    if name and not args.enrollment:  # a Roadmap by name: its milestones
        return _show_roadmap(app, name)
    view = find_enrollment(app, args)
    if view is None:
        return _list_roadmaps(app)
    manifest, doc = load_enrollment(app, view.name)
    if name and name != doc.spec.roadmap:
        raise CliError(
            f"enrollment {view.name} follows roadmap {doc.spec.roadmap}, not {name}", EXIT_USAGE
        )
    if app.structured:
        app.emit(clean_lab(manifest))
        return EXIT_OK
    found = load_roadmap(app, doc.spec.roadmap)
    if found is None:
        app.note(
            f"note: roadmap {doc.spec.roadmap} not found: the milestones as the enrollment "
            "records them"
        )
    roadmap = found[1] if found is not None else None
    app.print(format_map(doc, roadmap, app.now(), uses_unicode(app.out), flags=view.flags))
    return EXIT_OK


def _show_roadmap(app: App, name: str) -> int:
    manifest = app.api.get_roadmap(name)
    if manifest is None:
        raise CliError(f"roadmap {name} not found", EXIT_NOT_FOUND)
    if app.structured:
        app.emit(clean_lab(manifest))
        return EXIT_OK
    try:
        spec = parse_roadmap(manifest)
    except ValidationError as error:
        raise CliError(f"roadmap {name} is malformed: {format_validation_error(error)}") from error
    app.print(format_roadmap(manifest, spec))
    return EXIT_OK


def _list_roadmaps(app: App) -> int:
    roadmaps = app.api.list_roadmaps()
    if app.structured:
        app.emit(lab_list_json(roadmaps))
    elif not roadmaps:
        app.note("no roadmaps found")
    else:
        app.print(format_roadmap_list(roadmaps))
    return EXIT_OK


# --- next -----------------------------------------------------------------------------------


def wait_for_enrollment(
    app: App,
    name: str,
    decide: Callable[[Manifest | None], WaitStep],
    timeout: float,
    what: str,
) -> tuple[WaitStep, Manifest | None]:
    """Poll the Enrollment until decide() says done (session.wait_for, for an Enrollment)."""
    return poll_until(
        app, name, lambda: app.api.get_enrollment(name), decide, timeout,
        f"enrollment {name} {what}",
    )  # fmt: skip


def cmd_next(app: App, args: argparse.Namespace) -> int:
    milestone: str | None = args.milestone
    if milestone is not None and re.fullmatch(MILESTONE_ID_PATTERN, milestone) is None:
        raise CliError(f"next: {milestone!r} is not a milestone id", EXIT_USAGE)
    view = require_enrollment(app, args)
    _, doc = load_enrollment(app, view.name)
    known = doc.milestone_ids()
    if milestone is not None and known and milestone not in known:
        raise CliError(
            f"milestone {milestone} is not on roadmap {doc.spec.roadmap} "
            f"(its milestones: {', '.join(known)})",
            EXIT_USAGE,
        )
    token = new_extension_token(app.now())
    patched = app.api.patch_enrollment(view.name, start_patch(token, milestone))
    what = f"milestone {milestone}" if milestone else "the next milestone"
    if not args.wait:
        show_object(
            app,
            patched,
            ENROLLMENT_PLURAL,
            lambda: (
                f"start of {what} requested for enrollment {view.name} (token {token})\n"
                f"see the answer with: kubectl lab roadmap{view.flags}"
            ),
        )
        return EXIT_OK
    step, final = wait_for_enrollment(
        app,
        view.name,
        lambda current: start_wait_step(current, token),
        args.wait,
        "to answer the start request",
    )
    if final is None or step.reason not in START_ANSWERS:  # deleted meanwhile
        raise CliError(f"enrollment {view.name}: {step.reason}: {step.message}", step.exit_code)
    try:
        answered = parse_enrollment(final)
    except ValidationError:
        answered = doc
    show_object(app, final, ENROLLMENT_PLURAL, lambda: next_outcome(answered, step, view.flags))
    return step.exit_code


# --- enroll ---------------------------------------------------------------------------------


def _spec_or_usage_error(build: Callable[[], Any], what: str) -> Any:
    try:
        return build()
    except ValidationError as error:
        raise CliError(f"invalid {what}: {format_validation_error(error)}", EXIT_USAGE) from error


def _valid_learner(learner: str) -> str:
    if re.fullmatch(LEARNER_PATTERN, learner) is None:
        raise CliError(
            f"learner {learner!r} is not a valid learner id ({LEARNER_RULE})", EXIT_USAGE
        )
    return learner


def enrollment_manifest(name: str, spec: EnrollmentSpec) -> Manifest:
    return {
        "apiVersion": naming.API_VERSION,
        "kind": ENROLLMENT_KIND,
        "metadata": {"name": name},
        "spec": spec.to_wire(),
    }


def _warn_if_no_roadmap(app: App, roadmap: str) -> None:
    if app.api.get_roadmap(roadmap) is None:
        app.note(f"warning: roadmap {roadmap} not found (yet): the operator waits for it")


def cmd_enroll(app: App, args: argparse.Namespace) -> int:
    learner = _valid_learner(args.learner)
    roadmap = _valid_name(args.roadmap, "roadmap")
    name: str = args.enrollment_name or naming.cohort_enrollment_name(roadmap, learner)
    if not naming.is_dns1123_label(name):
        raise CliError(
            f"enrollment name {name!r} must be lowercase letters, digits and '-', at most 63 "
            "characters",
            EXIT_USAGE,
        )
    spec: EnrollmentSpec = _spec_or_usage_error(
        lambda: EnrollmentSpec(
            roadmap=roadmap, learner=learner, advance=args.advance, lab_ttl=args.lab_ttl
        ),
        "enrollment",
    )
    manifest = enrollment_manifest(name, spec)
    _warn_if_no_roadmap(app, roadmap)
    try:
        created = app.api.create_enrollment(manifest)
    except ApiException as error:
        if error.status != 409:
            raise
        return _existing_enrollment(app, name, spec)
    show_object(
        app,
        created,
        ENROLLMENT_PLURAL,
        lambda: (
            f"enrollment {name} created: {learner} on roadmap {roadmap} "
            f"(advance {spec.advance})\n"
            f"the learner's kubeconfig: kubectl lab kubeconfig --enrollment {name} "
            f"> {name}.kubeconfig\n"
            f"their map: kubectl lab roadmap --enrollment {name}"
        ),
    )
    return EXIT_OK


def _existing_enrollment(app: App, name: str, spec: EnrollmentSpec) -> int:
    existing = app.api.get_enrollment(name)
    if existing is None:  # deleted since: the create may be retried
        raise CliError(f"enrollment {name} already exists (it is being deleted?)")
    try:
        same = EnrollmentSpec.model_validate(existing.get("spec") or {}) == spec
    except ValidationError:
        same = False
    if not same:
        theirs = existing.get("spec") or {}
        raise CliError(
            f"enrollment {name} already exists with another spec (roadmap "
            f"{theirs.get('roadmap')}, learner {theirs.get('learner')}, advance "
            f"{theirs.get('advance')}, labTTL {theirs.get('labTTL')}); delete it or pick "
            "another --name"
        )
    show_object(
        app,
        existing,
        ENROLLMENT_PLURAL,
        lambda: f"enrollment {name} already exists, with the same spec",
    )
    return EXIT_OK


# --- cohort ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadRow:
    line: int
    value: str
    reason: str


@dataclass(frozen=True)
class CsvLearners:
    learners: list[str] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)


def parse_learners_csv(text: str) -> CsvLearners:
    """The learners of a CSV file: its `learner` column when the first row names one (a
    header), else its first column. Blank lines and lines starting with # are skipped;
    every invalid or repeated learner is a BadRow (with its line number)."""
    reader = csv.reader(io.StringIO(text))
    column: int | None = None
    learners: list[str] = []
    bad: list[BadRow] = []
    first_seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if column is None:
            headers = [cell.lower() for cell in cells]
            if CSV_LEARNER_COLUMN in headers:
                column = headers.index(CSV_LEARNER_COLUMN)
                continue
            column = 0
        value = cells[column] if column < len(cells) else ""
        if not value:
            bad.append(BadRow(line, value, "no learner in this row"))
        elif re.fullmatch(LEARNER_PATTERN, value) is None:
            bad.append(BadRow(line, value, f"not a valid learner id ({LEARNER_RULE})"))
        elif value in first_seen:
            bad.append(BadRow(line, value, f"a repeat of line {first_seen[value]}"))
        else:
            first_seen[value] = line
            learners.append(value)
    return CsvLearners(learners, bad)


def _read_text(path: str) -> str:
    if path == STDIN:
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is no learner
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else str(error)
        raise CliError(f"cannot read {path}: {reason}") from error


def cohort_learners(text: str, source: str) -> list[str]:
    """The learners of the CSV text, or CliError (exit 2) listing every bad row."""
    parsed = parse_learners_csv(text)
    if parsed.bad:
        rows = "".join(f"\n  line {b.line}: {b.value!r}: {b.reason}" for b in parsed.bad)
        count = len(parsed.bad)
        raise CliError(
            f"{source}: {count} invalid row{'s' if count != 1 else ''}; nothing was created:"
            + rows,
            EXIT_USAGE,
        )
    if not parsed.learners:
        raise CliError(f"{source}: no learners in it", EXIT_USAGE)
    if len(parsed.learners) > MAX_COHORT_LEARNERS:
        raise CliError(
            f"{source}: {len(parsed.learners)} learners; a Cohort holds at most "
            f"{MAX_COHORT_LEARNERS} (split them into several cohorts); nothing was created",
            EXIT_USAGE,
        )
    return parsed.learners


def cohort_manifest(name: str, spec: CohortSpec) -> Manifest:
    return {
        "apiVersion": naming.API_VERSION,
        "kind": COHORT_KIND,
        "metadata": {"name": name},
        "spec": spec.to_wire(),
    }


def cmd_cohort(app: App, args: argparse.Namespace) -> int:
    name = _valid_name(args.cohort, "cohort")
    roadmap = _valid_name(args.roadmap, "roadmap")
    learners = cohort_learners(_read_text(args.csv), args.csv)
    spec: CohortSpec = _spec_or_usage_error(
        lambda: CohortSpec(
            roadmap=roadmap, learners=learners, advance=args.advance, lab_ttl=args.lab_ttl
        ),
        "cohort",
    )
    manifest = cohort_manifest(name, spec)
    if args.dry_run:
        app.print(to_json(manifest) if app.output == "json" else to_yaml(manifest))
        return EXIT_OK
    _warn_if_no_roadmap(app, roadmap)
    applied = app.api.apply_cohort(manifest)
    show_object(
        app,
        applied,
        "cohorts",
        lambda: (
            f"cohort {name} applied: {len(learners)} learners on roadmap {roadmap} "
            f"(advance {spec.advance}); the operator enrolls each as {name}-<learner>\n"
            f"follow them: kubectl lab report --cohort {name}"
        ),
    )
    return EXIT_OK


# --- report ---------------------------------------------------------------------------------


def cmd_report(app: App, args: argparse.Namespace) -> int:
    output = "table" if app.output in ("text", "table") else app.output
    if args.cohort:
        selector = f"{naming.LABEL_COHORT}={_valid_name(args.cohort, 'cohort')}"
        manifests = app.api.list_enrollments(label_selector=selector)
    else:
        manifests = app.api.list_enrollments()
    if args.roadmap:
        manifests = [m for m in manifests if (m.get("spec") or {}).get("roadmap") == args.roadmap]
    docs: list[EnrollmentDoc] = []
    for manifest in manifests:
        try:
            docs.append(parse_enrollment(manifest))
        except ValidationError as error:
            name = (manifest.get("metadata") or {}).get("name")
            app.note(f"warning: skipping enrollment {name}: {format_validation_error(error)}")
    roadmaps: dict[str, RoadmapSpec] = {}
    for roadmap in sorted({doc.spec.roadmap for doc in docs}):
        found = load_roadmap(app, roadmap)
        if found is not None:
            roadmaps[roadmap] = found[1]
    rows = report_rows(docs, roadmaps)
    if output == "table" and not rows:
        app.note("no enrollments found")
        return EXIT_OK
    app.print(format_report(rows, output))
    return EXIT_OK


# --- certificate, public-key, verify --------------------------------------------------------


def _write_or_print(app: App, path: str | None, text: str) -> None:
    if path is None or path == STDIN:
        app.print(text)
        return
    try:
        Path(path).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot write {path}: {error.strerror}") from error


def cmd_certificate(app: App, args: argparse.Namespace) -> int:
    if args.milestone is not None and args.roadmap_certificate:
        raise CliError(
            "certificate: give a MILESTONE or --roadmap-certificate, not both", EXIT_USAGE
        )
    view = require_enrollment(app, args)
    _, doc = load_enrollment(app, view.name)
    try:
        what, certificate = choose_certificate(doc, args.milestone, args.roadmap_certificate)
    except NoCertificateError as error:
        raise CliError(str(error), EXIT_NOT_FOUND) from error
    _write_or_print(app, args.output_file, certificate)
    if args.output_file not in (None, STDIN):
        app.note(
            f"wrote the certificate of {what} to {args.output_file}; check it with: "
            f"kubectl lab verify {args.output_file}"
        )
    return EXIT_OK


def cluster_public_keys(app: App, namespace: str) -> dict[str, str]:
    """The published public keys: {key id: PEM}, from the ConfigMap's <kid>.pem entries."""
    data = app.api.config_map_data(namespace, naming.PUBLIC_KEYS_CONFIGMAP)
    if data is None:
        raise CliError(
            f"no public keys: ConfigMap {naming.PUBLIC_KEYS_CONFIGMAP} not found in namespace "
            f"{namespace} (is Roadlab installed there? see --operator-namespace)",
            EXIT_NOT_FOUND,
        )
    keys = {
        key.removesuffix(".pem"): pem
        for key, pem in sorted(data.items())
        if key.endswith(".pem") and pem.strip()
    }
    if not keys:
        raise CliError(
            f"no public keys in ConfigMap {naming.PUBLIC_KEYS_CONFIGMAP} of namespace "
            f"{namespace} (the operator publishes them at its start)",
            EXIT_NOT_FOUND,
        )
    return keys


def cmd_public_key(app: App, args: argparse.Namespace) -> int:
    keys = cluster_public_keys(app, args.operator_namespace)
    text = "".join(pem if pem.endswith("\n") else pem + "\n" for pem in keys.values())
    _write_or_print(app, args.output_file, text)
    count, ids = len(keys), ", ".join(keys)
    what = f"{count} public key{'s' if count != 1 else ''} (key id {ids})"
    if args.output_file not in (None, STDIN):
        app.note(f"wrote {what} to {args.output_file}")
    else:
        app.note(f"{what}; verify certificates offline with: kubectl lab verify FILE --key KEYFILE")
    return EXIT_OK


def _key_files(paths: list[str]) -> list[str]:
    """The PEM public keys of --key files, each checked (CliError, exit 2, when not one)."""
    keys: list[str] = []
    for path in paths:
        blocks = split_pem(_read_text(path))
        if not blocks:
            raise CliError(f"{path}: no PEM public key in it", EXIT_USAGE)
        for block in blocks:
            try:
                key_id(block)
            except (CertificateError, ValueError) as error:
                raise CliError(f"{path}: {error}", EXIT_USAGE) from error
        keys += blocks
    return keys


def verification_document(kid: str, claims: Mapping[str, Any]) -> Manifest:
    return {"verified": True, "keyId": kid, "claims": dict(claims)}


def cmd_verify(app: App, args: argparse.Namespace) -> int:
    certificate = _read_text(args.file)
    if args.key:  # offline: no connection to any cluster
        keys = _key_files(args.key)
    else:
        keys = list(cluster_public_keys(app, args.operator_namespace).values())
    try:
        verified = verify(certificate, keys)
    except CertificateError as error:
        app.note(f"REFUSED: {error}")
        return EXIT_FAILURE
    if app.structured:
        app.emit(verification_document(verified.key_id, verified.claims))
    else:
        app.print(format_certificate(verified, uses_unicode(app.out)))
    return EXIT_OK
