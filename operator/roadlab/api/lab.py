"""The Lab custom resource on the wire: spec and status types, and the limits they share
with crds/lab.yaml. No I/O.

Wire models ignore unknown fields (the API server already prunes them, and kopf may keep
its own bookkeeping in status).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    field_validator,
)
from pydantic.alias_generators import to_camel

from roadlab.api.durations import format_duration, parse_duration, parse_timestamp

# Patterns are shared with crds/lab.yaml; tests check that both say the same thing.
LAB_ID_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$"
LEARNER_PATTERN = r"^[a-zA-Z0-9]([-_.@a-zA-Z0-9]{0,61}[a-zA-Z0-9])?$"
PARAMETER_NAME_PATTERN = r"^[a-zA-Z][a-zA-Z0-9_]{0,62}$"
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
TASK_ID_PATTERN = r"^[a-z0-9][-a-z0-9]{0,62}$"
MAX_PARAMETERS = 32
MAX_PARAMETER_STRING_LENGTH = 256
MAX_EVIDENCE_ITEMS = 16
MIN_TTL = timedelta(minutes=5)
MAX_TTL = timedelta(days=7)
DEFAULT_TTL = "2h"
MIN_INTERVAL_SECONDS = 30
MAX_INTERVAL_SECONDS = 86400

ParamValue: TypeAlias = int | bool | str
# Strict so that YAML/JSON true never becomes 1 and 1 never becomes "1" or True.
WireParamValue: TypeAlias = (
    StrictBool
    | StrictInt
    | Annotated[StrictStr, StringConstraints(max_length=MAX_PARAMETER_STRING_LENGTH)]
)
ParamName = Annotated[str, StringConstraints(pattern=PARAMETER_NAME_PATTERN)]
EvidenceValue: TypeAlias = (
    StrictBool | StrictInt | StrictFloat | Annotated[StrictStr, StringConstraints(max_length=1024)]
)
ConditionStatus = Literal["True", "False", "Unknown"]
TaskState = Literal["Pending", "Passed", "Failed", "Error"]


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; tolerant of unknown fields."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready dict by alias, without unset optionals (suitable for a merge patch)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# --- Lab spec -------------------------------------------------------------------------------


class ValidationSpec(WireModel):
    """How the operator checks the learner's work."""

    interval_seconds: StrictInt = 0  # 0: only on request
    # None: the lab's own checkTimeoutSeconds (a load test needs longer than a field check).
    timeout_seconds: StrictInt | None = Field(default=None, ge=10, le=900)

    @field_validator("interval_seconds")
    @classmethod
    def _interval(cls, value: int) -> int:
        if value != 0 and not MIN_INTERVAL_SECONDS <= value <= MAX_INTERVAL_SECONDS:
            raise ValueError(
                f"intervalSeconds must be 0 (no periodic checks) or between "
                f"{MIN_INTERVAL_SECONDS} and {MAX_INTERVAL_SECONDS}"
            )
        return value


DEFAULT_MAX_EXTENSIONS = 2
MAX_EXTENSIONS = 10


class ExtensionSpec(WireModel):
    """How far the learner may extend the lab's time (set by whoever creates the Lab)."""

    # None: DEFAULT_MAX_EXTENSIONS; 0: the lab cannot be extended.
    max_extensions: StrictInt | None = Field(default=None, ge=0, le=MAX_EXTENSIONS)
    # The longest total time (ttl plus extensions); None: twice the ttl, at most MAX_TTL.
    max_ttl: str | None = Field(default=None, alias="maxTTL")

    @field_validator("max_ttl")
    @classmethod
    def _max_ttl(cls, value: str | None) -> str | None:
        if value is not None and not MIN_TTL <= parse_duration(value) <= MAX_TTL:
            raise ValueError(
                f"maxTTL {value!r} is out of range: must be between {format_duration(MIN_TTL)} "
                f"and {format_duration(MAX_TTL)}"
            )
        return value


