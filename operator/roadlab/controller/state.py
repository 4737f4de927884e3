"""The operator process's state and what every handler shares: the runtime set up at
start, the latest body of every Lab (kept by watch events), status writes, a Lab's logger.

Kept apart from handlers.py, so that it holds the Kopf decorators only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from kubernetes.client.exceptions import ApiException

from roadlab.api import naming
from roadlab.catalog.schema import LabDefinition
from roadlab.controller.settings import Settings
from roadlab.kube.operator_api import OperatorApi

log = logging.getLogger(__name__)
LabLogger = logging.LoggerAdapter[logging.Logger]


@dataclass
class Runtime:
    settings: Settings
    api: OperatorApi
    catalog: dict[str, LabDefinition]


_runtime: Runtime | None = None


def set_runtime(runtime_: Runtime) -> None:
    """Set once at start-up, before any handler runs."""
    global _runtime  # noqa: PLW0603 - the one runtime of the operator process
    _runtime = runtime_


labs: dict[str, dict[str, Any]] = {}  # the latest body of every Lab, kept by watch events


def as_body(body: Mapping[str, Any]) -> kopf.Body:
    """What kopf.event() takes, from a handler's body or a body read through the API."""
    return body if isinstance(body, kopf.Body) else kopf.Body(cast(kopf.RawBody, dict(body)))


def lab_logger(lab: Mapping[str, Any]) -> LabLogger:
    """`log`, with the Lab as the object of every line: for code that has no Kopf logger for
    the Lab (the ticker, guardrail events, worker threads).

    The same `k8s_ref` extra as Kopf's own per-object logger, so the log formats (main.py)
    show both alike; unlike Kopf's, its lines never become Events. Made per line logged
    only, never per event.
    """
    metadata = lab.get("metadata") or {}
    ref = {
        "apiVersion": lab.get("apiVersion", naming.API_VERSION),
        "kind": lab.get("kind", naming.KIND),
        "name": metadata.get("name"),
        "uid": metadata.get("uid"),
    }
    return logging.LoggerAdapter(log, {"k8s_ref": ref})


def runtime() -> Runtime:
    if _runtime is None:
        raise kopf.TemporaryError("the operator is still starting", delay=5)
    return _runtime


class StatusConflict(kopf.TemporaryError):
    """The Lab changed while a handler worked from an older copy."""


def write_status(body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
    """Merge-patch the Lab's status, only if the Lab is still the version the handler read.

    Check results are written by another path (record_check) at any moment; a handler
    working from an older copy must not write that copy's lastCheck or conditions back.
    On a conflict the handler runs again with the current Lab.
    """
    if not status:
        return
    metadata = body["metadata"]
    try:
        runtime().api.patch_lab_status(
            metadata["name"], dict(status), metadata.get("resourceVersion")
        )
    except ApiException as error:
        if error.status == 409:
            raise StatusConflict(
                "the Lab changed meanwhile; again with its new version", delay=1
            ) from error
        raise


def now() -> datetime:
    return datetime.now(UTC)
