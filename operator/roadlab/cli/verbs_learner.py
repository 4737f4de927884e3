"""Verbs for the learner, who may hold only their own lab's kubeconfig: extend, guide, watch.
Like status, check and hint, they take the lab from that kubeconfig when no name is given
(roadlab.cli.kubeconfig_lab)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol, TextIO

import urllib3
from kubernetes.client.exceptions import ApiException
from rich.console import Console
from rich.live import Live
from rich.text import Text

from roadlab.api import conditions as cond
from roadlab.api.durations import DurationError, format_duration, parse_cli_duration
from roadlab.api.extensions import MIN_EXTENSION
from roadlab.cli.board import format_board, watch_end
from roadlab.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    POLL_SECONDS,
    CliError,
    Manifest,
)
from roadlab.cli.guide import GUIDE_FILE, fill_placeholders, guide_context, print_markdown
from roadlab.cli.kubeconfig_lab import lab_argument, positional_pair
from roadlab.cli.output import (
    condition_is_true,
    lab_name,
    lab_spec,
    lab_status,
    relative_or_dash,
    uses_unicode,
)
from roadlab.cli.session import App, optional_catalog, wait_for
from roadlab.cli.waiting import (
    WaitStep,
    extension_patch,
    extension_wait_step,
    new_extension_token,
)

# The server ends each watch request after this many seconds; the next one follows.
WATCH_STREAM_SECONDS = 300
# A watch that fails so (refused, cut, unreachable) is replaced by polling.
WATCH_FAILURES = (ApiException, urllib3.exceptions.HTTPError, ConnectionError)
EXTENSION_ANSWERS = frozenset({"Accepted", "Refused", "Superseded"})
WATCHING = "following the lab's changes; Ctrl-C to stop"
POLLING = f"polling every {POLL_SECONDS:g}s (the watch was refused or broke); Ctrl-C to stop"


# --- extend ---------------------------------------------------------------------------------


def extension_amount(text: str) -> timedelta:
    """The DURATION of `extend`: a duration (or seconds) of at least MIN_EXTENSION."""
    try:
        amount = parse_cli_duration(text)
    except DurationError as error:
        raise CliError(f"extend: {error}", EXIT_USAGE) from error
    if amount < MIN_EXTENSION:
        raise CliError(
            f"extend: an extension is at least {format_duration(MIN_EXTENSION)}, not {text!r}",
            EXIT_USAGE,
        )
    if amount.total_seconds() != int(amount.total_seconds()):
        raise CliError(f"extend: an extension is whole seconds, not {text!r}", EXIT_USAGE)
    return amount


def extension_outcome(lab: Mapping[str, Any], step: WaitStep, now: datetime) -> str:
    """ "Accepted: extended by 30m; 1 extension left", then the lab's expiry now."""
    name = lab_name(lab)
    expires_at = lab_status(lab).get("expiresAt")
    verb = "now expires" if step.reason == "Accepted" else "still expires"
    lines = [f"{step.reason}: {step.message}" if step.message else step.reason]
    if expires_at:
        lines.append(f"lab {name} {verb} at {expires_at} ({relative_or_dash(expires_at, now)})")
    return "\n".join(lines)


def cmd_extend(app: App, args: argparse.Namespace) -> int:
    args.name, duration = positional_pair(args.name, args.duration)
    if duration is None:
        raise CliError("extend: give a duration, e.g. kubectl lab extend 30m", EXIT_USAGE)
    amount = extension_amount(duration)
    name = lab_argument(app, args)
    lab = app.get_lab(name)
    if condition_is_true(lab, cond.EXPIRED):
        raise CliError(f"lab {name} has expired; it can no longer be extended")
    token = new_extension_token(app.now())
    patched = app.api.patch_lab(name, extension_patch(token, amount))
    if not args.wait:
        app.show_lab(
            patched,
            lambda: (
                f"extension by {format_duration(amount)} requested for lab {name} "
                f"(token {token})\nsee the answer with: kubectl lab status {name}"
            ),
        )
        return EXIT_OK
    step, final = wait_for(
        app,
        name,
        lambda current: extension_wait_step(current, token),
        args.timeout,
        "to answer the extension request",
    )
    if final is None or step.reason not in EXTENSION_ANSWERS:  # deleted, or expired meanwhile
        raise CliError(f"lab {name}: {step.reason}: {step.message}", step.exit_code)
    app.show_lab(final, lambda: extension_outcome(final, step, app.now()))
    return step.exit_code


