"""load_then_assert: worker threads send load while the main thread polls replicas.

Time is a fake clock (sleep advances it), so a 180 s scenario runs in milliseconds; the
load itself is real threads calling the context's http.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from probe_support import NS, FakeClock, FakeContext, closed_port, deployment, local_server

from roadlab.probes import HttpResponse, run_check

START = 1000.0


class CountingHttp:
    """A fake backend: counts requests (thread-safe), answers 200 after a tiny real pause."""

    def __init__(self, status: int = 200) -> None:
        self.count = 0
        self.status = status
        self.lock = threading.Lock()
        self.urls: set[str] = set()

    def __call__(self, method: str, url: str, **kwargs: Any) -> HttpResponse:
        with self.lock:
            self.count += 1
            self.urls.add(url)
        time.sleep(0.001)
        return HttpResponse(self.status, b"ok", 0.001)


def hpa(clock: FakeClock, schedule: list[tuple[float, int]]) -> Any:
    """An HPA whose status.currentReplicas follows `schedule` [(seconds after START, n)]."""

    def current() -> dict[str, Any]:
        replicas = 0
        for at, count in schedule:
            if clock.now - START >= at:
                replicas = count
        return {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"minReplicas": 1, "maxReplicas": 5},
            "status": {"currentReplicas": replicas, "desiredReplicas": replicas},
        }

    return current


def setup(schedule: list[tuple[float, int]], http: Any = None) -> tuple[FakeContext, FakeClock]:
    clock = FakeClock(now=START, real_pause=0.002)
    ctx = FakeContext(clock=clock, http=http or CountingHttp())
    ctx.objects[("autoscaling/v2", "HorizontalPodAutoscaler", "web")] = hpa(clock, schedule)
    return ctx, clock


ARGS: dict[str, Any] = {
    "service": "web",
    "port": 80,
    "concurrency": 4,
    "durationSeconds": 180,
    "pollSeconds": 5,
    "hpa": "web",
    "minReplicas": 3,
}


def test_passes_early_and_stops_the_load() -> None:
    backend = CountingHttp()
    ctx, clock = setup([(0, 1), (30, 3)], backend)
    result = run_check(ctx, "load_then_assert", ARGS)
    assert result.state == "Passed", result.message
    assert clock.now - START == 30  # polled every 5 s, stopped as soon as it held
    assert clock.sleeps == [5] * 6
    sent = result.evidence["requests"]
    assert isinstance(sent, int) and sent > 0
    assert result.message == (
        f"HorizontalPodAutoscaler web scaled to 3 replicas (at least 3) after 30 s of load "
        f"({sent} requests)"
    )
    assert result.evidence["initialReplicas"] == 1
    assert result.evidence["maxReplicas"] == 3
    assert result.evidence["errors"] == 0
    assert backend.urls == {"http://web.lab-x.svc.cluster.local:80/"}
    after = backend.count
    time.sleep(0.05)
    assert backend.count == after  # every worker has stopped
    assert not [t for t in threading.enumerate() if t.name.startswith("load-")]


def test_fails_reporting_how_far_replicas_rose() -> None:
    ctx, clock = setup([(0, 1), (60, 2)])
    result = run_check(ctx, "load_then_assert", ARGS)
    assert result.state == "Failed"
    assert clock.now - START == 180
    sent, errors = result.evidence["requests"], result.evidence["errors"]
    assert result.message == (
        "HorizontalPodAutoscaler web: replicas rose from 1 to 2, expected at least 3 within "
        f"180 s of load ({sent} requests, {errors} errors); check the autoscaler's target and "
        "the pods' CPU requests (`kubectl describe hpa`)"
    )
    assert "replicas rose from 1 to 2, expected at least 3 within 180 s" in result.message
    assert result.evidence["maxReplicas"] == 2
    assert result.evidence["seconds"] == 180.0


def test_fails_when_replicas_stay() -> None:
    ctx, _ = setup([(0, 1)])
    result = run_check(ctx, "load_then_assert", {**ARGS, "durationSeconds": 20, "pollSeconds": 7})
    assert result.state == "Failed"
    assert "replicas stayed at 1, expected at least 3 within 20 s" in result.message


def test_last_poll_is_clamped_to_the_duration() -> None:
    ctx, clock = setup([(0, 1)])
    run_check(ctx, "load_then_assert", {**ARGS, "durationSeconds": 20, "pollSeconds": 7})
    assert clock.sleeps == [7, 7, 6]


def test_already_scaled_passes_without_polling() -> None:
    ctx, clock = setup([(0, 4)])
    result = run_check(ctx, "load_then_assert", ARGS)
    assert result.passed
    assert clock.sleeps == []


def test_deployment_replicas_above() -> None:
    clock = FakeClock(now=START, real_pause=0.002)
    ctx = FakeContext(clock=clock, http=CountingHttp())

    def web() -> dict[str, Any]:
        return deployment(replicas=1, status_replicas=1 if clock.now - START < 10 else 2)

    ctx.objects[("apps/v1", "Deployment", "web")] = web
    args = {k: v for k, v in ARGS.items() if k not in ("hpa", "minReplicas")}
    result = run_check(ctx, "load_then_assert", {**args, "deployment": "web", "replicasAbove": 1})
    assert result.state == "Passed"
    assert result.message.startswith("Deployment web scaled to 2 replicas (more than 1) after 10 s")


def test_target_missing() -> None:
    result = run_check(FakeContext(), "load_then_assert", ARGS)
    assert result.state == "Failed"
    assert result.message == (
        f"HorizontalPodAutoscaler web not found in namespace {NS}: create one with "
        "`kubectl autoscale` or a manifest"
    )


def test_unreachable_service_is_error() -> None:
    clock = FakeClock(now=START, real_pause=0.01)
    ctx = FakeContext(clock=clock, services={"web": closed_port()})
    ctx.objects[("autoscaling/v2", "HorizontalPodAutoscaler", "web")] = hpa(clock, [(0, 1)])
    result = run_check(ctx, "load_then_assert", {**ARGS, "durationSeconds": 10, "concurrency": 2})
    assert result.state == "Error"
    assert result.message.startswith("the load could not be generated: all ")
    assert "connection refused" in result.message


def test_server_errors_count_but_are_still_load() -> None:
    ctx, _ = setup([(0, 1)], CountingHttp(status=503))
    result = run_check(ctx, "load_then_assert", {**ARGS, "durationSeconds": 10})
    assert result.state == "Failed"  # answered requests did reach the pods
    sent = result.evidence["requests"]
    assert result.evidence["errors"] == sent
    assert f"({sent} requests, {sent} errors)" in result.message


def test_real_load_reaches_a_local_server() -> None:
    hits = {"n": 0}
    lock = threading.Lock()

    def app(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        with lock:
            hits["n"] += 1
        return 200, "ok"

    with local_server(app) as server:
        clock = FakeClock(now=START, real_pause=0.01)
        ctx = FakeContext(clock=clock, services={"web": server.port})
        ctx.objects[("autoscaling/v2", "HorizontalPodAutoscaler", "web")] = hpa(
            clock, [(0, 1), (20, 3)]
        )
        result = run_check(ctx, "load_then_assert", {**ARGS, "path": "/work"})
    assert result.state == "Passed"
    assert hits["n"] == result.evidence["requests"] > 0
    assert {r.path for r in server.requests} == {"/work"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"concurrency": 33}, "concurrency: Input should be less than or equal to 32"),
        ({"durationSeconds": 301}, "durationSeconds: Input should be less than or equal to 300"),
        ({"deployment": "web"}, "give exactly one of hpa (with minReplicas) or deployment"),
        ({"minReplicas": None}, "hpa needs minReplicas"),
        ({"replicasAbove": 2}, "hpa needs minReplicas (and no replicasAbove)"),
    ],
)
def test_bad_args(change: dict[str, Any], message: str) -> None:
    args = {k: v for k, v in {**ARGS, **change}.items() if v is not None}
    result = run_check(FakeContext(), "load_then_assert", args)
    assert result.state == "Error"
    assert message in result.message


def test_load_is_shortened_to_fit_the_check_deadline() -> None:
    ctx, clock = setup([(0, 1), (40, 2)])
    ctx.deadline = START + 60  # 60 s left; 10 s are kept for the rest of the check
    result = run_check(ctx, "load_then_assert", ARGS)
    assert result.state == "Failed"
    assert clock.now - START == 50
    assert (
        "replicas rose from 1 to 2, expected at least 3 within 50 s (of the 180 s asked for; "
        "the check deadline came first) of load" in result.message
    )


def test_an_hpa_that_can_never_reach_the_target_fails_without_load() -> None:
    http = CountingHttp()
    ctx, _ = setup([(0, 1)], http)
    capped = ctx.objects[("autoscaling/v2", "HorizontalPodAutoscaler", "web")]
    ctx.objects[("autoscaling/v2", "HorizontalPodAutoscaler", "web")] = lambda: {
        **capped(),
        "spec": {"minReplicas": 1, "maxReplicas": 1},
    }
    result = run_check(ctx, "load_then_assert", ARGS)
    assert not result.passed and not result.error
    assert result.message == (
        "HorizontalPodAutoscaler web can never reach 3 replicas: its spec.maxReplicas is 1"
    )
    assert http.count == 0
