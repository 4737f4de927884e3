"""The warm checker (roadlab-check --serve): signed POST /v1/check in, the Job's document out.

Served for real on 127.0.0.1 by aiohttp's TestServer, each test in its own asyncio.run.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from kubernetes import client
from probe_support import NS, FakeContext, deployment

from roadlab.api import checker_wire
from roadlab.api.checker_wire import CHECK_PATH, KEY_ENV, MAX_BODY_BYTES, SIGNATURE_HEADER, sign
from roadlab.api.results import parse_check_output
from roadlab.checker import main as checker
from roadlab.checker import probe_context, server

T = TypeVar("T")
KEY_TEXT = "k3y-" * 10  # 40 characters
KEY = KEY_TEXT.encode()
CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "answer"},
    "data": {"answer": "41"},
}
TASKS = [
    {
        "id": "scale-web",
        "probe": "resource",
        "args": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "web",
            "fieldEquals": {"spec.replicas": 2},
        },
    },
    {
        "id": "configmap-answer",
        "probe": "resource",
        "args": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "answer",
            "fieldEquals": {"data.answer": "42"},
        },
    },
]
# What the Job writes for spec() over lab_context(); pinned so that a refactor of the
# shared code cannot change the Job's document unnoticed.
JOB_DOCUMENT = (
    '{"version":1,"results":['
    '{"id":"scale-web","state":"Passed","message":"Deployment web: spec.replicas is 2 as '
    'expected","evidence":{"spec.replicas":2}},'
    '{"id":"configmap-answer","state":"Failed","message":"ConfigMap answer: data.answer is '
    '\\"41\\", expected \\"42\\"","evidence":{"data.answer":"41"}}]}'
)


def spec(tasks: list[dict[str, Any]] = TASKS, deadline: int = 60) -> bytes:
    document = {"lab": "smoke-alice", "namespace": NS, "tasks": tasks, "deadlineSeconds": deadline}
    return json.dumps(document).encode()


def lab_context() -> FakeContext:
    return FakeContext().add(deployment(replicas=2)).add(CONFIGMAP)


def signed(body: bytes, key: bytes = KEY) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(key, body)}


class Factory:
    """A context factory that records the namespaces it was asked for."""

    def __init__(self, make: Callable[[], FakeContext] = lab_context) -> None:
        self.make = make
        self.namespaces: list[str] = []

    def __call__(self, namespace: str) -> FakeContext:
        self.namespaces.append(namespace)
        return self.make()


class Gate:
    """Holds runs at their first read until it opens; counts the runs waiting there."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.waiting = 0
        self._lock = threading.Lock()

    def arrive(self) -> None:
        with self._lock:
            self.waiting += 1
        self.opened.wait(timeout=30)

    def context(self) -> FakeContext:
        return HeldContext(self).add(deployment(replicas=2)).add(CONFIGMAP)

    async def until_waiting(self, count: int) -> None:
        for _ in range(1000):
            if self.waiting >= count:
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"only {self.waiting} of {count} runs reached the gate")


