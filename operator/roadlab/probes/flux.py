"""GitOps with Flux: `flux` (a source or Kustomization Ready at the head of the lab's Git,
with what it applied as Git says) and `gitops_drift` (a change made in the cluster by hand
is put back by Flux).

check:
  probe: flux
  args:
    kind: Kustomization                # or GitRepository
    name: shop
    fieldEquals: {spec.prune: true}    # on the Flux object, as the resource probe reads them
    git:                               # the revision must be this branch's head in the lab's Git
      service: git
      repository: lab                  # http://git.<namespace>.svc.cluster.local/lab.git
      branch: main
      pastTag: start                   # and the head must have moved on from this tag: a push
    applied:                           # objects the Kustomization applied, their fields from Git
      - apiVersion: apps/v1
        kind: Deployment
        name: shop
        fieldEquals: {spec.replicas: 3}
    withinSeconds: 90                  # Flux fetches at its interval: a push takes a while

check:
  probe: gitops_drift
  args:
    kustomization: shop
    target: {apiVersion: apps/v1, kind: Deployment, name: shop}
    field: spec.replicas
    driftTo: 1
    withinSeconds: 60

The drift probe changes the target as a person with kubectl would (a merge patch, its own
field manager), asks Flux to reconcile now (the annotation `flux reconcile` sets), and
passes when the field is back. A Kustomization restores only the fields Git declares: one
that reconciled and left the change is told so, and the probe puts the value back itself.
The checker may patch only the objects the lab names (environment.checkerMayPatch).
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, StringConstraints, field_validator, model_validator

from roadlab.probes.base import (
    CHECKER_FIELD_MANAGER,
    CheckResult,
    Evidence,
    Probe,
    ProbeApiError,
    ProbeArgs,
    ProbeContext,
    ProbeHttpError,
    evidence_value,
    not_found_message,
    show,
)
from roadlab.probes.http_args import Port, ServiceName
from roadlab.probes.paths import MISSING, Key, Match, parse_path, resolve
from roadlab.probes.polling import Outcome, Unavailable, evidence_with_seconds, poll, result
from roadlab.probes.resource import FieldChecks, judge_fields
from roadlab.probes.values import values_equal

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")]
RepositoryName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
ApiVersion = Annotated[
    str,
    StringConstraints(pattern=r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?v[0-9][a-z0-9]{0,15}$"),
]
RefName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")]

API_VERSIONS = {
    "GitRepository": "source.toolkit.fluxcd.io/v1",
    "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
}
KUSTOMIZATION_API_VERSION = API_VERSIONS["Kustomization"]
# What kustomize-controller writes into managedFields when it applies from Git.
FLUX_FIELD_MANAGER = "kustomize-controller"
# The annotation `flux reconcile` sets: a new value makes the controller reconcile at once,
# and it records the value it handled in status.lastHandledReconcileAt.
RECONCILE_REQUESTED = "reconcile.fluxcd.io/requestedAt"
# Labels kustomize-controller puts on everything it applies.
OWNER_NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
OWNER_NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace"
# A ref advertisement of a lab repository is a few hundred bytes; more is not a lab's.
MAX_ADVERTISEMENT_BYTES = 256 * 1024
# What is read of source-controller's artifact (a tar.gz of the repository): a lab's is a few
# KB; these caps bound a repository a learner filled.
MAX_ARTIFACT_FILES = 200
MAX_MANIFEST_BYTES = 256 * 1024
MAX_ARTIFACT_BYTES = 16 * 1024 * 1024
# Where artifacts are served: source-controller's Service (its --storage-adv-addr).
ARTIFACT_URL = re.compile(
    r"^http://source-controller\.flux-system\.svc\.cluster\.local\.?(:[0-9]+)?/"
)
POLL_SECONDS = 2.0


# --- Git's smart-HTTP ref advertisement -------------------------------------------------
# Written by hand: reading the refs is one GET and a pkt-line loop (gitprotocol-http(5)),
# which a Git library would add a dependency to the checker for.


class AdvertisementError(ValueError):
    """The answer is not a Git ref advertisement."""


def parse_ref_advertisement(body: bytes) -> dict[str, str]:
    """{ref name: object id} from GET <repo>/info/refs?service=git-upload-pack.

    Peeled tags (`refs/tags/x^{}`) are kept under that name: the commit an annotated tag
    points at."""
    refs: dict[str, str] = {}
    position = 0
    while position < len(body):
        size_text = body[position : position + 4]
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise AdvertisementError(f"bad pkt-line length {size_text!r}") from exc
        if size == 0:  # flush-pkt: after the service line, and at the end
            position += 4
            continue
        if size < 4 or position + size > len(body):
            raise AdvertisementError("truncated pkt-line")
        line = body[position + 4 : position + size].rstrip(b"\n")
        position += size
        if line.startswith(b"#"):
            continue
        line = line.split(b"\0", 1)[0]  # the first ref carries the capabilities
        object_id, _, name = line.partition(b" ")
        if not re.fullmatch(rb"[0-9a-f]{40}([0-9a-f]{24})?", object_id) or not name:
            raise AdvertisementError(f"bad ref line {line[:80]!r}")
        refs[name.decode("utf-8", "replace")] = object_id.decode()
    return refs


def revision_commit(revision: object) -> str | None:
    """The commit of a Flux revision: "main@sha1:<id>" (Flux 2.x), or "main/<id>" (older)."""
    if not isinstance(revision, str):
        return None
    found = re.search(r"(?:@sha1:|@sha256:|/)([0-9a-f]{40,64})$", revision)
    return found.group(1) if found else None


def short(commit: str | None) -> str:
    return "none" if commit is None else commit[:7]


# --- arguments ---------------------------------------------------------------------------


class GitHead(ProbeArgs):
    """The branch of the lab's in-cluster Git server whose head a revision must be."""

    service: ServiceName
    port: Port = 80
    repository: RepositoryName
    branch: RefName = "main"
    past_tag: RefName | None = None


