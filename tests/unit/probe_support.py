"""Test doubles for the probe tests: an in-memory ProbeContext and a real local HTTP server.

The context keeps Kubernetes objects in dicts, but its `http` is the checker's real
implementation (roadlab.checker.probe_context.http_request), pointed at a server on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from roadlab.checker.probe_context import http_request
from roadlab.probes import HttpResponse

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

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.real_pause:
            time.sleep(self.real_pause)

    def monotonic(self) -> float:
        return self.now


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
        self.lists: list[tuple[str, str, str | None]] = []
        self.urls: list[str] = []
        self.deadline: float | None = None  # on the fake clock

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
