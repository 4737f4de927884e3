"""`kserve_v2`: a Triton / KServe v2 (Open Inference Protocol) server serves a model correctly.

    check:
      probe: kserve_v2
      args:
        service: triton
        model: simple
        inputs:
          - {name: INPUT0, shape: [1, 4], datatype: FP32, data: [1, 2, 3, 4]}
        expect: {OUTPUT0: [2, 4, 6, 8]}
        latencyRequests: 20
        maxP95Ms: 200

Order: server ready (/v2/health/ready), model ready (/v2/models/<m>[/versions/<v>]/ready),
one inference whose outputs are compared (numbers within tolerance), then timed requests
whose latency percentiles become evidence (and, with maxP95Ms, a requirement).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import Field, StringConstraints, model_validator

from roadlab.probes.base import (
    CheckResult,
    Evidence,
    HttpResponse,
    Probe,
    ProbeArgs,
    ProbeContext,
    ProbeHttpError,
    show,
)
from roadlab.probes.http_args import Port, ServiceName, snippet, unreachable

Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip
Scalar = bool | int | float | str
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class InferInput(ProbeArgs):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    shape: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=0, max_length=8)]
    datatype: Datatype
    data: list[Any] = Field(max_length=4096)

    @model_validator(mode="after")
    def _shape_matches(self) -> InferInput:
        size = math.prod(self.shape)
        if size != len(_flatten(self.data)):
            raise ValueError(
                f"input {self.name}: shape {self.shape} holds {size} values but data has "
                f"{len(_flatten(self.data))}"
            )
        return self


class KServeV2Args(ProbeArgs):
    service: ServiceName
    port: Port = 8000
    model: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    version: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z._-]{1,64}$")] | None = None
    inputs: list[InferInput] = Field(default_factory=list, max_length=16)
    expect: dict[str, list[Any]] = Field(default_factory=dict, max_length=16)
    tolerance: Annotated[float, Field(ge=0, le=1e6)] = 1e-6
    latency_requests: Annotated[int, Field(ge=0, le=500)] = 20
    max_p95_ms: Annotated[float, Field(gt=0)] | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10

    @model_validator(mode="after")
    def _consistent(self) -> KServeV2Args:
        if self.expect and not self.inputs:
            raise ValueError("expect needs inputs to send")
        if self.max_p95_ms is not None and self.latency_requests == 0:
            raise ValueError("maxP95Ms needs latencyRequests > 0")
        return self


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [item for part in data for item in _flatten(part)]
    return [data]


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _error_text(response: HttpResponse) -> str:
    try:
        body = response.json()
    except ValueError:
        return snippet(response)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return show(body["error"], 160)
    return snippet(response)


def _close(actual: Any, expected: Any, tolerance: float) -> bool:
    numbers = (int, float)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, numbers) and isinstance(actual, numbers):
        return math.isclose(actual, expected, rel_tol=tolerance, abs_tol=tolerance)
    return bool(actual == expected)


def _compare_outputs(
    body: Any, expect: dict[str, list[Any]], tolerance: float
) -> tuple[str | None, int]:
    """(problem or None, number of outputs that matched)."""
    outputs = body.get("outputs") if isinstance(body, dict) else None
    if not isinstance(outputs, list):
        return "the inference response has no outputs list", 0
    by_name = {o.get("name"): o for o in outputs if isinstance(o, dict)}
    matched = 0
    for name, wanted in expect.items():
        output = by_name.get(name)
        if output is None:
            got = ", ".join(sorted(str(n) for n in by_name)) or "none"
            return f"output {name} is missing from the inference response (got: {got})", matched
        data = _flatten(output.get("data"))
        flat = _flatten(wanted)
        if len(data) != len(flat):
            return (
                f"output {name} has {len(data)} values, expected {len(flat)} "
                f"(got {show(data)}, expected {show(flat)})",
                matched,
            )
        for index, (got, exp) in enumerate(zip(data, flat, strict=True)):
            if not _close(got, exp, tolerance):
                return (
                    f"output {name} differs from the expected values at index {index}: got "
                    f"{show(got)}, expected {show(exp)} (tolerance {tolerance:g})",
                    matched,
                )
        matched += 1
    return None, matched


class _Stop(Exception):  # noqa: N818 - control flow, carries the final result
    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


class _Session:
    """One probe run: the URLs, the evidence gathered so far, and each step."""

    def __init__(self, ctx: ProbeContext, args: KServeV2Args) -> None:
        self.ctx = ctx
        self.args = args
        model_path = f"/v2/models/{quote(args.model, safe='')}"
        if args.version is not None:
            model_path += f"/versions/{quote(args.version, safe='')}"
        self.ready_url = ctx.service_url(args.service, args.port, f"{model_path}/ready")
        self.infer_url = ctx.service_url(args.service, args.port, f"{model_path}/infer")
        self.label = f"model {args.model}" + (f" version {args.version}" if args.version else "")
        self.payload = json.dumps(
            {"inputs": [i.model_dump(mode="json") for i in args.inputs]}, separators=(",", ":")
        ).encode()
        self.evidence: Evidence = {"model": args.model}

    def fail(self, message: str) -> _Stop:
        return _Stop(CheckResult.fail(message, self.evidence))

    def request(self, method: str, url: str, what: str) -> HttpResponse:
        """One request; an unreachable server ends the probe with an Error."""
        body, headers = (self.payload, JSON_HEADERS) if method == "POST" else (None, None)
        try:
            return self.ctx.http(
                method, url, body=body, headers=headers, timeout=self.args.timeout_seconds
            )
        except ProbeHttpError as exc:
            message = unreachable(self.args.service, self.args.port, f"{what} {url}", exc)
            raise _Stop(CheckResult.err(message, self.evidence)) from exc

    def readiness(self) -> None:
        url = self.ctx.service_url(self.args.service, self.args.port, "/v2/health/ready")
        response = self.request("GET", url, "GET")
        if response.status != 200:
            raise self.fail(
                f"the inference server behind Service {self.args.service} is not ready: GET "
                f"{url} returned {response.status}, expected 200 ({_error_text(response)})"
            )
        response = self.request("GET", self.ready_url, "GET")
        if response.status != 200:
            raise self.fail(
                f"{self.label} is not ready: GET {self.ready_url} returned {response.status}, "
                f"expected 200 ({_error_text(response)}); is it in the model repository, and "
                "did it load? (see the server's log)"
            )

    def inference(self) -> None:
        response = self.request("POST", self.infer_url, "POST")
        if response.status != 200:
            raise self.fail(
                f"inference on {self.label} failed: POST {self.infer_url} returned "
                f"{response.status}, expected 200 ({_error_text(response)})"
            )
        try:
            body = response.json()
        except ValueError:
            raise self.fail(
                f"inference on {self.label} returned a body that is not JSON: {snippet(response)}"
            ) from None
        problem, matched = _compare_outputs(body, self.args.expect, self.args.tolerance)
        self.evidence["outputsMatched"] = matched
        if problem is not None:
            raise self.fail(f"{self.label}: {problem}")

    def latency(self) -> None:
        count = self.args.latency_requests
        samples: list[float] = []
        failures = 0
        last_problem = ""
        for _ in range(count):
            if self.args.inputs:
                method, url = "POST", self.infer_url
            else:
                method, url = "GET", self.ready_url
            try:
                response = self.ctx.http(
                    method,
                    url,
                    body=self.payload if method == "POST" else None,
                    headers=JSON_HEADERS if method == "POST" else None,
                    timeout=self.args.timeout_seconds,
                )
            except ProbeHttpError as exc:
                failures, last_problem = failures + 1, str(exc)
                continue
            if response.status != 200:
                failures += 1
                last_problem = f"status {response.status}: {_error_text(response)}"
                continue
            samples.append(response.seconds * 1000)
        self.evidence.update(requests=count, failedRequests=failures)
        if samples:
            self.evidence.update(
                p50Ms=round(percentile(samples, 50), 2),
                p95Ms=round(percentile(samples, 95), 2),
                maxMs=round(max(samples), 2),
            )
        if failures:
            raise self.fail(
                f"{self.label}: {failures} of {count} timed requests failed (last: {last_problem})"
            )
        p95 = percentile(samples, 95)
        if self.args.max_p95_ms is not None and p95 > self.args.max_p95_ms:
            raise self.fail(
                f"{self.label}: p95 latency is {p95:.1f} ms over {count} requests, expected at "
                f"most {self.args.max_p95_ms:g} ms"
            )


def run(ctx: ProbeContext, args: KServeV2Args) -> CheckResult:
    session = _Session(ctx, args)
    try:
        session.readiness()
        if args.inputs:
            session.inference()
        if args.latency_requests:
            session.latency()
    except _Stop as stop:
        return stop.result
    if args.expect:
        what = "is ready and answers inference as expected"
    elif args.inputs:
        what = "is ready and answers inference"
    else:
        what = "is ready"
    evidence = session.evidence
    latency = (
        f"; p50 {evidence['p50Ms']} ms, p95 {evidence['p95Ms']} ms" if "p95Ms" in evidence else ""
    )
    return CheckResult.ok(f"{session.label} {what}{latency}", evidence)


PROBE = Probe(
    name="kserve_v2",
    args_model=KServeV2Args,
    run=run,
    summary="a KServe v2 / Triton model is ready, infers correctly, and is fast enough",
)
