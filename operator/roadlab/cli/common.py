"""What every part of kubectl lab shares: exit codes, the error that ends a command,
the API calls it makes (`LabApi`: Labs, and the Roadmaps, Enrollments and Cohorts of
roadlab.api.roadmap) and how API and connection errors read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Protocol

from roadlab.api import conditions as cond

Manifest = dict[str, Any]


EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_TIMEOUT = 4
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT

# Ready reasons the operator does not retry: waiting longer cannot help.
PERMANENT_REASONS = cond.PERMANENT_REASONS
# The wait ends with this reason when the Lab is gone (no condition says so).
REASON_DELETED = "Deleted"
DEFAULT_WAIT_SECONDS = 300
DEFAULT_EXTEND_WAIT_SECONDS = 60  # the operator answers an extension in about a second
POLL_SECONDS = 1.0
SPINNER_SECONDS = 0.25
DEFAULT_TOKEN_DURATION = "2h"
MIN_TOKEN_SECONDS = 600  # the TokenRequest API rejects shorter lifetimes
NO_VALUE = "-"
PACKAGE = "roadlab"

# -o: text is the default; each command accepts the formats that make sense for it.
OUTPUT_FORMATS = ("text", "json", "yaml", "name", "wide")
STRUCTURED_OUTPUTS = frozenset({"json", "yaml"})
LAB_OUTPUTS = ("text", "json", "yaml", "name")
DOCUMENT_OUTPUTS = ("text", "json", "yaml")
# The verbs with a -o of their own (not among OUTPUT_FORMATS): "table" is their text.
ROADMAP_OUTPUTS = ("table", "json", "yaml")
REPORT_OUTPUTS = ("table", "csv", "json", "junit")

# Metavars of the arguments that roadlab.cli.completion completes (it goes by these).
LAB_METAVAR = "LAB"  # a Lab in the cluster
LAB_ID_METAVAR = "LAB_ID"  # a catalog lab
TASK_METAVAR = "TASK"  # a task of the Lab given before it
FILE_METAVAR = "FILE"
PEM_METAVAR = "PEMFILE"  # a file too
FILE_METAVARS = frozenset({FILE_METAVAR, PEM_METAVAR})
ROADMAP_METAVAR = "ROADMAP"  # a Roadmap in the cluster
ENROLLMENT_METAVAR = "ENROLLMENT"  # an Enrollment in the cluster
MILESTONE_METAVAR = "MILESTONE"  # a milestone of the Enrollment in view
COHORT_METAVAR = "COHORT"  # a Cohort in the cluster
LEARNER_METAVAR = "LEARNER"  # nothing to complete
CONTEXT_METAVAR = "CONTEXT"  # a kubeconfig context
DURATION_METAVAR = "DURATION"  # nothing to complete

MARKS_UNICODE = {"Passed": "✓", "Failed": "✗", "Error": "!", "Pending": "·"}
MARKS_ASCII = {"Passed": "+", "Failed": "x", "Error": "!", "Pending": "."}
SPINNER_UNICODE = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
SPINNER_ASCII = "|/-\\"


class CliError(Exception):
    """A failure to report as one line on stderr with the given exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class LabApi(Protocol):
    """The roadlab.kube.lab_client.LabClient methods the CLI uses (tests substitute a stand-in)."""

    def get_lab(self, name: str) -> Manifest | None: ...

    def list_labs(self) -> list[Manifest]: ...

    def create_lab(self, manifest: Manifest) -> Manifest: ...

    def patch_lab(self, name: str, patch: Manifest) -> Manifest: ...

    def delete_lab(self, name: str) -> bool: ...

    def watch_lab(self, name: str, timeout_seconds: int) -> Iterator[Manifest]: ...

    def create_service_account_token(
        self, namespace: str, service_account: str, expiration_seconds: int
    ) -> tuple[str, str | None]: ...

    def kubeconfig_cluster(self) -> Manifest: ...

    def secret_value(self, namespace: str, name: str, key: str) -> str | None: ...

    def config_map_data(self, namespace: str, name: str) -> dict[str, str] | None: ...

    # Roadmaps, Enrollments and Cohorts (cluster-scoped, like Labs).
    def get_roadmap(self, name: str) -> Manifest | None: ...

    def list_roadmaps(self) -> list[Manifest]: ...

    def get_enrollment(self, name: str) -> Manifest | None: ...

    def list_enrollments(self, label_selector: str | None = None) -> list[Manifest]: ...

    def create_enrollment(self, manifest: Manifest) -> Manifest: ...

    def patch_enrollment(self, name: str, patch: Manifest) -> Manifest: ...

    def list_cohorts(self) -> list[Manifest]: ...

    def apply_cohort(self, manifest: Manifest) -> Manifest: ...


def api_error_message(status: int | None, body: str | None, lab: str | None) -> tuple[str, int]:
    """One line and an exit code for an API error response."""
    detail = ""
    try:
        parsed = json.loads(body or "")
        if isinstance(parsed, dict):
            detail = str(parsed.get("message") or "")
    except ValueError:
        detail = (body or "").strip().splitlines()[0] if (body or "").strip() else ""
    if status == 404:
        if lab:
            return f"lab {lab} not found", EXIT_NOT_FOUND
        return f"not found: {detail} (is the Roadlab CRD installed?)", EXIT_NOT_FOUND
    if status == 403:
        return f"not allowed: {detail or 'forbidden'}", EXIT_FAILURE
    if status == 401:
        return (
            "unauthorized: the API server rejected your credentials (check your kubeconfig)",
            EXIT_FAILURE,
        )
    if status == 409:
        return f"conflict: {detail}", EXIT_FAILURE
    if status in (400, 422):
        return f"invalid: {detail}", EXIT_FAILURE
    return f"API error {status}: {detail or 'no details'}", EXIT_FAILURE


def connection_error_message(error: Exception, server: str | None) -> str:
    reason = str(getattr(error, "reason", None) or error)
    # urllib3 prefixes its messages with the connection object's repr: drop it.
    reason = re.sub(r"<[^>]*object at 0x[0-9a-f]+>:\s*", "", reason)
    where = f" at {server}" if server else ""
    return f"cannot reach the Kubernetes API server{where}: {reason}"
