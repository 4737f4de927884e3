"""The terminal WebSocket: only the session's own page may open it (cookie, CSRF token,
Origin); it execs tmux in the lab's workspace pod as the learner and relays both ways."""

from __future__ import annotations

import json
from typing import Any

import pytest
from portal_fake import LAB, Harness
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from roadlab.api import naming
from roadlab.portal.terminal import ENDED, resize_of

ORIGIN = {"origin": "http://testserver"}


@pytest.fixture
def harness() -> Harness:
    return Harness(recheck_session_seconds=0.05)


def terminal_url(csrf: str, lab: str = LAB) -> str:
    return f"/labs/{lab}/terminal?csrf={csrf}"


def denied(harness: Harness, url: str, headers: dict[str, str]) -> int:
    with (
        pytest.raises(WebSocketDenialResponse) as refusal,
        harness.client.websocket_connect(url, headers=headers),
    ):
        pass
    return refusal.value.status_code


def test_the_terminal_relays_input_output_and_resize(harness: Harness) -> None:
    csrf = harness.signed_in()
    with harness.client.websocket_connect(terminal_url(csrf), headers=ORIGIN) as socket:
        assert socket.receive_bytes() == b"$ "
        socket.send_bytes(b"ls\r")
        assert socket.receive_bytes() == b"ls\r"  # the fake shell echoes
        socket.send_text(json.dumps({"resize": [120, 40]}))
        socket.send_text("pwd\r")  # text keystrokes go to stdin too
        assert socket.receive_bytes() == b"pwd\r"
        [shell] = harness.cluster.shells
        assert shell.stdin == [b"ls\r", b"pwd\r"]
        assert shell.channels == [(4, json.dumps({"Width": 120, "Height": 40}))]
    # The exec: tmux in the workspace pod of the session's lab, with the learner's token.
    [(who, args)] = harness.cluster.calls_of("exec_shell")
    assert who == harness.learner_token_of()
    assert args == (
        LAB,
        f"lab-{LAB}",
        naming.WORKSPACE_POD,
        naming.WORKSPACE_CONTAINER,
        ["tmux", "new-session", "-A", "-s", "main"],
    )


def test_leaving_the_page_closes_the_exec(harness: Harness) -> None:
    csrf = harness.signed_in()
    with harness.client.websocket_connect(terminal_url(csrf), headers=ORIGIN) as socket:
        socket.receive_bytes()
    [shell] = harness.cluster.shells
    assert shell.closed


def test_the_shell_ending_ends_the_terminal(harness: Harness) -> None:
    csrf = harness.signed_in()
    with harness.client.websocket_connect(terminal_url(csrf), headers=ORIGIN) as socket:
        assert socket.receive_bytes() == b"$ "
        harness.cluster.shells[0].open = False
        assert socket.receive_bytes() == ENDED
        with pytest.raises(WebSocketDisconnect):
            socket.receive_bytes()


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no Origin
        {"origin": "https://evil.example"},
        {"origin": "http://testserver.evil.example"},
        {"origin": "null"},
        {"origin": "http://testserver:8080"},
    ],
)
def test_a_foreign_origin_is_refused(harness: Harness, headers: dict[str, str]) -> None:
    csrf = harness.signed_in()
    assert denied(harness, terminal_url(csrf), headers) == 403
    assert not harness.cluster.calls_of("exec_shell")


@pytest.mark.parametrize("query", ["", "?csrf=", "?csrf=wrong"])
def test_no_or_a_wrong_csrf_token_is_refused(harness: Harness, query: str) -> None:
    harness.signed_in()
    assert denied(harness, f"/labs/{LAB}/terminal{query}", ORIGIN) == 403
    assert not harness.cluster.calls_of("exec_shell")


def test_no_session_is_not_found(harness: Harness) -> None:
    assert denied(harness, terminal_url("anything"), ORIGIN) == 404


@pytest.mark.parametrize(("phase", "says"), [(None, "there is no pod"), ("Pending", "is Pending")])
def test_a_workspace_not_running_is_said_plainly(
    harness: Harness, phase: str | None, says: str
) -> None:
    key = (f"lab-{LAB}", naming.WORKSPACE_POD)
    if phase is None:
        del harness.cluster.pods[key]
    else:
        harness.cluster.pods[key] = phase
    csrf = harness.signed_in()
    with harness.client.websocket_connect(terminal_url(csrf), headers=ORIGIN) as socket:
        line = socket.receive_text()
        assert line.startswith("the lab's terminal is not running yet: ")
        assert says in line
        with pytest.raises(WebSocketDisconnect):
            socket.receive_text()
    assert not harness.cluster.calls_of("exec_shell")


def test_revoking_the_link_closes_an_open_terminal(harness: Harness) -> None:
    csrf = harness.signed_in()
    with harness.client.websocket_connect(terminal_url(csrf), headers=ORIGIN) as socket:
        assert socket.receive_bytes() == b"$ "
        harness.cluster.access_tokens[LAB] = "a-new-token-0123456789abcdefghijklmnop"
        harness.clock.advance(harness.settings.access_cache_seconds)
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_bytes()
        assert closed.value.code == 4001


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ('{"resize": [80, 24]}', (80, 24)),
        ('{"resize": [0, 24]}', None),
        ('{"resize": [80]}', None),
        ('{"resize": ["80", 24]}', None),
        ('{"resize": [100000, 24]}', None),
        ("[80, 24]", None),
        ("ls", None),
        ("{", None),
    ],
)
def test_resize_messages(text: str, size: Any) -> None:
    assert resize_of(text) == size


def test_a_lab_has_a_few_terminals_at_most() -> None:
    harness = Harness(most_terminals=1)
    csrf = harness.signed_in()
    with harness.client.websocket_connect(terminal_url(csrf), headers=ORIGIN) as socket:
        assert socket.receive_bytes() == b"$ "
        assert denied(harness, terminal_url(csrf), ORIGIN) == 429
    with harness.client.websocket_connect(terminal_url(csrf), headers=ORIGIN) as socket:
        assert socket.receive_bytes() == b"$ "  # the first one's slot is free again
