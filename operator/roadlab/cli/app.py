# PYTHON_ARGCOMPLETE_OK (argcomplete's global completion looks for this marker)
"""`kubectl lab`: the learner's and instructor's command line for Roadlab.

Installed as the console script `kubectl-lab`, so `kubectl lab ...` finds it on PATH;
shell completion is in roadlab.cli.completion.

The module has three layers:
- pure functions (names, parameters, tables, times, task marks, wait decisions, the
  kubeconfig document), tested without a cluster;
- commands, which take an `App` (streams, clock, catalog, a lazily connected `LabApi`)
  and return an exit code;
- `main`, which parses arguments and turns API and connection errors into one line on
  stderr and an exit code.

Only roadlab.kube.client talks to the API server; the commands call the few `KubeApi` methods
listed in `LabApi`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TextIO

import urllib3
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException
from pydantic import ValidationError

from roadlab.api import conditions as cond
from roadlab.api import naming
from roadlab.api.durations import (
    DurationError,
    format_duration,
    parse_cli_duration,
    parse_duration,
    parse_timestamp,
)
from roadlab.api.lab import DEFAULT_TTL, LEARNER_PATTERN, LabSpec, ParamValue
from roadlab.catalog.loader import (
    CatalogError,
    format_validation_error,
    load_catalog,
    load_lab_definition,
    resolve_parameters,
)
from roadlab.catalog.location import default_catalog_dir
from roadlab.catalog.schema import LabDefinition, ParameterError
from roadlab.kube.client import KubeApi

Manifest = dict[str, Any]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_TIMEOUT = 4

# Ready reasons the operator does not retry: waiting longer cannot help.
PERMANENT_REASONS = cond.PERMANENT_REASONS
# The wait ends with this reason when the Lab is gone (no condition says so).
REASON_DELETED = "Deleted"
DEFAULT_WAIT_SECONDS = 300
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

# Metavars of the arguments that roadlab.cli.completion completes (it goes by these).
LAB_METAVAR = "LAB"  # a Lab in the cluster
LAB_ID_METAVAR = "LAB_ID"  # a catalog lab
TASK_METAVAR = "TASK"  # a task of the Lab given before it
FILE_METAVAR = "FILE"
CONTEXT_METAVAR = "CONTEXT"  # a kubeconfig context

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
    """The KubeApi methods the CLI uses (tests substitute a stand-in)."""

    def get_lab(self, name: str) -> Manifest | None: ...

    def list_labs(self) -> list[Manifest]: ...

    def create_lab(self, manifest: Manifest) -> Manifest: ...

    def patch_lab(self, name: str, patch: Manifest) -> Manifest: ...

    def delete_lab(self, name: str) -> bool: ...

    def create_service_account_token(
        self, namespace: str, service_account: str, expiration_seconds: int
    ) -> tuple[str, str | None]: ...

    def kubeconfig_cluster(self) -> Manifest: ...


# --- pure helpers: names and parameters -----------------------------------------------------


def sanitize_name(text: str, max_length: int = naming.MAX_LAB_NAME_LENGTH) -> str:
    """Lowercase DNS-label form of text: other characters become '-', at most max_length."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return name[:max_length].rstrip("-")


def default_lab_name(learner: str, lab_id: str) -> str:
    """<learner>-<lab id> as a valid Lab name; the learner part is shortened, never the id."""
    lab_part = sanitize_name(lab_id)
    room = naming.MAX_LAB_NAME_LENGTH - len(lab_part) - 1
    learner_part = sanitize_name(learner, room) if room > 0 else ""
    return f"{learner_part}-{lab_part}" if learner_part else lab_part


def valid_lab_name(name: str) -> bool:
    return len(name) <= naming.MAX_LAB_NAME_LENGTH and naming.is_dns1123_label(name)


_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})
_INTEGER = re.compile(r"[+-]?[0-9]+")


def type_parameter(name: str, raw: str, declared_type: str | None) -> ParamValue:
    """A --param value converted to its declared type; undeclared: inferred from the text."""
    lowered = raw.strip().lower()
    if declared_type == "integer":
        if _INTEGER.fullmatch(raw.strip()) is None:
            raise ParameterError(f"parameter {name!r}: {raw!r} is not an integer")
        return int(raw.strip())
    if declared_type == "boolean":
        if lowered in _TRUE_WORDS:
            return True
        if lowered in _FALSE_WORDS:
            return False
        raise ParameterError(f"parameter {name!r}: {raw!r} is not a boolean (true or false)")
    if declared_type == "string":
        return raw
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INTEGER.fullmatch(raw) is not None:
        return int(raw)
    return raw


