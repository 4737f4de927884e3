"""The portal as a process: its settings, its learner tokens' renewal, and a real uvicorn
whose log lines hold neither the sign-in token nor the terminal's CSRF token."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest
from portal_fake import ACCESS_TOKEN, LAB, PORTAL, Harness
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from roadlab.api import naming
from roadlab.portal import main
from roadlab.portal.logs import RedactQueryStrings, log_config
from roadlab.portal.settings import PortalSettings

TESTS = Path(__file__).resolve().parent
OPERATOR = TESTS.parents[1] / "operator"


def test_settings_from_the_environment(tmp_path: Path) -> None:
    default = PortalSettings.from_environment({})
    assert default.operator_namespace == "roadlab-system"
    assert default.secure_cookies is False
    given = PortalSettings.from_environment(
        {
            "ROADLAB_OPERATOR_NAMESPACE": "labs-ops",
            "ROADLAB_CATALOG": str(tmp_path),
            "ROADLAB_PORTAL_SECURE_COOKIES": "true",
        }
    )
    assert given.operator_namespace == "labs-ops"
    assert given.catalog_dir == tmp_path
    assert given.secure_cookies is True
    only_true = PortalSettings.from_environment({"ROADLAB_PORTAL_SECURE_COOKIES": "1"})
    assert only_true.secure_cookies is False


def test_the_server_logs_no_access_lines() -> None:
    args = main.parse_args(["--host", "0.0.0.0", "--port", "8080"])
    config = main.server_config(Harness().portal, args)
    assert (config.host, config.port) == ("0.0.0.0", 8080)
    assert config.access_log is False
    assert log_config()["handlers"]["stderr"]["filters"] == ["redact", "denial_noise"]


def test_query_strings_are_redacted_from_log_records() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" %s',
        (("10.0.0.1", 5000), "/labs/x/terminal?csrf=SECRET", "[accepted]"),
        None,
    )
    assert RedactQueryStrings().filter(record)
    assert record.getMessage() == (
        "('10.0.0.1', 5000) - \"WebSocket /labs/x/terminal?<redacted>\" [accepted]"
    )


def test_learner_tokens_are_cached_then_renewed_before_they_end() -> None:
    harness = Harness()
    portal = harness.portal
    first = portal.learners.for_lab(LAB)
    assert portal.learners.for_lab(LAB) is first
    harness.clock.advance(timedelta(minutes=49).total_seconds())
    assert portal.learners.for_lab(LAB) is first
    harness.clock.advance(timedelta(minutes=2).total_seconds())  # less than 10 min left
    assert portal.learners.for_lab(LAB) is not first
    assert [args for who, args in harness.cluster.calls_of("learner_token")] == [
        (f"lab-{LAB}", naming.LEARNER_SERVICE_ACCOUNT, 3600)
    ] * 2
    assert {who for who, _ in harness.cluster.calls_of("learner_token")} == {PORTAL}


SERVE = textwrap.dedent(
    """
    import sys
    import uvicorn
    from portal_fake import Harness
    from roadlab.portal import main

    args = main.parse_args(["--host", "127.0.0.1", "--port", sys.argv[1]])
    uvicorn.Server(main.server_config(Harness().portal, args)).run()
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_real_server_logs_no_token(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(OPERATOR), str(TESTS)])}
    log_file = tmp_path / "portal.log"
    with log_file.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(port)], env=env, stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx2.get(f"{base}/healthz").text == "ok"
                break
            except httpx2.TransportError:
                assert time.monotonic() < deadline, log_file.read_text()
                time.sleep(0.1)
        with httpx2.Client(base_url=base) as client:
            assert client.get(f"/enter/{LAB}", params={"token": "a-guess-x1"}).status_code == 403
            assert client.get(f"/enter/{LAB}", params={"token": ACCESS_TOKEN}).status_code == 303
            session = client.cookies["roadlab_session"]
        with pytest.raises(InvalidStatus) as refused:  # no cookie: refused, and logged
            connect(
                f"ws://127.0.0.1:{port}/labs/{LAB}/terminal?csrf=csrf-secret-42",
                origin=Origin(f"http://127.0.0.1:{port}"),
            )
        assert refused.value.response.status_code == 404
    finally:
        server.terminate()
        server.wait(timeout=30)
    logged = log_file.read_text()
    assert "sign-in to lab alice-smoke" in logged  # the portal's own lines are there
    assert "WebSocket /labs/alice-smoke/terminal?<redacted>" in logged  # and uvicorn's
    for secret in (ACCESS_TOKEN, "a-guess-x1", "csrf-secret-42", session):
        assert secret not in logged
    assert "ERROR" not in logged  # a refused handshake is no error of the portal's