class HeldContext(FakeContext):
    def __init__(self, gate: Gate) -> None:
        super().__init__()
        self.gate = gate

    def get_object(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        self.gate.arrive()
        return super().get_object(api_version, kind, name)


def serve(
    service: server.CheckService, exchange: Callable[[TestClient[Any, Any]], Awaitable[T]]
) -> T:
    async def run() -> T:
        async with TestClient(TestServer(server.create_app(service))) as client:
            return await exchange(client)

    return asyncio.run(run())


def service(factory: Any = None, **settings: Any) -> server.CheckService:
    return server.CheckService(KEY, factory if factory is not None else Factory(), **settings)


async def post(
    client: TestClient[Any, Any], body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, str, Any]:
    response = await client.post(
        CHECK_PATH, data=body, headers=signed(body) if headers is None else headers
    )
    return response.status, response.content_type, await response.text()


def job_document(raw: str, tmp_path: Path, factory: Any) -> str:
    path = tmp_path / "termination-log"
    environ = {checker.SPEC_ENV: raw, checker.RESULT_PATH_ENV: str(path)}
    assert checker.main([], environ=environ, context_factory=factory, out=io.StringIO()) == 0
    return path.read_text()


# --- the wire module -------------------------------------------------------------------------


def test_sign_and_verify() -> None:
    body = b'{"lab": "x"}'
    signature = sign(KEY, body)
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64
    assert checker_wire.verify(KEY, body, signature)
    assert not checker_wire.verify(KEY, body + b" ", signature)
    assert not checker_wire.verify(b"another key of at least 32 chars!", body, signature)
    assert not checker_wire.verify(KEY, body, signature.upper())
    assert not checker_wire.verify(KEY, body, signature.removeprefix("sha256="))
    assert not checker_wire.verify(KEY, body, None)
    assert not checker_wire.verify(KEY, body, "")
    assert not checker_wire.verify(KEY, body, "sha256=é")


def test_load_key() -> None:
    assert checker_wire.load_key(f"  {KEY_TEXT}\n") == KEY
    for short in (None, "", "   ", "x" * 31):
        with pytest.raises(ValueError, match="at least 32 characters"):
            checker_wire.load_key(short)


def test_proxy_path() -> None:
    assert checker_wire.proxy_path("roadlab-system") == (
        "/api/v1/namespaces/roadlab-system/services/roadlab-checker:http/proxy/v1/check"
    )


# --- POST /v1/check --------------------------------------------------------------------------


def test_a_signed_check_answers_the_jobs_document(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, now: datetime
) -> None:
    factory = Factory()
    caplog.set_level(logging.INFO, logger=server.__name__)
    status, content_type, text = serve(service(factory), lambda client: post(client, spec()))
    assert (status, content_type) == (200, "application/json")
    assert factory.namespaces == [NS]
    assert text == JOB_DOCUMENT == job_document(spec().decode(), tmp_path, Factory())
    parsed = parse_check_output(text, ["scale-web", "configmap-answer"], now)
    assert [r.state for r in parsed] == ["Passed", "Failed"]

    lines = [r.getMessage() for r in caplog.records if r.name == server.__name__]
    assert lines[0].startswith("lab smoke-alice: Roadlab check of lab smoke-alice in namespace")
    # One line per task: outcome | message | evidence.
    assert lines[1].startswith("lab smoke-alice: [PASS] scale-web (resource, ")
    assert lines[1].endswith(
        " | Deployment web: spec.replicas is 2 as expected | evidence: spec.replicas=2"
    )
    assert lines[2].startswith("lab smoke-alice: [FAIL] configmap-answer (resource, ")
    assert lines[3] == "lab smoke-alice: Summary: 1 passed, 1 failed, 0 error(s)"
    assert len(lines) == 4


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {SIGNATURE_HEADER: ""},
        {SIGNATURE_HEADER: sign(b"the wrong key, but long enough 123", spec())},
        {SIGNATURE_HEADER: sign(KEY, spec() + b" ")},
        {SIGNATURE_HEADER: sign(KEY, spec()).removeprefix("sha256=")},
        {"X-Roadlab-Signature-Not": sign(KEY, spec())},
    ],
)
def test_an_unsigned_or_badly_signed_check_is_refused(headers: dict[str, str]) -> None:
    factory = Factory()
    status, content_type, text = serve(
        service(factory), lambda client: post(client, spec(), headers)
    )
    assert (status, content_type) == (401, "application/json")
    assert json.loads(text) == {"error": "missing or bad X-Roadlab-Signature"}
    assert factory.namespaces == []  # no probe ran


def test_an_oversized_body_is_refused() -> None:
    factory = Factory()
    body = spec() + b" " * (MAX_BODY_BYTES + 1 - len(spec()))
    status, _, text = serve(service(factory), lambda client: post(client, body))
    assert status == 413
    assert "over 262144 bytes" in json.loads(text)["error"]
    assert factory.namespaces == []


def test_an_oversized_chunked_body_is_refused() -> None:
    """No Content-Length to go by: the limit holds while the body is read."""
    factory = Factory()
    body = spec() + b" " * MAX_BODY_BYTES

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    async def exchange(client: TestClient[Any, Any]) -> int:
        response = await client.post(CHECK_PATH, data=chunks(), headers=signed(body))
        return response.status

    assert serve(service(factory), exchange) == 413
    assert factory.namespaces == []


