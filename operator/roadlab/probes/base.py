"""What every probe shares: its result, the context it runs in, and its registration.

Probes are pure functions of (context, validated args). They never talk to the network
or the Kubernetes API themselves: the context does all I/O, so the checker supplies the
real one and the tests an in-memory one (plus a real local HTTP server). A lab's Kafka and
Redis are reached the same way, through the connections the context opens
(KafkaConnection, RedisConnection: typed results, one error type each).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

EvidenceValue: TypeAlias = str | int | float | bool
Evidence: TypeAlias = dict[str, EvidenceValue]
CheckState = Literal["Passed", "Failed", "Error"]

# Whose changes a check makes are, in an object's managedFields (a drift it makes).
CHECKER_FIELD_MANAGER = "roadlab-checker"

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


class ProbeKafkaError(Exception):
    """Kafka could not answer (unreachable, still starting, a request refused or timed out)."""


class ProbeRedisError(Exception):
    """Redis could not answer; wrong_type when the key holds another type than was asked."""

    def __init__(self, message: str, *, wrong_type: bool = False) -> None:
        super().__init__(message)
        self.wrong_type = wrong_type


# Where a topic's config value comes from: set on the topic itself, on the broker (its
# properties or a dynamic broker config), Kafka's built-in default, or not known.
ConfigSource = Literal["topic", "broker", "default", "unknown"]


@dataclass(frozen=True)
class KafkaTopicConfig:
    value: str | None  # None: sensitive or not shown
    source: ConfigSource


@dataclass(frozen=True)
class KafkaTopic:
    name: str
    partitions: int
    replication_factor: int  # the fewest replicas of any partition
    configs: Mapping[str, KafkaTopicConfig]  # every config the broker reports for it


@dataclass(frozen=True)
class KafkaGroupMember:
    member_id: str
    client_id: str
    host: str
    assignment: tuple[tuple[str, int], ...]  # (topic, partition), sorted


# Kafka's own names, as `kafka-consumer-groups.sh --describe --state` shows them.
GroupState = Literal["Stable", "Empty", "PreparingRebalance", "CompletingRebalance", "Unknown"]


@dataclass(frozen=True)
class KafkaGroup:
    group_id: str
    state: GroupState
    members: tuple[KafkaGroupMember, ...]


@dataclass(frozen=True)
class KafkaMessage:
    key: bytes
    value: bytes
    partition: int | None = None  # None: the producer's partitioner picks one by the key


class KafkaConnection(Protocol):
    """A lab's Kafka, through its bootstrap Service. Every call waits at most `timeout`
    seconds (the probe fits it within time_left()) and raises ProbeKafkaError when Kafka
    did not answer. close() when done."""

    def topic_names(self, *, timeout: float) -> list[str]:
        """Every topic, internal ones too. Asks for no topic by name, so a broker with
        auto.create.topics.enable creates none."""
        ...

    def describe_topic(self, topic: str, *, timeout: float) -> KafkaTopic | None:
        """Partitions, replication factor and configs; None when the topic does not exist
        (also found without asking for it by name)."""
        ...

    def describe_group(self, group: str, *, timeout: float) -> KafkaGroup | None:
        """The consumer group's state and members; None when no consumer ever joined it or
        the group is gone (Kafka reports it Dead)."""
        ...

    def committed_offsets(
        self, group: str, topic: str, partitions: Sequence[int], *, timeout: float
    ) -> dict[int, int | None]:
        """The group's committed offset on each partition (None: nothing committed)."""
        ...

    def end_offsets(
        self, topic: str, partitions: Sequence[int], *, timeout: float
    ) -> dict[int, int]:
        """Each partition's end (latest) offset: the offset its next message will get."""
        ...

    def produce(self, topic: str, messages: Sequence[KafkaMessage], *, timeout: float) -> None:
        """Send the messages and wait until every one is acknowledged; raises
        ProbeKafkaError when any was not. Never creates the topic."""
        ...

    def close(self) -> None: ...


class RedisConnection(Protocol):
    """A lab's Redis. Every call waits at most `timeout` seconds and raises ProbeRedisError
    when Redis did not answer. close() when done."""

    def hmget(self, key: str, fields: Sequence[str], *, timeout: float) -> list[str | None]:
        """HMGET: each field's value (None when the field or the key is absent)."""
        ...

    def close(self) -> None: ...


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

    def merge_patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Mapping[str, Any],
        field_manager: str | None = None,
    ) -> dict[str, Any] | None:
        """Merge-patch an object of the lab, None when it does not exist. The checker may
        patch only what the lab grants it by name (environment.checkerMayPatch): a probe that
        makes drift to see it corrected. field_manager: whose change managedFields records
        (default: the checker's own; a restore gives the field back to its earlier owner)."""
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

    def kafka(self, service: str, port: int) -> KafkaConnection:
        """A connection to the lab's Kafka through the bootstrap Service `service`."""
        ...

    def redis(self, service: str, port: int) -> RedisConnection:
        """A connection to the lab's Redis Service `service`."""
        ...


def cluster_service_host(service: str, namespace: str) -> str:
    """The in-cluster DNS name of a Service (resolvable from every namespace)."""
    return f"{service}.{namespace}.svc.cluster.local"


def cluster_service_url(service: str, namespace: str, port: int, path: str) -> str:
    """The in-cluster URL of a Service port (the form every real context uses)."""
    if not path.startswith("/"):
        path = "/" + path
    return f"http://{cluster_service_host(service, namespace)}:{port}{path}"


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
