"""`rollout`: a Deployment or StatefulSet has finished rolling out and has ready replicas.

    check: {probe: rollout, args: {kind: Deployment, name: web, minReady: 2}}

minReady defaults to spec.replicas. The controller must have observed the latest
generation, so a change that was just applied is not judged by the old pods.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from roadlab.probes.base import (
    CheckResult,
    Probe,
    ProbeArgs,
    ProbeContext,
    not_found_message,
)


class RolloutArgs(ProbeArgs):
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    name: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    min_ready: Annotated[int, Field(ge=0, le=1000)] | None = None


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def run(ctx: ProbeContext, args: RolloutArgs) -> CheckResult:
    what = f"{args.kind} {args.name}"
    obj = ctx.get_object("apps/v1", args.kind, args.name)
    if obj is None:
        return CheckResult.fail(not_found_message(args.kind, args.name, ctx.namespace))
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    replicas = _int(spec.get("replicas"), 1)
    wanted = replicas if args.min_ready is None else args.min_ready
    generation = _int((obj.get("metadata") or {}).get("generation"))
    observed = _int(status.get("observedGeneration"))
    ready = _int(status.get("readyReplicas"))
    updated = _int(status.get("updatedReplicas"))
    evidence: dict[str, str | int | float | bool] = {
        "replicas": replicas,
        "readyReplicas": ready,
        "updatedReplicas": updated,
        "generation": generation,
        "observedGeneration": observed,
    }
    describe = f"`kubectl rollout status {args.kind.lower()}/{args.name}`"
    if observed < generation:
        return CheckResult.fail(
            f"{what}: the controller has not processed the latest change yet (generation "
            f"{generation}, observed {observed}); wait and check {describe}",
            evidence,
        )
    if ready < wanted:
        return CheckResult.fail(
            f"{what}: {ready} of {replicas} replicas ready, expected at least {wanted} "
            f"(see {describe} and `kubectl get pods`)",
            evidence,
        )
    if args.kind == "Deployment" and updated < min(wanted, replicas):
        return CheckResult.fail(
            f"{what}: only {updated} of {replicas} replicas run the latest template, expected "
            f"at least {min(wanted, replicas)}; the rollout is still in progress ({describe})",
            evidence,
        )
    return CheckResult.ok(
        f"{what} is rolled out: {ready} of {replicas} replicas ready (needed {wanted})", evidence
    )


PROBE = Probe(
    name="rollout",
    args_model=RolloutArgs,
    run=run,
    summary="a Deployment/StatefulSet rollout is complete with enough ready replicas",
)
