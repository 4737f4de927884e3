"""Reconcile one Lab: carry out plan_lab's decision through the API module.

Not Kopf-specific (the handlers call it), so it can run from any trigger: create, update,
resume, the expiry timer or a guardrail that someone changed. Every step is idempotent:
guardrails are server-side applied (ours win), environment objects are created once and
then belong to the learner, and the namespace is deleted at expiry.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError

from roadlab.api import conditions as cond
from roadlab.api import naming
from roadlab.api.lab import Condition, LabStatus
from roadlab.catalog.schema import LabDefinition
from roadlab.controller import workspace
from roadlab.controller.guardrails import holds
from roadlab.controller.plan import (
    LabPlan,
    live_guardrails,
    mark_apply_failed,
    mark_provisioned,
    plan_lab,
)
from roadlab.controller.settings import PortalSettings
from roadlab.kube.client import describe_api_error
from roadlab.kube.operator_api import OperatorApi

APPLY_RETRY_SECONDS = 15
API_ERRORS = (ApiException, DynamicApiError, ResourceNotFoundError)


@dataclass(frozen=True)
class Outcome:
    """What a reconcile did, for the handler to report (status, events, retry)."""

    status: LabStatus
    transitions: list[cond.Transition] = field(default_factory=list)
    retry_after: int | None = None
    permanent_error: str | None = None
    provisioned_now: bool = False
    expired_now: bool = False

    def status_patch(self) -> dict[str, Any]:
        return self.status.to_patch()


def served_prerequisites(api: OperatorApi, definition: LabDefinition | None) -> set[str]:
    """The lab's prerequisites that the cluster serves (one discovery call or read each)."""
    if definition is None:
        return set()
    served = set()
    for prerequisite in definition.required_prerequisites:
        group_version, resource = prerequisite.group_version, prerequisite.resource
        if prerequisite.object_name is None:
            present = api.serves(group_version, resource)
        else:
            present = api.object_exists(group_version, resource, prerequisite.object_name)
        if present:
            served.add(prerequisite.served_key)
    return served


def is_environment(manifest: Mapping[str, Any]) -> bool:
    labels = manifest.get("metadata", {}).get("labels", {})
    return bool(labels.get(naming.LABEL_COMPONENT) == naming.COMPONENT_ENVIRONMENT)


def make_plan(
    api: OperatorApi,
    catalog: Mapping[str, LabDefinition],
    body: Mapping[str, Any],
    now: datetime,
    operator_namespace: str,
) -> LabPlan:
    metadata = body["metadata"]
    spec = body.get("spec") or {}
    return plan_lab(
        metadata["name"],
        metadata["uid"],
        int(metadata.get("generation") or 0),
        spec,
        body.get("status"),
        catalog,
        now,
        served_prerequisites(api, catalog.get(str(spec.get("lab")))),
        operator_namespace=operator_namespace,
    )


def apply_objects(api: OperatorApi, objects: Sequence[Mapping[str, Any]]) -> None:
    """Guardrails are enforced on every pass; environment objects are only seeded."""
    for manifest in objects:
        if is_environment(manifest):
            api.create_if_absent(dict(manifest))
        else:
            api.apply(dict(manifest))


def reconcile_lab(
    api: OperatorApi,
    catalog: Mapping[str, LabDefinition],
    body: Mapping[str, Any],
    now: datetime,
    operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE,
    *,
    portal: PortalSettings | None = None,
) -> Outcome:
    """Bring one Lab's world in line with its spec; return what to report."""
    old_conditions = conditions_of(body)
    was_provisioned = cond.is_true(old_conditions, cond.PROVISIONED)
    plan = make_plan(api, catalog, body, now, operator_namespace)
    generation = int(body["metadata"].get("generation") or 0)
    status = plan.status
    retry_after = plan.retry_after
    expired_now = False

    if plan.expired:
        if plan.namespace and api.namespace_phase(plan.namespace) == "Active":
            api.delete("v1", "Namespace", plan.namespace)
            expired_now = True
    elif plan.objects:
        try:
            apply_objects(api, plan.objects)
            if portal is not None and plan.namespace:
                digest = seed_portal_objects(api, body, plan.namespace, operator_namespace, portal)
                status = status.model_copy(update={"portal_token_sha256": digest})
            status = mark_provisioned(status, now, generation)
        except API_ERRORS as error:
            # Usually passing: a terminating namespace, a webhook, an API server restart.
            status = mark_apply_failed(status, describe_api_error(error), now, generation)
            retry_after = APPLY_RETRY_SECONDS

    return Outcome(
        status=status,
        transitions=cond.transitions(old_conditions, status.conditions),
        retry_after=retry_after,
        permanent_error=plan.permanent_error,
        provisioned_now=not was_provisioned and cond.is_true(status.conditions, cond.PROVISIONED),
        expired_now=expired_now,
    )


