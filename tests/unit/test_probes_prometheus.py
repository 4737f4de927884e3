"""The prometheus probe against a local server answering in Prometheus's and Alertmanager's
HTTP API shapes (api/v1 targets, rules, query; Alertmanager api/v2 alerts), and the shared
Traffic helper. Time is a fake clock; the traffic is real threads and real HTTP. The real
servers are exercised by the observability lab's e2e test."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from probe_support import FakeClock, FakeContext, closed_port, local_server

from roadlab.probes import HttpResponse, run_check, validate_check
from roadlab.probes.traffic import Traffic

RECORD = "job:web_requests:rate1m"
DEFINITION = 'sum by (job) (rate(web_requests_total{job="shop"}[1m]))'


def target(
    instance: str, health: str = "up", interval: str = "5s", error: str = ""
) -> dict[str, Any]:
    return {
        "labels": {"job": "shop", "instance": instance},
        "scrapePool": "shop",
        "health": health,
        "lastError": error,
        "scrapeInterval": interval,
    }


def success(data: Any) -> tuple[int, Any]:
    return 200, {"status": "success", "data": data}


@dataclass
class FakePrometheus:
    """Prometheus and Alertmanager in one server, the paths telling them apart."""

    targets: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    # query text -> samples [(labels, value)]; "timestamp(...)" answers the sample time.
    samples: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)
    in_alertmanager: list[dict[str, Any]] = field(default_factory=list)
    app_requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self, method: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        if path == "/api/v1/targets":
            assert query == {"state": "active"}
            return success({"activeTargets": self.targets, "droppedTargets": []})
        if path == "/api/v1/rules":
            rules = self.records if query["type"] == "record" else self.alerts
            return success({"groups": [{"name": "shop", "file": "/etc/rules.yml", "rules": rules}]})
        if path == "/api/v1/query":
            found = self.samples.get(query["query"], [])
            at = float(query.get("time", "1700000000"))
            return success(
                {
                    "resultType": "vector",
                    "result": [{"metric": m, "value": [at, str(v)]} for m, v in found],
                }
            )
        if path == "/api/v2/alerts":
            assert query["filter"] == 'alertname="ShopHighErrorRate"'
            return 200, self.in_alertmanager
        if path in ("/", "/fail"):
            with self.lock:
                self.app_requests.append(path)
            return (500, "failed on purpose") if path == "/fail" else (200, "hello")
        return 404, {"status": "error", "error": f"no route {path}"}


def context(server_port: int, clock: FakeClock | None = None) -> FakeContext:
    services = {"prometheus": server_port, "alertmanager": server_port, "shop": server_port}
    return FakeContext(services=services, clock=clock or FakeClock(real_pause=0.01))


TARGETS_ARGS = {"targets": {"job": "shop", "up": 2, "scrapeInterval": "5s"}, "withinSeconds": 0}


def test_targets_pass_with_one_healthy_target_per_pod() -> None:
    fake = FakePrometheus(targets=[target("10.1.0.5:8080"), target("10.1.0.6:8080")])
    with local_server(fake) as server:
        result = run_check(context(server.port), "prometheus", TARGETS_ARGS)
    assert result.state == "Passed", result.message
    assert result.message == (
        'job "shop": 2 targets up (10.1.0.5:8080, 10.1.0.6:8080), scraped every 5s'
    )
    assert result.evidence["up"] == 2
    assert result.evidence["scrapeInterval"] == "5s"


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (
            [],
            'Prometheus has no active target of job "shop" (targets API; jobs it scrapes: '
            'none): add a scrape job "shop" to its configuration, and let Prometheus re-read it',
        ),
        (
            [target("shop:80")],
            'job "shop" has 1 target (shop:80), expected 2: one per pod, each scraped on its own',
        ),
        (
            [target("10.1.0.5:8080"), target("10.1.0.6:8080", "down", error="connection refused")],
            'Of the 2 targets of job "shop" are up',
        ),
        (
            [target("10.1.0.5:8080", interval="15s"), target("10.1.0.6:8080", interval="15s")],
            'job "shop" is scraped every 15s, expected 5s (scrape_interval of the job, or the '
            "global one)",
        ),
    ],
    ids=["no-job", "the-service-as-one-target", "a-target-down", "wrong-interval"],
)
def test_targets_fail_with_what_prometheus_sees(
    targets: list[dict[str, Any]], message: str
) -> None:
    fake = FakePrometheus(targets=targets)
    with local_server(fake) as server:
        result = run_check(context(server.port), "prometheus", TARGETS_ARGS)
    assert result.state == "Failed"
    if message.startswith("Of "):  # the down target's line names it and its error
        assert result.message == (
            '1 of the 2 targets of job "shop" are up (10.1.0.6:8080: down "connection refused")'
        )
    else:
        assert result.message == message


def test_targets_are_polled_until_they_hold() -> None:
    fake = FakePrometheus(targets=[target("shop:80")])
    clock = FakeClock(real_pause=0.01)
    ctx = context(0, clock)
    calls = {"n": 0}

    def route(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        calls["n"] += 1
        if calls["n"] == 3:  # Prometheus re-read its configuration
            fake.targets = [target("10.1.0.5:8080"), target("10.1.0.6:8080")]
        return fake(method, path, query, body)

    with local_server(route) as server:
        ctx.services = {"prometheus": server.port}
        result = run_check(ctx, "prometheus", {**TARGETS_ARGS, "withinSeconds": 60})
    assert result.state == "Passed", result.message
    assert clock.sleeps == [5, 5]
    assert result.evidence["seconds"] == 10


def recording(
    fake: FakePrometheus, recorded: float, expected: float, labels: dict[str, str]
) -> None:
    fake.records = [{"name": RECORD, "query": "...", "health": "ok", "type": "recording"}]
    fake.samples[f"timestamp({RECORD})"] = [(labels, 1700000000.5)]
    fake.samples[RECORD] = [(labels, recorded)]
    fake.samples[DEFINITION] = [({"job": "shop"}, expected)]


RULE_ARGS: dict[str, Any] = {
    "recordingRule": {"record": RECORD, "equivalentTo": DEFINITION, "labels": {"job": "shop"}},
    "traffic": {"service": "shop", "path": "/", "requestsPerSecond": 100},
    "withinSeconds": 0,
}


def test_recording_rule_is_judged_by_the_value_it_records() -> None:
    fake = FakePrometheus()
    recording(fake, 19.6, 20.0, {"job": "shop"})
    with local_server(fake) as server:
        result = run_check(context(server.port), "prometheus", RULE_ARGS)
        queried = [r.query for r in server.requests if r.path == "/api/v1/query"]
    assert result.state == "Passed", result.message
    assert result.message == f"{RECORD} recorded 19.6, as {DEFINITION} computes (20)"
    assert result.evidence["recorded"] == 19.6 and result.evidence["expected"] == 20.0
    # Both read at the instant the rule wrote, not at "now".
    assert {"query": RECORD, "time": "1700000000.500"} in queried
    assert {"query": DEFINITION, "time": "1700000000.500"} in queried
    assert fake.app_requests, "the traffic reached the app"
    assert result.evidence["requests"] == len(fake.app_requests)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            lambda fake: None,
            f'Prometheus has no recording rule "{RECORD}" loaded (rules API; loaded: none): list '
            "its rule file under rule_files, and let Prometheus re-read its configuration",
        ),
        (
            lambda fake: recording(fake, 20.0, 20.0, {}),
            f'{RECORD} is recorded as {{}}, without {{job="shop"}}',
        ),
        (
            lambda fake: recording(fake, 4.0, 20.0, {"job": "shop"}),
            f"{RECORD} recorded 4, but {DEFINITION} is 20 at the same instant (off by more than "
            "10%): the rule computes something else",
        ),
        (
            lambda fake: recording(fake, 0.0, 0.0, {"job": "shop"}),
            "requests, but " + DEFINITION + " is 0: the requests are not in Prometheus yet "
            "(is the app scraped?)",
        ),
    ],
    ids=["not-loaded", "sum-drops-the-job-label", "another-value", "no-data"],
)
def test_recording_rule_failures(setup: Any, message: str) -> None:
    fake = FakePrometheus()
    setup(fake)
    with local_server(fake) as server:
        result = run_check(context(server.port), "prometheus", RULE_ARGS)
    assert result.state == "Failed"
    if message.startswith("requests"):
        assert result.message.startswith("the check sent "), result.message
        assert result.message.endswith(message), result.message
    else:
        assert result.message == message


def test_a_recording_rule_with_too_many_series_and_a_broken_one() -> None:
    fake = FakePrometheus()
    recording(fake, 1.0, 1.0, {"job": "shop"})
    fake.samples[f"timestamp({RECORD})"] = [
        ({"job": "shop", "instance": "a"}, 1.0),
        ({"job": "shop", "instance": "b"}, 1.0),
    ]
    with local_server(fake) as server:
        many = run_check(context(server.port), "prometheus", RULE_ARGS)
        fake.records[0].update(
            health="err", lastError="vector cannot contain metrics with the same labelset"
        )
        broken = run_check(context(server.port), "prometheus", RULE_ARGS)
    assert many.message == (
        f'{RECORD} has 2 series ({{instance="a", job="shop"}}, {{instance="b", job="shop"}}), '
        "expected 1: aggregate what the task says (sum by the labels it keeps)"
    )
    assert broken.message == (
        f'recording rule "{RECORD}" fails to evaluate: "vector cannot contain metrics with the '
        'same labelset"'
    )


ALERT_ARGS: dict[str, Any] = {
    "alert": {
        "name": "ShopHighErrorRate",
        "labels": {"severity": "page"},
        "alertmanager": "alertmanager",
    },
    "traffic": {
        "service": "shop",
        "errorPath": "/fail",
        "errorPercent": 20,
        "requestsPerSecond": 100,
    },
    "withinSeconds": 150,
}


def alert_rule(state: str, duration: float = 30) -> dict[str, Any]:
    return {
        "name": "ShopHighErrorRate",
        "state": state,
        "health": "ok",
        "type": "alerting",
        "duration": duration,
    }


def test_alert_passes_once_alertmanager_holds_it_with_its_labels() -> None:
    fake = FakePrometheus(alerts=[alert_rule("firing")])
    clock = FakeClock(real_pause=0.02)
    polls = {"n": 0}

    def route(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        if path == "/api/v2/alerts":
            polls["n"] += 1
            if polls["n"] == 4:
                fake.in_alertmanager = [
                    {
                        "labels": {
                            "alertname": "ShopHighErrorRate",
                            "severity": "page",
                            "job": "shop",
                        },
                        "status": {"state": "active"},
                        "startsAt": "2026-12-02T19:00:00Z",
                    }
                ]
        return fake(method, path, query, body)

    with local_server(route) as server:
        result = run_check(context(server.port, clock), "prometheus", ALERT_ARGS)
    assert result.state == "Passed", result.message
    assert result.message == (
        "alert ShopHighErrorRate is active in Alertmanager alertmanager "
        '({alertname="ShopHighErrorRate", job="shop", severity="page"})'
    )
    assert result.evidence["seconds"] == 20  # the traffic's first 5 s, then 3 polls
    assert result.evidence["startsAt"] == "2026-12-02T19:00:00Z"
    sent = fake.app_requests
    assert sent.count("/fail") == pytest.approx(len(sent) * 0.2, abs=1), "errors spread evenly"


def test_alert_failures_say_how_far_the_alert_got() -> None:
    fake = FakePrometheus()
    with local_server(fake) as server:

        def check() -> str:
            return run_check(context(server.port), "prometheus", ALERT_ARGS).message

        assert check().startswith('Prometheus has no alerting rule "ShopHighErrorRate" loaded')
        fake.alerts = [alert_rule("pending", duration=600)]
        pending = check()
        fake.alerts = [alert_rule("firing")]
        firing = check()
        fake.in_alertmanager = [
            {"labels": {"alertname": "ShopHighErrorRate", "severity": "ticket"}}
        ]
        labelled = check()
    # A `for` longer than the window fails at once, without waiting the window out.
    assert pending.startswith("alert ShopHighErrorRate is pending in Prometheus after ")
    assert pending.endswith(
        "its expression holds, but its `for` of 600 s is longer than the 150 s the check "
        "sends errors for, so a burst like this one never fires it"
    ), pending
    assert " of them to /fail" in pending
    assert firing == (
        "alert ShopHighErrorRate fires in Prometheus but is not in Alertmanager: Prometheus "
        "knows no Alertmanager (alerting.alertmanagers in its configuration) (waited 150 s)"
    )
    assert labelled == (
        'alert ShopHighErrorRate is active in Alertmanager, but as {alertname="ShopHighErrorRate", '
        'severity="ticket"}, without {severity="page"} (waited 150 s)'
    )


def test_an_inactive_alert_waits_the_window_out() -> None:
    fake = FakePrometheus(alerts=[alert_rule("inactive")])
    clock = FakeClock(real_pause=0.01)
    with local_server(fake) as server:
        result = run_check(context(server.port, clock), "prometheus", ALERT_ARGS)
    assert result.state == "Failed"
    assert result.message.startswith("alert ShopHighErrorRate is inactive in Prometheus after ")
    assert result.message.endswith(
        "its expression did not hold (long enough, with its `for`) (waited 150 s)"
    )
    assert sum(clock.sleeps) == 150


def test_the_window_fits_the_check_deadline() -> None:
    fake = FakePrometheus(alerts=[alert_rule("inactive")])
    clock = FakeClock(real_pause=0.01)
    ctx = context(0, clock)
    ctx.deadline = clock.now + 70
    with local_server(fake) as server:
        ctx.services = {name: server.port for name in ("prometheus", "alertmanager", "shop")}
        result = run_check(ctx, "prometheus", ALERT_ARGS)
    assert sum(clock.sleeps) == 60  # 70 s left, 10 s kept for the report
    assert result.state == "Failed"


def test_an_unreachable_prometheus_is_an_error() -> None:
    ctx = FakeContext(services={"prometheus": closed_port()})
    result = run_check(ctx, "prometheus", TARGETS_ARGS)
    assert result.state == "Error"
    assert result.message.startswith(
        "could not reach Service prometheus port 9090 (GET /api/v1/targets:"
    )


def test_a_prometheus_error_answer_is_an_error() -> None:
    def route(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        return 422, {"status": "error", "errorType": "execution", "error": "query timed out"}

    with local_server(route) as server:
        result = run_check(
            FakeContext(services={"prometheus": server.port}), "prometheus", TARGETS_ARGS
        )
    assert result.state == "Error"
    assert result.message == 'prometheus answered GET /api/v1/targets with 422: "query timed out"'


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({}, "give exactly one of targets, recordingRule or alert"),
        ({**TARGETS_ARGS, "alert": ALERT_ARGS["alert"]}, "give exactly one of"),
        (
            {**TARGETS_ARGS, "traffic": {"service": "shop", "errorPercent": 10}},
            "errorPercent and errorPath go together",
        ),
        ({"targets": {"job": "shop", "up": 2, "scrapeInterval": "5 seconds"}}, "scrapeInterval"),
        ({"recordingRule": {"record": "not a metric", "equivalentTo": "up"}}, "record"),
    ],
)
def test_bad_args_are_refused_at_catalog_load(args: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_check("prometheus", args)


class Counting:
    def __init__(self) -> None:
        self.urls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, method: str, url: str, **kwargs: Any) -> HttpResponse:
        with self.lock:
            self.urls.append(url)
        return HttpResponse(500 if url.endswith("/fail") else 200, b"", 0.0)


def test_traffic_spreads_its_errors_evenly_and_stops_on_exit() -> None:
    backend = Counting()
    ctx = FakeContext(http=backend)
    with Traffic(
        ctx, ["http://shop/", "http://shop/fail"], concurrency=3, timeout=1, error_percent=25
    ) as traffic:
        while traffic.sent < 400:
            pass
    stopped_at = len(backend.urls)
    time.sleep(0.05)
    assert len(backend.urls) == stopped_at  # the workers have stopped with the block
    assert traffic.to_error_path == pytest.approx(traffic.sent * 0.25, abs=3)
    assert traffic.errors == backend.urls.count("http://shop/fail")
    # Evenly: every run of 4 consecutive requests issued holds one error request.
    assert traffic.to_error_path == backend.urls.count("http://shop/fail")


def test_traffic_needs_an_error_url_for_errors() -> None:
    with pytest.raises(ValueError, match="two with error_percent"):
        Traffic(FakeContext(), ["http://shop/"], concurrency=1, timeout=1, error_percent=10)


def test_what_waiting_cannot_change_fails_at_once() -> None:
    fake = FakePrometheus()
    clock = FakeClock(real_pause=0.01)
    with local_server(fake) as server:
        ctx = context(server.port, clock)
        not_loaded = run_check(ctx, "prometheus", {**RULE_ARGS, "withinSeconds": 60})
        recording(fake, 20.0, 20.0, {})
        unlabelled = run_check(ctx, "prometheus", {**RULE_ARGS, "withinSeconds": 60})
        fake.samples[DEFINITION] = []
        recording(fake, 0.0, 0.0, {"job": "shop"})
        no_data = run_check(ctx, "prometheus", {**RULE_ARGS, "withinSeconds": 60})
    assert not_loaded.message.startswith("Prometheus has no recording rule")
    assert unlabelled.message.endswith('without {job="shop"}'), unlabelled.message
    # The first two returned after the traffic's first interval (5 s each), without polling
    # on; only the rule without data waited the window out.
    assert clock.sleeps == [5, 5] + [5] * 12
    assert no_data.message.endswith("(waited 60 s)"), no_data.message


def test_a_prometheus_that_is_starting_is_waited_for() -> None:
    fake = FakePrometheus(targets=[target("10.1.0.5:8080"), target("10.1.0.6:8080")])
    clock = FakeClock(real_pause=0.01)
    answers = {"n": 0}

    def route(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        answers["n"] += 1
        if answers["n"] <= 2:  # what Prometheus answers before its database is open
            return 503, "Service Unavailable"
        return fake(method, path, query, body)

    with local_server(route) as server:
        ctx = context(server.port, clock)
        result = run_check(ctx, "prometheus", {**TARGETS_ARGS, "withinSeconds": 30})
        answers["n"] = -100  # and one that never answers: an Error at the end of the window
        never = run_check(ctx, "prometheus", {**TARGETS_ARGS, "withinSeconds": 30})
    assert result.state == "Passed", result.message
    assert result.evidence["seconds"] == 10
    assert never.state == "Error"
    assert never.message.startswith("prometheus answered GET /api/v1/targets with 503")
