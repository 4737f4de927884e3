"""`roadlab-check`: the entry point of a check Job.

Reads the tasks to check from ROADLAB_CHECK_SPEC (JSON, written by the operator):

    {"lab": "smoke-alice", "namespace": "lab-smoke-alice", "deadlineSeconds": 175,
     "tasks": [{"id": "scale-web", "probe": "resource", "args": {...}}]}

runs each task's probe in order against the lab namespace, prints a readable report to
stdout (the Job's log) and writes the bounded result document (see roadlab.api.results) to
/dev/termination-log, or to ROADLAB_RESULT_PATH. Exits 0 whenever the result was written,
whatever the tasks' outcomes; 1 only when it could not be written.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TextIO

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

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


def _write(path: str, text: str, err: TextIO) -> int:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        print(f"roadlab-check: cannot write the result to {path}: {exc}", file=err)
        return 1
    return 0


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
    del argv  # everything comes from the environment
    environ = os.environ if environ is None else environ
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    result_path = environ.get(RESULT_PATH_ENV) or DEFAULT_RESULT_PATH
    raw = environ.get(SPEC_ENV)

    def emit(text: str) -> None:
        print(text, file=out, flush=True)

    try:
        if not raw:
            raise ValueError(f"{SPEC_ENV} is not set")
        spec = CheckSpec.model_validate_json(raw)
    except (ValueError, ValidationError) as exc:
        problem = describe_args_error(exc) if isinstance(exc, ValidationError) else str(exc)
        message = f"the check spec was malformed: {problem}"
        emit(f"roadlab-check: {message}")
        outcomes = [TaskOutcome(task_id, "Error", message) for task_id in _salvage_ids(raw)]
        return _write(result_path, encode_results(outcomes, error=message), err)

    emit(
        f"Roadlab check of lab {spec.lab} in namespace {spec.namespace}: "
        f"{len(spec.tasks)} task(s), deadline {spec.deadline_seconds} s"
    )
    try:
        ctx = (context_factory or kube_context)(spec.namespace)
    except Exception as exc:
        message = f"the checker could not connect to the Kubernetes API: {exc}"
        emit(message)
        outcomes = [TaskOutcome(t.id, "Error", message) for t in spec.tasks]
        return _write(result_path, encode_results(outcomes), err)

    runs = run_tasks(spec, ctx, clock=clock, on_done=lambda run: emit(format_run(run)))
    counts = {state: sum(r.result.state == state for r in runs) for state in _MARKS}
    emit(
        f"Summary: {counts['Passed']} passed, {counts['Failed']} failed, {counts['Error']} error(s)"
    )
    return _write(result_path, encode_results([r.outcome() for r in runs]), err)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
