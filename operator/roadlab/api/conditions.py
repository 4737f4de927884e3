"""Status conditions with metav1 / kubebuilder meta.SetStatusCondition semantics.

Functions return new lists and never mutate their input, so callers can diff old and new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from roadlab.api.durations import format_timestamp
from roadlab.api.lab import Condition, ConditionStatus

TRUE: ConditionStatus = "True"
FALSE: ConditionStatus = "False"
UNKNOWN: ConditionStatus = "Unknown"

# Condition types.
READY = "Ready"
PROVISIONED = "Provisioned"
COMPLETED = "Completed"
EXPIRED = "Expired"

# Every condition type, in the order the status lists them (Ready first, as kubectl shows).
CONDITION_TYPES = (READY, PROVISIONED, COMPLETED, EXPIRED)
_ORDER = {type_: index for index, type_ in enumerate(CONDITION_TYPES)}

# Reasons (CamelCase, machine-readable; the message carries the detail).
REASON_READY = "Ready"
REASON_PROVISIONED = "Provisioned"
REASON_PROVISIONING = "Provisioning"
REASON_INVALID_SPEC = "InvalidSpec"
REASON_UNKNOWN_LAB = "UnknownLab"
REASON_INVALID_PARAMETERS = "InvalidParameters"
REASON_PREREQUISITE_MISSING = "PrerequisiteMissing"
REASON_RENDER_FAILED = "RenderFailed"
REASON_APPLY_FAILED = "ApplyFailed"
REASON_EXPIRED = "Expired"
REASON_WITHIN_TTL = "WithinTTL"
REASON_TASKS_PENDING = "TasksPending"
REASON_ALL_TASKS_PASSED = "AllTasksPassed"

# Provisioned=False reasons (and so Ready=False ones) that waiting cannot fix: the spec or the
# catalog has to change. The operator stops retrying on them and `kubectl lab wait` gives up.
PERMANENT_REASONS = frozenset(
    {REASON_INVALID_SPEC, REASON_UNKNOWN_LAB, REASON_INVALID_PARAMETERS, REASON_RENDER_FAILED}
)


def get_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of the given type, if present."""
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    condition = get_condition(conditions, type_)
    return condition is not None and condition.status == TRUE


def set_condition(  # noqa: PLR0917 - mirrors meta.SetStatusCondition
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> list[Condition]:
    """Add or update a condition; lastTransitionTime only moves when the status changes."""
    existing = get_condition(conditions, type_)
    transition = (
        existing.last_transition_time
        if existing is not None and existing.status == status
        else format_timestamp(now)
    )
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    if existing is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def remove_condition(conditions: Sequence[Condition], type_: str) -> list[Condition]:
    return [c for c in conditions if c.type != type_]


def summarize_ready(
    conditions: Sequence[Condition], now: datetime, generation: int
) -> list[Condition]:
    """Derive Ready: True iff Provisioned=True and not Expired; otherwise carry the cause.

    Completed does not affect Ready: a finished lab stays usable until it expires.
    """
    expired = get_condition(conditions, EXPIRED)
    provisioned = get_condition(conditions, PROVISIONED)
    status: ConditionStatus
    if expired is not None and expired.status == TRUE:
        status, reason, message = FALSE, expired.reason, expired.message
    elif provisioned is None:
        status, reason, message = UNKNOWN, REASON_PROVISIONING, "the lab has not been planned yet"
    elif provisioned.status == TRUE:
        status, reason, message = TRUE, REASON_READY, "the lab environment is ready"
    else:
        status, reason, message = provisioned.status, provisioned.reason, provisioned.message
    updated = set_condition(conditions, READY, status, reason, message, now, generation)
    return sorted(
        updated, key=lambda c: _ORDER.get(c.type, len(_ORDER))
    )  # stable: kubectl-friendly


@dataclass(frozen=True)
class Transition:
    """A condition that changed status or reason: worth one Kubernetes Event."""

    type: str
    status: str
    reason: str
    message: str

    @property
    def warning(self) -> bool:
        # A condition going bad is a Warning; Expired=True is the normal end of a lab.
        bad_when_false = self.type in (READY, PROVISIONED)
        return bad_when_false and self.status == FALSE and self.reason != REASON_PROVISIONING


def transitions(old: Sequence[Condition], new: Sequence[Condition]) -> list[Transition]:
    """The conditions of `new` whose status or reason differ from `old`, in `new`'s order."""
    before = {c.type: (c.status, c.reason) for c in old}
    return [
        Transition(c.type, c.status, c.reason, c.message)
        for c in new
        if before.get(c.type) != (c.status, c.reason)
    ]


def lab_state(conditions: Sequence[Condition]) -> str:
    """One word for a Lab, for metrics and listings: the most telling condition wins."""
    if is_true(conditions, EXPIRED):
        return "Expired"
    if is_true(conditions, COMPLETED):
        return "Completed"
    if is_true(conditions, READY):
        return "Ready"
    ready = get_condition(conditions, READY)
    if ready is None or ready.reason == REASON_PROVISIONING:
        return "Provisioning"
    return "Failed"