def parse_parameters(
    pairs: Sequence[str], definition: LabDefinition | None
) -> dict[str, ParamValue]:
    """--param k=v pairs, typed by the catalog; with a definition, fully validated."""
    raw: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"--param {pair!r}: expected NAME=VALUE")
        if key in raw:
            raise ParameterError(f"parameter {key!r} is given more than once")
        raw[key] = value
    if definition is None:
        return {key: type_parameter(key, value, None) for key, value in raw.items()}
    unknown = sorted(set(raw) - set(definition.parameters))
    if unknown:
        declared = ", ".join(sorted(definition.parameters)) or "none"
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)} for lab {definition.id} "
            f"(declared: {declared})"
        )
    typed = {
        key: type_parameter(key, value, definition.parameters[key].type)
        for key, value in raw.items()
    }
    resolve_parameters(definition, typed)  # constraints and required parameters
    return typed


def lab_manifest(
    name: str, lab_id: str, learner: str, ttl: str, parameters: Mapping[str, ParamValue]
) -> Manifest:
    """The Lab to create; LabSpec validates lab id, learner and TTL (ValidationError)."""
    spec = LabSpec(lab=lab_id, learner=learner, ttl=ttl, parameters=dict(parameters))
    body = spec.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"validation"})
    return {
        "apiVersion": naming.API_VERSION,
        "kind": naming.KIND,
        "metadata": {"name": name},
        "spec": body,
    }


