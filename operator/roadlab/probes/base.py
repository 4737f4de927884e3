"""What every probe shares: its result, the context it runs in, and its registration.

Probes are pure functions of (context, validated args). They never talk to the network
or the Kubernetes API themselves: the context does all I/O, so the checker supplies the
real one and the tests an in-memory one (plus a real local HTTP server).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

EvidenceValue: TypeAlias = str | int | float | bool
Evidence: TypeAlias = dict[str, EvidenceValue]
CheckState = Literal["Passed", "Failed", "Error"]

# Longest value shown inside a message ("data.answer is "…", expected …").
MAX_SHOWN_VALUE = 80


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one probe run.

    error=True means the check could not be evaluated at all (service unreachable, API
    refused, bad arguments); passed is then False.
    """

    passed: bool
    message: str
    evidence: Evidence = field(default_factory=dict)
    error: bool = False

    @property
    def state(self) -> CheckState:
        if self.error:
            return "Error"
        return "Passed" if self.passed else "Failed"

    @classmethod
    def ok(cls, message: str, evidence: Evidence | None = None) -> CheckResult:
        return cls(True, message, dict(evidence or {}))

    @classmethod
    def fail(cls, message: str, evidence: Evidence | None = None) -> CheckResult:
        return cls(False, message, dict(evidence or {}))

    @classmethod
    def err(cls, message: str, evidence: Evidence | None = None) -> CheckResult:
        return cls(False, message, dict(evidence or {}), error=True)


@dataclass(frozen=True)
class HttpResponse:
    """A completed HTTP exchange (any status); seconds is the wall time it took."""

    status: int
    body: bytes
    seconds: float

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not JSON."""
        return json.loads(self.body)


class ProbeHttpError(Exception):
    """The HTTP request could not be completed (refused, timed out, name did not resolve)."""


class ProbeApiError(Exception):
    """The Kubernetes API could not answer (kind not served, forbidden, unavailable)."""


class ProbeContext(Protocol):
    """Everything a probe may do to observe the lab. One context per lab namespace."""

    @property
    def namespace(self) -> str: ...

    def get_object(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        """The object in the lab namespace, or None when it does not exist."""
        ...

    def list_objects(
        self, api_version: str, kind: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects of a kind in the lab namespace, optionally filtered by labels."""
        ...

    def http(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10,
    ) -> HttpResponse:
        """One HTTP request; raises ProbeHttpError when no response arrived."""
        ...

    def sleep(self, seconds: float) -> None: ...

    def monotonic(self) -> float: ...

    def service_url(self, service: str, port: int, path: str) -> str:
        """http://<service>.<namespace>.svc.cluster.local:<port><path>"""
        ...

    def time_left(self) -> float | None:
        """Seconds until the check deadline (None: no deadline). Long probes fit within it."""
        ...


def cluster_service_url(service: str, namespace: str, port: int, path: str) -> str:
    """The in-cluster URL of a Service port (the form every real context uses)."""
    if not path.startswith("/"):
        path = "/" + path
    return f"http://{service}.{namespace}.svc.cluster.local:{port}{path}"


class ProbeArgs(BaseModel):
    """Base of every probe's arguments: camelCase keys as in lab.yaml, typos rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


A = TypeVar("A", bound=ProbeArgs)


@dataclass(frozen=True)
class Probe(Generic[A]):
    """A named check: how its arguments look and how it runs."""

    name: str
    args_model: type[A]
    run: Callable[[ProbeContext, A], CheckResult]
    summary: str = ""


# --- helpers for messages -------------------------------------------------------------------


def show(value: object, limit: int = MAX_SHOWN_VALUE) -> str:
    """A value as the learner sees it in `kubectl get -o json`: 2, "42", true, null."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except ValueError:  # pragma: no cover - circular structures cannot come from JSON
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def evidence_value(value: object, limit: int = MAX_SHOWN_VALUE) -> EvidenceValue:
    """A scalar for evidence: scalars as they are (strings capped), the rest as JSON text."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 3] + "..."
    return show(value, limit)


def optional_regex(value: str | None) -> str | None:
    """A field validator: the value, when set, must compile as a regular expression."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
    return value


def plural(count: int, word: str, suffix: str = "s") -> str:
    return f"{count} {word}{'' if count == 1 else suffix}"


# How to create the usual kinds, for "not found" messages.
CREATE_HINTS: Mapping[str, str] = {
    "HorizontalPodAutoscaler": "create one with `kubectl autoscale` or a manifest",
    "Deployment": "create one with `kubectl create deployment` or a manifest",
    "StatefulSet": "create one with a manifest (`kubectl apply -f`)",
    "Service": "create one with `kubectl expose` or a manifest",
    "ConfigMap": "create one with `kubectl create configmap` or a manifest",
    "Secret": "create one with `kubectl create secret` or a manifest",
    "Job": "create one with `kubectl create job` or a manifest",
    "CronJob": "create one with `kubectl create cronjob` or a manifest",
    "Ingress": "create one with `kubectl create ingress` or a manifest",
    "ServiceAccount": "create one with `kubectl create serviceaccount` or a manifest",
    "Role": "create one with `kubectl create role` or a manifest",
    "RoleBinding": "create one with `kubectl create rolebinding` or a manifest",
    "PersistentVolumeClaim": "create one with a manifest (`kubectl apply -f`)",
}


def not_found_message(kind: str, name: str, namespace: str) -> str:
    hint = CREATE_HINTS.get(kind, "create it with a manifest (`kubectl apply -f`)")
    return f"{kind} {name} not found in namespace {namespace}: {hint}"
