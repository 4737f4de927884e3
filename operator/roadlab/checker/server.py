"""The warm checker: `roadlab-check --serve` runs checks on request, without a Job each time.

A Deployment of the checker image, under the same read-only roadlab-checker service account,
serves POST /v1/check (contract: roadlab.api.checker_wire). The body is the check spec a Job
would get in ROADLAB_CHECK_SPEC; the answer is the result document the Job would write, made
by the same code (main.parse_spec and main.run_spec). A check then costs its probes' time,
not a pod's start-up.

Status 200 always carries a result document, a malformed spec's error document included
(the operator records it as it would a Job's); the other statuses carry {"error": ...}
and mean no probe ran.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from aiohttp import web

from roadlab.api.checker_wire import (
    CHECK_PATH,
    HEALTH_PATH,
    KEY_ENV,
    MAX_BODY_BYTES,
    RETRY_AFTER_SECONDS,
    SIGNATURE_HEADER,
    load_key,
    verify,
)
from roadlab.api.results import TaskOutcome, encode_results
from roadlab.checker.main import CheckReport, CheckSpec, parse_spec, run_spec
from roadlab.checker.probe_context import ContextFactory, SharedKubeContexts

log = logging.getLogger(__name__)

MAX_CONCURRENT_RUNS = 4
SLOT_WAIT_SECONDS = 2.0
# A check past its deadline by this much is answered without its results: its probes'
# own timeouts should have ended it well before.
DEADLINE_GRACE_SECONDS = 5.0
EXIT_CANNOT_START = 2


def _refusal(status: int, reason: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=headers)


def _one_line(entry: str) -> str:
    """A report entry (a task's outcome, message and evidence lines) as one log line."""
    return " | ".join(part.strip() for part in entry.splitlines())


def overdue_report(spec: CheckSpec, waited_seconds: float) -> CheckReport:
    """The document of a check abandoned past its deadline: an Error for every task."""
    message = (
        f"the check overran its {spec.deadline_seconds} s deadline: no result after "
        f"{waited_seconds:g} s"
    )
    outcomes = [TaskOutcome(task.id, "Error", message) for task in spec.tasks]
    return CheckReport(encode_results(outcomes), [message])


class CheckService:
    """POST /v1/check: authenticate, bound, run in a worker thread, answer the document."""

    def __init__(
        self,
        key: bytes,
        context_factory: ContextFactory,
        *,
        max_concurrent_runs: int = MAX_CONCURRENT_RUNS,
        slot_wait_seconds: float = SLOT_WAIT_SECONDS,
        deadline_grace_seconds: float = DEADLINE_GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.context_factory = context_factory
        self.slots = asyncio.Semaphore(max_concurrent_runs)
        self.slot_wait_seconds = slot_wait_seconds
        self.deadline_grace_seconds = deadline_grace_seconds
        self.clock = clock

    async def check(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _refusal(413, f"the check spec is over {MAX_BODY_BYTES} bytes")
        try:
            body = await request.read()  # the app's client_max_size is MAX_BODY_BYTES
        except web.HTTPRequestEntityTooLarge:
            return _refusal(413, f"the check spec is over {MAX_BODY_BYTES} bytes")
        if not verify(self.key, body, request.headers.get(SIGNATURE_HEADER)):
            log.warning("refused a check from %s: missing or bad signature", request.remote)
            return _refusal(401, f"missing or bad {SIGNATURE_HEADER}")

        parsed = parse_spec(body, absent="the request body is empty")
        if isinstance(parsed, CheckReport):
            self._log("(malformed spec)", parsed.lines)
            return self._document(parsed)
        try:
            await asyncio.wait_for(self.slots.acquire(), self.slot_wait_seconds)
        except TimeoutError:
            log.warning("lab %s: every run slot is busy; answered 503", parsed.lab)
            return _refusal(
                503,
                "the checker is busy; retry shortly",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        report = await self._run_in_slot(parsed)
        self._log(parsed.lab, report.lines)
        return self._document(report)

    async def _run_in_slot(self, spec: CheckSpec) -> CheckReport:
        """Run the spec in a worker thread (probes are synchronous); the slot is already held.

        A thread cannot be stopped: once a run is past deadline + grace we answer without
        it and the thread lingers until its probes return. It keeps its slot until then, so
        the slots bound the threads really at work, not just the requests being answered.
        """
        started = self.clock()
        work = asyncio.ensure_future(asyncio.to_thread(run_spec, spec, self.context_factory))
        work.add_done_callback(self._run_ended)
        try:
            # shield: the timeout must not cancel `work`, whose end gives the slot back.
            return await asyncio.wait_for(
                asyncio.shield(work), spec.deadline_seconds + self.deadline_grace_seconds
            )
        except TimeoutError:
            log.warning(
                "lab %s: abandoned a check past its %d s deadline; its thread lingers",
                spec.lab,
                spec.deadline_seconds,
            )
            return overdue_report(spec, round(self.clock() - started, 1))

    def _run_ended(self, work: asyncio.Future[CheckReport]) -> None:
        self.slots.release()
        # Retrieved here too, so an abandoned run's failure is logged, not lost.
        if not work.cancelled() and (error := work.exception()) is not None:
            log.error("a check run failed: %s: %s", type(error).__name__, error)

    @staticmethod
    def _log(lab: str, lines: Sequence[str]) -> None:
        for line in lines:
            log.info("lab %s: %s", lab, _one_line(line))

    @staticmethod
    def _document(report: CheckReport) -> web.Response:
        return web.Response(text=report.document, content_type="application/json")


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app(service: CheckService) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post(CHECK_PATH, service.check)
    app.router.add_get(HEALTH_PATH, _healthz)
    return app


def serve(
    host: str,
    port: int,
    *,
    environ: Mapping[str, str],
    context_factory: ContextFactory | None = None,
    err: TextIO,
) -> int:
    """Serve until SIGTERM; EXIT_CANNOT_START without a usable key or client configuration."""
    try:
        key = load_key(environ.get(KEY_ENV))
    except ValueError as exc:
        print(
            f"roadlab-check --serve: not starting: {exc} (the chart sets it from a Secret)",
            file=err,
        )
        return EXIT_CANNOT_START
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if context_factory is None:
        try:
            contexts = SharedKubeContexts.load()
        except Exception as exc:
            print(f"roadlab-check --serve: not starting: no Kubernetes client: {exc}", file=err)
            return EXIT_CANNOT_START
        try:
            contexts.warm_up()
        except Exception as exc:
            log.warning("API discovery failed; the first check retries it: %s", exc)
        context_factory = contexts
    log.info("warm checker listening on %s:%d", host, port)
    # No access log: the kubelet's health probes would be most of it; each check logs itself.
    web.run_app(
        create_app(CheckService(key, context_factory)),
        host=host,
        port=port,
        access_log=None,
        print=None,
    )
    return 0
