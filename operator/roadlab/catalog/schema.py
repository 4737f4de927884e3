"""The catalog's lab.yaml schema. Catalog models forbid unknown keys so typos in lab.yaml
fail loudly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from roadlab.api.lab import (
    LAB_ID_PATTERN,
    MAX_PARAMETER_STRING_LENGTH,
    MAX_PARAMETERS,
    TASK_ID_PATTERN,
    ParamName,
    ParamValue,
    WireParamValue,
)
from roadlab.api.naming import LEARNER_NAMESPACE_POLICY, LEARNER_SERVICE_ACCOUNT
from roadlab.probes.flux import DRIFT_PROBE, DriftArgs, patched_objects
from roadlab.probes.helm import PROBE as HELM_PROBE
from roadlab.probes.helm import ReleaseName

HELM_RELEASE_PROBE = HELM_PROBE.name


class ParameterError(ValueError):
    """A lab parameter is unknown, missing, or has the wrong type or value."""


class CatalogModel(BaseModel):
    """Like WireModel but rejects unknown keys: catalog files are written by hand."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


# --- Catalog (labs/<id>/lab.yaml) -----------------------------------------------------------


def served_resource_key(api_group: str, api_version: str, resource: str) -> str:
    """How served API resources are named: "metrics.k8s.io/v1beta1/pods", core: "v1/pods"."""
    prefix = f"{api_group}/" if api_group else ""
    return f"{prefix}{api_version}/{resource}"


ObjectName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")]


class Prerequisite(CatalogModel):
    """An API resource the cluster must serve for the lab to work (e.g. metrics or Istio),
    or, with objectName, one cluster-scoped object of it that must exist."""

    name: Annotated[str, StringConstraints(min_length=1)]
    description: str = ""
    api_group: str = ""  # "" is the core group
    api_version: Annotated[str, StringConstraints(min_length=1)]
    resource: Annotated[str, StringConstraints(min_length=1)]
    object_name: ObjectName | None = None

    @property
    def group_version(self) -> str:
        return f"{self.api_group}/{self.api_version}" if self.api_group else self.api_version

    @property
    def served_key(self) -> str:
        key = served_resource_key(self.api_group, self.api_version, self.resource)
        return f"{key}/{self.object_name}" if self.object_name else key


# Labels a learner may never be allowed to set on their namespace: Pod Security, Roadlab's
# own, and Kubernetes' reserved prefixes.
_RESERVED_LABEL_PREFIXES = (
    "pod-security.kubernetes.io/",
    "roadlab.dev/",
    "kubernetes.io/",
    "k8s.io/",
)
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def _learner_label_key(value: str) -> str:
    if len(value) > 253 or not _LABEL_KEY.match(value):
        raise ValueError(f"{value!r} is not a valid label key")
    if (
        value.startswith(_RESERVED_LABEL_PREFIXES)
        or "kubernetes.io/" in value
        or "k8s.io/" in value
    ):
        raise ValueError(f"label {value!r} is reserved: learners may not set it")
    return value


LearnerLabelKey = Annotated[str, AfterValidator(_learner_label_key)]

# The admission policy without which a learner could relabel their namespace at will: a lab
# that lets learners set namespace labels requires it (the Helm chart installs it).
LEARNER_NAMESPACE_POLICY_PREREQUISITE = Prerequisite(
    name="learner-namespace-policy",
    description=(
        "the ValidatingAdmissionPolicy that limits a learner's changes of their lab Namespace "
        "to the labels the lab allows (installed by the Roadlab Helm chart)"
    ),
    api_group="admissionregistration.k8s.io",
    api_version="v1",
    resource="validatingadmissionpolicybindings",
    object_name=LEARNER_NAMESPACE_POLICY,
)


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return type(value).__name__


