"""`roadlab-check`: the entry point of a check Job, and with --serve of the warm checker
(roadlab.checker.server), which runs the same checks on request.

Reads the tasks to check from ROADLAB_CHECK_SPEC (JSON, written by the operator):

    {"lab": "smoke-alice", "namespace": "lab-smoke-alice", "deadlineSeconds": 175,
     "tasks": [{"id": "scale-web", "probe": "resource", "args": {...}}]}

runs each task's probe in order against the lab namespace, prints a readable report to
stdout (the Job's log) and writes the bounded result document (see roadlab.api.results) to
/dev/termination-log, or to ROADLAB_RESULT_PATH. Exits 0 whenever the result was written,
whatever the tasks' outcomes; 1 only when it could not be written.

Both modes go through run_spec_text (parse_spec, then run_spec): same spec, same document.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple, TextIO

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

from roadlab.api.checker_wire import PORT
from roadlab.api.lab import TASK_ID_PATTERN
from roadlab.api.results import TaskOutcome, encode_results
from roadlab.checker.probe_context import ContextFactory, DeadlineContext, kube_context
from roadlab.probes import (
    CheckResult,
    ProbeContext,
    describe_args_error,
    run_check,
)

SPEC_ENV = "ROADLAB_CHECK_SPEC"
RESULT_PATH_ENV = "ROADLAB_RESULT_PATH"
DEFAULT_RESULT_PATH = "/dev/termination-log"
MAX_TASKS = 64
DEADLINE_REACHED = "not run: the check deadline was reached"


# --- the spec -------------------------------------------------------------------------------


class _SpecModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class SpecTask(_SpecModel):
    id: Annotated[str, StringConstraints(pattern=TASK_ID_PATTERN)]
    probe: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    args: dict[str, Any] = Field(default_factory=dict)


class CheckSpec(_SpecModel):
    lab: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    namespace: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    tasks: Annotated[list[SpecTask], Field(max_length=MAX_TASKS)]
    deadline_seconds: Annotated[int, Field(ge=1, le=86400)]


def _salvage_ids(raw: str | None) -> list[str]:
    """Task ids from a spec that failed validation, so each can carry the error."""
    try:
        document = json.loads(raw or "")
    except (ValueError, RecursionError):
        return []
    tasks = document.get("tasks") if isinstance(document, dict) else None
    ids: list[str] = []
    for task in tasks if isinstance(tasks, list) else []:
        task_id = task.get("id") if isinstance(task, dict) else None
        if isinstance(task_id, str) and task_id not in ids:
            try:
                SpecTask(id=task_id, probe="x")
            except ValidationError:
                continue
            ids.append(task_id)
    return ids[:MAX_TASKS]


# --- running --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRun:
    task: SpecTask
    result: CheckResult
    seconds: float
    ran: bool = True

    def outcome(self) -> TaskOutcome:
        return TaskOutcome(
            id=self.task.id,
            state=self.result.state,
            message=self.result.message,
            evidence=self.result.evidence,
        )


_MARKS = {"Passed": "PASS", "Failed": "FAIL", "Error": "ERROR"}


def format_run(run: TaskRun) -> str:
    """Report lines of one task: outcome, message, evidence."""
    timing = f", {run.seconds:.1f} s" if run.ran else ""
    lines = [
        f"[{_MARKS[run.result.state]}] {run.task.id} ({run.task.probe}{timing})",
        f"    {run.result.message}",
    ]
    if run.result.evidence:
        shown = ", ".join(f"{k}={v}" for k, v in run.result.evidence.items())
        lines.append(f"    evidence: {shown}")
    return "\n".join(lines)


def run_tasks(
    spec: CheckSpec,
    ctx: ProbeContext,
    *,
    clock: Callable[[], float] = time.monotonic,
    on_done: Callable[[TaskRun], None] | None = None,
) -> list[TaskRun]:
    """Each task in order; those that would start after the deadline are not run."""
    started = clock()
    bounded = DeadlineContext(ctx, started + spec.deadline_seconds, clock)
    runs: list[TaskRun] = []
    for task in spec.tasks:
        begin = clock()
        if begin - started >= spec.deadline_seconds:
            run = TaskRun(task, CheckResult.err(DEADLINE_REACHED), 0.0, ran=False)
        else:
            result = run_check(bounded, task.probe, task.args)
            run = TaskRun(task, result, clock() - begin)
        runs.append(run)
        if on_done is not None:
            on_done(run)
    return runs


class CheckReport(NamedTuple):
    """What one check produces: the result document, and the readable report as entries
    (a task's entry spans its outcome, message and evidence lines)."""

    document: str
    lines: list[str]


def parse_spec(
    raw: str | bytes | None, *, absent: str = f"{SPEC_ENV} is not set"
) -> CheckSpec | CheckReport:
    """The validated spec, or the error report of a malformed one: each task id that can be
    salvaged gets the error, so the operator shows it on every task."""
    try:
        if not raw:
            raise ValueError(absent)
        return CheckSpec.model_validate_json(raw)
    except (ValueError, ValidationError) as exc:
        problem = describe_args_error(exc) if isinstance(exc, ValidationError) else str(exc)
        message = f"the check spec was malformed: {problem}"
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        outcomes = [TaskOutcome(task_id, "Error", message) for task_id in _salvage_ids(text)]
        return CheckReport(encode_results(outcomes, error=message), [f"roadlab-check: {message}"])


def run_spec(
    spec: CheckSpec,
    context_factory: ContextFactory,
    *,
    clock: Callable[[], float] = time.monotonic,
    on_line: Callable[[str], None] | None = None,
) -> CheckReport:
    """Run a validated spec's tasks in a context from context_factory; on_line sees each
    report entry as it is made (a Job's log shows progress, not just the end)."""
    lines: list[str] = []

    def emit(line: str) -> None:
        lines.append(line)
        if on_line is not None:
            on_line(line)

    emit(
        f"Roadlab check of lab {spec.lab} in namespace {spec.namespace}: "
        f"{len(spec.tasks)} task(s), deadline {spec.deadline_seconds} s"
    )
    try:
        ctx = context_factory(spec.namespace)
    except Exception as exc:
        message = f"the checker could not connect to the Kubernetes API: {exc}"
        emit(message)
        outcomes = [TaskOutcome(t.id, "Error", message) for t in spec.tasks]
        return CheckReport(encode_results(outcomes), lines)

    runs = run_tasks(spec, ctx, clock=clock, on_done=lambda run: emit(format_run(run)))
    counts = {state: sum(r.result.state == state for r in runs) for state in _MARKS}
    emit(
        f"Summary: {counts['Passed']} passed, {counts['Failed']} failed, {counts['Error']} error(s)"
    )
    return CheckReport(encode_results([r.outcome() for r in runs]), lines)


def run_spec_text(
    raw: str | bytes | None,
    context_factory: ContextFactory,
    *,
    clock: Callable[[], float] = time.monotonic,
    on_line: Callable[[str], None] | None = None,
    absent: str = f"{SPEC_ENV} is not set",
) -> CheckReport:
    """One whole check from the spec's text: the result document and the report."""
    parsed = parse_spec(raw, absent=absent)
    if isinstance(parsed, CheckReport):
        if on_line is not None:
            for line in parsed.lines:
                on_line(line)
        return parsed
    return run_spec(parsed, context_factory, clock=clock, on_line=on_line)


def _write(path: str, text: str, err: TextIO) -> int:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        print(f"roadlab-check: cannot write the result to {path}: {exc}", file=err)
        return 1
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="roadlab-check",
        description=(
            "Run one check from ROADLAB_CHECK_SPEC (a check Job), or with --serve run "
            "checks on request (the warm checker)."
        ),
    )
    parser.add_argument(
        "--serve", action="store_true", help="serve POST /v1/check instead of one check"
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (--serve)")
    parser.add_argument("--port", type=int, default=PORT, help="port to listen on (--serve)")
    return parser.parse_args(argv)


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    context_factory: ContextFactory | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Console script entry point; the keyword arguments are for tests."""
    args = parse_args(argv)
    environ = os.environ if environ is None else environ
    err = sys.stderr if err is None else err
    if args.serve:
        # Imported here: a check Job does not need aiohttp, and starts sooner without it.
        from roadlab.checker import server  # noqa: PLC0415

        return server.serve(
            args.host, args.port, environ=environ, context_factory=context_factory, err=err
        )

    out = sys.stdout if out is None else out
    result_path = environ.get(RESULT_PATH_ENV) or DEFAULT_RESULT_PATH

    def emit(text: str) -> None:
        print(text, file=out, flush=True)

    report = run_spec_text(
        environ.get(SPEC_ENV), context_factory or kube_context, clock=clock, on_line=emit
    )
    return _write(result_path, report.document, err)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