def test_a_body_of_exactly_the_limit_is_checked() -> None:
    factory = Factory()
    body = spec() + b" " * (MAX_BODY_BYTES - len(spec()))
    status, _, text = serve(service(factory), lambda client: post(client, body))
    assert status == 200
    assert text == JOB_DOCUMENT


@pytest.mark.parametrize(
    "raw",
    [
        "{nope",
        '["a"]',
        json.dumps({"lab": "x", "namespace": NS, "tasks": [{"id": "a", "probe": "p"}]}),
    ],
)
def test_a_malformed_spec_answers_the_jobs_error_document(raw: str, tmp_path: Path) -> None:
    factory = Factory()
    status, content_type, text = serve(service(factory), lambda client: post(client, raw.encode()))
    assert (status, content_type) == (200, "application/json")
    assert text == job_document(raw, tmp_path, Factory())
    assert json.loads(text)["error"].startswith("the check spec was malformed: ")
    assert factory.namespaces == []


def test_an_empty_body_is_a_malformed_spec() -> None:
    status, _, text = serve(service(), lambda client: post(client, b""))
    assert status == 200
    assert json.loads(text) == {
        "version": 1,
        "error": "the check spec was malformed: the request body is empty",
        "results": [],
    }


def test_a_context_that_cannot_be_built_answers_errors() -> None:
    def factory(namespace: str) -> FakeContext:
        raise RuntimeError("Service host/port is not set")

    status, _, text = serve(service(factory), lambda client: post(client, spec()))
    assert status == 200
    results = json.loads(text)["results"]
    assert [r["state"] for r in results] == ["Error", "Error"]
    assert results[0]["message"] == (
        "the checker could not connect to the Kubernetes API: Service host/port is not set"
    )


def test_checks_run_concurrently_and_a_fifth_waits_then_gets_503() -> None:
    gate = Gate()
    factory = Factory(gate.context)

    async def exchange(client: TestClient[Any, Any]) -> tuple[list[Any], Any, str, float]:
        held = [asyncio.create_task(post(client, spec())) for _ in range(4)]
        try:
            await gate.until_waiting(4)  # four runs at work at once, none finished
            started = time.monotonic()
            busy = await client.post(CHECK_PATH, data=spec(), headers=signed(spec()))
            waited = time.monotonic() - started
            text = await busy.text()
        finally:
            gate.opened.set()
        return await asyncio.gather(*held), busy, text, waited

    done, busy, text, waited = serve(service(factory, slot_wait_seconds=0.2), exchange)
    assert (busy.status, busy.headers["Retry-After"]) == (503, "1")
    assert json.loads(text) == {"error": "the checker is busy; retry shortly"}
    assert waited >= 0.2
    assert len(factory.namespaces) == 4  # the fifth ran no probe
    assert [(status, body) for status, _, body in done] == [(200, JOB_DOCUMENT)] * 4


def test_a_waiting_check_gets_the_first_free_slot() -> None:
    gate = Gate()
    factory = Factory(gate.context)

    async def exchange(client: TestClient[Any, Any]) -> list[Any]:
        first = asyncio.create_task(post(client, spec()))
        try:
            await gate.until_waiting(1)
            second = asyncio.create_task(post(client, spec()))
            await asyncio.sleep(0.1)
        finally:
            gate.opened.set()
        return await asyncio.gather(first, second)

    answers = serve(service(factory, max_concurrent_runs=1, slot_wait_seconds=2.0), exchange)
    assert [status for status, _, _ in answers] == [200, 200]


def test_a_check_past_its_deadline_is_answered_and_keeps_its_slot() -> None:
    gate = Gate()
    factory = Factory(gate.context)

    async def exchange(client: TestClient[Any, Any]) -> tuple[Any, int, int]:
        try:
            overdue = await post(client, spec(deadline=1))
            # The abandoned thread still holds the only slot.
            busy = await client.post(CHECK_PATH, data=spec(), headers=signed(spec()))
        finally:
            gate.opened.set()
        for _ in range(1000):  # the thread ends, its slot comes back
            if not checks.slots.locked():
                break
            await asyncio.sleep(0.005)
        again = await client.post(CHECK_PATH, data=spec(), headers=signed(spec()))
        return overdue, busy.status, again.status

    checks = service(
        factory, max_concurrent_runs=1, slot_wait_seconds=0.05, deadline_grace_seconds=0.1
    )
    (status, _, text), busy, again = serve(checks, exchange)
    assert status == 200
    results = json.loads(text)["results"]
    assert [(r["id"], r["state"]) for r in results] == [
        ("scale-web", "Error"),
        ("configmap-answer", "Error"),
    ]
    assert results[0]["message"].startswith("the check overran its 1 s deadline: no result after")
    assert (busy, again) == (503, 200)


