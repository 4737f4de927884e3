"""HTTP probes against a real HTTP server on 127.0.0.1: http and kserve_v2.

The context's `http` is the checker's real implementation, so the I/O code runs too.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from probe_support import FakeContext, LocalServer, closed_port, local_server

from roadlab.checker.probe_context import http_request
from roadlab.probes import HttpResponse, ProbeHttpError, run_check
from roadlab.probes.kserve_v2 import percentile

# --- a tiny web app --------------------------------------------------------------------------


def web_app(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
    if path == "/":
        return 200, "<html><h1>Hello from web</h1></html>"
    if path == "/healthz":
        return 200, {"status": "ok"}
    if path == "/echo" and method == "POST":
        return 201, body
    if path == "/broken":
        return 503, "upstream connect error"
    return 404, "not found"


@pytest.fixture
def web() -> Any:
    with local_server(web_app) as server:
        yield server


def ctx_for(server: LocalServer, name: str = "web") -> FakeContext:
    return FakeContext(services={name: server.port})


def test_http_request_real_io(web: LocalServer) -> None:
    response = http_request("GET", f"http://127.0.0.1:{web.port}/healthz?x=1", timeout=5)
    assert response.status == 200
    assert response.json() == {"status": "ok"}
    assert response.seconds > 0
    assert web.requests[-1].query == {"x": "1"}
    posted = http_request(
        "POST", f"http://127.0.0.1:{web.port}/echo", body=b"ping", headers={"X-A": "1"}
    )
    assert (posted.status, posted.body) == (201, b"ping")
    capped = http_request("GET", f"http://127.0.0.1:{web.port}/", max_body=5)
    assert capped.body == b"<html"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example/", "invalid URL"),
        ("http://127.0.0.1:99999/", "invalid URL"),
        ("http:///nohost", "invalid URL"),
        ("http://nonexistent.invalid/", "does not resolve"),
    ],
)
def test_http_request_errors(url: str, message: str) -> None:
    with pytest.raises(ProbeHttpError, match=message):
        http_request("GET", url, timeout=2)


def test_http_request_refused() -> None:
    with pytest.raises(ProbeHttpError, match="connection refused"):
        http_request("GET", f"http://127.0.0.1:{closed_port()}/", timeout=2)


def test_http_request_timeout() -> None:
    def slow(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        time.sleep(1.0)
        return 200, "late"

    with (
        local_server(slow) as server,
        pytest.raises(ProbeHttpError, match=r"no response within 0.2 s"),
    ):
        http_request("GET", f"http://127.0.0.1:{server.port}/", timeout=0.2)


# --- http probe ------------------------------------------------------------------------------


def test_http_probe_passes(web: LocalServer) -> None:
    ctx = ctx_for(web)
    result = run_check(ctx, "http", {"service": "web", "port": 80, "bodyContains": "Hello"})
    assert result.state == "Passed", result.message
    assert result.message == f"GET http://127.0.0.1:{web.port}/ returned 200 as expected"
    assert result.evidence["status"] == 200
    assert result.evidence["attempts"] == 1
    post = run_check(
        ctx,
        "http",
        {
            "service": "web",
            "path": "/echo",
            "method": "POST",
            "body": "hi there",
            "expectStatus": [200, 201],
            "bodyMatches": "^hi",
        },
    )
    assert post.passed, post.message


def test_http_probe_wrong_status_word_for_word(web: LocalServer) -> None:
    result = run_check(ctx_for(web), "http", {"service": "web", "path": "/broken"})
    assert result.state == "Failed"
    assert result.message == (
        f"GET http://127.0.0.1:{web.port}/broken returned 503, expected 200 "
        '(body: "upstream connect error")'
    )


def test_http_probe_body_checks(web: LocalServer) -> None:
    ctx = ctx_for(web)
    missing = run_check(ctx, "http", {"service": "web", "bodyContains": ["Hello", "Goodbye"]})
    assert missing.state == "Failed"
    assert 'returned a body without "Goodbye"' in missing.message
    unmatched = run_check(ctx, "http", {"service": "web", "bodyMatches": "^Hello"})
    assert "returned a body not matching ^Hello" in unmatched.message


def test_http_probe_retries_until_ok(web: LocalServer) -> None:
    calls = {"n": 0}

    def flaky(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        calls["n"] += 1
        return (503, "warming up") if calls["n"] < 3 else (200, "ready")

    with local_server(flaky) as server:
        ctx = FakeContext(services={"web": server.port})
        result = run_check(ctx, "http", {"service": "web", "attempts": 5, "pauseSeconds": 1.5})
    assert result.state == "Passed"
    assert result.message.endswith("returned 200 as expected (attempt 3)")
    assert ctx.clock.sleeps == [1.5, 1.5]


def test_http_probe_gives_up_after_attempts(web: LocalServer) -> None:
    ctx = ctx_for(web)
    result = run_check(ctx, "http", {"service": "web", "path": "/nope", "attempts": 3})
    assert result.state == "Failed"
    assert result.message.endswith("(after 3 attempts)")
    assert len(web.requests) == 3


def test_http_probe_unreachable_is_error() -> None:
    port = closed_port()
    ctx = FakeContext(services={"web": port})
    result = run_check(ctx, "http", {"service": "web", "port": 8080, "attempts": 2})
    assert result.state == "Error"
    assert result.message == (
        f"could not reach Service web port 8080 (GET http://127.0.0.1:{port}/: connection "
        "refused (nothing listens on that port)); check that the Service exists, that its "
        "selector matches ready pods (`kubectl get endpoints web`) and that the port is right"
    )


def test_http_probe_default_url_shape() -> None:
    seen: list[str] = []

    def fake(method: str, url: str, **kwargs: Any) -> HttpResponse:
        seen.append(url)
        return HttpResponse(200, b"", 0.01)

    ctx = FakeContext(http=fake)
    assert run_check(ctx, "http", {"service": "web", "port": 8080, "path": "/a?b=c"}).passed
    assert seen == ["http://web.lab-x.svc.cluster.local:8080/a?b=c"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"service": "Web"}, "service: String should match pattern"),
        ({"service": "web", "path": "no-slash"}, "path: String should match pattern"),
        ({"service": "web", "port": 0}, "port: Input should be greater than or equal to 1"),
        ({"service": "web", "bodyMatches": "["}, "invalid regular expression"),
        ({"service": "web", "method": "TRACE"}, "method: Input should be"),
        ({"service": "web", "url": "http://evil/"}, "url: Extra inputs are not permitted"),
    ],
)
def test_http_probe_bad_args(args: dict[str, Any], message: str) -> None:
    result = run_check(FakeContext(), "http", args)
    assert result.state == "Error"
    assert message in result.message


# --- kserve_v2 -------------------------------------------------------------------------------


class Triton:
    """Canned KServe v2 / Triton answers for a model `simple` that doubles its input."""

    def __init__(self) -> None:
        self.server_ready = True
        self.models = {"simple": {"1"}}
        self.factor = 2.0
        self.fail_after: int | None = None
        self.infers = 0

    def __call__(
        self, method: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        if path == "/v2/health/ready":
            return (200, "") if self.server_ready else (503, "")
        parts = path.strip("/").split("/")
        if len(parts) < 4 or parts[:2] != ["v2", "models"]:
            return 404, {"error": "not found"}
        model = parts[2]
        version = parts[4] if len(parts) > 5 and parts[3] == "versions" else None
        action = parts[-1]
        if model not in self.models or (version and version not in self.models[model]):
            return 400, {"error": f"Request for unknown model: '{model}' is not found"}
        if action == "ready":
            return 200, ""
        if action == "infer" and method == "POST":
            self.infers += 1
            if self.fail_after is not None and self.infers > self.fail_after:
                return 500, {"error": "out of memory"}
            request = json.loads(body)
            tensor = request["inputs"][0]
            return 200, {
                "model_name": model,
                "model_version": version or "1",
                "outputs": [
                    {
                        "name": "OUTPUT0",
                        "datatype": tensor["datatype"],
                        "shape": tensor["shape"],
                        "data": [v * self.factor for v in tensor["data"]],
                    }
                ],
            }
        return 404, {"error": "not found"}


@pytest.fixture
def triton() -> Any:
    app = Triton()
    with local_server(app) as server:
        yield app, server


KSERVE_ARGS: dict[str, Any] = {
    "service": "triton",
    "model": "simple",
    "inputs": [{"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4.5]}],
    "expect": {"OUTPUT0": [2, 4, 6, 9]},
    "latencyRequests": 5,
}


def test_kserve_passes_with_latency_evidence(triton: tuple[Triton, LocalServer]) -> None:
    app, server = triton
    ctx = FakeContext(services={"triton": server.port})
    result = run_check(ctx, "kserve_v2", {**KSERVE_ARGS, "version": "1", "maxP95Ms": 5000})
    assert result.state == "Passed", result.message
    assert result.message.startswith(
        "model simple version 1 is ready and answers inference as expected; p50 "
    )
    assert result.evidence["outputsMatched"] == 1
    assert result.evidence["requests"] == 5
    assert result.evidence["failedRequests"] == 0
    assert 0 < result.evidence["p50Ms"] <= result.evidence["p95Ms"] <= result.evidence["maxMs"]  # type: ignore[operator]
    assert server.paths()[:3] == [
        "/v2/health/ready",
        "/v2/models/simple/versions/1/ready",
        "/v2/models/simple/versions/1/infer",
    ]
    assert app.infers == 6  # one checked inference and five timed ones
    sent = json.loads(server.requests[2].body)
    assert sent == {"inputs": KSERVE_ARGS["inputs"]}


def test_kserve_wrong_output_word_for_word(triton: tuple[Triton, LocalServer]) -> None:
    app, server = triton
    app.factor = 2.5
    result = run_check(FakeContext(services={"triton": server.port}), "kserve_v2", KSERVE_ARGS)
    assert result.state == "Failed"
    assert result.message == (
        "model simple: output OUTPUT0 differs from the expected values at index 0: got 2.5, "
        "expected 2 (tolerance 1e-06)"
    )


def test_kserve_tolerance(triton: tuple[Triton, LocalServer]) -> None:
    app, server = triton
    app.factor = 2.001
    ctx = FakeContext(services={"triton": server.port})
    assert not run_check(ctx, "kserve_v2", KSERVE_ARGS).passed
    assert run_check(ctx, "kserve_v2", {**KSERVE_ARGS, "tolerance": 0.01}).passed


def test_kserve_missing_output_and_length(triton: tuple[Triton, LocalServer]) -> None:
    _, server = triton
    ctx = FakeContext(services={"triton": server.port})
    missing = run_check(ctx, "kserve_v2", {**KSERVE_ARGS, "expect": {"probs": [1]}})
    assert missing.message == (
        "model simple: output probs is missing from the inference response (got: OUTPUT0)"
    )
    short = run_check(ctx, "kserve_v2", {**KSERVE_ARGS, "expect": {"OUTPUT0": [[2, 4], [6]]}})
    assert "output OUTPUT0 has 4 values, expected 3" in short.message


def test_kserve_model_not_ready(triton: tuple[Triton, LocalServer]) -> None:
    _, server = triton
    ctx = FakeContext(services={"triton": server.port})
    result = run_check(ctx, "kserve_v2", {**KSERVE_ARGS, "model": "resnet"})
    assert result.state == "Failed"
    assert result.message == (
        f"model resnet is not ready: GET http://127.0.0.1:{server.port}/v2/models/resnet/ready "
        "returned 400, expected 200 (\"Request for unknown model: 'resnet' is not found\"); is "
        "it in the model repository, and did it load? (see the server's log)"
    )


def test_kserve_server_not_ready(triton: tuple[Triton, LocalServer]) -> None:
    app, server = triton
    app.server_ready = False
    result = run_check(FakeContext(services={"triton": server.port}), "kserve_v2", KSERVE_ARGS)
    assert result.state == "Failed"
    assert result.message.startswith(
        "the inference server behind Service triton is not ready: GET "
    )
    assert server.paths() == ["/v2/health/ready"]


def test_kserve_latency_limit_and_failures(triton: tuple[Triton, LocalServer]) -> None:
    app, server = triton
    ctx = FakeContext(services={"triton": server.port})
    slow = run_check(ctx, "kserve_v2", {**KSERVE_ARGS, "maxP95Ms": 0.000001})
    assert slow.state == "Failed"
    assert "p95 latency is" in slow.message and "expected at most 1e-06 ms" in slow.message
    app.infers, app.fail_after = 0, 3
    flaky = run_check(ctx, "kserve_v2", KSERVE_ARGS)
    assert flaky.state == "Failed"
    assert flaky.message == (
        'model simple: 3 of 5 timed requests failed (last: status 500: "out of memory")'
    )


def test_kserve_readiness_only(triton: tuple[Triton, LocalServer]) -> None:
    _, server = triton
    ctx = FakeContext(services={"triton": server.port})
    result = run_check(
        ctx, "kserve_v2", {"service": "triton", "model": "simple", "latencyRequests": 3}
    )
    assert result.state == "Passed"
    assert result.message.startswith("model simple is ready; p50 ")
    assert server.paths().count("/v2/models/simple/ready") == 4


def test_kserve_unreachable_is_error() -> None:
    ctx = FakeContext(services={"triton": closed_port()})
    result = run_check(ctx, "kserve_v2", KSERVE_ARGS)
    assert result.state == "Error"
    assert result.message.startswith(
        "could not reach Service triton port 8000 (GET http://127.0.0.1:"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]},
         "shape [2, 2] holds 4 values but data has 3"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]},
         "datatype: Input should be"),
        ({"inputs": []}, "expect needs inputs to send"),
        ({"latencyRequests": 0, "maxP95Ms": 10}, "maxP95Ms needs latencyRequests > 0"),
        ({"version": "../1"}, "version: String should match pattern"),
    ],
)  # fmt: skip
def test_kserve_bad_args(change: dict[str, Any], message: str) -> None:
    result = run_check(FakeContext(), "kserve_v2", {**KSERVE_ARGS, **change})
    assert result.state == "Error"
    assert message in result.message


def test_percentile_nearest_rank() -> None:
    samples = [float(v) for v in range(1, 21)]
    assert percentile(samples, 50) == 10
    assert percentile(samples, 95) == 19
    assert percentile(samples, 100) == 20
    assert percentile([7.0], 95) == 7


def test_http_probe_stops_retrying_near_the_deadline(web: LocalServer) -> None:
    ctx = ctx_for(web)
    ctx.deadline = ctx.clock.now + 24  # a pause and a request (15 s) fit once, not twice
    args = {"service": "web", "path": "/broken", "attempts": 10, "pauseSeconds": 10}
    result = run_check(ctx, "http", {**args, "timeoutSeconds": 5})
    assert result.state == "Failed"
    assert result.message.endswith("(after 2 attempts)")
    assert len(web.requests) == 2
