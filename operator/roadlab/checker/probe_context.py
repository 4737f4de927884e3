"""What the probes of a check run against: HTTP to the lab's Services (with time for a
new Service's name to resolve), the lab's Kafka and Redis (roadlab.checker.streams), the lab
namespace through the Kubernetes API, and the check's deadline over all of them.

A check Job builds one client for its one check (kube_context); the warm checker builds one
for the process and a cheap context per check from it (SharedKubeContexts).

Thread safety (the warm checker runs up to four checks at once, each in its own thread):
a context and its DeadlineContext belong to one check and hold only immutable fields; what
checks share is the ApiClient (urllib3's pool is thread-safe) and the dynamic client's
discovery, which SharedKubeApi serializes.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError

from roadlab.checker.streams import KafkaAdapter, RedisAdapter
from roadlab.kube.client import describe_api_error, load_api_client
from roadlab.kube.operator_api import KubeApi
from roadlab.probes import (
    HttpResponse,
    KafkaConnection,
    ProbeApiError,
    ProbeContext,
    ProbeHttpError,
    RedisConnection,
    cluster_service_host,
    cluster_service_url,
)
from roadlab.probes.base import CHECKER_FIELD_MANAGER

MAX_HTTP_BODY = 1024 * 1024  # bytes of a response body kept for the probes
USER_AGENT = "roadlab-check/1"


# Cluster DNS caches "no such name" (CoreDNS's cache plugin: up to 30 s by default), so a
# Service the learner has just created may not resolve yet. A check waits that long for the
# name of a Service that exists before it reports it unreachable.
NEW_SERVICE_DNS_WAIT_SECONDS = 35.0
NEW_SERVICE_DNS_RETRY_SECONDS = 2.0


class NameResolutionError(ProbeHttpError):
    """The URL's host name does not resolve."""


# A Service's endpoints reach every node's proxy rules a moment after a pod ends: right after
# a rollout (the learner's `kubectl rollout restart`), a connection may still go to the pod
# that is shutting down and be refused. A refused connection is tried again that long.
REFUSED_RETRY_SECONDS = 3.0
REFUSED_RETRY_INTERVAL = 0.5


class ConnectionRefusedProbeError(ProbeHttpError):
    """Nothing accepted the connection."""


