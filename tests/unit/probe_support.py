"""Test doubles for the probe tests: an in-memory ProbeContext and a real local HTTP server.

The context keeps Kubernetes objects in dicts, but its `http` is the checker's real
implementation (roadlab.checker.probe_context.http_request), pointed at a server on 127.0.0.1.
Its `kafka` and `redis` are in memory (FakeKafka, FakeRedis: the probes' Protocols over
dicts); the real adapters are exercised against a real broker by the streaming lab's e2e test.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from roadlab.checker.probe_context import http_request
from roadlab.probes import HttpResponse, ProbeKafkaError, ProbeRedisError
from roadlab.probes.base import (
    KafkaGroup,
    KafkaGroupMember,
    KafkaMessage,
    KafkaTopic,
    KafkaTopicConfig,
)

NS = "lab-x"


def matches_selector(labels: Mapping[str, str], selector: str | None) -> bool:
    """Equality-based label selectors: a=b, a==b, a!=b, a, !a (comma = and)."""
    if not selector:
        return True
    for raw in selector.split(","):
        term = raw.strip()
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class FakeClock:
    """Time that passes only when someone sleeps (plus a tiny real pause, for threads)."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)
    real_pause: float = 0.0
    # Called after every sleep: what happens in the lab meanwhile (a consumer consuming).
    on_sleep: Callable[[], None] | None = None

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.real_pause:
            time.sleep(self.real_pause)
        if self.on_sleep is not None:
            self.on_sleep()

    def monotonic(self) -> float:
        return self.now


def merge_patch_document(target: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386), what the API server does with a merge-patch."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = copy.deepcopy(dict(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch_document(result.get(key), value)
    return result


