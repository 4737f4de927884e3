"""`pods_ready`: enough pods matching a label selector are Ready (optionally with a container).

    check:
      probe: pods_ready
      args:
        labelSelector: app=web
        minCount: 2
        containerHas: [{name: istio-proxy}]

A required container may be a regular container or a native sidecar (an init container
with restartPolicy: Always), as Istio injects it either way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from roadlab.probes.base import (
    CheckResult,
    Evidence,
    Probe,
    ProbeArgs,
    ProbeContext,
    optional_regex,
    plural,
)

MAX_NAMED_PODS = 5


class ContainerHas(ProbeArgs):
    name: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    image: str | None = None  # regex searched in the image reference

    _image = field_validator("image")(optional_regex)

    def describe(self) -> str:
        image = f" with an image matching {self.image}" if self.image else ""
        return f"a container named {self.name}{image}"


class PodsReadyArgs(ProbeArgs):
    label_selector: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    min_count: Annotated[int, Field(ge=1, le=1000)] = 1
    container_has: list[ContainerHas] = Field(default_factory=list, max_length=8)


def is_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _containers(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    return [*(spec.get("containers") or []), *sidecars]


def has_container(pod: Mapping[str, Any], wanted: ContainerHas) -> bool:
    for container in _containers(pod):
        if container.get("name") != wanted.name:
            continue
        if wanted.image is None or re.search(wanted.image, str(container.get("image", ""))):
            return True
    return False


def pod_names(pods: Sequence[Mapping[str, Any]]) -> str:
    """The pods' names, sorted, the first MAX_NAMED_PODS of them, for a message."""
    names = sorted(str((p.get("metadata") or {}).get("name", "?")) for p in pods)
    shown = ", ".join(names[:MAX_NAMED_PODS])
    return shown + (
        f" and {len(names) - MAX_NAMED_PODS} more" if len(names) > MAX_NAMED_PODS else ""
    )


def _phase(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return str(status.get("phase") or "Unknown")


def run(ctx: ProbeContext, args: PodsReadyArgs) -> CheckResult:
    pods = ctx.list_objects("v1", "Pod", args.label_selector)
    selector = args.label_selector
    ready = [p for p in pods if is_ready(p)]
    evidence: Evidence = {"matching": len(pods), "ready": len(ready)}
    if not pods:
        return CheckResult.fail(
            f"no pods match {selector} in namespace {ctx.namespace}: expected at least "
            f"{args.min_count} ready (check the labels with `kubectl get pods --show-labels`)",
            evidence,
        )
    if len(ready) < args.min_count:
        not_ready = [p for p in pods if not is_ready(p)]
        details = ", ".join(
            f"{(p.get('metadata') or {}).get('name', '?')} ({_phase(p)})"
            for p in not_ready[:MAX_NAMED_PODS]
        )
        return CheckResult.fail(
            f"{len(ready)} of {plural(len(pods), 'pod')} matching {selector} "
            f"{'is' if len(ready) == 1 else 'are'} ready, expected at least {args.min_count}"
            + (f"; not ready: {details}" if details else ""),
            evidence,
        )
    complete = ready
    for wanted in args.container_has:
        lacking = [p for p in complete if not has_container(p, wanted)]
        complete = [p for p in complete if has_container(p, wanted)]
        evidence[f"with {wanted.name}"] = len(complete)
        if len(complete) < args.min_count:
            return CheckResult.fail(
                f"{len(lacking)} of {len(ready)} ready pods matching {selector} lack "
                f"{wanted.describe()}: {pod_names(lacking)}; expected at least {args.min_count} "
                "pods with it (pods only get new containers when they are recreated)",
                evidence,
            )
    extra = (
        " with " + ", ".join(w.describe() for w in args.container_has) if args.container_has else ""
    )
    return CheckResult.ok(
        f"{len(complete)} of {plural(len(pods), 'pod')} matching {selector} ready{extra} "
        f"(needed {args.min_count})",
        evidence,
    )


PROBE = Probe(
    name="pods_ready",
    args_model=PodsReadyArgs,
    run=run,
    summary="enough pods matching a selector are Ready, optionally with given containers",
)
