"""Extending a running lab: the pure decision that answers a learner's extension request
(roadlab.dev/extend-requested) with a status patch, within the limits of the Lab's spec."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from roadlab.api import conditions as cond
from roadlab.api import extensions
from roadlab.api.durations import format_duration, format_timestamp
from roadlab.api.lab import ExtensionRun, LabSpec
from roadlab.controller.plan import lifetime, parse_status, started_at_or, with_condition


def plan_extension(
    spec_dict: Mapping[str, Any] | None,
    status_dict: Mapping[str, Any] | None,
    request_value: str,
    now: datetime,
    generation: int,
) -> dict[str, Any] | None:
    """The status patch that answers an extension request, or None if it has its answer.

    Whatever the outcome, status.lastExtension records it under the request's token, so
    the learner's `kubectl lab extend` sees Accepted or Refused with the reason.
    """
    status = parse_status(status_dict)
    problem: str | None = None
    try:
        request = extensions.parse_request(request_value)
    except extensions.ExtensionRequestError as error:
        request, problem = extensions.ExtensionRequest(request_value[:63], timedelta(0)), str(error)
    if status.last_extension is not None and status.last_extension.token == request.token:
        return None
    spec: LabSpec | None = None
    try:
        spec = LabSpec.model_validate(spec_dict or {})
    except ValidationError:
        problem = problem or "the lab's spec is invalid"
    if problem is None and (
        not cond.is_true(status.conditions, cond.PROVISIONED)
        or cond.is_true(status.conditions, cond.EXPIRED)
        or status.started_at is None
    ):
        problem = "the lab is not running (not provisioned yet, or expired)"
    patch: dict[str, Any] = {}
    if problem is not None or spec is None:
        decision = extensions.ExtensionDecision("Refused", problem or "invalid request")
    else:
        extended = lifetime(spec, status) - spec.ttl_delta()
        count, longest = spec.extension_limits()
        decision = extensions.decide(
            request.amount,
            spec.ttl_delta(),
            extended,
            status.extensions_used or 0,
            extensions.ExtensionLimits(count, longest),
        )
    if decision.state == "Accepted" and spec is not None:
        extended_by = lifetime(spec, status) - spec.ttl_delta() + decision.granted
        expires_at = started_at_or(status, now) + spec.ttl_delta() + extended_by
        status = status.model_copy(
            update={
                "extended_by": format_duration(extended_by),
                "extensions_used": (status.extensions_used or 0) + 1,
                "expires_at": format_timestamp(expires_at),
            }
        )
        status = with_condition(
            status, cond.EXPIRED, cond.FALSE, cond.REASON_WITHIN_TTL,
            f"the lab expires at {format_timestamp(expires_at)}", now, generation,
        )  # fmt: skip
        patch = {
            key: value
            for key, value in status.to_patch().items()
            if key in ("extendedBy", "extensionsUsed", "expiresAt", "conditions")
        }
    amount = format_duration(request.amount) if request.amount else request_value[:32]
    record = ExtensionRun(
        token=request.token,
        requested=amount,
        state=decision.state,
        message=decision.message[:1024],
        at=format_timestamp(now),
    )
    return {**patch, "lastExtension": record.to_wire()}
