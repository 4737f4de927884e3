"""`http`: a Service in the lab namespace answers a request as expected.

    check:
      probe: http
      args:
        service: web
        port: 80
        path: /healthz
        expectStatus: 200
        bodyContains: ok
        attempts: 3
        pauseSeconds: 2

Only Services of the lab namespace can be targeted (no arbitrary URLs).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from roadlab.probes.base import (
    CheckResult,
    Evidence,
    HttpResponse,
    Probe,
    ProbeArgs,
    ProbeContext,
    ProbeHttpError,
    optional_regex,
    plural,
    show,
)
from roadlab.probes.http_args import Method, Port, ServiceName, UrlPath, snippet, unreachable


class HttpArgs(ProbeArgs):
    service: ServiceName
    port: Port = 80
    path: UrlPath = "/"
    method: Method = "GET"
    body: Annotated[str, StringConstraints(max_length=65536)] | None = None
    headers: dict[str, str] = Field(default_factory=dict, max_length=16)
    expect_status: (
        Annotated[int, Field(ge=100, le=599)] | list[Annotated[int, Field(ge=100, le=599)]]
    ) = 200
    body_contains: str | list[str] | None = None
    body_matches: str | None = None
    attempts: Annotated[int, Field(ge=1, le=30)] = 1
    pause_seconds: Annotated[float, Field(ge=0, le=30)] = 2
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10

    _re = field_validator("body_matches")(optional_regex)

    def statuses(self) -> list[int]:
        return [self.expect_status] if isinstance(self.expect_status, int) else self.expect_status

    def needles(self) -> list[str]:
        if self.body_contains is None:
            return []
        return [self.body_contains] if isinstance(self.body_contains, str) else self.body_contains


def _judge(args: HttpArgs, response: HttpResponse, request: str) -> str | None:
    """What is wrong with the response, or None when it is as expected."""
    statuses = args.statuses()
    if response.status not in statuses:
        wanted = " or ".join(str(s) for s in statuses)
        return (
            f"{request} returned {response.status}, expected {wanted} (body: {snippet(response)})"
        )
    text = response.text()
    for needle in args.needles():
        if needle not in text:
            return f"{request} returned a body without {show(needle)} (body: {snippet(response)})"
    if args.body_matches is not None and re.search(args.body_matches, text) is None:
        return (
            f"{request} returned a body not matching {args.body_matches} "
            f"(body: {snippet(response)})"
        )
    return None


def run(ctx: ProbeContext, args: HttpArgs) -> CheckResult:
    url = ctx.service_url(args.service, args.port, args.path)
    request = f"{args.method} {url}"
    body = args.body.encode() if args.body is not None else None
    problem = ""
    connection_error: ProbeHttpError | None = None
    evidence: Evidence = {"url": url}
    for attempt in range(1, args.attempts + 1):
        if attempt > 1:
            time_left = ctx.time_left()
            if time_left is not None and time_left < args.pause_seconds + args.timeout_seconds:
                break  # another attempt could overrun the check deadline
            ctx.sleep(args.pause_seconds)
        evidence["attempts"] = attempt
        try:
            response = ctx.http(
                args.method, url, body=body, headers=args.headers, timeout=args.timeout_seconds
            )
        except ProbeHttpError as exc:
            connection_error = exc
            continue
        connection_error = None
        evidence.update(
            status=response.status,
            ms=round(response.seconds * 1000, 1),
            bodyBytes=len(response.body),
        )
        found = _judge(args, response, request)
        if found is None:
            return CheckResult.ok(
                f"{request} returned {response.status} as expected"
                + (f" (attempt {attempt})" if attempt > 1 else ""),
                evidence,
            )
        problem = found
    if connection_error is not None and not problem:
        return CheckResult.err(
            unreachable(args.service, args.port, request, connection_error), evidence
        )
    if args.attempts > 1:
        problem += f" (after {plural(int(evidence['attempts']), 'attempt')})"
    return CheckResult.fail(problem, evidence)


PROBE = Probe(
    name="http",
    args_model=HttpArgs,
    run=run,
    summary="a Service answers an HTTP request with the expected status and body",
)
