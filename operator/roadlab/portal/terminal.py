"""WS /labs/<lab>/terminal: xterm.js in the page <-> a shell in the lab's workspace pod.

The pod and its namespace come from the session's Lab, never from the client; the exec
runs with the learner's token. Client -> server: keystrokes (binary, or text), and the
text JSON {"resize": [cols, rows]}; server -> client: the shell's output bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import anyio
import anyio.abc
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from roadlab.api import naming
from roadlab.portal.context import Portal
from roadlab.portal.ports import ShellStream
from roadlab.portal.sessions import Session

log = logging.getLogger("roadlab.portal.terminal")
RESIZE_CHANNEL = 4  # the exec protocol's channel for terminal sizes
MAX_TERMINAL_SIDE = 1000
NOT_RUNNING = "the lab's terminal is not running yet: "
ENDED = b"\r\n[the shell ended: reload the page for a new one]\r\n"
BACKLOG = 64  # output chunks waiting for the browser before the reader waits too


def same_origin(websocket: WebSocket) -> bool:
    """The handshake comes from a page of this portal (browsers always send Origin)."""
    origin = websocket.headers.get("origin", "")
    host = websocket.headers.get("host", "")
    parts = urlsplit(origin)
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc == host


def resize_of(text: str) -> tuple[int, int] | None:
    """(cols, rows) of a {"resize": [cols, rows]} message, or None for anything else."""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    size = message.get("resize") if isinstance(message, dict) else None
    if (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(n, int) and 0 < n <= MAX_TERMINAL_SIDE for n in size)
    ):
        return size[0], size[1]
    return None


def describe(error: Exception) -> str:
    status, reason = getattr(error, "status", None), getattr(error, "reason", None)
    return f"{status} {reason}" if status and reason else str(error) or type(error).__name__


async def deny(websocket: WebSocket, status_code: int) -> None:
    """Refuse the handshake with an HTTP status (403, 404) where the server can say one."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(PlainTextResponse("", status_code=status_code))
    else:
        await websocket.close(code=1008)


async def terminal(websocket: WebSocket) -> None:
    portal: Portal = websocket.app.state.portal
    lab = websocket.path_params["lab"]
    session = await portal.session_for(websocket, lab)
    if session is None:
        await deny(websocket, 404)
        return
    given = websocket.query_params.get("csrf", "")
    if not same_origin(websocket) or not hmac.compare_digest(given.encode(), session.csrf.encode()):
        await deny(websocket, 403)
        return
    with portal.open_slot("terminal", lab, portal.settings.most_terminals) as granted:
        if not granted:
            await deny(websocket, 429)
            return
        await websocket.accept()
        await _serve(websocket, portal, session)


async def _serve(websocket: WebSocket, portal: Portal, session: Session) -> None:
    lab = session.lab
    namespace = naming.namespace_for(lab)
    container = naming.WORKSPACE_CONTAINER
    try:
        found = await portal.as_learner(lab, lambda api: api.workspace_pod(namespace))
        if found is None or found[1] != "Running":
            state = (
                f"its pod {found[0]} is {found[1]}"
                if found
                else f"there is no pod {naming.WORKSPACE_POD} yet"
            )
            raise RuntimeError(f"{state} (reload the page in a moment)")
        pod = found[0]
        command = list(portal.settings.shell_command)
        shell = await portal.as_learner(
            lab, lambda api: api.exec_shell(namespace, pod, container, command)
        )
    except Exception as error:
        await websocket.send_text(NOT_RUNNING + describe(error) + "\r\n")
        await websocket.close(code=1000)
        return
    log.info("lab %s: terminal opened", lab)
    try:
        await bridge(websocket, shell, lambda: portal.still_valid(session), portal)
    finally:
        with anyio.CancelScope(shield=True):  # closed even when the server cancels us
            await run_in_threadpool(shell.close)
        log.info("lab %s: terminal closed", lab)


def _read_output(
    shell: ShellStream,
    loop: asyncio.AbstractEventLoop,
    output: asyncio.Queue[bytes | None],
    stop: threading.Event,
) -> None:
    """The reader thread: the shell's output into `output`, then None when it ends."""
    try:
        while not stop.is_set() and shell.is_open():
            shell.update(timeout=0.2)
            data = shell.read_stdout(timeout=0) + shell.read_stderr(timeout=0)
            if data:
                while output.qsize() >= BACKLOG and not stop.is_set():
                    stop.wait(0.02)  # the browser is behind: let it catch up
                loop.call_soon_threadsafe(output.put_nowait, data)
    except Exception as error:  # the exec stream broke; the browser is told it ended
        log.info("terminal stream ended: %s", error)
    finally:
        with contextlib.suppress(RuntimeError):  # the loop is closed already
            loop.call_soon_threadsafe(output.put_nowait, None)


async def bridge(
    websocket: WebSocket,
    shell: ShellStream,
    still_valid: Callable[[], Awaitable[bool]],
    portal: Portal,
) -> None:
    """Relay both ways until the browser leaves, the shell ends or the session is over."""
    loop = asyncio.get_running_loop()
    output: asyncio.Queue[bytes | None] = asyncio.Queue()
    stop = threading.Event()
    reader = threading.Thread(
        target=_read_output, args=(shell, loop, output, stop), name="roadlab-terminal", daemon=True
    )

    async def send_output() -> None:
        while (data := await output.get()) is not None:
            await websocket.send_bytes(data)
        await websocket.send_bytes(ENDED)
        await websocket.close(code=1000)

    async def receive_input() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    await run_in_threadpool(shell.write_stdin, message["bytes"])
                elif message.get("text") is not None:
                    text: str = message["text"]
                    size = resize_of(text)
                    if size is not None:
                        body = json.dumps({"Width": size[0], "Height": size[1]})
                        await run_in_threadpool(shell.write_channel, RESIZE_CHANNEL, body)
                    else:
                        await run_in_threadpool(shell.write_stdin, text.encode())
        except WebSocketDisconnect:
            return

    async def watch_session() -> None:
        while await still_valid():
            await anyio.sleep(portal.settings.recheck_session_seconds)
        await websocket.close(code=4001, reason="the session is over: open your link again")

    async def until_done(task: Callable[[], Awaitable[None]], group: anyio.abc.TaskGroup) -> None:
        try:
            await task()
        except Exception as error:  # e.g. a send to a browser that has just gone
            log.info("terminal: %s ended: %s", task.__name__, error)
        group.cancel_scope.cancel()  # one side ended: so does the terminal

    reader.start()
    try:
        async with anyio.create_task_group() as group:
            for task in (send_output, receive_input, watch_session):
                group.start_soon(until_done, task, group)
    finally:
        stop.set()
