"""Roadmaps on the wire: a Roadmap (milestones in order, each a catalog lab), an Enrollment
(one learner's progress along one roadmap, kept after each Lab is gone) and a Cohort (many
learners enrolled at once). Their limits are shared with crds/roadmap.yaml,
crds/enrollment.yaml and crds/cohort.yaml. No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, StrictBool, StringConstraints, field_validator

from roadlab.api.durations import format_duration, parse_duration
from roadlab.api.extensions import TOKEN_PATTERN
from roadlab.api.lab import (
    LAB_ID_PATTERN,
    LEARNER_PATTERN,
    MAX_PARAMETERS,
    MAX_TTL,
    MIN_TTL,
    Condition,
    ParamName,
    TaskState,
    WireModel,
    WireParamValue,
    _check_timestamp,
)

ROADMAP_KIND = "Roadmap"
ROADMAP_PLURAL = "roadmaps"
ENROLLMENT_KIND = "Enrollment"
ENROLLMENT_PLURAL = "enrollments"
COHORT_KIND = "Cohort"
COHORT_PLURAL = "cohorts"

MILESTONE_ID_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$"
# A Roadmap's, Enrollment's or Cohort's name: a DNS label short enough that the names made
# from it (roadlab-enrollee-<enrollment>, <cohort>-<learner>) stay within 63 characters.
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$"
MAX_MILESTONES = 32
MAX_REQUIRES = 16
MAX_COHORT_LEARNERS = 500

MilestoneId = Annotated[str, StringConstraints(pattern=MILESTONE_ID_PATTERN)]
ObjectName = Annotated[str, StringConstraints(pattern=OBJECT_NAME_PATTERN)]
LearnerName = Annotated[str, StringConstraints(pattern=LEARNER_PATTERN, max_length=63)]


def _ttl_in_range(value: str | None) -> str | None:
    if value is not None and not MIN_TTL <= parse_duration(value) <= MAX_TTL:
        raise ValueError(
            f"ttl {value!r} is out of range: must be between {format_duration(MIN_TTL)} "
            f"and {format_duration(MAX_TTL)}"
        )
    return value


# --- Roadmap --------------------------------------------------------------------------------


class Milestone(WireModel):
    """One step of a roadmap: a catalog lab with its parameters, or a lab still to come."""

    id: MilestoneId
    title: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    description: Annotated[str, StringConstraints(max_length=1024)] = ""
    # The catalog lab; None: no lab teaches this milestone yet (shown as coming).
    lab: Annotated[str, StringConstraints(pattern=LAB_ID_PATTERN)] | None = None
    parameters: dict[ParamName, WireParamValue] = Field(
        default_factory=dict, max_length=MAX_PARAMETERS
    )
    # Earlier milestones that must be completed first.
    requires: list[MilestoneId] = Field(default_factory=list, max_length=MAX_REQUIRES)
    optional: StrictBool = False
    ttl: str | None = None  # the Lab's ttl; None: the Enrollment's labTTL or the Lab default

    _ttl = field_validator("ttl")(_ttl_in_range)

    @property
    def coming(self) -> bool:
        return self.lab is None


class RoadmapSpec(WireModel):
    title: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    description: Annotated[str, StringConstraints(max_length=4096)] = ""
    # Where the roadmap comes from (a document, a course); shown, never followed.
    source: Annotated[str, StringConstraints(max_length=256)] = ""
    milestones: list[Milestone] = Field(min_length=1, max_length=MAX_MILESTONES)


class RoadmapStatus(WireModel):
    conditions: list[Condition] = Field(default_factory=list)
    milestones: int | None = None
    with_labs: int | None = None  # milestones that have a lab; the rest are coming
    observed_generation: int | None = None


def structure_problems(spec: RoadmapSpec) -> list[str]:
    """What is wrong with the order of a roadmap's milestones, without the catalog:
    duplicate ids, and `requires` naming no milestone, itself or a later one (so there is
    no cycle: every requirement points back)."""
    problems: list[str] = []
    position: dict[str, int] = {}
    for index, milestone in enumerate(spec.milestones):
        if milestone.id in position:
            problems.append(f"milestone {milestone.id!r} appears twice")
        position.setdefault(milestone.id, index)
    for index, milestone in enumerate(spec.milestones):
        for required in milestone.requires:
            where = position.get(required)
            if where is None:
                problems.append(
                    f"milestone {milestone.id!r} requires {required!r}, "
                    "which is not a milestone of this roadmap"
                )
            elif where >= index:
                what = "itself" if required == milestone.id else f"{required!r}, which comes later"
                problems.append(
                    f"milestone {milestone.id!r} requires {what}: requirements must be earlier "
                    "milestones (this also rules out cycles)"
                )
    return problems


# --- Enrollment -----------------------------------------------------------------------------

Advance = Literal["OnRequest", "Automatic"]
MilestoneState = Literal["Coming", "Locked", "Available", "Running", "Completed"]
RequestState = Literal["Accepted", "Refused"]


class EnrollmentSpec(WireModel):
    roadmap: ObjectName
    learner: LearnerName
    # OnRequest: a milestone's Lab starts when the learner asks (kubectl lab next);
    # Automatic: the next one starts as soon as the one before is completed.
    advance: Advance = "OnRequest"
    lab_ttl: str | None = Field(default=None, alias="labTTL")

    _ttl = field_validator("lab_ttl")(_ttl_in_range)


class TaskRecord(WireModel):
    id: str
    state: TaskState
    # SHA-256 of the task's evidence as canonical JSON: the certificate names it, so the
    # evidence shown elsewhere can be matched to what was signed.
    evidence_sha256: str | None = Field(default=None, alias="evidenceSHA256")


class MilestoneRecord(WireModel):
    """One milestone of an Enrollment: its state, and once completed, its result."""

    id: str
    state: MilestoneState
    lab: str | None = None  # the Lab of the latest attempt
    attempts: int = 0
    started_at: str | None = None
    completed_at: str | None = None
    time_spent_seconds: int | None = None
    checks_run: int | None = None
    tasks: list[TaskRecord] = Field(default_factory=list)
    lab_definition_sha256: str | None = Field(default=None, alias="labDefinitionSHA256")
    # Why it is locked, or how the latest attempt ended.
    message: str = ""
    certificate: str | None = None  # a JWS (roadlab.api.certificates)

    _ts = field_validator("started_at", "completed_at")(_check_timestamp)


class StartRequest(WireModel):
    """The latest start request (roadlab.dev/start-requested) and its answer."""

    token: str
    milestone: str | None = None
    state: RequestState
    message: str = ""
    at: str

    _ts = field_validator("at")(_check_timestamp)


class EnrollmentStatus(WireModel):
    conditions: list[Condition] = Field(default_factory=list)
    milestones: list[MilestoneRecord] = Field(default_factory=list)
    current: str | None = None  # the milestone being worked on
    progress: str | None = None  # "completed/required"
    completed_at: str | None = None
    certificate: str | None = None  # for the whole roadmap, once every required one is done
    last_start: StartRequest | None = None
    observed_generation: int | None = None

    _ts = field_validator("completed_at")(_check_timestamp)

    def record(self, milestone_id: str) -> MilestoneRecord | None:
        return next((m for m in self.milestones if m.id == milestone_id), None)


# What the learner asks for: "<token>" starts the next milestone, "<token>/<milestone>" a
# given one (an optional milestone, say). The token is the check requests' own pattern.
START_REQUEST_RE2 = rf"^{TOKEN_PATTERN}(/{MILESTONE_ID_PATTERN[1:-1]})?$"
_START_REQUEST = re.compile(START_REQUEST_RE2)


@dataclass(frozen=True)
class ParsedStart:
    token: str
    milestone: str | None


def parse_start_request(value: str) -> ParsedStart | None:
    """The request in the annotation's value, or None when it is malformed."""
    if not _START_REQUEST.match(value):
        return None
    token, _, milestone = value.partition("/")
    return ParsedStart(token, milestone or None)


def format_start_request(token: str, milestone: str | None = None) -> str:
    return f"{token}/{milestone}" if milestone else token


# --- Cohort ---------------------------------------------------------------------------------


class CohortSpec(WireModel):
    roadmap: ObjectName
    learners: list[LearnerName] = Field(min_length=1, max_length=MAX_COHORT_LEARNERS)
    advance: Advance = "OnRequest"
    lab_ttl: str | None = Field(default=None, alias="labTTL")

    _ttl = field_validator("lab_ttl")(_ttl_in_range)


class CohortStatus(WireModel):
    conditions: list[Condition] = Field(default_factory=list)
    enrolled: int | None = None
    completed: int | None = None  # learners who completed the whole roadmap
    observed_generation: int | None = None
