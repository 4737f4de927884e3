"""`pod_metrics`: the metrics API (metrics.k8s.io) reports usage for the selected pods.

    check: {probe: pod_metrics, args: {labelSelector: app=web, minPods: 1}}

Evidence: totals and, for the first few pods, CPU in millicores and memory in MiB
(each pod's containers summed).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from roadlab.probes.base import CheckResult, Evidence, Probe, ProbeArgs, ProbeContext, plural
from roadlab.probes.quantity import QuantityError, mebibytes, millicores

METRICS_API = "metrics.k8s.io/v1beta1"
PODS_IN_EVIDENCE = 4


class PodMetricsArgs(ProbeArgs):
    label_selector: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    min_pods: Annotated[int, Field(ge=1, le=1000)] = 1


def _usage(item: dict[str, Any]) -> tuple[float, float] | None:
    """(millicores, MiB) summed over containers; None when a figure is unreadable."""
    cpu = memory = 0.0
    containers = item.get("containers") or []
    if not containers:
        return None
    try:
        for container in containers:
            usage = container.get("usage") or {}
            cpu += millicores(usage.get("cpu", "0"))
            memory += mebibytes(usage.get("memory", "0"))
    except QuantityError:
        return None
    return cpu, memory


def run(ctx: ProbeContext, args: PodMetricsArgs) -> CheckResult:
    items = ctx.list_objects(METRICS_API, "PodMetrics", args.label_selector)
    usages: dict[str, tuple[float, float]] = {}
    for item in items:
        usage = _usage(item)
        if usage is not None:
            usages[str((item.get("metadata") or {}).get("name", "?"))] = usage
    evidence: Evidence = {
        "pods": len(usages),
        "cpuMillicores": round(sum(u[0] for u in usages.values()), 1),
        "memoryMiB": round(sum(u[1] for u in usages.values()), 1),
    }
    for name in sorted(usages)[:PODS_IN_EVIDENCE]:
        cpu, memory = usages[name]
        evidence[f"{name} cpuMillicores"] = round(cpu, 1)
        evidence[f"{name} memoryMiB"] = round(memory, 1)
    if len(usages) < args.min_pods:
        return CheckResult.fail(
            f"the metrics API reports usage for {plural(len(usages), 'pod')} matching "
            f"{args.label_selector}, expected at least {args.min_pods}: check that the pods "
            "run and give metrics-server about a minute after they start "
            "(`kubectl top pods`)",
            evidence,
        )
    return CheckResult.ok(
        f"the metrics API reports usage for {plural(len(usages), 'pod')} matching "
        f"{args.label_selector}: {evidence['cpuMillicores']}m CPU, "
        f"{evidence['memoryMiB']} MiB memory in total",
        evidence,
    )


PROBE = Probe(
    name="pod_metrics",
    args_model=PodMetricsArgs,
    run=run,
    summary="metrics.k8s.io reports CPU and memory usage for the selected pods",
)
