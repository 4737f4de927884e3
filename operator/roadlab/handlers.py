"""Kopf glue: decorators only. Each handler hands the Lab to one reconciler function
and reports what came back (status, Events, metrics, retry)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf

from roadlab import conditions as cond
from roadlab import metrics, naming, reconciler
from roadlab.catalog import load_catalog
from roadlab.durations import parse_timestamp
from roadlab.k8s import KubeApi, load_api_client
from roadlab.models import Condition, LabDefinition
from roadlab.settings import Settings

LAB = (naming.GROUP, naming.VERSION, naming.PLURAL)
# Objects a Lab's guardrails consist of: a change to any of them is undone.
GUARDED_COMPONENTS = {
    naming.COMPONENT_NAMESPACE,
    naming.COMPONENT_GUARDRAIL,
    naming.COMPONENT_LEARNER,
    naming.COMPONENT_CHECKER,
}
GUARDED_RESOURCES = (
    ("", "v1", "namespaces"),
    ("", "v1", "resourcequotas"),
    ("", "v1", "limitranges"),
    ("", "v1", "serviceaccounts"),
    ("networking.k8s.io", "v1", "networkpolicies"),
    ("rbac.authorization.k8s.io", "v1", "roles"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
)


@dataclass
class Runtime:
    settings: Settings
    api: KubeApi
    catalog: dict[str, LabDefinition]


_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise kopf.TemporaryError("the operator is still starting", delay=5)
    return _runtime


def now() -> datetime:
    return datetime.now(UTC)


@kopf.on.startup()
def start(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    global _runtime  # noqa: PLW0603 - set once, before any handler runs
    config = Settings.from_environment()
    # Kopf's bookkeeping under our own group, not kopf.zalando.org.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=naming.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=naming.GROUP, key="last-handled-configuration"
    )
    # Every INFO log line would become an Event; Events are posted explicitly instead.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    catalog = load_catalog(config.catalog_dir)
    _runtime = Runtime(config, KubeApi(load_api_client()), catalog)
    metrics.serve(config.metrics_port)
    logger.info("catalog %s: %s", config.catalog_dir, ", ".join(sorted(catalog)))


def report(body: kopf.Body, patch: kopf.Patch, outcome: reconciler.Outcome) -> None:
    """Status, Events and metrics of one reconcile; then retry or give up as it says."""
    patch.setdefault("status", {}).update(outcome.status_patch())
    spec_lab = str((body.get("spec") or {}).get("lab", "unknown"))
    for change in outcome.transitions:
        kopf.event(
            body,
            type="Warning" if change.warning else "Normal",
            reason=f"{change.type}{change.status}" if change.type != cond.READY else change.reason,
            message=f"{change.type}={change.status} ({change.reason}): {change.message}",
        )
    metrics.LAB_STATES.set(
        body["metadata"]["name"], spec_lab, cond.lab_state(outcome.status.conditions)
    )
    if outcome.provisioned_now:
        metrics.PROVISIONED.labels(spec_lab).inc()
        created = parse_timestamp(body["metadata"]["creationTimestamp"])
        metrics.PROVISIONING_SECONDS.labels(spec_lab).observe((now() - created).total_seconds())
    if outcome.expired_now:
        metrics.EXPIRED.labels(spec_lab).inc()
    if outcome.permanent_error:
        metrics.RECONCILES.labels("invalid").inc()
        raise kopf.PermanentError(outcome.permanent_error)
    if outcome.retry_after:
        metrics.RECONCILES.labels("retry").inc()
        ready = cond.get_condition(outcome.status.conditions, cond.READY)
        metrics.RECONCILE_ERRORS.labels(ready.reason if ready else "Unknown").inc()
        raise kopf.TemporaryError(ready.message if ready else "retrying", delay=outcome.retry_after)
    metrics.RECONCILES.labels("ok").inc()


def reconcile_and_report(body: kopf.Body, patch: kopf.Patch) -> None:
    rt = runtime()
    outcome = reconciler.reconcile_lab(
        rt.api, rt.catalog, body, now(), rt.settings.operator_namespace
    )
    report(body, patch, outcome)


@kopf.on.resume(*LAB)
@kopf.on.create(*LAB)
@kopf.on.update(*LAB, field="spec")
def reconcile(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    reconcile_and_report(body, patch)


def _expiry_due(status: kopf.Status) -> bool:
    expires_at = status.get("expiresAt")
    if not expires_at:
        return False
    conditions = [Condition.model_validate(c) for c in status.get("conditions") or []]
    return parse_timestamp(str(expires_at)) <= now() and not cond.is_true(conditions, cond.EXPIRED)


@kopf.timer(*LAB, interval=Settings.from_environment().expiry_check_seconds, initial_delay=5)
def expire(body: kopf.Body, patch: kopf.Patch, status: kopf.Status, **_: Any) -> None:
    # Cheap on every tick; the API is only touched when a lab's time is up.
    if _expiry_due(status):
        reconcile_and_report(body, patch)


@kopf.on.event(*LAB)
def forget_deleted(type: str, name: str, **_: Any) -> None:
    if type == "DELETED":
        metrics.LAB_STATES.forget(name)


def _guarded(value: str | None, **_: Any) -> bool:
    return value in GUARDED_COMPONENTS


def guardrail_changed(type: str, labels: kopf.Labels, **_: Any) -> None:
    """Someone changed or deleted a guardrail of a lab: apply the lab's guardrails again."""
    if type not in ("MODIFIED", "DELETED"):
        return
    rt = runtime()
    lab = rt.api.get(naming.API_VERSION, naming.KIND, labels[naming.LABEL_LAB])
    if lab is not None:
        reconciler.enforce_guardrails(
            rt.api, rt.catalog, lab, now(), rt.settings.operator_namespace
        )


for _group, _version, _plural in GUARDED_RESOURCES:
    kopf.on.event(
        _group,
        _version,
        _plural,
        labels={naming.LABEL_LAB: kopf.PRESENT, naming.LABEL_COMPONENT: _guarded},
    )(guardrail_changed)
