"""Entry point of the operator: `roadlab-operator` (or `python -m roadlab.controller.main`)."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import kopf

from roadlab.controller import (
    handlers,  # noqa: F401 - registers the handlers with Kopf
    memory,
)
from roadlab.controller.settings import Settings


def object_ref(record: logging.LogRecord) -> dict[str, Any] | None:
    """The Kubernetes object a line is about: the `k8s_ref` extra that Kopf's per-object
    loggers (the handlers' `logger`) and roadlab.controller.state.lab_logger put on a record."""
    ref = getattr(record, "k8s_ref", None)
    if not isinstance(ref, dict):
        return None
    return {key: value for key, value in ref.items() if value is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors; a line about an object carries it in
    "object" (apiVersion, kind, name, uid, namespace), where Kopf's JSON format has it."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = object_ref(record)
        if ref:
            entry["object"] = ref
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class PlainFormatter(logging.Formatter):
    """A line of text; a line about an object starts with [name] (or [namespace/name]),
    as in Kopf's own text format."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        ref = object_ref(record)
        if not ref or "name" not in ref:
            return super().formatMessage(record)
        name = f"{ref['namespace']}/{ref['name']}" if ref.get("namespace") else ref["name"]
        # A copy: the record goes on to other handlers with its message as it was.
        prefixed = logging.makeLogRecord(record.__dict__)
        prefixed.message = f"[{name}] {record.message}"
        return super().formatMessage(prefixed)


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else PlainFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # Every liveness probe would be an access-log line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def main() -> None:
    memory.limit_arenas()  # before Kopf starts any thread
    settings = Settings.from_environment()
    configure_logging(os.environ.get("ROADLAB_LOG_FORMAT", "plain"))
    kopf.run(
        clusterwide=True,
        standalone=True,
        liveness_endpoint=f"http://{settings.listen_address}:{settings.liveness_port}/healthz",
    )


if __name__ == "__main__":
    main()
