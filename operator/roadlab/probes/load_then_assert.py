"""`load_then_assert`: generate HTTP load on a Service, then expect it to scale out.

    check:
      probe: load_then_assert
      args:
        service: web
        port: 80
        path: /
        concurrency: 8
        durationSeconds: 180
        hpa: web
        minReplicas: 3

Worker threads send requests until the assertion holds (checked every pollSeconds) or
the duration ends. With `hpa`, the HorizontalPodAutoscaler's status.currentReplicas must
reach minReplicas; with `deployment`, its status.replicas must exceed replicasAbove.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from roadlab.probes.base import (
    CheckResult,
    Evidence,
    Probe,
    ProbeArgs,
    ProbeContext,
    not_found_message,
)
from roadlab.probes.http_args import Method, Port, ServiceName, UrlPath
from roadlab.probes.traffic import Traffic, window_within_deadline

Name = Annotated[str, StringConstraints(min_length=1, max_length=253)]


class LoadThenAssertArgs(ProbeArgs):
    service: ServiceName
    port: Port = 80
    path: UrlPath = "/"
    method: Method = "GET"
    concurrency: Annotated[int, Field(ge=1, le=32)] = 4
    duration_seconds: Annotated[int, Field(ge=1, le=300)] = 120
    poll_seconds: Annotated[float, Field(ge=0.1, le=60)] = 5
    request_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 5
    hpa: Name | None = None
    min_replicas: Annotated[int, Field(ge=1, le=1000)] | None = None
    deployment: Name | None = None
    replicas_above: Annotated[int, Field(ge=0, le=1000)] | None = None

    @model_validator(mode="after")
    def _one_assertion(self) -> LoadThenAssertArgs:
        if (self.hpa is None) == (self.deployment is None):
            raise ValueError("give exactly one of hpa (with minReplicas) or deployment")
        if self.hpa is not None and (self.min_replicas is None or self.replicas_above is not None):
            raise ValueError("hpa needs minReplicas (and no replicasAbove)")
        if self.deployment is not None and (
            self.replicas_above is None or self.min_replicas is not None
        ):
            raise ValueError("deployment needs replicasAbove (and no minReplicas)")
        return self

    @property
    def target(self) -> tuple[str, str, str]:
        """(apiVersion, kind, name) of the object whose replicas are watched."""
        if self.hpa is not None:
            return "autoscaling/v2", "HorizontalPodAutoscaler", self.hpa
        return "apps/v1", "Deployment", self.deployment or ""

    def reached(self, replicas: int) -> bool:
        if self.min_replicas is not None:
            return replicas >= self.min_replicas
        return replicas > (self.replicas_above or 0)

    def expectation(self) -> str:
        if self.min_replicas is not None:
            return f"at least {self.min_replicas}"
        return f"more than {self.replicas_above}"


def _replicas(obj: dict[str, object], kind: str) -> int:
    status = obj.get("status")
    key = "currentReplicas" if kind == "HorizontalPodAutoscaler" else "replicas"
    value = status.get(key) if isinstance(status, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _hpa_ceiling(obj: dict[str, object]) -> int | None:
    spec = obj.get("spec")
    value = spec.get("maxReplicas") if isinstance(spec, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def run(ctx: ProbeContext, args: LoadThenAssertArgs) -> CheckResult:
    api_version, kind, name = args.target
    obj = ctx.get_object(api_version, kind, name)
    if obj is None:
        return CheckResult.fail(not_found_message(kind, name, ctx.namespace))
    ceiling = _hpa_ceiling(obj) if args.hpa is not None else None
    if ceiling is not None and args.min_replicas is not None and ceiling < args.min_replicas:
        # No load can help: say so now rather than after minutes of it.
        return CheckResult.fail(
            f"{kind} {name} can never reach {args.min_replicas} replicas: "
            f"its spec.maxReplicas is {ceiling}",
            {"maxReplicas": ceiling},
        )
    initial = highest = _replicas(obj, kind)
    duration = window_within_deadline(ctx, float(args.duration_seconds))
    url = ctx.service_url(args.service, args.port, args.path)
    started = ctx.monotonic()
    elapsed = 0.0
    reached = args.reached(initial)
    with Traffic(
        ctx,
        [url],
        concurrency=args.concurrency,
        timeout=args.request_timeout_seconds,
        method=args.method,
    ) as load:
        while not reached:
            elapsed = ctx.monotonic() - started
            if elapsed >= duration:
                break
            ctx.sleep(min(args.poll_seconds, duration - elapsed))
            current = ctx.get_object(api_version, kind, name)
            replicas = _replicas(current, kind) if current is not None else 0
            highest = max(highest, replicas)
            reached = args.reached(replicas)
        elapsed = ctx.monotonic() - started
    evidence: Evidence = {
        "requests": load.sent,
        "errors": load.errors,
        "initialReplicas": initial,
        "maxReplicas": highest,
        "seconds": round(elapsed, 1),
    }
    what = f"{kind} {name}"
    if reached:
        return CheckResult.ok(
            f"{what} scaled to {highest} replicas ({args.expectation()}) after "
            f"{elapsed:.0f} s of load ({load.sent} requests)",
            evidence,
        )
    if load.sent > 0 and load.unanswered == load.sent:
        return CheckResult.err(
            f"the load could not be generated: all {load.sent} requests to {url} got no answer "
            f"(last: {load.last_error}); check the Service {args.service} and its pods",
            evidence,
        )
    movement = (
        f"replicas rose from {initial} to {highest}"
        if highest > initial
        else f"replicas stayed at {initial}"
    )
    window = f"{duration:.0f} s"
    if duration < args.duration_seconds:
        window += f" (of the {args.duration_seconds} s asked for; the check deadline came first)"
    return CheckResult.fail(
        f"{what}: {movement}, expected {args.expectation()} within {window} of load "
        f"({load.sent} requests, {load.errors} errors); check the autoscaler's target and the "
        "pods' CPU requests (`kubectl describe hpa`)",
        evidence,
    )


PROBE = Probe(
    name="load_then_assert",
    args_model=LoadThenAssertArgs,
    run=run,
    summary="HTTP load on a Service makes an HPA or Deployment scale out in time",
)
