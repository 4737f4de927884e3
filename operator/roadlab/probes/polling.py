"""Probes that poll a server of the lab until their condition holds, within a window.

What the prometheus and kafka probes share: an evaluation gives an Outcome (or raises
Unavailable when the server does not answer), and `poll` repeats it every pollSeconds
until it passes, is final (waiting cannot change it) or the window, cut to the check
deadline, is over. A server that is starting or was restarted by the learner answers within
seconds, so Unavailable is an Error only once the window is over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from roadlab.probes.base import CheckResult, Evidence, ProbeContext
from roadlab.probes.traffic import window_within_deadline


class Unavailable(Exception):  # noqa: N818 - a state of the server, not a program error
    """The lab's server could not answer (an Error, not the learner's doing)."""


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str
    evidence: Evidence
    final: bool = False  # no point polling on: waiting cannot change it
    timed: bool = False  # the message says itself how long the check waited


def poll(
    ctx: ProbeContext,
    within_seconds: float,
    poll_seconds: float,
    evaluate: Callable[[float], Outcome],
    first_after: float = 0.0,
) -> tuple[Outcome, float]:
    """The outcome that ended the polling and the seconds it took. `evaluate` is given the
    window; `first_after` seconds pass before its first call (capped by the window)."""
    window = window_within_deadline(ctx, within_seconds)
    started = ctx.monotonic()
    if first_after > 0 and window > 0:
        ctx.sleep(min(first_after, window))
    while True:
        try:
            outcome = evaluate(window)
        except Unavailable:
            if ctx.monotonic() - started >= window:
                raise
        else:
            elapsed = ctx.monotonic() - started
            if outcome.passed or outcome.final or elapsed >= window:
                return outcome, elapsed
        ctx.sleep(min(poll_seconds, max(window - (ctx.monotonic() - started), 0.0)))


def result(outcome: Outcome, elapsed: float, evidence: Evidence) -> CheckResult:
    """The check's result: Passed or Failed, with how long it waited when it did."""
    if outcome.passed:
        return CheckResult.ok(outcome.message, evidence)
    waited = elapsed >= 1 and not outcome.final and not outcome.timed
    return CheckResult.fail(
        outcome.message + (f" (waited {elapsed:.0f} s)" if waited else ""), evidence
    )


def evidence_with_seconds(outcome: Outcome, elapsed: float) -> Evidence:
    evidence = dict(outcome.evidence)
    evidence["seconds"] = round(elapsed, 1)
    return evidence