class AppliedObject(FieldChecks):
    """An object the Kustomization must have applied, with fields Flux set from Git."""

    api_version: ApiVersion
    kind: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]{0,62}$")]
    name: Name


class FluxArgs(FieldChecks):
    kind: Literal["GitRepository", "Kustomization"]
    name: Name
    git: GitHead | None = None
    applied: list[AppliedObject] = Field(default_factory=list, max_length=8)
    within_seconds: int = Field(default=60, ge=0, le=600)

    @model_validator(mode="after")
    def _applied_by_kustomizations(self) -> FluxArgs:
        if self.applied and self.kind != "Kustomization":
            raise ValueError("applied: only a Kustomization applies objects")
        return self


class DriftTarget(ProbeArgs):
    api_version: ApiVersion
    kind: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]{0,62}$")]
    name: Name


class DriftArgs(ProbeArgs):
    kustomization: Name
    target: DriftTarget
    field: str
    drift_to: int | float | str | bool
    within_seconds: int = Field(default=60, ge=5, le=600)

    @field_validator("field")
    @classmethod
    def _plain_keys(cls, value: str) -> str:
        # A merge patch addresses map keys only: no list element can be named in one.
        if not all(isinstance(segment, Key) for segment in parse_path(value)):
            raise ValueError(f"{value!r}: the drifted field is a path of map keys only")
        return value


# --- reading the Flux objects ------------------------------------------------------------