# --- pure helpers: formatting ---------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """kubectl-style columns: left-aligned, three spaces apart, no trailing blanks."""
    widths = [len(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = []
    for row in [list(headers), *[list(r) for r in rows]]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def short_duration(seconds: float) -> str:
    """Compact duration: 45s, 12m, 1h52m, 3h, 2d4h (truncated, never rounded up)."""
    total = int(abs(seconds))
    if total < 60:
        return f"{total}s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def relative_time(moment: datetime, now: datetime) -> str:
    """ "in 1h52m" for the future, "3m ago" for the past."""
    delta = (moment - now).total_seconds()
    return f"in {short_duration(delta)}" if delta >= 0 else f"{short_duration(delta)} ago"


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def relative_or_dash(value: object, now: datetime) -> str:
    moment = _timestamp(value)
    return relative_time(moment, now) if moment is not None else NO_VALUE


def age(value: object, now: datetime) -> str:
    moment = _timestamp(value)
    return short_duration(max(0.0, (now - moment).total_seconds())) if moment else NO_VALUE


def uses_unicode(stream: TextIO) -> bool:
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return encoding.startswith("utf")


def task_mark(state: str, unicode: bool) -> str:
    marks = MARKS_UNICODE if unicode else MARKS_ASCII
    return marks.get(state, marks["Pending"])


def _status(lab: Mapping[str, Any]) -> Mapping[str, Any]:
    return lab.get("status") or {}


def _spec(lab: Mapping[str, Any]) -> Mapping[str, Any]:
    return lab.get("spec") or {}


def condition(lab: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for item in _status(lab).get("conditions") or []:
        if item.get("type") == type_:
            return dict(item)
    return None


def condition_is_true(lab: Mapping[str, Any], type_: str) -> bool:
    found = condition(lab, type_)
    return found is not None and found.get("status") == cond.TRUE


def condition_summary(lab: Mapping[str, Any], type_: str) -> str:
    """ "True (Ready)", or "False (InvalidParameters): message" when not True."""
    found = condition(lab, type_)
    if found is None:
        return NO_VALUE
    text = f"{found.get('status', 'Unknown')} ({found.get('reason', '')})"
    if found.get("status") != cond.TRUE and found.get("message"):
        text += f": {found['message']}"
    return text


def lab_name(lab: Mapping[str, Any]) -> str:
    return str((lab.get("metadata") or {}).get("name", ""))


def _condition_status(lab: Mapping[str, Any], type_: str) -> str:
    found = condition(lab, type_)
    return str(found.get("status", NO_VALUE)) if found else NO_VALUE


def list_rows(
    labs: Sequence[Mapping[str, Any]], now: datetime, *, wide: bool = False
) -> list[list[str]]:
    rows = []
    for lab in sorted(labs, key=lab_name):
        status, spec = _status(lab), _spec(lab)
        expires = ("expired" if condition_is_true(lab, cond.EXPIRED) else None) or relative_or_dash(
            status.get("expiresAt"), now
        )
        row = [
            lab_name(lab),
            str(spec.get("lab", NO_VALUE)),
            str(spec.get("learner", NO_VALUE)),
            _condition_status(lab, cond.READY),
            str(status.get("progress") or NO_VALUE),
            expires,
            age((lab.get("metadata") or {}).get("creationTimestamp"), now),
        ]
        if wide:
            row += [
                str(status.get("namespace") or NO_VALUE),
                str(spec.get("ttl") or NO_VALUE),
                _condition_status(lab, cond.COMPLETED),
                str((status.get("lastCheck") or {}).get("state") or NO_VALUE),
            ]
        rows.append(row)
    return rows


LIST_HEADERS = ("NAME", "LAB", "LEARNER", "READY", "PROGRESS", "EXPIRES", "AGE")
LIST_WIDE_HEADERS = (*LIST_HEADERS, "NAMESPACE", "TTL", "COMPLETED", "LAST CHECK")


def format_list(labs: Sequence[Mapping[str, Any]], now: datetime, *, wide: bool = False) -> str:
    headers = LIST_WIDE_HEADERS if wide else LIST_HEADERS
    return format_table(headers, list_rows(labs, now, wide=wide))


def _indent(text: str, prefix: str) -> list[str]:
    return [prefix + line for line in text.splitlines() if line.strip()]


def last_check_summary(lab: Mapping[str, Any], now: datetime) -> str:
    last = _status(lab).get("lastCheck") or {}
    if not last:
        return "never"
    if last.get("finishedAt"):
        return (
            f"{last.get('state', 'Unknown')}, finished {relative_or_dash(last['finishedAt'], now)}"
        )
    return (
        f"{last.get('state', 'Running')} (job {last.get('job', NO_VALUE)}, "
        f"requested {relative_or_dash(last.get('requestedAt'), now)})"
    )


def format_status(lab: Mapping[str, Any], now: datetime, unicode: bool) -> str:
    """The `status` report: a header, then one line per task (details under unfinished ones)."""
    status, spec = _status(lab), _spec(lab)
    expires_at = status.get("expiresAt")
    expires = relative_or_dash(expires_at, now)
    if expires_at:
        expires += f" ({expires_at})"
    if condition_is_true(lab, cond.EXPIRED):
        expires = f"expired {expires}"
    header = [
        ("Lab", lab_name(lab)),
        ("Catalog lab", str(spec.get("lab", NO_VALUE))),
        ("Learner", str(spec.get("learner", NO_VALUE))),
        ("Namespace", str(status.get("namespace") or NO_VALUE)),
        (cond.READY, condition_summary(lab, cond.READY)),
        (cond.COMPLETED, condition_summary(lab, cond.COMPLETED)),
        ("Progress", str(status.get("progress") or NO_VALUE)),
        ("Expires", expires),
        ("Last check", last_check_summary(lab, now)),
    ]
    width = max(len(key) for key, _ in header) + 2
    lines = [f"{key + ':':<{width}}{value}" for key, value in header]
    tasks = status.get("tasks") or []
    lines.append("")
    if not tasks:
        lines.append("Tasks: none reported yet")
        return "\n".join(lines) + "\n"
    lines.append("Tasks:")
    id_width = max(len(str(task.get("id", ""))) for task in tasks)
    for task in tasks:
        state = str(task.get("state", "Pending"))
        mark = task_mark(state, unicode)
        lines.append(
            f"  {mark} {task.get('id', ''):<{id_width}}   {task.get('title', '')}".rstrip()
        )
        if state != "Passed":
            lines.extend(_indent(str(task.get("message") or ""), "      "))
            hint = str(task.get("hint") or "")
            if hint:
                hint_lines = hint.splitlines()
                lines.append(f"      hint: {hint_lines[0]}")
                lines.extend(_indent("\n".join(hint_lines[1:]), "            "))
    return "\n".join(lines) + "\n"


CATALOG_HEADERS = ("ID", "TITLE", "DIFFICULTY", "DURATION", "PREREQUISITES", "TASKS")
CATALOG_WIDE_HEADERS = (*CATALOG_HEADERS, "PARAMETERS", "CHECK TIMEOUT")


def format_catalog(catalog: Mapping[str, LabDefinition], *, wide: bool = False) -> str:
    rows = []
    for definition in sorted(catalog.values(), key=lambda d: d.id):
        row = [
            definition.id,
            definition.title,
            definition.difficulty,
            f"{definition.duration}m",
            ",".join(p.name for p in definition.required_prerequisites) or NO_VALUE,
            str(len(definition.tasks)),
        ]
        if wide:
            row += [
                ",".join(definition.parameters) or NO_VALUE,
                f"{definition.check_timeout_seconds}s",
            ]
        rows.append(row)
    return format_table(CATALOG_WIDE_HEADERS if wide else CATALOG_HEADERS, rows)


def format_catalog_entry(definition: LabDefinition) -> str:
    lines = [
        f"ID:          {definition.id}",
        f"Title:       {definition.title}",
        f"Difficulty:  {definition.difficulty}",
        f"Duration:    {definition.duration}m",
    ]
    if definition.description:
        lines += ["", "Description:", *_indent(definition.description, "  ")]
    lines += ["", "Prerequisites:"]
    if definition.required_prerequisites:
        for prerequisite in definition.required_prerequisites:
            about = f": {prerequisite.description}" if prerequisite.description else ""
            lines.append(f"  {prerequisite.name} ({prerequisite.served_key}){about}")
    else:
        lines.append("  none")
    lines += ["", "Parameters:"]
    if definition.parameters:
        rows = [
            [
                name,
                parameter.type,
                "(required)" if parameter.default is None else json.dumps(parameter.default),
                parameter.description,
            ]
            for name, parameter in definition.parameters.items()
        ]
        table = format_table(("NAME", "TYPE", "DEFAULT", "DESCRIPTION"), rows)
        lines += _indent(table, "  ")
    else:
        lines.append("  none")
    lines += ["", "Tasks:"]
    for number, task in enumerate(definition.tasks, start=1):
        lines.append(f"  {number}. {task.id}: {task.title}")
    return "\n".join(lines) + "\n"


def catalog_entry_json(definition: LabDefinition) -> Manifest:
    return definition.model_dump(by_alias=True, exclude_none=True, mode="json")


def clean_lab(lab: Mapping[str, Any]) -> Manifest:
    """The Lab for -o json, without managedFields (as kubectl shows it)."""
    result = dict(lab)
    metadata = dict(result.get("metadata") or {})
    metadata.pop("managedFields", None)
    result["metadata"] = metadata
    return result


def lab_list_json(labs: Sequence[Mapping[str, Any]]) -> Manifest:
    items = [clean_lab(lab) for lab in sorted(labs, key=lab_name)]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def to_json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def to_yaml(value: object) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)


def resource_name(name: str) -> str:
    """A Lab as -o name prints it, like kubectl: lab.roadlab.dev/<name>."""
    return f"{naming.KIND.lower()}.{naming.GROUP}/{name}"


def package_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:  # a checkout that was never installed
        return "unknown"


# --- pure helpers: checks, waiting and exit codes -------------------------------------------


def new_check_token(now: datetime) -> str:
    """A fresh check-requested value: the UTC time with milliseconds."""
    moment = now.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def check_patch(token: str) -> Manifest:
    return {"metadata": {"annotations": {naming.ANNOTATION_CHECK_REQUESTED: token}}}


def all_tasks_passed(lab: Mapping[str, Any]) -> bool:
    tasks = _status(lab).get("tasks") or []
    return all(task.get("state") == "Passed" for task in tasks)


def check_exit_code(lab: Mapping[str, Any]) -> int:
    """0 when the last run passed every task, else 1 (failed, errored or timed-out runs)."""
    last = _status(lab).get("lastCheck") or {}
    if last.get("state") in ("Error", "TimedOut", "Failed"):
        return EXIT_FAILURE
    return EXIT_OK if all_tasks_passed(lab) else EXIT_FAILURE


@dataclass(frozen=True)
class WaitStep:
    """Where a wait stands after looking at the Lab once."""

    done: bool
    exit_code: int = EXIT_OK
    reason: str = ""
    message: str = ""


def _permanent_failure(lab: Mapping[str, Any]) -> WaitStep | None:
    if condition_is_true(lab, cond.EXPIRED):
        expired = condition(lab, cond.EXPIRED) or {}
        message = str(expired.get("message") or "the lab has expired")
        return WaitStep(True, EXIT_FAILURE, cond.REASON_EXPIRED, message)
    for type_ in (cond.READY, cond.PROVISIONED):
        found = condition(lab, type_)
        if (
            found is not None
            and found.get("status") != cond.TRUE
            and found.get("reason") in PERMANENT_REASONS
        ):
            message = str(found.get("message") or "")
            return WaitStep(True, EXIT_FAILURE, str(found["reason"]), message)
    return None


def _gone() -> WaitStep:
    return WaitStep(True, EXIT_NOT_FOUND, REASON_DELETED, "the lab was deleted")


def start_wait_step(lab: Mapping[str, Any] | None) -> WaitStep:
    """Ready=True ends the wait with 0, a permanent failure with 1; all else keeps waiting."""
    if lab is None:
        return _gone()
    ready = condition(lab, cond.READY)
    if (
        ready is not None
        and ready.get("status") == cond.TRUE
        and not condition_is_true(lab, cond.EXPIRED)
    ):
        return WaitStep(
            True, EXIT_OK, str(ready.get("reason") or ""), str(ready.get("message") or "")
        )
    failure = _permanent_failure(lab)
    if failure is not None:
        return failure
    if ready is None:
        return WaitStep(False, reason="Pending", message="waiting for the operator")
    return WaitStep(
        False, reason=str(ready.get("reason") or ""), message=str(ready.get("message") or "")
    )


def check_wait_step(lab: Mapping[str, Any] | None, token: str) -> WaitStep:
    """Done once status.lastCheck carries our token (or a newer request's) and a finishedAt."""
    if lab is None:
        return _gone()
    last = _status(lab).get("lastCheck") or {}
    annotations = (lab.get("metadata") or {}).get("annotations") or {}
    newer = annotations.get(naming.ANNOTATION_CHECK_REQUESTED)  # someone asked again since
    accepted = {token, newer} if newer else {token}
    if last.get("token") in accepted and last.get("finishedAt"):
        return WaitStep(True, check_exit_code(lab), str(last.get("state") or ""), "")
    failure = _permanent_failure(lab)
    if failure is not None:
        return failure
    if last.get("token") == token:
        return WaitStep(False, reason="Running", message=f"check job {last.get('job')} is running")
    message = "waiting for the operator to start the check"
    if not condition_is_true(lab, cond.READY):
        ready = condition(lab, cond.READY) or {}
        message += f" (lab not ready: {ready.get('reason', 'Pending')})"
    return WaitStep(False, reason="Requested", message=message)


def delete_wait_step(lab: Mapping[str, Any] | None) -> WaitStep:
    if lab is None:
        return WaitStep(True, EXIT_OK, REASON_DELETED, "")
    namespace = _status(lab).get("namespace") or NO_VALUE
    return WaitStep(False, reason="Deleting", message=f"cleaning up namespace {namespace}")


def spinner_line(  # noqa: PLR0917 - one value per piece of the line
    tick: int, reason: str, message: str, elapsed: float, width: int, unicode: bool
) -> str:
    """One line of the live display, cut to the terminal width (the elapsed time stays)."""
    frames = SPINNER_UNICODE if unicode else SPINNER_ASCII
    head = f"{frames[tick % len(frames)]} {reason}"
    tail = f" ({int(elapsed)}s)"
    text = f"{head}: {message}" if message else head
    room = max(width - 1 - len(tail), len(head))
    if len(text) > room:
        text = text[: max(room - 3, 0)] + "..."
    return text + tail


def plain_progress_line(reason: str, message: str, elapsed: float) -> str:
    text = f"{reason}: {message}" if message else reason
    return f"[{int(elapsed):>4}s] {text}"


def token_lifetime(duration: timedelta, expires_at: str | None, now: datetime) -> int:
    """Seconds for the learner's token: the duration, cut at the lab's expiry, >= 10 minutes."""
    seconds = int(duration.total_seconds())
    expiry = _timestamp(expires_at)
    if expiry is not None:
        remaining = int((expiry - now).total_seconds())
        if remaining <= 0:
            raise CliError("the lab has expired")
        seconds = min(seconds, remaining)
    return max(seconds, MIN_TOKEN_SECONDS)


def build_kubeconfig(name: str, namespace: str, cluster: Mapping[str, Any], token: str) -> Manifest:
    """A kubeconfig for the lab's learner ServiceAccount, defaulting to the lab namespace."""
    entry = f"roadlab-{name}"
    user = f"{entry}-{naming.LEARNER_SERVICE_ACCOUNT}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": entry, "cluster": dict(cluster)}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": entry, "context": {"cluster": entry, "user": user, "namespace": namespace}}
        ],
        "current-context": entry,
        "preferences": {},
    }


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


