"""`http_latency`: a Service answers many concurrent requests correctly and fast enough.

    check:
      probe: http_latency
      args:
        service: model-api
        port: 80
        path: /predict
        method: POST
        body: {inputs: [[1, 2, 3, 4]]}
        concurrency: 50
        requests: 250
        maxP95Ms: 300
        warmupRequests: 100
        expectStatus: 200
        expectJson: {"outputs[0][0]": 11}

After one untimed request (which also tells an unreachable Service, an Error) and
`warmupRequests` more, sent as the measured ones are but neither timed nor judged (each
replica of a Service just rolled out answers its first requests slowly: on the model-api
lab's solution, 3 new replicas behind one untimed request gave a p95 of 178 ms where one
new replica gave 43 ms), `requests` requests are sent by `concurrency` worker threads (so
that many are in flight at once), each timed from connect to the last byte. An answer
counts as an error unless its status is expectStatus and, with expectJson, its JSON body
has those values at those field paths (the `resource` probe's path syntax and value
comparison). The check passes when there are no errors and the p95 latency of the answers
is at most maxP95Ms; p50, p95 and max latency, the error count and the concurrency are
evidence either way. Requests not yet sent when the check deadline nears are not sent, and
the check fails saying so.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from roadlab.probes.base import (
    CheckResult,
    Evidence,
    HttpResponse,
    Probe,
    ProbeArgs,
    ProbeContext,
    ProbeHttpError,
    plural,
    show,
)
from roadlab.probes.http_args import Method, Port, ServiceName, UrlPath, snippet, unreachable
from roadlab.probes.kserve_v2 import percentile
from roadlab.probes.paths import MISSING, parse_path, resolve
from roadlab.probes.values import values_equal

MAX_BODY_BYTES = 65536
DEADLINE_MARGIN_SECONDS = 5  # left for joining workers, later tasks and the report
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class HttpLatencyArgs(ProbeArgs):
    service: ServiceName
    port: Port = 80
    path: UrlPath = "/"
    method: Method = "GET"
    # A JSON value sent as the request body (Content-Type: application/json).
    body: Any = None
    concurrency: Annotated[int, Field(ge=1, le=1000)] = 10
    requests: Annotated[int, Field(ge=1, le=10000)] = 100
    warmup_requests: Annotated[int, Field(ge=0, le=10000)] = 0
    max_p95_ms: Annotated[float, Field(gt=0, le=600000)]
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    expect_json: dict[str, Any] = Field(default_factory=dict, max_length=16)
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10

    @field_validator("expect_json", mode="after")
    @classmethod
    def _paths(cls, value: dict[str, Any]) -> dict[str, Any]:
        for path in value:
            parse_path(path)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> HttpLatencyArgs:
        if self.requests < self.concurrency:
            raise ValueError(
                f"requests ({self.requests}) must be at least concurrency ({self.concurrency})"
            )
        if self.body is not None and len(self.payload() or b"") > MAX_BODY_BYTES:
            raise ValueError(f"body: more than {MAX_BODY_BYTES} bytes as JSON")
        return self

    def payload(self) -> bytes | None:
        if self.body is None:
            return None
        return json.dumps(self.body, separators=(",", ":")).encode()


def judge(args: HttpLatencyArgs, response: HttpResponse) -> str | None:
    """What is wrong with one answer, or None when it is as expected."""
    if response.status != args.expect_status:
        return (
            f"status {response.status}, expected {args.expect_status} (body: {snippet(response)})"
        )
    if not args.expect_json:
        return None
    try:
        document = response.json()
    except ValueError:
        return f"the body is not JSON: {snippet(response)}"
    for path, expected in args.expect_json.items():
        actual = resolve(document, path)
        if actual is MISSING:
            return (
                f"the answer has no {path}, expected {show(expected)} (body: {snippet(response)})"
            )
        if not values_equal(actual, expected):
            return f"the answer's {path} is {show(actual)}, expected {show(expected)}"
    return None


@dataclass
class _Run:
    """What the worker threads share: the next request to send, and what came back."""

    total: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    claimed: int = 0
    samples: list[float] = field(default_factory=list)  # ms of the answers as expected
    errors: int = 0
    unanswered: int = 0  # no response at all (refused, timed out)
    first_error: str = ""
    last_exception: Exception | None = None

    cut: bool = False  # the check deadline came before every request was sent

    def claim(self, ctx: ProbeContext, reserve: float) -> bool:
        """Whether to send one more request: some are left, and one more (taking at most
        `reserve` seconds) still ends before the check deadline's margin."""
        time_left = ctx.time_left()
        with self.lock:
            if self.cut or self.claimed >= self.total:
                return False
            if time_left is not None and time_left < reserve:
                self.cut = True
                return False
            self.claimed += 1
            return True

    def record(self, ms: float | None, error: str | None, exc: Exception | None = None) -> None:
        with self.lock:
            if error is None and ms is not None:
                self.samples.append(ms)
                return
            self.errors += 1
            if not self.first_error:
                self.first_error = error or "no answer"
            if exc is not None:
                self.unanswered += 1
                self.last_exception = exc


