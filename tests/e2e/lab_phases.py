"""What the catalog labs' e2e tests share: phase timings and waiting for a check's run."""

from __future__ import annotations

import time
from typing import Any

from .operator_fixtures import Labs
from .test_validation import last_check, request_check
from .waiting import wait_until


class Phases:
    """Wall-clock time of each phase, printed as they end (visible with pytest -s)."""

    def __init__(self, lab: str) -> None:
        self.lab = lab
        self.started = self.last = time.monotonic()

    def done(self, what: str) -> None:
        now = time.monotonic()
        took, total = now - self.last, now - self.started
        print(f"[{self.lab} lab] {what}: {took:.1f} s (total {total:.1f} s)")
        self.last = now


def finished_run(labs: Labs, name: str, token: str | None = None) -> dict[str, Any] | None:
    """The Lab's last check run once it has finished (and is the one `token` asked for)."""
    run = last_check(labs, name)
    if not run.get("finishedAt") or (token is not None and run.get("token") != token):
        return None
    return run


def wait_solution_completed(labs: Labs, name: str, token: str, timeout: float) -> dict[str, Any]:
    """The Lab's status once the check `token` asked for has finished, passed and completed it.

    It waits for that run, not for the Completed condition: the operator's own re-check
    after the solution's changes can complete the Lab first, while lastCheck still holds
    the previous request's run, whose results are not the solution's.
    """
    run = wait_until(
        lambda: finished_run(labs, name, token), "the check of the solution", timeout, interval=2
    )
    status: dict[str, Any] = labs.get(name)["status"]
    failing = {t["id"]: t.get("message") for t in status.get("tasks", []) if t["state"] != "Passed"}
    assert run["state"] == "Passed", failing
    completed = labs.condition(name, "Completed")
    assert completed is not None and completed["status"] == "True", completed
    return status


def check_now(labs: Labs, name: str, what: str, timeout: float) -> str:
    """Ask for a check of the Lab and wait for that run to finish; the run's token."""
    token = request_check(name)
    wait_until(lambda: finished_run(labs, name, token), f"the check of {what}", timeout, interval=2)
    return token


def check_solution(labs: Labs, name: str, timeout: float) -> tuple[str, dict[str, Any]]:
    """Ask for a check of the solved Lab: its token, and the status once it completed."""
    token = request_check(name)
    return token, wait_solution_completed(labs, name, token, timeout)
