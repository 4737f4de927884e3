"""The validation probe library: what a catalog task's `check: {probe, args}` can ask for.

validate_check(probe, args)  at catalog load: unknown probe or bad args -> ValueError
run_check(ctx, probe, args)  in the checker: always a CheckResult, never an exception
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from roadlab.probes import (
    flux,
    helm,
    http_latency,
    http_probe,
    kafka,
    kserve_v2,
    load_then_assert,
    mesh,
    mlflow,
    pod_metrics,
    pods_ready,
    prometheus,
    resource,
    rollout,
)
from roadlab.probes.base import (
    CheckResult,
    HttpResponse,
    KafkaConnection,
    Probe,
    ProbeApiError,
    ProbeContext,
    ProbeHttpError,
    ProbeKafkaError,
    ProbeRedisError,
    RedisConnection,
    cluster_service_host,
    cluster_service_url,
)

__all__ = [
    "PROBES",
    "CheckResult",
    "HttpResponse",
    "KafkaConnection",
    "Probe",
    "ProbeApiError",
    "ProbeContext",
    "ProbeHttpError",
    "ProbeKafkaError",
    "ProbeRedisError",
    "RedisConnection",
    "cluster_service_host",
    "cluster_service_url",
    "describe_args_error",
    "run_check",
    "validate_check",
]

PROBES: dict[str, Probe[Any]] = {
    probe.name: probe
    for probe in (
        resource.PROBE,
        rollout.PROBE,
        pods_ready.PROBE,
        http_probe.PROBE,
        http_latency.PROBE,
        kserve_v2.PROBE,
        mlflow.PROBE,
        pod_metrics.PROBE,
        load_then_assert.PROBE,
        helm.PROBE,
        prometheus.PROBE,
        kafka.PROBE,
        flux.PROBE,
        flux.DRIFT_PROBE,
        mesh.PROBE,
        mesh.PLAINTEXT_PROBE,
    )
}


def describe_args_error(exc: ValidationError) -> str:
    """One clause per problem, "fieldEquals.spec.x: message", without pydantic's URLs."""
    parts = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error["loc"]) or "args"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{location}: {message}")
    return "; ".join(parts)


def _parse(probe: str, args: Mapping[str, Any]) -> tuple[Probe[Any], Any]:
    """(probe, validated args), or ValueError naming the problem."""
    found = PROBES.get(probe)
    if found is None:
        raise ValueError(f"unknown probe {probe!r} (known: {', '.join(sorted(PROBES))})")
    if not isinstance(args, Mapping):
        raise ValueError(f"probe {probe!r}: args must be a mapping")
    try:
        return found, found.args_model.model_validate(dict(args))
    except ValidationError as exc:
        raise ValueError(f"probe {probe!r}: invalid args: {describe_args_error(exc)}") from exc


def validate_check(probe: str, args: Mapping[str, Any]) -> None:
    """Raise ValueError when `probe` is unknown or `args` do not fit it."""
    _parse(probe, args)


def run_check(ctx: ProbeContext, probe: str, args: Mapping[str, Any]) -> CheckResult:
    """Run one check. Never raises: whatever goes wrong becomes an Error result."""
    try:
        found, parsed = _parse(probe, args)
    except ValueError as exc:
        return CheckResult.err(f"the check is misconfigured: {exc}")
    try:
        return found.run(ctx, parsed)
    except ProbeHttpError as exc:
        return CheckResult.err(f"probe {probe} could not complete an HTTP request: {exc}")
    except ProbeApiError as exc:
        return CheckResult.err(f"probe {probe} could not read from the Kubernetes API: {exc}")
    except ProbeKafkaError as exc:
        return CheckResult.err(f"probe {probe} could not talk to Kafka: {exc}")
    except ProbeRedisError as exc:
        return CheckResult.err(f"probe {probe} could not talk to Redis: {exc}")
    except Exception as exc:
        return CheckResult.err(f"probe {probe} failed unexpectedly: {type(exc).__name__}: {exc}")