# --- commands -------------------------------------------------------------------------------


def load_catalog_leniently(root: Path) -> tuple[dict[str, LabDefinition], list[str]]:
    """Like load_catalog, but one broken lab leaves the others usable: (labs, problems).

    The operator refuses a broken catalog; a learner's CLI should still list what works.
    """
    try:
        return load_catalog(root), []
    except CatalogError:
        if not root.is_dir():
            raise
    catalog: dict[str, LabDefinition] = {}
    problems: list[str] = []
    for lab_dir in sorted(root.iterdir()):
        if not lab_dir.is_dir() or lab_dir.name.startswith((".", "_")):
            continue
        try:
            definition = load_lab_definition(lab_dir)
        except CatalogError as error:
            problems.append(str(error))
            continue
        catalog[definition.id] = definition
    return catalog, problems


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
    progress = Progress(app.err, name)
    start = app.monotonic()
    try:
        while True:
            lab = app.api.get_lab(name)
            step = decide(lab)
            if step.done:
                return step, lab
            elapsed = app.monotonic() - start
            if elapsed >= timeout:
                last = f" (last: {step.reason}: {step.message})" if step.reason else ""
                raise CliError(
                    f"timed out after {int(timeout)}s waiting for lab {name} {what}{last}",
                    EXIT_TIMEOUT,
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


def cmd_catalog(app: App, args: argparse.Namespace) -> int:
    try:
        catalog = app.catalog()
    except CatalogError as error:
        raise CliError(f"catalog: {error} (set ROADLAB_CATALOG to the labs directory)") from error
    if args.id is None:
        definitions = [definition for _, definition in sorted(catalog.items())]
        if app.structured:
            app.emit([catalog_entry_json(d) for d in definitions])
        elif app.output == "name":  # catalog labs are no API objects: their bare ids
            app.out.write("".join(f"{d.id}\n" for d in definitions))
        else:
            app.print(format_catalog(catalog, wide=app.output == "wide"))
        return EXIT_OK
    definition = catalog.get(args.id)
    if definition is None:
        known = ", ".join(sorted(catalog)) or "none"
        raise CliError(f"catalog lab {args.id} not found (known: {known})", EXIT_NOT_FOUND)
    if app.structured:
        app.emit(catalog_entry_json(definition))
    else:
        app.print(definition.id if app.output == "name" else format_catalog_entry(definition))
    return EXIT_OK


def _optional_catalog(app: App) -> dict[str, LabDefinition] | None:
    """The local catalog, or None when there is none (e.g. installed without the repo)."""
    try:
        return app.catalog() or None
    except CatalogError:
        return None


def cmd_start(app: App, args: argparse.Namespace) -> int:
    catalog = _optional_catalog(app)
    definition: LabDefinition | None = None
    if catalog is None:
        app.note(
            f"note: no lab catalog at {app.catalog_dir} (set ROADLAB_CATALOG); "
            "parameter types are guessed and checked by the operator"
        )
    else:
        definition = catalog.get(args.lab)
        if definition is None:
            known = ", ".join(sorted(catalog)) or "none"
            raise CliError(f"catalog lab {args.lab} not found (known: {known})", EXIT_NOT_FOUND)
    learner = args.learner or app.env.get("USER") or "learner"
    if re.fullmatch(LEARNER_PATTERN, learner) is None:
        raise CliError(
            f"learner {learner!r} is not a valid learner id (letters, digits, -_.@); use --learner",
            EXIT_USAGE,
        )
    name = args.name or default_lab_name(learner, args.lab)
    if not valid_lab_name(name):
        raise CliError(
            f"lab name {name!r} must be lowercase letters, digits and '-', at most "
            f"{naming.MAX_LAB_NAME_LENGTH} characters, starting and ending with a letter or digit",
            EXIT_USAGE,
        )
    try:
        parameters = parse_parameters(args.param, definition)
        manifest = lab_manifest(name, args.lab, learner, args.ttl, parameters)
    except ParameterError as error:
        raise CliError(str(error), EXIT_USAGE) from error
    except ValidationError as error:
        raise CliError(f"invalid lab: {format_validation_error(error)}", EXIT_USAGE) from error
    try:
        created = app.api.create_lab(manifest)
    except ApiException as error:
        if error.status == 409:
            raise CliError(f"lab {name} already exists") from error
        raise
    if not args.wait:
        app.show_lab(
            created,
            lambda: (
                f"lab {name} created (lab {args.lab} for {learner}, ttl {args.ttl})\n"
                f"follow it with: kubectl lab status {name}"
            ),
        )
        return EXIT_OK
    step, lab = wait_for(app, name, start_wait_step, args.timeout, "to become ready")
    if app.structured and lab is not None:
        app.emit(clean_lab(lab))
    if step.exit_code != EXIT_OK:
        raise CliError(f"lab {name} failed: {step.reason}: {step.message}", step.exit_code)
    if app.output == "name":
        app.print(resource_name(name))
    elif not app.structured:
        namespace = _status(lab or {}).get("namespace") or naming.namespace_for(name)
        app.print(f"lab {name} is ready in namespace {namespace}")
        app.print(f"get a kubeconfig: kubectl lab kubeconfig {name} > {name}.kubeconfig")
    return EXIT_OK


def cmd_list(app: App, args: argparse.Namespace) -> int:
    labs = app.api.list_labs()
    if args.learner:
        labs = [lab for lab in labs if _spec(lab).get("learner") == args.learner]
    if app.structured:
        app.emit(lab_list_json(labs))
    elif not labs:
        app.note("no labs found")
    elif app.output == "name":
        app.out.write("".join(f"{resource_name(name)}\n" for name in sorted(map(lab_name, labs))))
    else:
        app.print(format_list(labs, app.now(), wide=app.output == "wide"))
    return EXIT_OK


def _show_status(app: App, lab: Manifest) -> None:
    app.show_lab(lab, lambda: format_status(lab, app.now(), uses_unicode(app.out)))


def cmd_status(app: App, args: argparse.Namespace) -> int:
    _show_status(app, app.get_lab(args.name))
    return EXIT_OK


def cmd_check(app: App, args: argparse.Namespace) -> int:
    lab = app.get_lab(args.name)
    failure = _permanent_failure(lab)
    if failure is not None:
        raise CliError(f"lab {args.name} cannot be checked: {failure.reason}: {failure.message}")
    token = new_check_token(app.now())
    patched = app.api.patch_lab(args.name, check_patch(token))
    if not args.wait:
        app.show_lab(
            patched,
            lambda: (
                f"check requested for lab {args.name} (token {token})\n"
                f"see the results with: kubectl lab status {args.name}"
            ),
        )
        return EXIT_OK
    step, final = wait_for(
        app, args.name, lambda lab: check_wait_step(lab, token), args.timeout, "to be checked"
    )
    ended = step.reason in (REASON_DELETED, cond.REASON_EXPIRED) or step.reason in PERMANENT_REASONS
    if final is None or ended:
        raise CliError(f"lab {args.name}: {step.reason}: {step.message}", step.exit_code)
    _show_status(app, final)
    return step.exit_code


def cmd_hint(app: App, args: argparse.Namespace) -> int:
    lab = app.get_lab(args.name)
    task = next((t for t in _status(lab).get("tasks") or [] if t.get("id") == args.task), None)
    hint = str((task or {}).get("hint") or "")
    known = task is not None
    if not hint:
        catalog = _optional_catalog(app) or {}
        definition = catalog.get(str(_spec(lab).get("lab")))
        entry = (
            next((t for t in definition.tasks if t.id == args.task), None) if definition else None
        )
        if entry is not None:
            known, hint = True, entry.hint
    if not known:
        raise CliError(f"task {args.task} not found in lab {args.name}", EXIT_NOT_FOUND)
    if not hint:
        raise CliError(f"task {args.task} has no hint")
    app.print(hint)
    return EXIT_OK


def cmd_kubeconfig(app: App, args: argparse.Namespace) -> int:
    duration: timedelta = args.duration
    lab = app.get_lab(args.name)
    status = _status(lab)
    namespace = status.get("namespace")
    if not namespace or not condition_is_true(lab, cond.PROVISIONED):
        raise CliError(
            f"lab {args.name} is not provisioned yet (see: kubectl lab status {args.name})"
        )
    if condition_is_true(lab, cond.EXPIRED):
        raise CliError(f"lab {args.name} has expired")
    try:
        seconds = token_lifetime(duration, status.get("expiresAt"), app.now())
    except CliError as error:
        raise CliError(f"lab {args.name}: {error.message}") from error
    if seconds != int(duration.total_seconds()):
        app.note(f"note: token lifetime set to {format_duration(timedelta(seconds=seconds))}")
    try:
        token, expiry = app.api.create_service_account_token(
            namespace, naming.LEARNER_SERVICE_ACCOUNT, seconds
        )
    except RuntimeError as error:
        raise CliError(str(error)) from error
    except ApiException as error:
        if error.status == 404:
            raise CliError(
                f"service account {naming.LEARNER_SERVICE_ACCOUNT} not found in namespace "
                f"{namespace}",
                EXIT_NOT_FOUND,
            ) from error
        raise
    document = build_kubeconfig(args.name, namespace, app.api.kubeconfig_cluster(), token)
    app.print(to_json(document) if app.output == "json" else to_yaml(document))
    if expiry:
        app.note(f"token for {naming.LEARNER_SERVICE_ACCOUNT} in {namespace} expires at {expiry}")
    return EXIT_OK


def cmd_delete(app: App, args: argparse.Namespace) -> int:
    if not app.api.delete_lab(args.name):
        raise CliError(f"lab {args.name} not found", EXIT_NOT_FOUND)
    if args.wait:
        wait_for(app, args.name, delete_wait_step, args.timeout, "to be deleted")
    if app.output == "name":
        app.print(resource_name(args.name))
    else:
        app.print(f"lab {args.name} {'deleted' if args.wait else 'deletion requested'}")
    return EXIT_OK


def cmd_version(app: App, args: argparse.Namespace) -> int:
    if app.structured:
        app.emit({"package": PACKAGE, "version": package_version()})
    else:
        app.print(f"kubectl lab {package_version()}")
    return EXIT_OK


def cmd_completion(app: App, args: argparse.Namespace) -> int:
    from roadlab.cli import completion  # noqa: PLC0415 - it imports this module

    app.print(completion.shell_script(args.shell))
    return EXIT_OK


# --- argument parsing and error handling ----------------------------------------------------


def positive_duration(text: str) -> timedelta:
    """A duration flag's value: "90s", "5m", "1h30m", "2h", "7d", or plain seconds."""
    try:
        duration = parse_cli_duration(text)
    except DurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    if duration <= timedelta(0):
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return duration


def wait_seconds(text: str) -> float:
    return positive_duration(text).total_seconds()


def ttl_text(text: str) -> str:
    """--ttl as the Lab's spec.ttl: a duration as given, or plain seconds as one ("1h30m")."""
    duration = positive_duration(text)
    try:
        parse_duration(text)
    except DurationError:
        try:
            return format_duration(duration)
        except DurationError as error:
            raise argparse.ArgumentTypeError(f"a TTL is whole seconds, got {text!r}") from error
    return text


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # Without defaults (SUPPRESS), a subcommand's copy never overrides a value given first.
    unset: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--kubeconfig",
        metavar=FILE_METAVAR,
        help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)",
        **unset,
    )
    parser.add_argument(
        "--context",
        metavar=CONTEXT_METAVAR,
        help="kubeconfig context (default: the current context)",
        **unset,
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        help="output format: text (default), json, yaml, name (lab.roadlab.dev/NAME) or wide; "
        "each command takes those that fit it",
        **({"default": "text"} if defaults else unset),
    )


