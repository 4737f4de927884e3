"""http_latency against a real HTTP server on 127.0.0.1: concurrent requests, latency
percentiles, errors, answer checks and the check deadline.

The context's `http` is the checker's real implementation, so the I/O code runs too.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from probe_support import FakeContext, LocalServer, closed_port, local_server

from roadlab.controller.checks import LONG_PROBES
from roadlab.probes import HttpResponse, run_check
from roadlab.probes.http_latency import HttpLatencyArgs


class Predictor:
    """A linear model behind POST /predict (y = 2x + 1 per value); optionally slow, failing
    or wrong. Counts the requests in flight at once."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.factor = 2.0
        self.fail_every: int | None = None
        self.lock = threading.Lock()
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0

    def __call__(
        self, method: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        with self.lock:
            self.calls += 1
            call = self.calls
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            if path != "/predict" or method != "POST":
                return 404, {"detail": "Not Found"}
            if self.fail_every is not None and call % self.fail_every == 0:
                return 500, "Internal Server Error"
            rows = json.loads(body)["inputs"]
            outputs = [[v * self.factor + 1 for v in row] for row in rows]
            return 200, {"outputs": outputs, "model_version": "1"}
        finally:
            with self.lock:
                self.in_flight -= 1


ARGS: dict[str, Any] = {
    "service": "model-api",
    "port": 80,
    "path": "/predict",
    "method": "POST",
    "body": {"inputs": [[1, 2, 3, 4]]},
    "concurrency": 8,
    "requests": 40,
    "maxP95Ms": 5000,
    "expectJson": {"outputs[0][0]": 3, "outputs[0][3]": 9.0, "model_version": "1"},
}


def serve(app: Predictor) -> Any:
    return local_server(app)


def ctx_for(server: LocalServer) -> FakeContext:
    return FakeContext(services={"model-api": server.port})


def test_passes_with_latency_evidence() -> None:
    app = Predictor(delay=0.02)
    with serve(app) as server:
        result = run_check(ctx_for(server), "http_latency", ARGS)
    assert result.state == "Passed", result.message
    url = f"http://127.0.0.1:{server.port}/predict"
    assert result.message.startswith(
        f"POST {url}: 40 requests at concurrency 8 answered as expected, p95 "
    )
    assert "within 5000 ms (p50 " in result.message and result.message.endswith("; 0 errors)")
    evidence = result.evidence
    assert evidence["requests"] == 40
    assert evidence["errors"] == 0
    assert evidence["concurrency"] == 8
    assert 20 <= evidence["p50Ms"] <= evidence["p95Ms"] <= evidence["maxMs"]  # type: ignore[operator]
    assert set(evidence) == {
        "requests",
        "errors",
        "concurrency",
        "seconds",
        "p50Ms",
        "p95Ms",
        "maxMs",
    }
    # Every request was the JSON body, and they really overlapped.
    assert app.calls == 41  # one untimed request first
    assert all(json.loads(r.body) == ARGS["body"] for r in server.requests)
    assert app.most_in_flight > 1
    # 40 requests of 20 ms, 8 at a time: about 0.1 s, far from the 0.8 s one at a time takes.
    assert evidence["seconds"] < 0.6  # type: ignore[operator]


def test_a_slow_server_fails_with_p95_against_the_limit() -> None:
    app = Predictor(delay=0.12)
    args = {**ARGS, "concurrency": 4, "requests": 8, "maxP95Ms": 50}
    with serve(app) as server:
        result = run_check(ctx_for(server), "http_latency", args)
    assert result.state == "Failed", result.message
    p95 = result.evidence["p95Ms"]
    assert isinstance(p95, float) and p95 >= 120
    url = f"http://127.0.0.1:{server.port}/predict"
    assert result.message == (
        f"POST {url}: p95 latency {p95:.1f} ms over 8 requests at concurrency 4, expected at "
        f"most 50 ms (p50 {result.evidence['p50Ms']} ms, max {result.evidence['maxMs']} ms; "
        "0 errors)"
    )
    assert result.evidence["errors"] == 0


def test_server_errors_fail_with_their_count() -> None:
    app = Predictor()
    app.fail_every = 4  # every fourth answer is a 500 (the untimed first one is the 1st)
    args = {**ARGS, "concurrency": 5, "requests": 20}
    with serve(app) as server:
        result = run_check(ctx_for(server), "http_latency", args)
    assert result.state == "Failed", result.message
    url = f"http://127.0.0.1:{server.port}/predict"
    assert result.message.startswith(
        f"POST {url}: 5 of 20 requests at concurrency 5 failed, expected none (first: status "
        '500, expected 200 (body: "Internal Server Error")); p50 '
    )
    assert result.message.endswith(" (limit 5000 ms)")
    assert result.evidence["errors"] == 5
    assert result.evidence["requests"] == 20
    assert "p95Ms" in result.evidence  # the 15 good answers were timed


def test_only_errors_has_no_latency_figures() -> None:
    app = Predictor()
    app.fail_every = 1
    with serve(app) as server:
        result = run_check(ctx_for(server), "http_latency", {**ARGS, "requests": 8})
    assert result.state == "Failed"
    assert "8 of 8 requests at concurrency 8 failed" in result.message
    assert result.message.endswith("; no latency measured (limit 5000 ms)")
    assert "p95Ms" not in result.evidence


def test_a_wrong_answer_is_an_error_of_each_request() -> None:
    app = Predictor()
    app.factor = 3.0
    with serve(app) as server:
        result = run_check(ctx_for(server), "http_latency", {**ARGS, "requests": 10})
    assert result.state == "Failed"
    assert (
        "10 of 10 requests at concurrency 8 failed, expected none (first: the answer's "
        "outputs[0][0] is 4.0, expected 3)"
    ) in result.message
    missing = {**ARGS, "requests": 8, "expectJson": {"predictions[0]": 1}}
    with serve(Predictor()) as server:
        result = run_check(ctx_for(server), "http_latency", missing)
    assert "(first: the answer has no predictions[0], expected 1 (body: " in result.message


def test_without_expect_json_a_status_is_enough() -> None:
    def plain(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        return 200, "ok"

    with local_server(plain) as server:
        args = {"service": "web", "maxP95Ms": 1000, "concurrency": 3, "requests": 9}
        result = run_check(FakeContext(services={"web": server.port}), "http_latency", args)
    assert result.state == "Passed", result.message
    assert [r.method for r in server.requests] == ["GET"] * 10
    assert all(r.body == b"" for r in server.requests)


def test_an_unreachable_service_is_an_error() -> None:
    port = closed_port()
    ctx = FakeContext(services={"model-api": port})
    result = run_check(ctx, "http_latency", {**ARGS, "requests": 8})
    assert result.state == "Error"
    assert result.message == (
        f"could not reach Service model-api port 80 (POST http://127.0.0.1:{port}/predict: "
        "connection refused (nothing listens on that port)); check that the Service exists, "
        "that its selector matches ready pods (`kubectl get endpoints model-api`) and that the "
        "port is right"
    )
    assert result.evidence == {"requests": 0, "errors": 0, "concurrency": 8}


def test_the_default_url_is_the_service_in_the_lab_namespace() -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def fake(method: str, url: str, **kwargs: Any) -> HttpResponse:
        with lock:
            seen.append(url)
        return HttpResponse(200, b'{"outputs": [[3, 5, 7, 9]], "model_version": "1"}', 0.004)

    result = run_check(FakeContext(http=fake), "http_latency", {**ARGS, "requests": 8})
    assert result.state == "Passed", result.message
    assert set(seen) == {"http://model-api.lab-x.svc.cluster.local:80/predict"}
    assert result.evidence["p95Ms"] == 4.0


def test_the_deadline_stops_the_run() -> None:
    ctx = FakeContext()
    stop = threading.Event()

    def slow(method: str, url: str, **kwargs: Any) -> HttpResponse:
        ctx.clock.now += 1  # each answer takes a second of the (fake) check time
        stop.wait(0.001)
        return HttpResponse(200, b'{"outputs": [[3]], "model_version": "1"}', 1.0)

    ctx._http = slow
    ctx.deadline = ctx.clock.now + 30
    args = {**ARGS, "concurrency": 1, "requests": 100, "expectJson": {}, "timeoutSeconds": 2}
    result = run_check(ctx, "http_latency", args)
    assert result.state == "Failed", result.message
    sent = result.evidence["requests"]
    assert isinstance(sent, int) and 20 <= sent < 100
    assert f"only {sent} of 100 requests were sent at concurrency 1 before the check deadline" in (
        result.message
    )
    # With less time left than a request may take, nothing is sent at all.
    ctx.deadline = ctx.clock.now + 6
    late = run_check(ctx, "http_latency", args)
    assert late.state == "Error"
    assert late.message.startswith("too little time left before the check deadline (6 s)")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"concurrency": 1001}, "concurrency: Input should be less than or equal to 1000"),
        ({"concurrency": 50, "requests": 10}, "requests (10) must be at least concurrency (50)"),
        ({"maxP95Ms": 0}, "maxP95Ms: Input should be greater than 0"),
        ({"expectJson": {"outputs[": 1}}, "expectJson"),
        ({"service": "Model"}, "service: String should match pattern"),
        ({"url": "http://elsewhere/"}, "url: Extra inputs are not permitted"),
        ({"body": {"x": "y" * 70000}}, "body: more than 65536 bytes as JSON"),
    ],
)
def test_bad_args(change: dict[str, Any], message: str) -> None:
    result = run_check(FakeContext(), "http_latency", {**ARGS, **change})
    assert result.state == "Error"
    assert message in result.message


