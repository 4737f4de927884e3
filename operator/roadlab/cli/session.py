"""What commands run with: the `App` (streams, clock, catalog, a lazily connected API),
the progress display and the wait loop."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from roadlab.catalog.loader import CatalogError, load_catalog_leniently
from roadlab.catalog.schema import LabDefinition
from roadlab.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_TIMEOUT,
    POLL_SECONDS,
    SPINNER_SECONDS,
    STRUCTURED_OUTPUTS,
    CliError,
    LabApi,
    Manifest,
)
from roadlab.cli.output import (
    clean_lab,
    format_status,
    lab_name,
    resource_name,
    to_json,
    to_yaml,
    uses_unicode,
)
from roadlab.cli.waiting import WaitStep, plain_progress_line, spinner_line


def _system_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    """What commands work with: streams, clock, catalog location and the API."""

    connect: Callable[[str | None, str | None], LabApi]  # (kubeconfig, context)
    catalog_dir: Path
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    now: Callable[[], datetime] = _system_now
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    output: str = "text"
    kubeconfig: str | None = None
    context: str | None = None
    _api: LabApi | None = None

    @property
    def api(self) -> LabApi:
        """Connected on first use, so that `catalog` works without a cluster."""
        if self._api is None:
            self._api = self.connect(self.kubeconfig, self.context)
        return self._api

    @property
    def server(self) -> str | None:
        """The API server URL, when connected through a real client."""
        configuration = getattr(getattr(self._api, "api_client", None), "configuration", None)
        host = getattr(configuration, "host", None)
        return host if isinstance(host, str) else None

    @property
    def structured(self) -> bool:
        """-o json or -o yaml: whole documents rather than text."""
        return self.output in STRUCTURED_OUTPUTS

    def emit(self, document: object) -> None:
        self.print(to_yaml(document) if self.output == "yaml" else to_json(document))

    def show_lab(self, lab: Manifest, text: Callable[[], str]) -> None:
        """A Lab as -o asks: the object (json, yaml), its name, or text() for text output."""
        if self.structured:
            self.emit(clean_lab(lab))
        elif self.output == "name":
            self.print(resource_name(lab_name(lab)))
        else:
            self.print(text())

    def catalog(self) -> dict[str, LabDefinition]:
        """The local catalog; a broken entry is skipped with a warning, not fatal."""
        catalog, problems = load_catalog_leniently(self.catalog_dir)
        for problem in problems:
            self.note(f"warning: skipping a broken catalog entry: {problem}")
        return catalog

    def print(self, text: str = "") -> None:
        self.out.write(text if text.endswith("\n") else text + "\n")

    def note(self, text: str) -> None:
        self.err.write(text + "\n")

    def get_lab(self, name: str) -> Manifest:
        lab = self.api.get_lab(name)
        if lab is None:
            raise CliError(f"lab {name} not found", EXIT_NOT_FOUND)
        return lab


class Progress:
    """A live spinner line on a terminal; plain lines (one per change) otherwise."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        isatty = getattr(stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.unicode = uses_unicode(stream)
        self.tick = 0
        self.last: tuple[str, str] | None = None
        # Seconds between redraws: a spinner turns several times per poll.
        self.interval = SPINNER_SECONDS if self.tty else POLL_SECONDS

    def update(self, elapsed: float, reason: str, message: str) -> None:
        if self.tty:
            width = shutil.get_terminal_size().columns
            line = spinner_line(
                self.tick, f"{self.label} {reason}", message, elapsed, width, self.unicode
            )
            self.stream.write("\r\x1b[K" + line)
            self.stream.flush()
            self.tick += 1
        elif (reason, message) != self.last:
            self.stream.write(
                plain_progress_line(f"{self.label} {reason}", message, elapsed) + "\n"
            )
            self.stream.flush()
        self.last = (reason, message)

    def close(self) -> None:
        if self.tty and self.tick:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def wait_for(
    app: App,
    name: str,
    decide: Callable[[Manifest | None], WaitStep],
    timeout: float,
    what: str,
) -> tuple[WaitStep, Manifest | None]:
    """Poll the Lab until decide() says done; CliError(exit 4) after timeout seconds."""
    return poll_until(
        app, name, lambda: app.api.get_lab(name), decide, timeout, f"lab {name} {what}"
    )


def poll_until(  # noqa: PLR0917 - wait_for's, for any object
    app: App,
    name: str,
    fetch: Callable[[], Manifest | None],
    decide: Callable[[Manifest | None], WaitStep],
    timeout: float,
    what: str,
) -> tuple[WaitStep, Manifest | None]:
    """Poll fetch() until decide() says done, with a progress line; CliError(exit 4) after
    timeout seconds, saying what was awaited."""
    progress = Progress(app.err, name)
    start = app.monotonic()
    try:
        while True:
            found = fetch()
            step = decide(found)
            if step.done:
                return step, found
            elapsed = app.monotonic() - start
            if elapsed >= timeout:
                last = f" (last: {step.reason}: {step.message})" if step.reason else ""
                raise CliError(
                    f"timed out after {int(timeout)}s waiting for {what}{last}", EXIT_TIMEOUT
                )
            progress.update(elapsed, step.reason, step.message)
            # Until the next poll (never past the deadline), keep a spinner turning.
            wake = min(app.monotonic() + POLL_SECONDS, start + timeout)
            while (current := app.monotonic()) < wake:
                app.sleep(min(progress.interval, wake - current))
                if app.monotonic() < wake:
                    progress.update(app.monotonic() - start, step.reason, step.message)
    finally:
        progress.close()


def optional_catalog(app: App) -> dict[str, LabDefinition] | None:
    """The local catalog, or None when there is none (e.g. installed without the repo)."""
    try:
        return app.catalog() or None
    except CatalogError:
        return None


def show_status(app: App, lab: Manifest) -> None:
    app.show_lab(lab, lambda: format_status(lab, app.now(), uses_unicode(app.out)))