def seed_portal_objects(
    api: OperatorApi,
    body: Mapping[str, Any],
    namespace: str,
    operator_namespace: str,
    portal: PortalSettings,
) -> str | None:
    """The Lab's portal access token and workspace, each created once (409: already there;
    the token is random, so it is never re-applied). Returns the token's SHA-256, which
    the Lab's status carries: the portal checks a link against it, so it needs no access
    to Secrets at all."""
    metadata = body["metadata"]
    # The digest a previous pass wrote: with the Secret there, no read of it is needed.
    digest = (body.get("status") or {}).get("portalTokenSHA256") or None
    if portal.access_tokens:
        secret = workspace.access_secret(
            metadata["name"], metadata["uid"], operator_namespace, secrets.token_urlsafe(32)
        )
        if api.create_if_absent(secret):
            digest = workspace.token_digest(workspace.token_of(secret))
        elif digest is None:
            name = secret["metadata"]["name"]
            token = api.secret_value(operator_namespace, name, naming.PORTAL_ACCESS_KEY)
            digest = workspace.token_digest(token) if token else None
    if portal.workspace_image:
        api.create_if_absent(
            workspace.workspace_deployment(metadata["name"], namespace, portal.workspace_image)
        )
    return digest if portal.access_tokens else None


def enforce_guardrails(
    api: OperatorApi,
    catalog: Mapping[str, LabDefinition],
    body: Mapping[str, Any],
    now: datetime,
    operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE,
    *,
    with_environment: bool = False,
) -> int:
    """Re-apply a live Lab's namespace and guardrails; count applied.

    with_environment also seeds the environment objects that are missing: for a Namespace
    that was deleted, with everything in it.
    """
    plan = make_plan(api, catalog, body, now, operator_namespace)
    if plan.expired or not cond.is_true(conditions_of(body), cond.PROVISIONED):
        return 0
    objects = plan.objects if with_environment else [
        m for m in plan.objects if not is_environment(m)
    ]  # fmt: skip
    apply_objects(api, objects)
    return len(objects)


def restore_guardrail(  # noqa: PLR0917 - the guardrail handler's one call
    api: OperatorApi,
    catalog: Mapping[str, LabDefinition],
    lab: Mapping[str, Any],
    observed: Mapping[str, Any],
    now: datetime,
    operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE,
) -> bool:
    """Apply one changed guardrail of a live Lab again if it no longer holds what the
    operator set; True if it was applied.

    Most changes to guardrails are the cluster's own (quota usage, namespace phase): they
    cost no API request here. Only the drifted object is applied, not all of them.
    """
    metadata = lab["metadata"]
    kind, name = observed.get("kind"), observed["metadata"]["name"]
    for desired in live_guardrails(
        metadata["name"], metadata["uid"], lab.get("spec"), lab.get("status"), catalog, now,
        operator_namespace=operator_namespace,
    ):  # fmt: skip
        if desired["kind"] == kind and desired["metadata"]["name"] == name:
            if holds(dict(observed), desired):
                return False
            api.apply(desired)
            return True
    return False


def conditions_of(body: Mapping[str, Any]) -> list[Condition]:
    raw = (body.get("status") or {}).get("conditions") or []
    try:
        return [Condition.model_validate(c) for c in raw]
    except ValueError:
        return []