def ready_condition(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition
    return None


def applied_revision(obj: Mapping[str, Any]) -> object:
    status = obj.get("status") or {}
    if obj.get("kind") == "GitRepository":
        return (status.get("artifact") or {}).get("revision")
    return status.get("lastAppliedRevision")


def inventory_id(namespace: str, api_version: str, kind: str, name: str) -> str:
    """How a Kustomization's status.inventory names an object: <ns>_<name>_<group>_<kind>."""
    group = api_version.rpartition("/")[0]
    return f"{namespace}_{name}_{group}_{kind}"


def in_inventory(kustomization: Mapping[str, Any], object_id: str) -> bool:
    entries = ((kustomization.get("status") or {}).get("inventory") or {}).get("entries") or []
    return any(isinstance(e, Mapping) and e.get("id") == object_id for e in entries)


def managed_field_keys(path: str) -> list[str] | None:
    """The keys of a field path in managedFields' fieldsV1 ("f:spec", "f:replicas"; a list
    element by its key field: k:{"name":"web"}); None for a path with a list index."""
    keys: list[str] = []
    for segment in parse_path(path):
        if isinstance(segment, Key):
            keys.append(f"f:{segment.name}")
        elif isinstance(segment, Match) and "." not in segment.field:
            keys.append('k:{"' + segment.field + '":"' + segment.value + '"}')
        else:
            return None
    return keys


def field_managers(obj: Mapping[str, Any], path: str) -> list[str] | None:
    """Who set the field at `path`, from the object's managedFields (None: not knowable)."""
    keys = managed_field_keys(path)
    if keys is None:
        return None
    managers = []
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        fields: Any = entry.get("fieldsV1") if isinstance(entry, Mapping) else None
        for key in keys:
            fields = fields.get(key) if isinstance(fields, Mapping) else None
        if fields is not None:
            managers.append(str(entry.get("manager") or "unknown"))
    return managers


def _git_head(ctx: ProbeContext, git: GitHead) -> tuple[str | None, str | None]:
    """(head of the branch, commit of past_tag) on the lab's Git server."""
    url = ctx.service_url(git.service, git.port, f"/{git.repository}.git/info/refs")
    try:
        response = ctx.http("GET", url + "?service=git-upload-pack", timeout=10)
    except ProbeHttpError as exc:
        raise Unavailable(f"the lab's Git server ({git.service}) did not answer: {exc}") from exc
    if response.status != 200:
        raise Unavailable(
            f"the lab's Git server answered {response.status} for repository {git.repository}"
        )
    try:
        refs = parse_ref_advertisement(response.body[:MAX_ADVERTISEMENT_BYTES])
    except AdvertisementError as exc:
        raise Unavailable(f"the lab's Git server sent no ref list: {exc}") from exc
    tag = None
    if git.past_tag is not None:
        tag_ref = f"refs/tags/{git.past_tag}"
        tag = refs.get(tag_ref + "^{}") or refs.get(tag_ref)
    return refs.get(f"refs/heads/{git.branch}"), tag


@dataclass
class AppliedFindings:
    problems: list[str] = dataclass_field(default_factory=list)
    good: list[str] = dataclass_field(default_factory=list)
    evidence: Evidence = dataclass_field(default_factory=dict)
    # A field set by someone else stays theirs: Flux applies only what differs from Git.
    final: bool = False


def declared_in_git(
    ctx: ProbeContext, kustomization: Mapping[str, Any], wanted: AppliedObject
) -> tuple[Mapping[str, Any] | None, str]:
    """The manifest of `wanted` as Git holds it at the revision the Kustomization applied,
    read from source-controller's artifact of its GitRepository, and where it was found
    ("apps/shop/deployment.yaml at main@sha1:..."); (None, why) when it cannot be read.

    Only the plain manifests under the Kustomization's path count: a value a kustomize patch
    sets is seen through managedFields instead (Flux applied it, so it owns the field)."""
    spec = kustomization.get("spec") or {}
    source = spec.get("sourceRef") or {}
    if source.get("kind") != "GitRepository" or not isinstance(source.get("name"), str):
        return None, "the Kustomization's source is not a GitRepository"
    repository = ctx.get_object(API_VERSIONS["GitRepository"], "GitRepository", source["name"])
    artifact = ((repository or {}).get("status") or {}).get("artifact") or {}
    url, revision = artifact.get("url"), artifact.get("revision")
    applied = (kustomization.get("status") or {}).get("lastAppliedRevision")
    if not isinstance(url, str) or not ARTIFACT_URL.match(url) or revision != applied:
        return None, "source-controller's artifact of that revision is not available"
    try:
        response = ctx.http("GET", url, timeout=10)
    except ProbeHttpError as exc:
        return None, f"source-controller's artifact could not be read: {exc}"
    if response.status != 200:
        return None, f"source-controller answered {response.status} for the artifact"
    prefix = str(spec.get("path") or "").strip("/").removeprefix("./").strip("/")
    try:
        with tarfile.open(fileobj=io.BytesIO(response.body), mode="r:gz") as archive:
            seen = 0
            for count, member in enumerate(archive):
                # Headers give sizes before the data is inflated: a repository a learner
                # filled with large files stops here, not after inflating them all.
                seen += member.size
                if count >= MAX_ARTIFACT_FILES or seen > MAX_ARTIFACT_BYTES:
                    break
                name = member.name.removeprefix("./")
                if not member.isfile() or member.size > MAX_MANIFEST_BYTES:
                    continue
                if prefix and not name.startswith(prefix + "/"):
                    continue
                if not name.endswith((".yaml", ".yml")):
                    continue
                handle = archive.extractfile(member)
                text = handle.read().decode("utf-8", "replace") if handle else ""
                for document in yaml.safe_load_all(text):
                    if (
                        isinstance(document, Mapping)
                        and document.get("apiVersion") == wanted.api_version
                        and document.get("kind") == wanted.kind
                        and (document.get("metadata") or {}).get("name") == wanted.name
                    ):
                        return document, f"{name} at {revision}"
    except (tarfile.TarError, OSError, EOFError, yaml.YAMLError) as exc:
        return None, f"the artifact is not a readable tar.gz of YAML: {exc}"
    return None, f"no manifest of {wanted.kind} {wanted.name} under {prefix or '/'} at {revision}"


def _applied_problems(
    ctx: ProbeContext, kustomization: Mapping[str, Any], wanted: AppliedObject
) -> AppliedFindings:
    what = f"{wanted.kind} {wanted.name}"
    obj = ctx.get_object(wanted.api_version, wanted.kind, wanted.name)
    if obj is None:
        return AppliedFindings(
            [f"{what} is not in namespace {ctx.namespace}: Git's manifests must hold it"]
        )
    object_id = inventory_id(ctx.namespace, wanted.api_version, wanted.kind, wanted.name)
    if not in_inventory(kustomization, object_id):
        return AppliedFindings(
            [
                f"{what} is not one of the objects Kustomization "
                f"{kustomization['metadata']['name']} applied (status.inventory): it is not "
                "in the Kustomization's path in Git, or it was made by hand"
            ]
        )
    found = judge_fields(obj, wanted)
    findings = AppliedFindings(
        [f"{what}: {problem}" for problem in found.problems],
        [f"{what}: {item}" for item in found.good],
        {f"{wanted.kind}.{key}": value for key, value in found.evidence.items()},
    )
    if not found.problems:
        git: tuple[Mapping[str, Any] | None, str] | None = None
        for path in wanted.checked_paths():
            managers = field_managers(obj, path)
            if managers is None or FLUX_FIELD_MANAGER in managers:
                continue
            # Flux applies only what differs from the cluster: a value set by hand that Git
            # then declares stays the hand's in managedFields. Git itself tells.
            git = git or declared_in_git(ctx, kustomization, wanted)
            declared, where = git
            value = resolve(obj, path)
            in_git = MISSING if declared is None else resolve(declared, path)
            if in_git is not MISSING and values_equal(in_git, value):
                findings.good.append(f"{what}: {path} as Git declares it ({where})")
                continue
            # The checker's own entry is a drift check's restore of someone else's value.
            others = sorted(set(managers) - {CHECKER_FIELD_MANAGER})
            by = (
                f"by {', '.join(others)}"
                if others
                else "by hand (kubectl scale records no field manager)"
            )
            if declared is not None:
                says = "does not set it" if in_git is MISSING else f"says {show(in_git)}"
                problem = f"{path} is {show(value)}, but Git ({where}) {says}: it was set {by}"
            else:
                problem = f"{path} is as asked, but was set {by}, not by Flux from Git ({where})"
            findings.problems.append(
                f"{what}: {problem}; a change made with kubectl is not GitOps: change it in "
                "Git and push"
            )
            findings.final = True
    return findings


def run_flux(ctx: ProbeContext, args: FluxArgs) -> CheckResult:
    api_version = API_VERSIONS[args.kind]
    what = f"{args.kind} {args.name}"

    def evaluate(_window: float) -> Outcome:
        obj = ctx.get_object(api_version, args.kind, args.name)
        if obj is None:
            return Outcome(False, not_found_message(args.kind, args.name, ctx.namespace), {}, True)
        own = judge_fields(obj, args)
        evidence: Evidence = dict(own.evidence)
        if own.problems:
            return Outcome(False, f"{what}: " + "; ".join(own.problems), evidence, final=True)

        head = tag = None
        if args.git is not None:
            head, tag = _git_head(ctx, args.git)
            evidence["gitHead"] = short(head)
            if head is None:
                return Outcome(
                    False,
                    f"the lab's repository {args.git.repository} has no branch "
                    f"{args.git.branch} (git push origin {args.git.branch})",
                    evidence,
                    final=True,
                )
            if tag is not None and head == tag:
                return Outcome(
                    False,
                    f"{args.git.branch} in the lab's Git is still at its first commit (tag "
                    f"{args.git.past_tag}, {short(tag)}): commit the change and git push",
                    evidence,
                    final=True,
                )

        generation, observed = (
            (obj.get("metadata") or {}).get("generation"),
            (obj.get("status") or {}).get("observedGeneration"),
        )
        if generation is not None and observed != generation:
            return Outcome(
                False,
                f"{what} has not been reconciled since its last change (generation "
                f"{generation}, observed {show(observed)}): is Flux running?",
                evidence,
            )
        ready = ready_condition(obj)
        if ready is None or ready.get("status") != "True":
            why = (
                "no Ready condition yet"
                if ready is None
                else f"{ready.get('reason') or 'NotReady'}: {ready.get('message') or ''}"
            )
            return Outcome(False, f"{what} is not Ready ({why.strip()[:400]})", evidence)

        revision = applied_revision(obj)
        commit = revision_commit(revision)
        evidence["revision"] = evidence_value(revision)
        if head is not None and commit != head:
            return Outcome(
                False,
                f"{what} is Ready at {show(revision)}, but {args.git.branch if args.git else ''}"
                f" in the lab's Git is at {short(head)}: Flux has not fetched and applied the "
                "push yet (the GitRepository's interval)",
                evidence,
            )

        problems: list[str] = []
        good: list[str] = []
        final = False
        for wanted in args.applied:
            found = _applied_problems(ctx, obj, wanted)
            problems += found.problems
            good += found.good
            evidence.update(found.evidence)
            final = final or found.final
        at = f"Ready at {show(revision)}" + (
            f", the head of {args.git.branch} in the lab's Git" if args.git is not None else ""
        )
        if problems:
            message = f"{what} is {at}, but " + "; ".join(problems)
            return Outcome(False, message, evidence, final=final)
        return Outcome(True, f"{what} is {at}" + "".join(f"; {g}" for g in good), evidence)

    try:
        outcome, elapsed = poll(ctx, args.within_seconds, POLL_SECONDS, evaluate)
    except Unavailable as exc:
        return CheckResult.err(str(exc))
    return result(outcome, elapsed, evidence_with_seconds(outcome, elapsed))


# --- drift -------------------------------------------------------------------------------


def merge_patch_for(path: str, value: object) -> dict[str, Any]:
    """{"spec": {"replicas": 1}} for spec.replicas (a path of map keys)."""
    patch: Any = value
    for segment in reversed(parse_path(path)):
        if not isinstance(segment, Key):  # DriftArgs allows none
            raise ValueError(f"{path!r}: a merge patch names map keys only")
        patch = {segment.name: patch}
    return dict(patch)


def _restore(ctx: ProbeContext, args: DriftArgs, original: object, owner: str | None) -> str:
    """Put the drifted field back, as its earlier owner: managedFields then say who set it
    (kubectl, say) as before the check, not the checker."""
    try:
        ctx.merge_patch(
            args.target.api_version,
            args.target.kind,
            args.target.name,
            merge_patch_for(args.field, None if original is MISSING else original),
            field_manager=owner,
        )
    except ProbeApiError as exc:  # the verdict stands; say what was left
        return f"; the check could not put {args.field} back to {show(original)}: {exc}"
    return f"; the check put {args.field} back to {show(original)} itself"


def run_drift(ctx: ProbeContext, args: DriftArgs) -> CheckResult:
    target = f"{args.target.kind} {args.target.name}"
    kustomization_what = f"Kustomization {args.kustomization}"
    kustomization = ctx.get_object(KUSTOMIZATION_API_VERSION, "Kustomization", args.kustomization)
    if kustomization is None:
        return CheckResult.fail(
            not_found_message("Kustomization", args.kustomization, ctx.namespace)
        )
    if (kustomization.get("spec") or {}).get("suspend") is True:
        return CheckResult.fail(
            f"{kustomization_what} is suspended (spec.suspend): Flux corrects nothing"
        )
    ready = ready_condition(kustomization)
    if ready is None or ready.get("status") != "True":
        return CheckResult.fail(
            f"{kustomization_what} is not Ready: drift is corrected by a Kustomization that "
            "applies; make it Ready first"
        )
    obj = ctx.get_object(args.target.api_version, args.target.kind, args.target.name)
    if obj is None:
        return CheckResult.fail(
            not_found_message(args.target.kind, args.target.name, ctx.namespace)
        )
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if (
        labels.get(OWNER_NAME_LABEL) != args.kustomization
        or labels.get(OWNER_NAMESPACE_LABEL) != ctx.namespace
    ):
        return CheckResult.fail(
            f"{target} was not applied by {kustomization_what} (it has no "
            f"{OWNER_NAME_LABEL}={args.kustomization} label): Flux has nothing to restore"
        )
    original = resolve(obj, args.field)
    owner = next(iter(field_managers(obj, args.field) or []), None)
    evidence: Evidence = {
        "field": args.field,
        "gitValue": "<unset>" if original is MISSING else evidence_value(original),
        "driftedTo": evidence_value(args.drift_to),
    }
    if original is not MISSING and values_equal(original, args.drift_to):
        return CheckResult.fail(
            f"{target}: {args.field} is already {show(original)}, the value the check drifts "
            "it to: Git should declare the assigned value",
            evidence,
        )

    drifted = ctx.merge_patch(
        args.target.api_version,
        args.target.kind,
        args.target.name,
        merge_patch_for(args.field, args.drift_to),
    )
    if drifted is None:
        return CheckResult.fail(f"{target} went away while the check changed it", evidence)
    # Unique per check: every patch gives the object a new resourceVersion.
    token = f"roadlab-drift-{(drifted.get('metadata') or {}).get('resourceVersion', '')}"
    ctx.merge_patch(
        KUSTOMIZATION_API_VERSION,
        "Kustomization",
        args.kustomization,
        {"metadata": {"annotations": {RECONCILE_REQUESTED: token}}},
    )

    def evaluate(_window: float) -> Outcome:
        now = ctx.get_object(args.target.api_version, args.target.kind, args.target.name)
        if now is None:
            return Outcome(False, f"{target} went away", {}, final=True)
        value = resolve(now, args.field)
        if value is not MISSING and values_equal(value, original):
            return Outcome(
                True,
                f"Flux put {target}'s {args.field} back to {show(original)} after the check "
                f"set it to {show(args.drift_to)}",
                {},
            )
        ks = ctx.get_object(KUSTOMIZATION_API_VERSION, "Kustomization", args.kustomization)
        handled = ((ks or {}).get("status") or {}).get("lastHandledReconcileAt")
        if handled == token:
            return Outcome(
                False,
                f"{kustomization_what} reconciled after the check set {target}'s {args.field} "
                f"to {show(args.drift_to)}, and left it so: Flux restores only the fields Git "
                f"declares (does the manifest in Git set {args.field}?)",
                {},
                final=True,
            )
        return Outcome(
            False,
            f"{target}'s {args.field} is still {show(value)}: {kustomization_what} did not "
            "reconcile in time (is kustomize-controller running?)",
            {},
        )

    outcome, elapsed = poll(ctx, args.within_seconds, 1.0, evaluate)
    evidence["seconds"] = round(elapsed, 1)
    if outcome.passed:
        return CheckResult.ok(f"{outcome.message} ({elapsed:.1f} s)", evidence)
    return CheckResult.fail(outcome.message + _restore(ctx, args, original, owner), evidence)


def patched_objects(args: DriftArgs) -> set[tuple[str, str, str]]:
    """(api group, resource, name) of what a drift check patches, for the catalog to see
    that the lab grants it (the plural of the lab kinds it names: kind + s)."""
    group = args.target.api_version.rpartition("/")[0]
    return {
        ("kustomize.toolkit.fluxcd.io", "kustomizations", args.kustomization),
        (group, args.target.kind.lower() + "s", args.target.name),
    }


PROBE = Probe(
    name="flux",
    args_model=FluxArgs,
    run=run_flux,
    summary="a Flux GitRepository or Kustomization Ready at the head of the lab's Git, "
    "what it applied as Git says",
)
DRIFT_PROBE = Probe(
    name="gitops_drift",
    args_model=DriftArgs,
    run=run_drift,
    summary="a change made in the cluster by hand is reverted by Flux",
)