def test_healthz_needs_no_signature() -> None:
    async def exchange(client: TestClient[Any, Any]) -> tuple[int, str]:
        response = await client.get("/healthz")
        return response.status, await response.text()

    assert serve(service(), exchange) == (200, "ok")


def test_only_post_checks() -> None:
    async def exchange(client: TestClient[Any, Any]) -> int:
        return (await client.get(CHECK_PATH)).status

    assert serve(service(), exchange) == 405


# --- starting it -----------------------------------------------------------------------------


@pytest.mark.parametrize("environ", [{}, {KEY_ENV: ""}, {KEY_ENV: "x" * 31}])
def test_the_server_refuses_to_start_without_a_long_key(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_app(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("started")

    monkeypatch.setattr(server.web, "run_app", run_app)
    err = io.StringIO()
    assert checker.main(["--serve"], environ=environ, context_factory=Factory(), err=err) == 2
    assert err.getvalue().startswith("roadlab-check --serve: not starting: ROADLAB_CHECKER_KEY ")
    assert "at least 32 characters" in err.getvalue()


def test_the_server_starts_with_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    started: dict[str, Any] = {}

    def run_app(app: web.Application, **kwargs: Any) -> None:
        started.update(
            kwargs,
            routes={(r.method, r.resource.canonical) for r in app.router.routes() if r.resource},
        )

    monkeypatch.setattr(server.web, "run_app", run_app)
    argv = ["--serve", "--host", "127.0.0.1", "--port", "9000"]
    assert checker.main(argv, environ={KEY_ENV: KEY_TEXT}, context_factory=Factory()) == 0
    assert (started["host"], started["port"]) == ("127.0.0.1", 9000)
    assert {("POST", "/v1/check"), ("GET", "/healthz")} <= started["routes"]


def test_the_default_arguments_keep_the_job() -> None:
    args = checker.parse_args([])
    assert (args.serve, args.host, args.port) == (False, "0.0.0.0", 8080)


def test_the_job_still_writes_its_document(tmp_path: Path) -> None:
    assert job_document(spec().decode(), tmp_path, Factory()) == JOB_DOCUMENT


# --- the shared Kubernetes client ------------------------------------------------------------


class _OverlapDetectingDiscovery:
    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.lookups = 0

    def get(self, **kwargs: Any) -> Any:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.001)  # long enough for another thread to come in, were it allowed
        self.lookups += 1
        self.inside -= 1
        return _Resource()


class _Resource:
    def get(self, **kwargs: Any) -> Any:
        return _Listing()


class _Listing:
    def to_dict(self) -> dict[str, Any]:
        return {"items": [{"metadata": {"name": "web"}}]}


class _Dynamic:
    def __init__(self) -> None:
        self.resources = _OverlapDetectingDiscovery()


def test_shared_contexts_share_one_api_and_serialize_discovery() -> None:
    api = probe_context.SharedKubeApi(client.ApiClient())
    dynamic = _Dynamic()
    api._dynamic = dynamic  # type: ignore[assignment]
    contexts = probe_context.SharedKubeContexts(api)
    built = [contexts(f"lab-{i}") for i in range(8)]
    assert all(isinstance(c, probe_context.KubeProbeContext) and c.api is api for c in built)
    assert [c.namespace for c in built] == [f"lab-{i}" for i in range(8)]

    def read(ctx: Any) -> None:
        for _ in range(20):
            assert ctx.list_objects("v1", "Pod") == [{"metadata": {"name": "web"}}]

    threads = [threading.Thread(target=read, args=(c,)) for c in built]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert dynamic.resources.lookups == 160
    assert dynamic.resources.most_inside == 1
