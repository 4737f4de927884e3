"""Service-mesh behaviour, measured: a weighted split of real responses and STRICT mTLS.

    check:                                  # sent from a meshed check run (checkRunner: mesh)
      probe: traffic_split
      args:
        service: reviews
        port: 80
        requests: 200
        versionPattern: "\\(([-\\w.]+)\\)\\s*$"   # the version in each answer's body
        weights: {v1: "{{ 100 - params.canaryWeight }}", v2: "{{ params.canaryWeight }}"}

    check:
      probe: plaintext_refused
      args:
        labelSelector: app=reviews
        port: 8080

traffic_split sends `requests` GETs to the Service, one after another, and counts the
answers by the version the pattern finds in their bodies. A split is only seen by a client
with a sidecar (Istio routes on the client's side), so the lab's check runs meshed. Each
version's count must lie within `toleranceSigmas` binomial standard deviations of its
weight's share: with 200 requests and 4 sigmas, a 90/10 split passes from 164/36 to
196/4, and a 50/50 or an inverted split fails. Failures say what the counts look like
(inverted, even as without mesh routing, an unknown version, errors such as Envoy's 503
"no healthy upstream").

plaintext_refused sends plain HTTP straight to each selected pod's IP, bypassing the check
run's own sidecar (the meshed check run excludes pod IPs from its traffic capture). Under
STRICT mutual TLS every pod's sidecar closes such a connection; an HTTP answer means plain
text is still accepted. Pods without an istio-proxy container fail first: without a sidecar
nothing enforces mTLS, and a refusal would prove nothing.
"""

from __future__ import annotations

import math
import re
from collections import Counter
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
    ProbeHttpError,
    plural,
    show,
)
from roadlab.probes.http_args import Port, ServiceName, UrlPath, snippet, unreachable
from roadlab.probes.pods_ready import ContainerHas, has_container, is_ready, pod_names

SIDECAR_CONTAINER = "istio-proxy"
DEFAULT_VERSION_PATTERN = r"\(([-\w.]+)\)\s*$"
MAX_NAMED = 4
# Requests are stopped this long before the check deadline, so the report still goes out.
DEADLINE_MARGIN_SECONDS = 5

Version = Annotated[str, StringConstraints(pattern=r"^[-\w.]{1,63}$")]
Percent = Annotated[int, Field(ge=0, le=100)]