def _worker(
    ctx: ProbeContext, args: HttpLatencyArgs, url: str, body: bytes | None, run: _Run
) -> None:
    headers = JSON_HEADERS if body is not None else None
    reserve = DEADLINE_MARGIN_SECONDS + args.timeout_seconds
    while run.claim(ctx, reserve):
        try:
            response = ctx.http(
                args.method, url, body=body, headers=headers, timeout=args.timeout_seconds
            )
        except ProbeHttpError as exc:
            run.record(None, f"no answer: {exc}", exc)
            continue
        except Exception as exc:  # a broken worker must not hang the check
            run.record(None, f"{type(exc).__name__}: {exc}", exc)
            continue
        problem = judge(args, response)
        run.record(response.seconds * 1000, problem)


def _send(
    ctx: ProbeContext, args: HttpLatencyArgs, url: str, body: bytes | None, load: _Run
) -> None:
    """Send `load`'s requests from `concurrency` worker threads; back once all are done."""
    threads = [
        threading.Thread(
            target=_worker, args=(ctx, args, url, body, load), name=f"latency-{i}", daemon=True
        )
        for i in range(min(args.concurrency, load.total))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:  # each request ends within its timeout, so each worker ends
        thread.join()


def run(ctx: ProbeContext, args: HttpLatencyArgs) -> CheckResult:
    url = ctx.service_url(args.service, args.port, args.path)
    request = f"{args.method} {url}"
    body = args.payload()
    load = _Run(total=args.requests)
    time_left = ctx.time_left()
    if time_left is not None and time_left < DEADLINE_MARGIN_SECONDS + args.timeout_seconds:
        return CheckResult.err(
            f"too little time left before the check deadline ({time_left:.0f} s) to send "
            f"{args.requests} requests to {url}"
        )
    # One untimed request first: it waits out the name of a Service just created (the
    # context retries that) and opens the way, and a Service nobody answers behind ends the
    # check here instead of after `requests` failures.
    try:
        ctx.http(
            args.method,
            url,
            body=body,
            headers=JSON_HEADERS if body is not None else None,
            timeout=args.timeout_seconds,
        )
    except ProbeHttpError as exc:
        return CheckResult.err(
            unreachable(args.service, args.port, request, exc),
            {"requests": 0, "errors": 0, "concurrency": args.concurrency},
        )
    warmup = _Run(total=args.warmup_requests)
    _send(ctx, args, url, body, warmup)
    if warmup.cut:
        return CheckResult.fail(
            f"{request}: only {warmup.claimed} of {args.warmup_requests} warm-up requests were "
            f"sent at concurrency {args.concurrency} before the check deadline; the server is "
            "too slow, or the lab's checkTimeoutSeconds too short for this load",
            {"requests": 0, "errors": 0, "concurrency": args.concurrency},
        )
    started = ctx.monotonic()
    _send(ctx, args, url, body, load)
    cut = load.cut
    seconds = max(ctx.monotonic() - started, 0.0)

    sent = load.claimed
    evidence: Evidence = {
        "requests": sent,
        "errors": load.errors,
        "concurrency": args.concurrency,
        "seconds": round(seconds, 2),
    }
    if args.warmup_requests:
        evidence["warmupRequests"] = warmup.claimed
    samples = load.samples
    p95: float | None = None
    if samples:
        p95 = percentile(samples, 95)
        evidence.update(
            p50Ms=round(percentile(samples, 50), 1),
            p95Ms=round(p95, 1),
            maxMs=round(max(samples), 1),
        )
    limit = f"{args.max_p95_ms:g} ms"
    at = f"at concurrency {args.concurrency}"
    if sent and load.unanswered == sent and load.last_exception is not None:
        return CheckResult.err(
            unreachable(args.service, args.port, request, load.last_exception), evidence
        )
    figures = (
        f"p50 {evidence['p50Ms']} ms, p95 {evidence['p95Ms']} ms, max {evidence['maxMs']} ms"
        if p95 is not None
        else "no latency measured"
    )
    if cut:
        return CheckResult.fail(
            f"{request}: only {sent} of {args.requests} requests were sent {at} before the "
            f"check deadline ({figures}; {plural(load.errors, 'error')}); the server is too "
            "slow, or the lab's checkTimeoutSeconds too short for this load",
            evidence,
        )
    if load.errors:
        return CheckResult.fail(
            f"{request}: {load.errors} of {sent} requests {at} failed, expected none "
            f"(first: {load.first_error}); {figures} (limit {limit})",
            evidence,
        )
    if p95 is None:  # pragma: no cover - no errors and a request sent: each one was timed
        return CheckResult.err(f"{request}: no request was timed", evidence)
    warmed = f"; after {args.warmup_requests} warm-up requests" if args.warmup_requests else ""
    if p95 > args.max_p95_ms:
        return CheckResult.fail(
            f"{request}: p95 latency {p95:.1f} ms over {sent} requests {at}, expected at most "
            f"{limit} (p50 {evidence['p50Ms']} ms, max {evidence['maxMs']} ms; 0 errors"
            f"{warmed})",
            evidence,
        )
    return CheckResult.ok(
        f"{request}: {sent} requests {at} answered as expected, p95 {p95:.1f} ms within "
        f"{limit} (p50 {evidence['p50Ms']} ms, max {evidence['maxMs']} ms; 0 errors{warmed})",
        evidence,
    )


PROBE = Probe(
    name="http_latency",
    args_model=HttpLatencyArgs,
    run=run,
    summary="a Service answers concurrent requests without errors, within a p95 latency",
)