def http_request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10,
    *,
    max_body: int = MAX_HTTP_BODY,
) -> HttpResponse:
    """One HTTP(S) request, no proxies, no redirects; at most max_body bytes of body kept.

    Raises ProbeHttpError (with a readable reason) when no response arrives.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise ProbeHttpError(f"invalid URL {url!r}: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeHttpError(f"invalid URL {url!r}: expected http://host[:port]/path")
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    all_headers = {"User-Agent": USER_AGENT, "Connection": "close", **dict(headers or {})}
    started = time.perf_counter()
    connection = connection_class(parts.hostname, port, timeout=timeout)
    try:
        connection.request(method, target, body=body, headers=all_headers)
        response = connection.getresponse()
        data = response.read(max_body)
        status = response.status
    except socket.gaierror as exc:
        raise NameResolutionError(
            f"host {parts.hostname} does not resolve (no such Service?): {exc.strerror or exc}"
        ) from exc
    except ConnectionRefusedError as exc:
        raise ConnectionRefusedProbeError(
            "connection refused (nothing listens on that port)"
        ) from exc
    except TimeoutError as exc:
        raise ProbeHttpError(f"no response within {timeout:g} s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ProbeHttpError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        connection.close()
    return HttpResponse(status=status, body=data, seconds=time.perf_counter() - started)


def lab_service_name(url: str, namespace: str) -> str | None:
    """The Service a URL addresses in the lab namespace (<svc>.<ns>.svc.cluster.local)."""
    host = urlsplit(url).hostname or ""
    suffix = f".{namespace}.svc.cluster.local"
    name = host[: -len(suffix)] if host.endswith(suffix) else ""
    return name if name and "." not in name else None


class HttpContextMixin:
    """The real `http`, `kafka`, `redis`, `sleep`, `monotonic` and `service_url` of a probe
    context."""

    namespace: str

    def http(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10,
    ) -> HttpResponse:
        return http_request(method, url, body=body, headers=headers, timeout=timeout)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def monotonic(self) -> float:
        return time.monotonic()

    def service_url(self, service: str, port: int, path: str) -> str:
        return cluster_service_url(service, self.namespace, port, path)

    def time_left(self) -> float | None:
        return None

    def kafka(self, service: str, port: int) -> KafkaConnection:
        # The broker advertises its in-cluster name too (kafka.<ns>.svc.cluster.local:9092),
        # which the client connects to after the bootstrap.
        return KafkaAdapter(f"{cluster_service_host(service, self.namespace)}:{port}")

    def redis(self, service: str, port: int) -> RedisConnection:
        return RedisAdapter(cluster_service_host(service, self.namespace), port)


class KubeProbeContext(HttpContextMixin):
    """The checker's context: the lab namespace through the Kubernetes API, real HTTP."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    def _call(self, what: str, call: Callable[[], Any], verb: str = "read") -> Any:
        doing = {"read": "reading", "patch": "patching"}[verb]
        try:
            return call()
        except ResourceNotFoundError as exc:
            raise ProbeApiError(
                f"the API server does not serve {what} (is the API or CRD installed?)"
            ) from exc
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", None) == 403:
                raise ProbeApiError(
                    f"the checker is not allowed to {verb} {what} in namespace {self.namespace}"
                ) from exc
            raise ProbeApiError(f"{doing} {what}: {describe_api_error(exc)}") from exc
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise ProbeApiError(f"the Kubernetes API is unreachable: {exc}") from exc

    def http(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10,
    ) -> HttpResponse:
        give_up = time.monotonic() + NEW_SERVICE_DNS_WAIT_SECONDS
        refused_until = time.monotonic() + REFUSED_RETRY_SECONDS
        while True:
            try:
                return http_request(method, url, body=body, headers=headers, timeout=timeout)
            except ConnectionRefusedProbeError:
                if time.monotonic() + REFUSED_RETRY_INTERVAL > refused_until:
                    raise
                time.sleep(REFUSED_RETRY_INTERVAL)
            except NameResolutionError:
                service = lab_service_name(url, self.namespace)
                if (
                    service is None
                    or time.monotonic() + NEW_SERVICE_DNS_RETRY_SECONDS > give_up
                    or self.get_object("v1", "Service", service) is None
                ):
                    raise
                time.sleep(NEW_SERVICE_DNS_RETRY_SECONDS)

    def get_object(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        result = self._call(
            f"{kind} ({api_version})", lambda: self.api.get(api_version, kind, name, self.namespace)
        )
        return result if isinstance(result, dict) else None

    def merge_patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Mapping[str, Any],
        field_manager: str | None = None,
    ) -> dict[str, Any] | None:
        result = self._call(
            f"{kind} {name} ({api_version})",
            lambda: self.api.merge_patch(
                api_version,
                kind,
                name,
                self.namespace,
                dict(patch),
                field_manager=field_manager or CHECKER_FIELD_MANAGER,
            ),
            verb="patch",
        )
        return result if isinstance(result, dict) else None

    def list_objects(
        self, api_version: str, kind: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        result = self._call(
            f"{kind} ({api_version})",
            lambda: self.api.list_objects(api_version, kind, self.namespace, label_selector),
        )
        return [item for item in result if isinstance(item, dict)]


ContextFactory = Callable[[str], ProbeContext]


class DeadlineContext:
    """A context whose time_left counts down to the check deadline; the rest is delegated."""

    def __init__(self, inner: ProbeContext, deadline: float, clock: Callable[[], float]) -> None:
        self.inner = inner
        self.deadline = deadline
        self.clock = clock

    @property
    def namespace(self) -> str:
        return self.inner.namespace

    def get_object(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        return self.inner.get_object(api_version, kind, name)

    def list_objects(
        self, api_version: str, kind: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        return self.inner.list_objects(api_version, kind, label_selector)

    def merge_patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Mapping[str, Any],
        field_manager: str | None = None,
    ) -> dict[str, Any] | None:
        return self.inner.merge_patch(api_version, kind, name, patch, field_manager)

    def http(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10,
    ) -> HttpResponse:
        return self.inner.http(method, url, body=body, headers=headers, timeout=timeout)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)

    def monotonic(self) -> float:
        return self.inner.monotonic()

    def service_url(self, service: str, port: int, path: str) -> str:
        return self.inner.service_url(service, port, path)

    def kafka(self, service: str, port: int) -> KafkaConnection:
        return self.inner.kafka(service, port)

    def redis(self, service: str, port: int) -> RedisConnection:
        return self.inner.redis(service, port)

    def time_left(self) -> float:
        left = self.deadline - self.clock()
        inner = self.inner.time_left()
        return left if inner is None else min(left, inner)


def kube_context(namespace: str) -> ProbeContext:
    """The default context factory: in-cluster config (or kubeconfig) via roadlab.kube.client."""
    return KubeProbeContext(KubeApi(load_api_client()), namespace)


class _SerializedDiscovery:
    """The dynamic client's resource lookups, one at a time.

    The LazyDiscoverer fills its cache without a lock, and rebuilds it whole (fresh
    discovery requests) when a kind is missing; two checks doing that at once could see a
    half-built cache. Lookups are cheap once cached, so a plain lock costs nothing.
    """

    def __init__(self, discoverer: Any) -> None:
        self._discoverer = discoverer
        self._lock = threading.Lock()

    def get(self, **kwargs: Any) -> Any:
        with self._lock:
            return self._discoverer.get(**kwargs)


class _DynamicWithSerializedDiscovery:
    """A DynamicClient whose `resources` is serialized; its requests are not (the returned
    Resource objects send them through the shared, thread-safe ApiClient)."""

    def __init__(self, dynamic: Any) -> None:
        self._dynamic = dynamic
        self.resources = _SerializedDiscovery(dynamic.resources)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamic, name)