# --- guide ----------------------------------------------------------------------------------


def cmd_guide(app: App, args: argparse.Namespace) -> int:
    name = lab_argument(app, args)
    lab = app.get_lab(name)
    lab_id = str(lab_spec(lab).get("lab") or "")
    definition = (optional_catalog(app) or {}).get(lab_id)
    if definition is None:
        raise CliError(
            f"catalog lab {lab_id} is not in the local catalog at {app.catalog_dir} "
            "(set ROADLAB_CATALOG to the labs directory)",
            EXIT_NOT_FOUND,
        )
    path = app.catalog_dir / lab_id / GUIDE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CliError(f"catalog lab {lab_id} has no guide ({path})", EXIT_NOT_FOUND) from error
    filled = fill_placeholders(text, guide_context(lab, definition))
    if args.raw:
        app.print(filled)
    else:
        print_markdown(filled, app.out)
    return EXIT_OK


# --- watch ----------------------------------------------------------------------------------


class Board(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def show(self, lab: Manifest) -> None: ...

    def polling(self) -> None:
        """Say that the board now polls (the watch was refused or broke)."""


class PlainBoard:
    """For a pipe or a file: the board again whenever it changes, a blank line between."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.unicode = uses_unicode(app.out)
        self.last: str | None = None

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def show(self, lab: Manifest) -> None:
        unchanged = format_board(lab, None, self.unicode)  # without the clock's parts
        if unchanged == self.last:
            return
        if self.last is not None:
            self.app.print()
        self.last = unchanged
        self.app.print(format_board(lab, self.app.now(), self.unicode))

    def polling(self) -> None:
        self.app.note(f"note: {POLLING.partition(';')[0]}")


class LiveBoard:
    """On a terminal: one board, redrawn in place at every change and every second (the
    time left counts down between changes)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.unicode = uses_unicode(app.out)
        self.lab: Manifest | None = None
        self.footer = WATCHING
        self.live = Live(
            console=Console(file=app.out),
            get_renderable=self._render,
            refresh_per_second=1,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def _render(self) -> Text:
        if self.lab is None:
            return Text("")
        return Text(format_board(self.lab, self.app.now(), self.unicode, self.footer).rstrip())

    def start(self) -> None:
        self.live.start()

    def stop(self) -> None:
        self.footer = ""  # the last board stays on the screen, without "Ctrl-C to stop"
        self.live.stop()

    def show(self, lab: Manifest) -> None:
        self.lab = lab
        self.live.refresh()

    def polling(self) -> None:
        self.footer = POLLING
        self.live.refresh()


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def follow_lab(app: App, name: str, board: Board) -> WaitStep:
    """Show the Lab on the board at every change until the watch ends (watch_end):
    through the watch API, then by polling get_lab every POLL_SECONDS once a watch was
    refused (403: RBAC without watch), broke, or ended without a single event."""

    def seen(lab: Manifest | None) -> WaitStep | None:
        if lab is not None:
            board.show(lab)
        return watch_end(lab)

    watching = True
    while True:
        if watching:
            try:
                events = 0
                for lab in app.api.watch_lab(name, WATCH_STREAM_SECONDS):
                    events += 1
                    if (end := seen(lab)) is not None:
                        return end
                watching = events > 0  # a watch that ends without a word is of no use
            except WATCH_FAILURES:
                watching = False
            if not watching:
                board.polling()
        else:
            app.sleep(POLL_SECONDS)
        # After a watch ends (its timeout, or DELETED) and at every poll: the Lab as it is.
        if (end := seen(app.api.get_lab(name))) is not None:
            return end


def cmd_watch(app: App, args: argparse.Namespace) -> int:
    name = lab_argument(app, args)
    first = app.get_lab(name)
    board: Board = LiveBoard(app) if is_terminal(app.out) else PlainBoard(app)
    try:
        board.start()
        try:
            board.show(first)
            end = watch_end(first) or follow_lab(app, name, board)
        finally:
            board.stop()
    except KeyboardInterrupt:  # the usual way out: no error, no traceback
        return EXIT_INTERRUPTED
    if end.exit_code == EXIT_OK:
        app.print(f"lab {name} is completed: every task passed")
        return EXIT_OK
    raise CliError(f"lab {name}: {end.reason}: {end.message}", end.exit_code)