def _subparser(common: argparse.ArgumentParser) -> type[argparse.ArgumentParser]:
    class Subcommand(argparse.ArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["parents"] = [*kwargs.get("parents", []), common]
            super().__init__(*args, **kwargs)

    return Subcommand


def _wait_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--wait", action="store_true", help=f"wait {what}")
    parser.add_argument(
        "--timeout",
        type=wait_seconds,
        default=DEFAULT_WAIT_SECONDS,
        help="how long to wait, e.g. 90s, 5m, 1h (default 5m)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl lab",
        description="Start, follow and check Roadlab labs.",
        epilog="durations: 90s, 5m, 1h30m, 2h, 7d (or seconds); "
        "exit codes: 0 ok, 1 failure, 2 usage error, 3 not found, 4 timeout",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    _global_options(parser, defaults=True)
    # Like kubectl, the global flags may also follow the command: `kubectl lab list -o json`.
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, defaults=False)
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_subparser(common)
    )

    def command(
        name: str,
        handler: Callable[[App, argparse.Namespace], int],
        help_: str,
        outputs: Sequence[str],
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_)
        sub.set_defaults(handler=handler, outputs=outputs)
        return sub

    catalog = command("catalog", cmd_catalog, "list the catalog labs, or show one", OUTPUT_FORMATS)
    catalog.add_argument("id", nargs="?", metavar=LAB_ID_METAVAR, help="catalog lab id")

    start = command("start", cmd_start, "start a lab", LAB_OUTPUTS)
    start.add_argument("lab", metavar=LAB_ID_METAVAR, help="catalog lab id")
    start.add_argument("--name", help="Lab name (default: <learner>-<lab>)")
    start.add_argument("--learner", help="learner id (default: $USER)")
    start.add_argument(
        "--ttl",
        type=ttl_text,
        default=DEFAULT_TTL,
        help=f"lifetime, e.g. 90m, 2h, 1d (default {DEFAULT_TTL})",
    )
    start.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a lab parameter"
    )
    _wait_options(start, "until the lab is ready")

    listing = command("list", cmd_list, "list labs", OUTPUT_FORMATS)
    listing.add_argument("--learner", help="only this learner's labs")

    status = command("status", cmd_status, "a lab's state and tasks", LAB_OUTPUTS)
    status.add_argument("name", metavar=LAB_METAVAR)

    check = command("check", cmd_check, "ask for a check of the lab's tasks", LAB_OUTPUTS)
    check.add_argument("name", metavar=LAB_METAVAR)
    _wait_options(check, "for the results")

    hint = command("hint", cmd_hint, "the hint of one task", ("text",))
    hint.add_argument("name", metavar=LAB_METAVAR)
    hint.add_argument("task", metavar=TASK_METAVAR, help="task id")

    kubeconfig = command(
        "kubeconfig", cmd_kubeconfig, "a kubeconfig for the lab's learner", DOCUMENT_OUTPUTS
    )
    kubeconfig.add_argument("name", metavar=LAB_METAVAR)
    kubeconfig.add_argument(
        "--duration",
        type=positive_duration,
        default=DEFAULT_TOKEN_DURATION,
        help=f"token lifetime, e.g. 30m, 8h (default {DEFAULT_TOKEN_DURATION})",
    )

    delete = command("delete", cmd_delete, "delete a lab", ("text", "name"))
    delete.add_argument("name", metavar=LAB_METAVAR)
    _wait_options(delete, "until it is gone")

    command("version", cmd_version, "the version of kubectl lab", DOCUMENT_OUTPUTS)
    completion = command(
        "completion", cmd_completion, "a shell completion script for kubectl-lab", ("text",)
    )
    completion.add_argument("shell", choices=("bash", "zsh"))
    return parser


