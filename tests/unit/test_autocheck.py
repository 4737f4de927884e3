"""Re-checks after a change: debounced and bounded per lab."""

from __future__ import annotations

from roadlab.controller.autocheck import (
    MAX_DELAY_SECONDS,
    MAX_PER_MINUTE,
    MIN_INTERVAL_SECONDS,
    QUIET_SECONDS,
    Rechecks,
    token,
)


def test_a_change_is_checked_once_things_are_quiet() -> None:
    rechecks = Rechecks()
    rechecks.note("a", 0.0)
    assert rechecks.due_now(0.1) == []
    assert rechecks.due_now(QUIET_SECONDS) == ["a"]
    assert rechecks.due_now(QUIET_SECONDS + 5) == []  # nothing new


def test_a_burst_gives_one_run_and_a_long_one_is_checked_by_its_deadline() -> None:
    rechecks = Rechecks()
    t = 0.0
    while t < MAX_DELAY_SECONDS:
        rechecks.note("a", t)
        assert rechecks.due_now(t) == []
        t += 0.1
    rechecks.note("a", t)
    assert rechecks.due_now(t) == ["a"]


def test_runs_are_spaced_and_bounded_per_minute() -> None:
    rechecks = Rechecks()
    rechecks.note("a", 0.0)
    assert rechecks.due_now(1.0) == ["a"]
    rechecks.note("a", 1.0)
    assert rechecks.due_now(1.0 + QUIET_SECONDS) == []  # within MIN_INTERVAL of the last
    assert rechecks.due_now(1.0 + MIN_INTERVAL_SECONDS) == ["a"]
    now, ran = 1.0 + MIN_INTERVAL_SECONDS, 2
    while now < 59.0:
        now += MIN_INTERVAL_SECONDS
        rechecks.note("a", now - QUIET_SECONDS)
        ran += len(rechecks.due_now(now))
    assert ran == MAX_PER_MINUTE
    rechecks.note("a", 60.5)
    assert rechecks.due_now(61.0) == ["a"]  # the oldest run left the minute


def test_labs_are_independent_and_a_retry_is_still_owed() -> None:
    rechecks = Rechecks()
    rechecks.note("a", 0.0)
    rechecks.note("b", 0.2)
    assert rechecks.due_now(QUIET_SECONDS) == ["a"]
    assert rechecks.due_now(0.2 + QUIET_SECONDS + 0.01) == ["b"]
    rechecks.retry("b", 2.0)
    assert rechecks.due_now(2.0 + QUIET_SECONDS + 0.01) == ["b"]
    rechecks.forget("b")
    assert rechecks.due_now(100.0) == []


def test_tokens() -> None:
    assert token(1764600000.123) == "auto-1764600000123"
