"""The shared output layer: tables, times, task marks, condition summaries, and the
json / yaml / name documents of `-o`. Pure."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

import yaml

from roadlab.api import conditions as cond
from roadlab.api import naming
from roadlab.api.durations import parse_timestamp
from roadlab.catalog.schema import LabDefinition
from roadlab.cli.common import MARKS_ASCII, MARKS_UNICODE, NO_VALUE, PACKAGE, Manifest


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


def optional_timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def relative_or_dash(value: object, now: datetime) -> str:
    moment = optional_timestamp(value)
    return relative_time(moment, now) if moment is not None else NO_VALUE


def age(value: object, now: datetime) -> str:
    moment = optional_timestamp(value)
    return short_duration(max(0.0, (now - moment).total_seconds())) if moment else NO_VALUE


def uses_unicode(stream: TextIO) -> bool:
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return encoding.startswith("utf")


def task_mark(state: str, unicode: bool) -> str:
    marks = MARKS_UNICODE if unicode else MARKS_ASCII
    return marks.get(state, marks["Pending"])


def lab_status(lab: Mapping[str, Any]) -> Mapping[str, Any]:
    return lab.get("status") or {}


def lab_spec(lab: Mapping[str, Any]) -> Mapping[str, Any]:
    return lab.get("spec") or {}


def condition(lab: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for item in lab_status(lab).get("conditions") or []:
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
        status, spec = lab_status(lab), lab_spec(lab)
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
    last = lab_status(lab).get("lastCheck") or {}
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


def extension_summary(lab: Mapping[str, Any]) -> str | None:
    """ "30m in 1 extension; last request 30m: Accepted (extended by 30m; ...)", or None
    for a lab that was never extended or asked to be."""
    status = lab_status(lab)
    used, last = status.get("extensionsUsed"), status.get("lastExtension") or {}
    if not used and not last:
        return None
    count = int(used or 0)
    text = f"{status.get('extendedBy') or '0s'} in {count} extension{'s' if count != 1 else ''}"
    if last:
        text += f"; last request {last.get('requested', NO_VALUE)}: {last.get('state', NO_VALUE)}"
        if last.get("message"):
            text += f" ({last['message']})"
    return text


def format_status(lab: Mapping[str, Any], now: datetime, unicode: bool) -> str:
    """The `status` report: a header, then one line per task (details under unfinished ones)."""
    status, spec = lab_status(lab), lab_spec(lab)
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
    extended = extension_summary(lab)
    if extended is not None:
        header.insert(-1, ("Extended", extended))
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
