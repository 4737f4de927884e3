"""A refused connection is tried again for a moment: right after a rollout, a Service's
endpoints may still point at the pod that is shutting down."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from typing import Any

import pytest

from roadlab.checker import probe_context


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _NoApi:
    def get(self, *_: Any, **__: Any) -> None:
        return None


def context() -> probe_context.KubeProbeContext:
    return probe_context.KubeProbeContext(_NoApi(), "lab-a")  # type: ignore[arg-type]


def test_a_server_that_comes_back_within_the_window_answers() -> None:
    port = free_port()

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: Any) -> None:
            pass

    def serve_later() -> None:
        time.sleep(1.0)  # refused until then
        server = http.server.HTTPServer(("127.0.0.1", port), Ok)
        server.handle_request()
        server.server_close()

    threading.Thread(target=serve_later, daemon=True).start()
    started = time.monotonic()
    answer = context().http("GET", f"http://127.0.0.1:{port}/", timeout=2)
    assert answer.status == 200
    assert 0.9 < time.monotonic() - started < probe_context.REFUSED_RETRY_SECONDS + 1


def test_nothing_listening_is_refused_after_the_window() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(probe_context.ConnectionRefusedProbeError, match="connection refused"):
        context().http("GET", f"http://127.0.0.1:{port}/", timeout=2)
    waited = time.monotonic() - started
    assert (
        probe_context.REFUSED_RETRY_SECONDS - 1 < waited < probe_context.REFUSED_RETRY_SECONDS + 1
    )