class SharedKubeApi(KubeApi):
    """A KubeApi that concurrent checks can share: discovery runs once for the process (a
    Job pays it on every check) and lookups are serialized."""

    def __init__(self, api_client: ApiClient) -> None:
        super().__init__(api_client)
        self._shared_dynamic: _DynamicWithSerializedDiscovery | None = None
        self._shared_lock = threading.Lock()

    @property
    def dynamic(self) -> Any:
        with self._shared_lock:
            if self._shared_dynamic is None:
                self._shared_dynamic = _DynamicWithSerializedDiscovery(super().dynamic)
            return self._shared_dynamic


class SharedKubeContexts:
    """The warm checker's context factory: one API client and one discovery cache for the
    process, a new (cheap, per-check) KubeProbeContext for each check.

    kube_context costs a Job, per check: reading the service account's token and CA, a new
    connection pool (so a new TLS handshake to the API server), and the dynamic client's
    discovery (GET /version and /apis, then the resource list of each group a probe uses,
    plus a cache file in /tmp). Here all of that is paid once and connections are reused.
    """

    def __init__(self, api: KubeApi) -> None:
        self.api = api

    @classmethod
    def load(cls) -> SharedKubeContexts:
        """In-cluster config (the roadlab-checker service account), or the kubeconfig."""
        return cls(SharedKubeApi(load_api_client()))

    def warm_up(self) -> None:
        """Discover the API now, not on the first check; raises when the API is unreachable
        (the next check tries again)."""
        _ = self.api.dynamic

    def __call__(self, namespace: str) -> ProbeContext:
        return KubeProbeContext(self.api, namespace)