def run(app: App, argv: Sequence[str]) -> int:
    """Parse argv and run the command; every expected failure becomes (stderr line, code)."""
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(app.out):  # --help and --version print to stdout
            args = parser.parse_args(list(argv))
    except SystemExit as exit_:  # argparse has printed the usage error
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    if args.output not in args.outputs:
        app.note(
            f"error: {args.command} has no -o {args.output} (it takes: {', '.join(args.outputs)})"
        )
        return EXIT_USAGE
    app.output, app.kubeconfig, app.context = args.output, args.kubeconfig, args.context
    handler: Callable[[App, argparse.Namespace], int] = args.handler
    try:
        return handler(app, args)
    except CliError as error:
        message, code = error.message, error.code
    except ApiException as error:
        message, code = api_error_message(error.status, error.body, getattr(args, "name", None))
    except ConfigException as error:
        message, code = f"kubeconfig: {error}", EXIT_FAILURE
    except (urllib3.exceptions.HTTPError, ConnectionError) as error:
        message, code = connection_error_message(error, app.server), EXIT_FAILURE
    except KeyboardInterrupt:
        message, code = "interrupted", 130
    app.note(f"error: {message}")
    return code


def connect_lab_api(kubeconfig: str | None, context: str | None) -> LabApi:
    return KubeApi.from_kubeconfig(kubeconfig, context)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script entry point (`kubectl-lab`)."""
    app = App(connect=connect_lab_api, catalog_dir=default_catalog_dir())
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (`kubectl lab completion`)
        from roadlab.cli import completion  # noqa: PLC0415 - it imports this module

        completion.answer_shell(app)  # prints them and exits
    return run(app, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