class ParameterDef(CatalogModel):
    """Declaration of one lab parameter. No default means the learner must supply it."""

    type: Literal["string", "integer", "boolean"]
    description: str = ""
    default: WireParamValue | None = None
    pattern: str | None = None  # must match the whole string
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=0, le=MAX_PARAMETER_STRING_LENGTH)
    minimum: StrictInt | None = None
    maximum: StrictInt | None = None
    enum: list[WireParamValue] | None = Field(default=None, min_length=1)

    @property
    def required(self) -> bool:
        return self.default is None

    @model_validator(mode="after")
    def _consistent(self) -> ParameterDef:
        string_only = [
            key for key in ("pattern", "min_length", "max_length") if getattr(self, key) is not None
        ]
        if string_only and self.type != "string":
            raise ValueError(f"{string_only} only apply to string parameters")
        if (self.minimum is not None or self.maximum is not None) and self.type != "integer":
            raise ValueError("minimum/maximum only apply to integer parameters")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"invalid pattern {self.pattern!r}: {exc}") from exc
        for value in self.enum or []:
            self.check("enum value", value, use_enum=False)
        if self.default is not None:
            self.check("default", self.default)
        return self

    def _max_length(self) -> int:
        return MAX_PARAMETER_STRING_LENGTH if self.max_length is None else self.max_length

    def expectation(self) -> str:
        """Human description of acceptable values, for error messages."""
        if self.enum is not None:
            return "one of " + ", ".join(repr(v) for v in self.enum)
        if self.type == "boolean":
            return "a boolean (true or false)"
        if self.type == "integer":
            low = "" if self.minimum is None else f" >= {self.minimum}"
            high = "" if self.maximum is None else f" <= {self.maximum}"
            return "an integer" + (low + (" and" if low and high else "") + high)
        parts = ["a string"]
        parts.append(f"of {self.min_length or 0}-{self._max_length()} characters")
        if self.pattern is not None:
            parts.append(f"matching {self.pattern}")
        return " ".join(parts)

    def check(self, name: str, value: object, *, use_enum: bool = True) -> ParamValue:
        """Return value if it is acceptable for this parameter, else raise ParameterError."""

        def fail() -> ParameterError:
            return ParameterError(
                f"parameter {name!r}: got {value!r} ({_json_type(value)}), "
                f"expected {self.expectation()}"
            )

        if self.type == "boolean":
            if not isinstance(value, bool):
                raise fail()
        elif self.type == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                raise fail()
            if (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum
            ):
                raise fail()
        else:
            if not isinstance(value, str):
                raise fail()
            if not (self.min_length or 0) <= len(value) <= self._max_length():
                raise fail()
            if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
                raise fail()
        if (
            use_enum
            and self.enum is not None
            and not any(type(v) is type(value) and v == value for v in self.enum)
        ):
            raise fail()
        return value


DEFAULT_QUOTA: Mapping[str, str] = {
    "requests.cpu": "2",
    "requests.memory": "4Gi",
    "limits.cpu": "4",
    "limits.memory": "8Gi",
    "pods": "20",
    "services": "10",
    "persistentvolumeclaims": "4",
    "services.nodeports": "0",
    "services.loadbalancers": "0",
}
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")


def _quantities(value: object) -> object:
    """Accept YAML ints (pods: 20) and normalise to the string form Kubernetes returns."""
    if not isinstance(value, dict):
        return value
    result: dict[object, object] = {}
    for key, raw in value.items():
        quantity = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
        if not isinstance(quantity, str) or _QUANTITY.fullmatch(quantity) is None:
            raise ValueError(f"{key}: {raw!r} is not a resource quantity")
        result[key] = quantity
    return result


class LimitRangeDef(CatalogModel):
    """Per-container defaults, so learners' pods satisfy the quota without extra typing."""

    default_request: dict[str, str] = Field(
        default_factory=lambda: {"cpu": "100m", "memory": "128Mi"}
    )
    default: dict[str, str] = Field(default_factory=lambda: {"cpu": "500m", "memory": "512Mi"})

    _q = field_validator("default_request", "default", mode="before")(_quantities)


class PolicyRule(CatalogModel):
    """An extra RBAC rule for the learner's Role (vetted by guardrails.check_learner_rules)."""

    api_groups: list[str]
    resources: Annotated[list[str], Field(min_length=1)]
    verbs: Annotated[list[str], Field(min_length=1)]
    resource_names: list[str] | None = None


_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
DnsLabel = Annotated[str, StringConstraints(pattern=_DNS_LABEL)]
LabelSelector = Annotated[
    dict[
        Annotated[str, StringConstraints(pattern=_LABEL_KEY.pattern, max_length=253)],
        Annotated[str, StringConstraints(pattern=_LABEL_VALUE)],
    ],
    Field(min_length=1, max_length=4),
]


