"""The portal's settings: from its environment, with the timings tests shorten."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from roadlab.api import naming
from roadlab.catalog.location import default_catalog_dir

NAMESPACE_ENV = "ROADLAB_OPERATOR_NAMESPACE"
SECURE_COOKIES_ENV = "ROADLAB_PORTAL_SECURE_COOKIES"
# tmux re-attaches to the running session, so a page reload finds the same shell.
SHELL_COMMAND = ("tmux", "new-session", "-A", "-s", "main")


@dataclass(frozen=True)
class PortalSettings:
    catalog_dir: Path
    operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE
    secure_cookies: bool = False
    # How long a read access token is trusted: revoking a link takes effect within this.
    access_cache_seconds: float = 10.0
    longest_session_seconds: float = 12 * 3600.0
    sign_ins_per_minute: int = 10  # per client address, and per lab
    start_requests_per_minute: int = 5  # per lab: "Start next milestone" (each starts a Lab)
    learner_token_seconds: int = 3600
    renew_learner_token_seconds: float = 600.0  # renewed when less than this is left
    watch_seconds: int = 30  # one watch request (a closed page frees its thread by then)
    poll_seconds: float = 1.0  # when the watch is refused or breaks
    keepalive_seconds: float = 15.0  # an SSE comment, so that proxies keep the stream
    recheck_session_seconds: float = 5.0  # open streams and terminals notice a revocation
    # Open at once per Lab (a few tabs and a phone); each holds a thread and an API stream.
    most_terminals: int = 4
    most_event_streams: int = 8
    shell_command: tuple[str, ...] = SHELL_COMMAND

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> PortalSettings:
        environment = os.environ if env is None else env
        return cls(
            catalog_dir=default_catalog_dir(environment),
            operator_namespace=environment.get(NAMESPACE_ENV) or naming.DEFAULT_OPERATOR_NAMESPACE,
            secure_cookies=environment.get(SECURE_COOKIES_ENV, "").strip().lower() == "true",
        )
