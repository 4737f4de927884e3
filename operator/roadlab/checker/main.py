"""`roadlab-check`: the entry point of a check Job.

Reads the tasks to check from ROADLAB_CHECK_SPEC (JSON, written by the operator):

    {"lab": "smoke-alice", "namespace": "lab-smoke-alice", "deadlineSeconds": 175,
     "tasks": [{"id": "scale-web", "probe": "resource", "args": {...}}]}

runs each task's probe in order against the lab namespace, prints a readable report to
stdout (the Job's log) and writes the bounded result document (see roadlab.api.results) to
/dev/termination-log, or to ROADLAB_RESULT_PATH. Exits 0 whenever the result was written,
whatever the tasks' outcomes; 1 only when it could not be written.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TextIO
from urllib.parse import urlsplit

import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

from roadlab.api.lab import TASK_ID_PATTERN
from roadlab.api.results import TaskOutcome, encode_results
from roadlab.kube.client import describe_api_error, load_api_client
from roadlab.kube.operator_api import KubeApi
from roadlab.probes import (
    CheckResult,
    HttpResponse,
    ProbeApiError,
    ProbeContext,
    ProbeHttpError,
    cluster_service_url,
    describe_args_error,
    run_check,
)

SPEC_ENV = "ROADLAB_CHECK_SPEC"
RESULT_PATH_ENV = "ROADLAB_RESULT_PATH"
DEFAULT_RESULT_PATH = "/dev/termination-log"
MAX_HTTP_BODY = 1024 * 1024  # bytes of a response body kept for the probes
MAX_TASKS = 64
USER_AGENT = "roadlab-check/1"
DEADLINE_REACHED = "not run: the check deadline was reached"


# --- the spec -------------------------------------------------------------------------------


class _SpecModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class SpecTask(_SpecModel):
    id: Annotated[str, StringConstraints(pattern=TASK_ID_PATTERN)]
    probe: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    args: dict[str, Any] = Field(default_factory=dict)


class CheckSpec(_SpecModel):
    lab: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    namespace: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    tasks: Annotated[list[SpecTask], Field(max_length=MAX_TASKS)]
    deadline_seconds: Annotated[int, Field(ge=1, le=86400)]


def _salvage_ids(raw: str | None) -> list[str]:
    """Task ids from a spec that failed validation, so each can carry the error."""
    try:
        document = json.loads(raw or "")
    except (ValueError, RecursionError):
        return []
    tasks = document.get("tasks") if isinstance(document, dict) else None
    ids: list[str] = []
    for task in tasks if isinstance(tasks, list) else []:
        task_id = task.get("id") if isinstance(task, dict) else None
        if isinstance(task_id, str) and task_id not in ids:
            try:
                SpecTask(id=task_id, probe="x")
            except ValidationError:
                continue
            ids.append(task_id)
    return ids[:MAX_TASKS]


# --- real I/O -------------------------------------------------------------------------------

# Cluster DNS caches "no such name" (CoreDNS's cache plugin: up to 30 s by default), so a
# Service the learner has just created may not resolve yet. A check waits that long for the
# name of a Service that exists before it reports it unreachable.
NEW_SERVICE_DNS_WAIT_SECONDS = 35.0
NEW_SERVICE_DNS_RETRY_SECONDS = 2.0


class NameResolutionError(ProbeHttpError):
    """The URL's host name does not resolve."""


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
        raise ProbeHttpError("connection refused (nothing listens on that port)") from exc
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
    """The real `http`, `sleep`, `monotonic` and `service_url` of a probe context."""

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


