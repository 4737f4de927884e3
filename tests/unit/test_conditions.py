from __future__ import annotations

from datetime import datetime, timedelta

from roadlab.api import conditions as cond
from roadlab.api.lab import Condition

T0 = "2026-11-21T10:00:00Z"


def test_set_condition_adds_and_does_not_mutate(now: datetime) -> None:
    before: list[Condition] = []
    after = cond.set_condition(before, cond.PROVISIONED, cond.FALSE, "Provisioning", "m", now, 1)
    assert before == []
    assert after[0].last_transition_time == T0
    assert after[0].observed_generation == 1
    assert cond.get_condition(after, cond.PROVISIONED) == after[0]
    assert cond.get_condition(after, cond.READY) is None


def test_transition_time_kept_when_status_unchanged(now: datetime) -> None:
    later = now + timedelta(minutes=5)
    first = cond.set_condition([], cond.PROVISIONED, cond.FALSE, "Provisioning", "a", now, 1)
    second = cond.set_condition(first, cond.PROVISIONED, cond.FALSE, "ApplyFailed", "b", later, 2)
    assert second[0].last_transition_time == T0
    assert (second[0].reason, second[0].message, second[0].observed_generation) == (
        "ApplyFailed",
        "b",
        2,
    )
    third = cond.set_condition(second, cond.PROVISIONED, cond.TRUE, "Provisioned", "c", later, 2)
    assert third[0].last_transition_time == "2026-11-21T10:05:00Z"
    assert len(third) == 1


def test_set_condition_keeps_others(now: datetime) -> None:
    conditions = cond.set_condition([], cond.EXPIRED, cond.FALSE, "WithinTTL", "", now, 1)
    conditions = cond.set_condition(
        conditions, cond.COMPLETED, cond.FALSE, "TasksPending", "", now, 1
    )
    conditions = cond.set_condition(conditions, cond.EXPIRED, cond.TRUE, "Expired", "", now, 1)
    assert [c.type for c in conditions] == [cond.EXPIRED, cond.COMPLETED]
    assert cond.is_true(conditions, cond.EXPIRED)
    assert not cond.is_true(conditions, cond.COMPLETED)
    assert not cond.is_true(conditions, cond.READY)
    assert [c.type for c in cond.remove_condition(conditions, cond.EXPIRED)] == [cond.COMPLETED]


def ready(conditions: list[Condition]) -> Condition:
    result = cond.get_condition(conditions, cond.READY)
    assert result is not None
    return result


def test_summarize_ready(now: datetime) -> None:
    assert ready(cond.summarize_ready([], now, 1)).status == cond.UNKNOWN

    provisioning = cond.set_condition(
        [], cond.PROVISIONED, cond.FALSE, cond.REASON_PREREQUISITE_MISSING, "no metrics", now, 1
    )
    summary = ready(cond.summarize_ready(provisioning, now, 1))
    assert (summary.status, summary.reason, summary.message) == (
        cond.FALSE,
        cond.REASON_PREREQUISITE_MISSING,
        "no metrics",
    )

    provisioned = cond.set_condition(
        provisioning, cond.PROVISIONED, cond.TRUE, cond.REASON_PROVISIONED, "", now, 1
    )
    assert ready(cond.summarize_ready(provisioned, now, 1)).status == cond.TRUE

    expired = cond.set_condition(
        provisioned, cond.EXPIRED, cond.TRUE, cond.REASON_EXPIRED, "gone", now, 1
    )
    summary = ready(cond.summarize_ready(expired, now, 1))
    assert (summary.status, summary.reason, summary.message) == (cond.FALSE, "Expired", "gone")


def test_summarize_ready_is_not_affected_by_completed_and_orders(now: datetime) -> None:
    conditions = cond.set_condition([], cond.EXPIRED, cond.FALSE, "WithinTTL", "", now, 1)
    conditions = cond.set_condition(
        conditions, cond.COMPLETED, cond.TRUE, "AllTasksPassed", "", now, 1
    )
    conditions = cond.set_condition(
        conditions, cond.PROVISIONED, cond.TRUE, "Provisioned", "", now, 1
    )
    conditions = cond.set_condition(conditions, "Custom", cond.TRUE, "Whatever", "", now, 1)
    summarized = cond.summarize_ready(conditions, now, 1)
    assert ready(summarized).status == cond.TRUE
    assert [c.type for c in summarized] == [
        "Ready",
        "Provisioned",
        "Completed",
        "Expired",
        "Custom",
    ]


def test_reasons_are_valid_condition_reasons(now: datetime) -> None:
    reasons = [getattr(cond, n) for n in dir(cond) if n.startswith("REASON_")]
    assert len(reasons) >= 12
    for reason in reasons:
        Condition(type="X", status="True", reason=reason, last_transition_time=T0)


def test_transitions_report_changed_status_or_reason(now: datetime) -> None:
    old = cond.set_condition(
        [], cond.PROVISIONED, cond.FALSE, cond.REASON_PROVISIONING, "m", now, 1
    )
    new = cond.set_condition(
        old, cond.PROVISIONED, cond.TRUE, cond.REASON_PROVISIONED, "done", now, 1
    )
    new = cond.set_condition(new, cond.EXPIRED, cond.FALSE, cond.REASON_WITHIN_TTL, "later", now, 1)
    changes = cond.transitions(old, new)
    assert [(c.type, c.status, c.reason) for c in changes] == [
        (cond.PROVISIONED, cond.TRUE, cond.REASON_PROVISIONED),
        (cond.EXPIRED, cond.FALSE, cond.REASON_WITHIN_TTL),
    ]
    assert not any(c.warning for c in changes)
    assert cond.transitions(new, new) == []


def test_failing_ready_is_a_warning(now: datetime) -> None:
    bad = cond.set_condition(
        [], cond.READY, cond.FALSE, cond.REASON_UNKNOWN_LAB, "no such lab", now, 1
    )
    assert cond.transitions([], bad)[0].warning
    waiting = cond.set_condition(
        [], cond.READY, cond.FALSE, cond.REASON_PROVISIONING, "wait", now, 1
    )
    assert not cond.transitions([], waiting)[0].warning


def test_lab_state(now: datetime) -> None:
    def with_(*pairs: tuple[str, str, str]) -> list[Condition]:
        conditions: list[Condition] = []
        for type_, status, reason in pairs:
            conditions = cond.set_condition(conditions, type_, status, reason, "", now, 1)  # type: ignore[arg-type]
        return conditions

    assert cond.lab_state([]) == "Provisioning"
    assert cond.lab_state(with_((cond.READY, "True", "Ready"))) == "Ready"
    assert cond.lab_state(with_((cond.READY, "False", "UnknownLab"))) == "Failed"
    assert (
        cond.lab_state(
            with_((cond.READY, "True", "Ready"), (cond.COMPLETED, "True", "AllTasksPassed"))
        )
        == "Completed"
    )
    assert (
        cond.lab_state(with_((cond.EXPIRED, "True", "Expired"), (cond.COMPLETED, "True", "x")))
        == "Expired"
    )