class LabSpec(WireModel):
    """spec of a Lab: which catalog lab, for whom, for how long, with which parameters."""

    lab: Annotated[str, StringConstraints(pattern=LAB_ID_PATTERN)]
    learner: Annotated[str, StringConstraints(pattern=LEARNER_PATTERN, max_length=63)]
    ttl: str = DEFAULT_TTL
    parameters: dict[ParamName, WireParamValue] = Field(
        default_factory=dict, max_length=MAX_PARAMETERS
    )
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    extensions: ExtensionSpec = Field(default_factory=ExtensionSpec)

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: str) -> str:
        delta = parse_duration(value)
        if not MIN_TTL <= delta <= MAX_TTL:
            raise ValueError(
                f"ttl {value!r} is out of range: must be between {format_duration(MIN_TTL)} "
                f"and {format_duration(MAX_TTL)}"
            )
        return value

    def ttl_delta(self) -> timedelta:
        """The TTL as a timedelta (already validated)."""
        return parse_duration(self.ttl)

    def extension_limits(self) -> tuple[int, timedelta]:
        """(most extensions, longest total time), with the defaults filled in."""
        count = self.extensions.max_extensions
        longest = self.extensions.max_ttl
        return (
            DEFAULT_MAX_EXTENSIONS if count is None else count,
            parse_duration(longest) if longest else min(2 * self.ttl_delta(), MAX_TTL),
        )


# --- Lab status -----------------------------------------------------------------------------


def _check_timestamp(value: str | None) -> str | None:
    if value is not None:
        parse_timestamp(value)
    return value


class Condition(WireModel):
    """metav1.Condition."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=316)]
    status: ConditionStatus
    reason: Annotated[str, StringConstraints(pattern=REASON_PATTERN, max_length=1024)]
    message: Annotated[str, StringConstraints(max_length=32768)] = ""
    last_transition_time: str
    observed_generation: int = Field(default=0, ge=0)

    _ts = field_validator("last_transition_time")(_check_timestamp)


class TaskResult(WireModel):
    """The latest known outcome of one catalog task for this Lab."""

    id: Annotated[str, StringConstraints(pattern=TASK_ID_PATTERN)]
    title: str = ""
    state: TaskState = "Pending"
    message: Annotated[str, StringConstraints(max_length=4096)] = ""
    hint: str | None = None
    checked_at: str | None = None
    evidence: dict[str, EvidenceValue] | None = Field(default=None, max_length=MAX_EVIDENCE_ITEMS)

    _ts = field_validator("checked_at")(_check_timestamp)


CheckRunState = Literal["Running", "Passed", "Failed", "Error", "TimedOut"]


class CheckRun(WireModel):
    """The latest validation run: which request started it, its Job, and how it ended."""

    token: str
    job: str
    requested_at: str | None = None
    finished_at: str | None = None
    state: CheckRunState = "Running"

    _ts = field_validator("requested_at", "finished_at")(_check_timestamp)


ExtensionState = Literal["Accepted", "Refused"]


class ExtensionRun(WireModel):
    """The latest extension request and what became of it."""

    token: str
    requested: str  # the duration asked for
    state: ExtensionState
    message: str = ""
    at: str

    _ts = field_validator("at")(_check_timestamp)


class LabStatus(WireModel):
    """status of a Lab. Everything is optional so that an empty status parses."""

    conditions: list[Condition] = Field(default_factory=list)
    namespace: str | None = None
    tasks: list[TaskResult] = Field(default_factory=list)
    progress: str | None = None
    tasks_passed: int | None = None
    tasks_total: int | None = None
    started_at: str | None = None
    completed_at: str | None = None
    expires_at: str | None = None
    observed_generation: int | None = None
    last_check: CheckRun | None = None
    # Validation runs recorded so far (requested, periodic and re-checks).
    checks_run: int | None = None
    # The latest re-check after a change to the lab's objects (lastCheck stays the run of
    # the latest request, initial or periodic run).
    last_recheck: CheckRun | None = None
    # The latest check request (roadlab.dev/check-requested) that has had its run.
    last_request: str | None = None
    # Time granted by extensions so far (a duration), and how many were granted.
    extended_by: str | None = None
    extensions_used: int | None = None
    last_extension: ExtensionRun | None = None
    # SHA-256 (hex) of the Lab's portal access token; the token itself is in a Secret.
    portal_token_sha256: str | None = Field(default=None, alias="portalTokenSHA256")

    _ts = field_validator("started_at", "completed_at", "expires_at")(_check_timestamp)

    def to_patch(self) -> dict[str, Any]:
        """Body for a status merge patch (by alias, None fields left out)."""
        return self.to_wire()
