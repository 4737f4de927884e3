"""Background HTTP traffic for the probes that watch a lab react to load.

    with Traffic(ctx, [url], concurrency=4, timeout=5) as traffic:
        ...  # poll what should change; traffic.sent, traffic.errors so far

Worker threads send requests until the block ends, as fast as answers come or at about
requests_per_second. With a second URL and error_percent, that share of the requests goes
to it (a path that answers errors), spread evenly: request n is an error request when
floor(n x p / 100) moved on since request n - 1.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

from roadlab.probes.base import ProbeContext, ProbeHttpError

ERROR_BACKOFF_SECONDS = 0.05
DEADLINE_MARGIN_SECONDS = 10  # left for stopping the traffic, later tasks and the report


def window_within_deadline(ctx: ProbeContext, seconds: float) -> float:
    """How long a probe may send traffic: `seconds`, cut to end before the check deadline."""
    time_left = ctx.time_left()
    if time_left is None:
        return seconds
    return max(0.0, min(seconds, time_left - DEADLINE_MARGIN_SECONDS))


@dataclass
class _Counters:
    lock: threading.Lock = field(default_factory=threading.Lock)
    issued: int = 0
    sent: int = 0
    errors: int = 0  # an answer of 5xx, or none at all
    unanswered: int = 0  # no response at all (refused, timed out)
    to_error_path: int = 0
    last_error: str = ""


class Traffic:
    """Requests from `concurrency` threads until exit (a context manager)."""

    def __init__(
        self,
        ctx: ProbeContext,
        urls: Sequence[str],
        *,
        concurrency: int,
        timeout: float,
        method: str = "GET",
        error_percent: float = 0,
        requests_per_second: float | None = None,
    ) -> None:
        if not urls or len(urls) > 2 or (error_percent > 0 and len(urls) != 2):
            raise ValueError("give one URL, or two with error_percent (the second answers errors)")
        self._ctx = ctx
        self._urls = tuple(urls)
        self._method = method
        self._timeout = timeout
        self._error_percent = error_percent
        # Each worker waits this long after each answer: about requests_per_second in all
        # (fewer when answers are slow); None sends as fast as answers come.
        self._pause = concurrency / requests_per_second if requests_per_second else 0.0
        self._stop = threading.Event()
        self._counters = _Counters()
        self._threads = [
            threading.Thread(target=self._work, name=f"traffic-{i}", daemon=True)
            for i in range(concurrency)
        ]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self._timeout + 1)

    @property
    def sent(self) -> int:
        return self._counters.sent

    @property
    def errors(self) -> int:
        return self._counters.errors

    @property
    def unanswered(self) -> int:
        return self._counters.unanswered

    @property
    def to_error_path(self) -> int:
        return self._counters.to_error_path

    @property
    def last_error(self) -> str:
        return self._counters.last_error

    def _next_url(self) -> str:
        counters = self._counters
        with counters.lock:
            counters.issued += 1
            n = counters.issued
            to_error = int(n * self._error_percent / 100) > int((n - 1) * self._error_percent / 100)
            if to_error:
                counters.to_error_path += 1
        return self._urls[1] if to_error else self._urls[0]

    def _record(self, error: str | None, *, answered: bool = True) -> None:
        counters = self._counters
        with counters.lock:
            counters.sent += 1
            if error is not None:
                counters.errors += 1
                counters.last_error = error
            if not answered:
                counters.unanswered += 1

    def _work(self) -> None:
        while not self._stop.is_set():
            url = self._next_url()
            try:
                response = self._ctx.http(self._method, url, timeout=self._timeout)
            except ProbeHttpError as exc:
                self._record(str(exc), answered=False)
                self._stop.wait(ERROR_BACKOFF_SECONDS)  # real time: do not spin on a refused port
                continue
            except Exception as exc:  # a broken worker must not hang the check
                self._record(f"{type(exc).__name__}: {exc}", answered=False)
                self._stop.wait(ERROR_BACKOFF_SECONDS)
                continue
            self._record(None if response.status < 500 else f"status {response.status}")
            if self._pause:
                self._stop.wait(self._pause)
