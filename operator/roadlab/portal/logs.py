"""Logging for the portal: one line a record, and no query string in any of them.

The sign-in URL carries a Lab's access token and the terminal's handshake its CSRF token,
both as query parameters. The access log is off (main.py); uvicorn still logs each
WebSocket handshake with its path, so every record's text loses what follows a '?'.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_QUERY = re.compile(r"\?[^\s\"']*")
REDACTED = "?<redacted>"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str) -> str:
    return _QUERY.sub(REDACTED, text)


# uvicorn's websockets-sansio protocol writes this ERROR after every WebSocket denial
# response (the terminal's 403 or 404 answer to a handshake), as if the app had failed.
DENIAL_NOISE = "ASGI callable returned without completing handshake."


class DropDenialNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != DENIAL_NOISE


class RedactQueryStrings(logging.Filter):
    """Rewrites a record's message without query strings (the record, not the logger's
    own settings: it works on any handler it is put on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = redact(message), None
        return True


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A logging.config dict for uvicorn and the portal: everything through one handler
    that redacts query strings."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact": {"()": RedactQueryStrings},
            "denial_noise": {"()": DropDenialNoise},
        },
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "filters": ["redact", "denial_noise"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            # Off, and still redacted should anyone turn it on.
            "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": level},
    }
