"""Entry point of the operator: `roadlab-operator` (or `python -m roadlab.main`)."""

from __future__ import annotations

import json
import logging
import os

import kopf

from roadlab import (
    handlers,  # noqa: F401 - registers the handlers with Kopf
    memory,
)
from roadlab.settings import Settings


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
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
        liveness_endpoint=f"http://0.0.0.0:{settings.liveness_port}/healthz",
    )


if __name__ == "__main__":
    main()