class IngressAllowance(CatalogModel):
    """Connections the lab's pods accept from pods of a platform namespace: a controller that
    works for the lab from outside it (Flux's source-controller fetching the lab's Git
    repository). Only the pods `to` selects, only on `port`."""

    namespace: DnsLabel
    pods: LabelSelector
    to: LabelSelector
    port: int = Field(ge=1, le=65535)


# What a checker patch grant may never name: the guardrails, RBAC, credentials and the
# learner's own identity. (A probe that makes drift needs patch on an ordinary object.)
_UNPATCHABLE_RESOURCES = frozenset(
    {
        "secrets",
        "serviceaccounts",
        "namespaces",
        "resourcequotas",
        "limitranges",
        "networkpolicies",
        "pods",
    }
)


class CheckerPatchGrant(CatalogModel):
    """One object the checker may get and patch, by name (the gitops_drift probe changes a
    field of an object Flux manages and asks Flux to reconcile)."""

    api_group: Annotated[str, StringConstraints(pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$")]
    resource: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]{0,62}$")]
    name: DnsLabel

    @model_validator(mode="after")
    def _ordinary_object(self) -> CheckerPatchGrant:
        if self.api_group == "rbac.authorization.k8s.io" or (
            self.api_group == "" and self.resource in _UNPATCHABLE_RESOURCES
        ):
            raise ValueError(
                f"the checker may not be granted patch on {self.resource} "
                f"({self.api_group or 'core'}): only ordinary lab objects"
            )
        return self


def _relative_path(value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValueError(f"{value!r} must be a relative path inside the lab directory")
    return value


class EnvironmentDef(CatalogModel):
    """What the lab namespace looks like besides the learner's own work."""

    pod_security: Literal["restricted", "baseline"] = "restricted"
    quota: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_QUOTA))
    limit_range: LimitRangeDef = Field(default_factory=LimitRangeDef)
    templates: list[str] = Field(default_factory=list)
    learner_rules: list[PolicyRule] = Field(default_factory=list)
    # Labels of the lab Namespace the learner may set (e.g. istio-injection), and only those.
    learner_namespace_labels: list[LearnerLabelKey] = Field(default_factory=list, max_length=8)
    # Helm releases whose release Secrets the checker may read, by name, for the helm_release
    # probe (a Role the operator makes in the lab namespace); it reads no other Secret.
    checker_helm_releases: list[ReleaseName] = Field(default_factory=list, max_length=4)
    # ServiceAccounts bound to the learner's own Role, for a controller that acts for the
    # learner by impersonating one (Flux's kustomize-controller): it can never do more than
    # the learner could.
    delegate_service_accounts: list[DnsLabel] = Field(default_factory=list, max_length=4)
    ingress_from: list[IngressAllowance] = Field(default_factory=list, max_length=4)
    checker_may_patch: list[CheckerPatchGrant] = Field(default_factory=list, max_length=8)

    @field_validator("quota", mode="before")
    @classmethod
    def _quota(cls, value: object) -> object:
        # Labs override individual entries; everything else keeps the safe default.
        value = _quantities(value)
        return {**DEFAULT_QUOTA, **value} if isinstance(value, dict) else value

    @field_validator("delegate_service_accounts")
    @classmethod
    def _delegates(cls, value: list[str]) -> list[str]:
        # `default` runs every pod that names no account; `learner` is the learner's own.
        taken = {"default", LEARNER_SERVICE_ACCOUNT} & set(value)
        if taken:
            raise ValueError(f"{sorted(taken)} cannot be delegate ServiceAccounts")
        if len(set(value)) != len(value):
            raise ValueError("delegateServiceAccounts must not repeat")
        return value

    @field_validator("templates")
    @classmethod
    def _templates(cls, value: list[str]) -> list[str]:
        for item in value:
            _relative_path(item)
        if len(set(value)) != len(value):
            raise ValueError("templates must not repeat")
        return value


class CheckDef(CatalogModel):
    """Which probe verifies a task and with what arguments (interpreted by the probe library)."""

    probe: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    args: dict[str, Any] = Field(default_factory=dict)


class TaskDef(CatalogModel):
    """One thing the learner has to achieve."""

    id: Annotated[str, StringConstraints(pattern=TASK_ID_PATTERN)]
    title: Annotated[str, StringConstraints(min_length=1)]
    description: str = ""
    hint: str = ""
    check: CheckDef


