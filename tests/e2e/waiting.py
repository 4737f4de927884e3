"""Polling helpers for the e2e suite."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from kubernetes import client

T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None],
    what: str,
    timeout: float = 120,
    interval: float = 1,
    explain: Callable[[], str] | None = None,
) -> T:
    """Call `check` until it returns something truthy; fail with `what` after `timeout` s.

    `explain`, when given, is called on the timeout and its text ends the failure message, so a
    failure in CI says what the cluster looked like (a one-off failure cannot be re-run there).
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as error:  # the API may not be there yet; keep the last error
            last_error = error
        time.sleep(interval)
    message = f"timed out after {timeout}s waiting for {what}; last error: {last_error}"
    if explain is not None:
        try:
            message += "\n" + explain()
        except Exception as error:  # the report is a help; its own failure must not hide ours
            message += f"\n(no report: {error})"
    raise AssertionError(message)


def pods_report(core: client.CoreV1Api, namespace: str, events: int = 20) -> str:
    """Each pod of `namespace` (node, IP, phase, conditions, containers) and its last events."""
    lines = [f"pods of {namespace}:"]
    for pod in core.list_namespaced_pod(namespace).items:
        status = pod.status
        conditions = " ".join(
            f"{c.type}={c.status}" + (f"({c.reason})" if c.reason else "")
            for c in status.conditions or []
        )
        lines.append(
            f"  {pod.metadata.name} node={pod.spec.node_name} ip={status.pod_ip} "
            f"phase={status.phase} {conditions}"
        )
        for container in status.container_statuses or []:
            state = container.state
            detail = (
                f"waiting {state.waiting.reason}: {state.waiting.message}"
                if state.waiting
                else f"terminated {state.terminated.reason} exit {state.terminated.exit_code}"
                if state.terminated
                else "running"
            )
            lines.append(
                f"    {container.name}: ready={container.ready} "
                f"restarts={container.restart_count} {detail}"
            )
    listed = core.list_namespaced_event(namespace).items
    listed.sort(key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp)
    lines.append(f"last events of {namespace}:")
    lines += [
        f"  {e.type} {e.reason} {e.involved_object.kind}/{e.involved_object.name}: {e.message}"
        for e in listed[-events:]
    ]
    return "\n".join(lines)