def test_max_p95_is_required_and_runs_in_a_job() -> None:
    result = run_check(FakeContext(), "http_latency", {"service": "web"})
    assert "maxP95Ms: Field required" in result.message
    assert HttpLatencyArgs.model_validate({"service": "web", "maxP95Ms": 100}).payload() is None
    # It generates load: never in the shared warm checker.
    assert "http_latency" in LONG_PROBES


class SlowStart(Predictor):
    """A server whose first `slow` answers take `delay` s and the rest none: a new replica."""

    def __init__(self, slow: int, delay: float) -> None:
        super().__init__()
        self.slow = slow
        self.slow_delay = delay

    def __call__(
        self, method: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        with self.lock:
            first = self.calls < self.slow
        if first:
            time.sleep(self.slow_delay)
        return super().__call__(method, path, query, body)


def test_warmup_requests_are_sent_untimed_before_the_measured_ones() -> None:
    # 8 slow first answers: in 40 measured requests, they would be the p95 and fail it.
    args = {**ARGS, "maxP95Ms": 100}
    with serve(SlowStart(slow=9, delay=0.3)) as server:
        cold = run_check(ctx_for(server), "http_latency", args)
    assert cold.state == "Failed", cold.message
    assert "warm-up" not in cold.message and "warmupRequests" not in cold.evidence

    app = SlowStart(slow=9, delay=0.3)
    with serve(app) as server:
        warmed = run_check(ctx_for(server), "http_latency", {**args, "warmupRequests": 16})
    assert warmed.state == "Passed", warmed.message
    assert warmed.message.endswith("; 0 errors; after 16 warm-up requests)")
    assert warmed.evidence["warmupRequests"] == 16
    assert warmed.evidence["requests"] == 40
    assert app.calls == 1 + 16 + 40  # the untimed first, the warm-up, the measured


def test_a_deadline_during_warmup_fails_before_measuring() -> None:
    ctx = FakeContext()

    def slow(method: str, url: str, **kwargs: Any) -> HttpResponse:
        ctx.clock.now += 1  # each answer takes a second of the (fake) check time
        return HttpResponse(200, b'{"outputs": [[3]], "model_version": "1"}', 1.0)

    ctx._http = slow
    ctx.deadline = ctx.clock.now + 30
    args = {**ARGS, "concurrency": 1, "requests": 10, "warmupRequests": 100, "timeoutSeconds": 2}
    result = run_check(ctx, "http_latency", {**args, "expectJson": {}})
    assert result.state == "Failed", result.message
    assert result.message.endswith(
        "warm-up requests were sent at concurrency 1 before the check deadline; the server is "
        "too slow, or the lab's checkTimeoutSeconds too short for this load"
    )
    assert result.evidence["requests"] == 0