class TrafficSplitArgs(ProbeArgs):
    service: ServiceName
    port: Port = 80
    path: UrlPath = "/"
    requests: Annotated[int, Field(ge=20, le=2000)] = 200
    version_pattern: Annotated[str, StringConstraints(min_length=1, max_length=200)] = (
        DEFAULT_VERSION_PATTERN
    )
    weights: Annotated[dict[Version, Percent], Field(min_length=2, max_length=8)]
    tolerance_sigmas: Annotated[float, Field(ge=1, le=6)] = 4
    max_errors: Annotated[int, Field(ge=0)] = 0
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 5

    @field_validator("version_pattern")
    @classmethod
    def _one_group(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
        if compiled.groups != 1:
            raise ValueError("versionPattern needs exactly one group: the version")
        return value

    @model_validator(mode="after")
    def _weights_add_up(self) -> TrafficSplitArgs:
        if sum(self.weights.values()) != 100:
            raise ValueError(f"weights add up to {sum(self.weights.values())}, not 100")
        return self


# --- the statistics (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """A version's expected count out of n and how far from it a count may lie."""

    count: float
    tolerance: float

    def admits(self, observed: int) -> bool:
        return abs(observed - self.count) <= self.tolerance

    def describe(self) -> str:
        return f"{self.count:.0f} ± {self.tolerance:.0f}"


def expected_counts(weights: Mapping[str, int], n: int, sigmas: float) -> dict[str, Expected]:
    """Binomial mean n·p and tolerance sigmas·sqrt(n·p·(1-p)) per version. At least half a
    request of slack, so a weight of 0 or 100 admits exactly its count and nothing else."""
    found = {}
    for version, weight in weights.items():
        p = weight / 100
        found[version] = Expected(n * p, max(0.5, sigmas * math.sqrt(n * p * (1 - p))))
    return found


def fits(counts: Mapping[str, int], weights: Mapping[str, int], n: int, sigmas: float) -> bool:
    expected = expected_counts(weights, n, sigmas)
    return all(e.admits(counts.get(version, 0)) for version, e in expected.items())


def inverted(weights: Mapping[str, int]) -> dict[str, int] | None:
    """The two weights swapped (None unless there are two, and they differ)."""
    if len(weights) != 2 or len(set(weights.values())) != 2:
        return None
    (a, wa), (b, wb) = weights.items()
    return {a: wb, b: wa}


def even(weights: Mapping[str, int]) -> dict[str, int] | None:
    """Equal shares for each version, as a plain Service's round-robin over one pod per
    version gives (None when the assigned split is already that, or 100 does not divide)."""
    share, rest = divmod(100, len(weights))
    if rest or all(w == share for w in weights.values()):
        return None
    return dict.fromkeys(weights, share)


def _counts_text(
    counts: Mapping[str, int], weights: Mapping[str, int], n: int, sigmas: float
) -> str:
    expected = expected_counts(weights, n, sigmas)
    return ", ".join(
        f"{version} {counts.get(version, 0)} (expected {e.describe()})"
        for version, e in expected.items()
    )


def judge_split(
    counts: Mapping[str, int], weights: Mapping[str, int], n: int, sigmas: float
) -> tuple[bool, str]:
    """(passed, what the counts say) for n answers counted by version."""
    measured = _counts_text(counts, weights, n, sigmas)
    if fits(counts, weights, n, sigmas):
        return True, f"measured split of {n} responses: {measured}"
    swapped = inverted(weights)
    if swapped is not None and fits(counts, swapped, n, sigmas):
        return False, (
            f"the split is inverted: {measured}; the versions got each other's weights: are "
            "the subsets' labels swapped in the DestinationRule, or the weights in the "
            "VirtualService?"
        )
    silent = [v for v, w in weights.items() if w > 0 and counts.get(v, 0) == 0]
    if silent:
        return False, (
            f"no answer came from {' or '.join(silent)}: {measured}; are its pods ready "
            "(`kubectl get pods --show-labels`), and does its subset select them?"
        )
    evenly = even(weights)
    if evenly is not None and fits(counts, evenly, n, sigmas):
        return False, (
            f"the requests were spread evenly, as the Service's own round-robin does without "
            f"mesh routing: {measured}; does the VirtualService's host name the Service, "
            "and is its first HTTP route the weighted one?"
        )
    return False, f"the measured split is not the assigned one: {measured}"


# --- the probes ---------------------------------------------------------------------------------


def run_traffic_split(ctx: ProbeContext, args: TrafficSplitArgs) -> CheckResult:
    url = ctx.service_url(args.service, args.port, args.path)
    pattern = re.compile(args.version_pattern)
    counts: Counter[str] = Counter()
    unknown: Counter[str] = Counter()  # a version the weights do not name
    unmatched = 0
    errors: Counter[str] = Counter()
    error_example: dict[str, str] = {}
    sent = 0
    first_unmatched = ""
    for _ in range(args.requests):
        time_left = ctx.time_left()
        if time_left is not None and time_left < args.timeout_seconds + DEADLINE_MARGIN_SECONDS:
            break
        sent += 1
        try:
            response = ctx.http("GET", url, timeout=args.timeout_seconds)
        except ProbeHttpError as exc:
            errors["no response"] += 1
            error_example.setdefault("no response", str(exc))
            continue
        if response.status >= 400:
            key = f"status {response.status}"
            errors[key] += 1
            error_example.setdefault(key, snippet(response))
            continue
        found = pattern.search(response.text())
        if found is None:
            unmatched += 1
            first_unmatched = first_unmatched or snippet(response)
        elif found.group(1) in args.weights:
            counts[found.group(1)] += 1
        else:
            unknown[found.group(1)] += 1
    answered = sum(counts.values())
    evidence: Evidence = {"url": url, "requests": sent, "sigmas": args.tolerance_sigmas}
    expected = expected_counts(args.weights, max(answered, 1), args.tolerance_sigmas)
    for version in args.weights:
        evidence[f"count.{version}"] = counts[version]
        evidence[f"expected.{version}"] = expected[version].describe()
    if errors:
        evidence["errors"] = sum(errors.values())
    if sent < args.requests:
        return CheckResult.err(
            f"the check's time ran out after {sent} of {args.requests} requests to {url}",
            evidence,
        )
    if errors["no response"] == sent:
        return CheckResult.err(
            unreachable(
                args.service, args.port, f"GET {url}", ProbeHttpError(error_example["no response"])
            ),
            evidence,
        )
    if sum(errors.values()) > args.max_errors:
        listed = "; ".join(
            f"{plural(count, 'request')} got {key} ({error_example[key]})"
            for key, count in errors.most_common()
        )
        hint = (
            ": 503 with no healthy upstream means a subset selects no ready pod (compare the "
            "DestinationRule's subset labels with `kubectl get pods --show-labels`)"
            if errors.get("status 503")
            else ""
        )
        return CheckResult.fail(
            f"{sum(errors.values())} of {sent} requests to {url} failed: {listed}{hint}", evidence
        )
    if unmatched:
        return CheckResult.fail(
            f"{plural(unmatched, 'answer')} of {sent} carried no version matching "
            f"{args.version_pattern} (first: {first_unmatched})",
            evidence,
        )
    if unknown:
        listed = ", ".join(f"{v} {c}" for v, c in unknown.most_common(MAX_NAMED))
        return CheckResult.fail(
            f"answers came from versions the split does not name ({listed}); expected only "
            f"{', '.join(args.weights)}",
            evidence,
        )
    passed, message = judge_split(counts, args.weights, answered, args.tolerance_sigmas)
    message += f" (tolerance {args.tolerance_sigmas:g} binomial standard deviations)"
    return CheckResult(passed, message, evidence)


class PlaintextRefusedArgs(ProbeArgs):
    label_selector: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    port: Port
    path: UrlPath = "/"
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 5


def _name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", "?"))


def run_plaintext_refused(ctx: ProbeContext, args: PlaintextRefusedArgs) -> CheckResult:
    pods = [p for p in ctx.list_objects("v1", "Pod", args.label_selector) if is_ready(p)]
    evidence: Evidence = {"selector": args.label_selector, "pods": len(pods)}
    if not pods:
        return CheckResult.fail(
            f"no ready pod matches {args.label_selector} in namespace {ctx.namespace}", evidence
        )
    sidecar = ContainerHas(name=SIDECAR_CONTAINER)
    bare = [p for p in pods if not has_container(p, sidecar)]
    if bare:
        return CheckResult.fail(
            f"{plural(len(bare), 'pod')} without an {SIDECAR_CONTAINER} sidecar "
            f"({pod_names(bare)}): nothing enforces mutual TLS there; label the namespace "
            "istio-injection=enabled and restart the Deployments "
            "(`kubectl rollout restart deployment`)",
            evidence,
        )
    answered: list[tuple[Mapping[str, Any], int]] = []
    refusals: list[str] = []
    for pod in pods:
        ip = (pod.get("status") or {}).get("podIP")
        if not ip:
            return CheckResult.err(f"pod {_name(pod)} has no IP yet", evidence)
        url = f"http://{ip}:{args.port}{args.path}"
        try:
            response = ctx.http("GET", url, timeout=args.timeout_seconds)
        except ProbeHttpError as exc:
            refusals.append(str(exc))
            continue
        answered.append((pod, response.status))
    evidence["refused"] = len(refusals)
    if refusals:
        evidence["refusal"] = show(refusals[0])
    if answered:
        listed = ", ".join(f"{_name(p)} {status}" for p, status in answered[:MAX_NAMED])
        return CheckResult.fail(
            f"plain text from a client without a mesh identity got answers ({listed}): mutual "
            "TLS is not STRICT; a PeerAuthentication default with spec.mtls.mode STRICT makes "
            "the sidecars refuse it",
            evidence,
        )
    if any("connection refused" in r for r in refusals):
        return CheckResult.err(
            f"nothing listens on port {args.port} of the pods (connection refused), so their "
            "refusal proves nothing about mTLS: is the port the pods' own?",
            evidence,
        )
    return CheckResult.ok(
        f"plain text to port {args.port} of {plural(len(pods), 'pod')} ({pod_names(pods)}) was "
        f"refused by their sidecars ({refusals[0]}): mutual TLS is STRICT",
        evidence,
    )


PROBE = Probe(
    name="traffic_split",
    args_model=TrafficSplitArgs,
    run=run_traffic_split,
    summary="requests to a Service, counted by version, follow the assigned weights",
)
PLAINTEXT_PROBE = Probe(
    name="plaintext_refused",
    args_model=PlaintextRefusedArgs,
    run=run_plaintext_refused,
    summary="the selected pods' sidecars refuse plain text (STRICT mutual TLS)",
)