class KubeProbeContext(HttpContextMixin):
    """The checker's context: the lab namespace through the Kubernetes API, real HTTP."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    def _read(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ResourceNotFoundError as exc:
            raise ProbeApiError(
                f"the API server does not serve {what} (is the API or CRD installed?)"
            ) from exc
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", None) == 403:
                raise ProbeApiError(
                    f"the checker is not allowed to read {what} in namespace {self.namespace}"
                ) from exc
            raise ProbeApiError(f"reading {what}: {describe_api_error(exc)}") from exc
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
        while True:
            try:
                return http_request(method, url, body=body, headers=headers, timeout=timeout)
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
        result = self._read(
            f"{kind} ({api_version})", lambda: self.api.get(api_version, kind, name, self.namespace)
        )
        return result if isinstance(result, dict) else None

    def list_objects(
        self, api_version: str, kind: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        result = self._read(
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

    def time_left(self) -> float:
        left = self.deadline - self.clock()
        inner = self.inner.time_left()
        return left if inner is None else min(left, inner)


def kube_context(namespace: str) -> ProbeContext:
    """The default context factory: in-cluster config (or kubeconfig) via roadlab.kube.client."""
    return KubeProbeContext(KubeApi(load_api_client()), namespace)


# --- running --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRun:
    task: SpecTask
    result: CheckResult
    seconds: float
    ran: bool = True

    def outcome(self) -> TaskOutcome:
        return TaskOutcome(
            id=self.task.id,
            state=self.result.state,
            message=self.result.message,
            evidence=self.result.evidence,
        )


_MARKS = {"Passed": "PASS", "Failed": "FAIL", "Error": "ERROR"}


def format_run(run: TaskRun) -> str:
    """Report lines of one task: outcome, message, evidence."""
    timing = f", {run.seconds:.1f} s" if run.ran else ""
    lines = [
        f"[{_MARKS[run.result.state]}] {run.task.id} ({run.task.probe}{timing})",
        f"    {run.result.message}",
    ]
    if run.result.evidence:
        shown = ", ".join(f"{k}={v}" for k, v in run.result.evidence.items())
        lines.append(f"    evidence: {shown}")
    return "\n".join(lines)


def run_tasks(
    spec: CheckSpec,
    ctx: ProbeContext,
    *,
    clock: Callable[[], float] = time.monotonic,
    on_done: Callable[[TaskRun], None] | None = None,
) -> list[TaskRun]:
    """Each task in order; those that would start after the deadline are not run."""
    started = clock()
    bounded = DeadlineContext(ctx, started + spec.deadline_seconds, clock)
    runs: list[TaskRun] = []
    for task in spec.tasks:
        begin = clock()
        if begin - started >= spec.deadline_seconds:
            run = TaskRun(task, CheckResult.err(DEADLINE_REACHED), 0.0, ran=False)
        else:
            result = run_check(bounded, task.probe, task.args)
            run = TaskRun(task, result, clock() - begin)
        runs.append(run)
        if on_done is not None:
            on_done(run)
    return runs


def _write(path: str, text: str, err: TextIO) -> int:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        print(f"roadlab-check: cannot write the result to {path}: {exc}", file=err)
        return 1
    return 0


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    context_factory: ContextFactory | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Console script entry point; the keyword arguments are for tests."""
    del argv  # everything comes from the environment
    environ = os.environ if environ is None else environ
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    result_path = environ.get(RESULT_PATH_ENV) or DEFAULT_RESULT_PATH
    raw = environ.get(SPEC_ENV)

    def emit(text: str) -> None:
        print(text, file=out, flush=True)

    try:
        if not raw:
            raise ValueError(f"{SPEC_ENV} is not set")
        spec = CheckSpec.model_validate_json(raw)
    except (ValueError, ValidationError) as exc:
        problem = describe_args_error(exc) if isinstance(exc, ValidationError) else str(exc)
        message = f"the check spec was malformed: {problem}"
        emit(f"roadlab-check: {message}")
        outcomes = [TaskOutcome(task_id, "Error", message) for task_id in _salvage_ids(raw)]
        return _write(result_path, encode_results(outcomes, error=message), err)

    emit(
        f"Roadlab check of lab {spec.lab} in namespace {spec.namespace}: "
        f"{len(spec.tasks)} task(s), deadline {spec.deadline_seconds} s"
    )
    try:
        ctx = (context_factory or kube_context)(spec.namespace)
    except Exception as exc:
        message = f"the checker could not connect to the Kubernetes API: {exc}"
        emit(message)
        outcomes = [TaskOutcome(t.id, "Error", message) for t in spec.tasks]
        return _write(result_path, encode_results(outcomes), err)

    runs = run_tasks(spec, ctx, clock=clock, on_done=lambda run: emit(format_run(run)))
    counts = {state: sum(r.result.state == state for r in runs) for state in _MARKS}
    emit(
        f"Summary: {counts['Passed']} passed, {counts['Failed']} failed, {counts['Error']} error(s)"
    )
    return _write(result_path, encode_results([r.outcome() for r in runs]), err)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