class ParameterRule(CatalogModel):
    """A condition the parameters must meet together: a sandboxed Jinja expression over
    `params`, e.g. "params.minReplicas < params.maxReplicas"."""

    rule: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    message: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class LabDefinition(CatalogModel):
    """labs/<id>/lab.yaml. Template file contents are attached by the catalog loader."""

    id: Annotated[str, StringConstraints(pattern=LAB_ID_PATTERN)]
    title: Annotated[str, StringConstraints(min_length=1)]
    description: str = ""
    difficulty: Literal["beginner", "intermediate", "advanced"]
    duration: int = Field(ge=1, le=7 * 24 * 60)  # expected minutes to finish
    prerequisites: list[Prerequisite] = Field(default_factory=list)
    parameters: dict[ParamName, ParameterDef] = Field(
        default_factory=dict, max_length=MAX_PARAMETERS
    )
    # Conditions across parameters (each parameter's own bounds are in `parameters`).
    parameter_rules: list[ParameterRule] = Field(default_factory=list, max_length=16)
    environment: EnvironmentDef = Field(default_factory=EnvironmentDef)
    # An empty list makes a playground: an environment with nothing to check.
    tasks: list[TaskDef] = Field(default_factory=list)
    # Time limit of one validation run unless the Lab sets spec.validation.timeoutSeconds.
    check_timeout_seconds: int = Field(default=180, ge=10, le=900)
    # Where the checks run: "auto" sends checks whose probes are all short to the warm
    # checker and the rest to a Job; "job" always uses a Job (a lab that tests the Job path);
    # "mesh" a Job whose pod is on the service mesh, with a sidecar (probes that measure
    # what a meshed client sees: traffic_split, plaintext_refused).
    check_runner: Literal["auto", "job", "mesh"] = "auto"
    solution: str | None = None

    _template_sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("solution")
    @classmethod
    def _solution(cls, value: str | None) -> str | None:
        return None if value is None else _relative_path(value)

    @model_validator(mode="after")
    def _unique_tasks(self) -> LabDefinition:
        ids = [task.id for task in self.tasks]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate task ids: {duplicates}")
        return self

    @model_validator(mode="after")
    def _readable_helm_releases(self) -> LabDefinition:
        # Without the grant the probe would only ever answer "not allowed to read Secret".
        readable = set(self.environment.checker_helm_releases)
        for task in self.tasks:
            release = task.check.args.get("release")
            if task.check.probe == HELM_RELEASE_PROBE and release not in readable:
                raise ValueError(
                    f"task {task.id}: release {release!r} must be listed in "
                    "environment.checkerHelmReleases for the checker to read it"
                )
        return self

    @model_validator(mode="after")
    def _patchable_drift_targets(self) -> LabDefinition:
        # Without the grant the drift probe would only ever answer "not allowed to patch".
        granted = {
            (grant.api_group, grant.resource, grant.name)
            for grant in self.environment.checker_may_patch
        }
        for task in self.tasks:
            if task.check.probe != DRIFT_PROBE.name:
                continue
            try:
                args = DriftArgs.model_validate(task.check.args)
            except ValueError:
                continue  # reported with the probe's own wording by the catalog loader
            for group, resource, name in sorted(patched_objects(args) - granted):
                raise ValueError(
                    f"task {task.id}: the drift check patches {resource} {name} "
                    f"({group or 'core'}), which environment.checkerMayPatch must list"
                )
        return self

    @property
    def required_prerequisites(self) -> list[Prerequisite]:
        """The declared prerequisites, plus those the environment's own features imply."""
        implied = (
            [LEARNER_NAMESPACE_POLICY_PREREQUISITE]
            if self.environment.learner_namespace_labels
            else []
        )
        return [*self.prerequisites, *implied]

    @property
    def template_sources(self) -> dict[str, str]:
        """Template path (as listed in environment.templates) -> file text."""
        return dict(self._template_sources)

    def with_template_sources(self, sources: Mapping[str, str]) -> LabDefinition:
        """A copy carrying the given template texts (the loader reads them from disk)."""
        copy = self.model_copy()
        copy._template_sources = dict(sources)
        return copy