class FakeContext:
    """ProbeContext over in-memory objects, real HTTP, and a fake clock.

    objects: {(apiVersion, kind, name): object}; a callable value is called on every read
    (so an object can change over time). Services map to local ports via `services`.
    """

    def __init__(
        self,
        objects: Mapping[tuple[str, str, str], Any] | None = None,
        *,
        namespace: str = NS,
        services: Mapping[str, int] | None = None,
        clock: FakeClock | None = None,
        http: Callable[..., HttpResponse] | None = None,
    ) -> None:
        self.namespace = namespace
        self.objects: dict[tuple[str, str, str], Any] = dict(objects or {})
        self.services = dict(services or {})
        self.clock = clock or FakeClock()
        self._http = http or http_request
        self.reads: list[tuple[str, str, str]] = []
        self.patches: list[tuple[str, str, str, dict[str, Any]]] = []
        self.patch_managers: list[str | None] = []
        self.lists: list[tuple[str, str, str | None]] = []
        self.urls: list[str] = []
        self.deadline: float | None = None  # on the fake clock
        # Service name -> the lab's Kafka / Redis behind it; other names do not resolve.
        self.kafka_services: dict[str, FakeKafka] = {}
        self.redis_services: dict[str, FakeRedis] = {}
        self.opened: list[tuple[str, str, int]] = []  # ("kafka" | "redis", service, port)

    def add(self, obj: dict[str, Any]) -> FakeContext:
        key = (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
        self.objects[key] = obj
        return self

    def _value(self, value: Any) -> Any:
        return value() if callable(value) else value

    def get_object(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        self.reads.append((api_version, kind, name))
        value = self.objects.get((api_version, kind, name))
        return None if value is None else self._value(value)

    def merge_patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Mapping[str, Any],
        field_manager: str | None = None,
    ) -> dict[str, Any] | None:
        """RFC 7386 on the stored object (a callable one is first read)."""
        self.patches.append((api_version, kind, name, dict(patch)))
        self.patch_managers.append(field_manager)
        key = (api_version, kind, name)
        value = self.objects.get(key)
        if value is None:
            return None
        merged = merge_patch_document(self._value(value), patch)
        self.objects[key] = merged
        return merged

    def list_objects(
        self, api_version: str, kind: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        self.lists.append((api_version, kind, label_selector))
        found = []
        for (version, object_kind, _), value in self.objects.items():
            if (version, object_kind) != (api_version, kind):
                continue
            obj = self._value(value)
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if matches_selector(labels, label_selector):
                found.append(obj)
        return found

    def http(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10,
    ) -> HttpResponse:
        self.urls.append(url)
        return self._http(method, url, body=body, headers=headers, timeout=timeout)

    def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds)

    def monotonic(self) -> float:
        return self.clock.monotonic()

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock.monotonic()

    def service_url(self, service: str, port: int, path: str) -> str:
        local = self.services.get(service)
        if local is None:
            return f"http://{service}.{self.namespace}.svc.cluster.local:{port}{path}"
        return f"http://127.0.0.1:{local}{path}"

    def kafka(self, service: str, port: int) -> FakeKafka:
        self.opened.append(("kafka", service, port))
        found = self.kafka_services.get(service)
        return found if found is not None else FakeKafka(down=f"{service} does not resolve")

    def redis(self, service: str, port: int) -> FakeRedis:
        self.opened.append(("redis", service, port))
        found = self.redis_services.get(service)
        return found if found is not None else FakeRedis(down=f"{service} does not resolve")


# --- Kafka and Redis in memory ---------------------------------------------------------------

KAFKA_DEFAULTS = {"retention.ms": "604800000", "cleanup.policy": "delete"}


@dataclass
class FakeTopic:
    partitions: int = 1
    replication_factor: int = 1
    configs: dict[str, str] = field(default_factory=dict)  # set on the topic
    log: list[list[tuple[bytes, bytes]]] = field(default_factory=list)  # messages by partition

    def __post_init__(self) -> None:
        self.log = self.log or [[] for _ in range(self.partitions)]


class FakeKafka:
    """A KafkaConnection over dicts: topics with their messages, groups as described, and
    committed offsets. `down` (a reason) makes every call fail; `fail_next` the next N calls;
    `fail_produce` the next N produce calls (after delivering half of their messages)."""

    def __init__(self, down: str | None = None) -> None:
        self.topics: dict[str, FakeTopic] = {}
        self.groups: dict[str, KafkaGroup | Callable[[], KafkaGroup | None]] = {}
        self.committed: dict[tuple[str, str, int], int] = {}
        self.down = down
        self.fail_next = 0
        self.fail_produce = 0
        self.calls: list[str] = []
        self.timeouts: list[float] = []
        self.closed = False

    def topic(self, name: str, partitions: int = 1, **configs: str) -> FakeTopic:
        self.topics[name] = FakeTopic(partitions, configs=dict(configs))
        return self.topics[name]

    def _call(self, name: str, timeout: float) -> None:
        self.calls.append(name)
        self.timeouts.append(timeout)
        if self.down is not None:
            raise ProbeKafkaError(f"listing topics: Local: Broker transport failure ({self.down})")
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ProbeKafkaError("listing topics: Local: Broker transport failure (refused)")

    def topic_names(self, *, timeout: float) -> list[str]:
        self._call("topic_names", timeout)
        return sorted([*self.topics, "__consumer_offsets"])

    def describe_topic(self, topic: str, *, timeout: float) -> KafkaTopic | None:
        self._call("describe_topic", timeout)
        found = self.topics.get(topic)
        if found is None:
            return None
        configs = {
            name: KafkaTopicConfig(value, "default") for name, value in KAFKA_DEFAULTS.items()
        }
        configs.update({name: KafkaTopicConfig(v, "topic") for name, v in found.configs.items()})
        return KafkaTopic(topic, found.partitions, found.replication_factor, configs)

    def describe_group(self, group: str, *, timeout: float) -> KafkaGroup | None:
        self._call("describe_group", timeout)
        found = self.groups.get(group)
        return found() if callable(found) else found

    def committed_offsets(
        self, group: str, topic: str, partitions: Sequence[int], *, timeout: float
    ) -> dict[int, int | None]:
        self._call("committed_offsets", timeout)
        return {p: self.committed.get((group, topic, p)) for p in partitions}

    def end_offsets(
        self, topic: str, partitions: Sequence[int], *, timeout: float
    ) -> dict[int, int]:
        self._call("end_offsets", timeout)
        return {p: len(self.topics[topic].log[p]) for p in partitions}

    def produce(self, topic: str, messages: Sequence[KafkaMessage], *, timeout: float) -> None:
        self._call("produce", timeout)
        found = self.topics.get(topic)
        if found is None:
            raise ProbeKafkaError(f"producing to {topic}: Local: Unknown topic")
        failing = self.fail_produce > 0
        self.fail_produce -= failing
        for message in messages[: len(messages) // 2] if failing else messages:
            partition = message.partition
            if partition is None:
                partition = zlib.crc32(message.key) % found.partitions
            found.log[partition].append((message.key, message.value))
        if failing:
            raise ProbeKafkaError(f"producing to {topic}: Local: Message timed out")

    def close(self) -> None:
        self.closed = True


class FakeRedis:
    """A RedisConnection over dicts: hashes, and plain string keys (WRONGTYPE for HMGET)."""

    def __init__(self, down: str | None = None) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.strings: dict[str, str] = {}
        self.down = down
        self.timeouts: list[float] = []
        self.closed = False

    def hincrby(self, key: str, field_name: str, amount: int) -> None:
        fields = self.hashes.setdefault(key, {})
        fields[field_name] = str(int(fields.get(field_name, "0")) + amount)

    def hmget(self, key: str, fields: Sequence[str], *, timeout: float) -> list[str | None]:
        self.timeouts.append(timeout)
        if self.down is not None:
            raise ProbeRedisError(f"HMGET {key}: Error 111 connecting: {self.down}")
        if key in self.strings:
            raise ProbeRedisError(
                f"HMGET {key}: WRONGTYPE Operation against a key holding the wrong kind of value",
                wrong_type=True,
            )
        found = self.hashes.get(key, {})
        return [found.get(f) for f in fields]

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeConsumer:
    """The learner's consumer program, in memory: on each step it reads up to `batch`
    messages of every partition of `topic` past the group's committed offset, adds each
    order's quantity (times `times`) to `hash` in Redis and commits (unless commit=False)."""

    kafka: FakeKafka
    redis: FakeRedis
    group: str = "order-counter"
    topic: str = "orders"
    hash: str = "order-counts"
    batch: int = 1000
    times: int = 1
    commit: bool = True
    partitions: Sequence[int] | None = None  # the partitions it owns (None: all)
    positions: dict[int, int] = field(default_factory=dict)

    def step(self) -> None:
        found = self.kafka.topics.get(self.topic)
        if found is None:
            return
        owned = range(found.partitions) if self.partitions is None else self.partitions
        for partition in owned:
            key = (self.group, self.topic, partition)
            start = self.positions.get(partition, self.kafka.committed.get(key, 0))
            taken = found.log[partition][start : start + self.batch]
            for _, value in taken:
                order = json.loads(value)
                self.redis.hincrby(self.hash, order["product"], order["quantity"] * self.times)
            self.positions[partition] = start + len(taken)
            if self.commit and taken:
                self.kafka.committed[key] = start + len(taken)


def group(
    state: str = "Stable", *owned: Sequence[int], topic: str = "orders", name: str = "order-counter"
) -> KafkaGroup:
    """A group as Kafka describes it: a member per `owned` (the partitions it owns)."""
    members = tuple(
        KafkaGroupMember(
            member_id=f"consumer-{i}-uuid",
            client_id=f"consumer-{i}",
            host=f"/10.244.0.{10 + i}",
            assignment=tuple((topic, p) for p in partitions),
        )
        for i, partitions in enumerate(owned, start=1)
    )
    return KafkaGroup(name, state, members)  # type: ignore[arg-type]


# --- a real HTTP server ----------------------------------------------------------------------

Route = Callable[[str, str, dict[str, str], bytes], tuple[int, Any]]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: bytes


class LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1 answering through `route`; records requests."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.requests: list[Recorded] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                query = dict(parse_qsl(parts.query))
                server.requests.append(Recorded(self.command, parts.path, query, body))
                status, payload = server.route(self.command, parts.path, query, body)
                if isinstance(payload, bytes):
                    data, kind = payload, "text/plain"
                elif isinstance(payload, str):
                    data, kind = payload.encode(), "text/plain"
                else:
                    data, kind = json.dumps(payload).encode(), "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


@contextmanager
def local_server(route: Route) -> Iterator[LocalServer]:
    server = LocalServer(route)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def closed_port() -> int:
    """A local port with nothing listening (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- object builders -------------------------------------------------------------------------


def deployment(
    name: str = "web",
    replicas: int = 1,
    ready: int | None = None,
    *,
    generation: int = 1,
    observed: int | None = None,
    updated: int | None = None,
    cpu: str = "100m",
    status_replicas: int | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "generation": generation},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": "nginx:1.27",
                            "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}},
                        },
                        {"name": "sidecar", "image": "busybox"},
                    ]
                },
            },
        },
        "status": {
            "replicas": replicas if status_replicas is None else status_replicas,
            "readyReplicas": replicas if ready is None else ready,
            "updatedReplicas": replicas if updated is None else updated,
            "observedGeneration": generation if observed is None else observed,
        },
    }


def pod(
    name: str,
    labels: Mapping[str, str] | None = None,
    *,
    ready: bool = True,
    containers: tuple[str, ...] = ("web",),
    init_sidecars: tuple[str, ...] = (),
    waiting: str | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": dict(labels or {"app": "web"})},
        "spec": {
            "containers": [{"name": c, "image": f"example/{c}:1"} for c in containers],
            "initContainers": [
                {"name": c, "image": f"example/{c}:1", "restartPolicy": "Always"}
                for c in init_sidecars
            ],
        },
        "status": {
            "phase": "Running" if ready else "Pending",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                {"name": containers[0], "state": {"waiting": {"reason": waiting}}}
            ]
            if waiting
            else [],
        },
    }
