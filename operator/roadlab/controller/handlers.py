"""Kopf glue: the decorated handlers, and nothing else. Each hands its event to one function
of controller.actions (reconcile, check, guardrail restore) or controller.ticking; start-up
is controller.startup, the shared state controller.state."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from roadlab.api import naming
from roadlab.api.roadmap import COHORT_PLURAL, ENROLLMENT_PLURAL, ROADMAP_PLURAL
from roadlab.controller import actions, checks, metrics, roadmap_actions, startup, state, ticking
from roadlab.controller.settings import Settings

LAB = (naming.GROUP, naming.VERSION, naming.PLURAL)
ROADMAP = (naming.GROUP, naming.VERSION, ROADMAP_PLURAL)
ENROLLMENT = (naming.GROUP, naming.VERSION, ENROLLMENT_PLURAL)
COHORT = (naming.GROUP, naming.VERSION, COHORT_PLURAL)
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


@kopf.on.startup()
def start(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    startup.configure_kopf(settings)
    startup.start_runtime(logger)
    ticking.prepare(Settings.from_environment().tick_seconds, logger)


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    ticking.stop()


@kopf.on.resume(*LAB)
@kopf.on.create(*LAB)
@kopf.on.update(*LAB, field="spec")
def reconcile(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    # Kopf's bookkeeping of operator versions before 0.2 sat under roadlab.dev, where its
    # marker hides the check-request annotation from Kopf: dropped once.
    for key in naming.LEGACY_KOPF_ANNOTATIONS:
        if key in (body["metadata"].get("annotations") or {}):
            patch.setdefault("metadata", {}).setdefault("annotations", {})[key] = None
    actions.reconcile_and_report(body, patch)


@kopf.on.field(*LAB, field=("metadata", "annotations", naming.ANNOTATION_CHECK_REQUESTED))
def check_requested(body: kopf.Body, new: Any, **_: Any) -> None:
    if new:
        actions.check_now(body, str(new))


@kopf.on.field(*LAB, field=("metadata", "annotations", naming.ANNOTATION_EXTEND_REQUESTED))
def extend_requested(body: kopf.Body, new: Any, **_: Any) -> None:
    if new:
        actions.extend(body, str(new))


@kopf.on.event("batch", "v1", "jobs", labels={naming.LABEL_COMPONENT: naming.COMPONENT_CHECK})
def check_job_changed(type: str, body: kopf.Body, **_: Any) -> None:
    if type != "DELETED":
        actions.record_check(body)


@kopf.on.event("", "v1", "pods", labels={naming.LABEL_COMPONENT: naming.COMPONENT_CHECK})
async def check_pod_changed(type: str, body: kopf.Body, **_: Any) -> None:
    # The results are recorded from the pod the moment its container ends well: the Job's
    # status says so seconds later. Every other pod event ends here, in the event loop.
    if type == "MODIFIED" and checks.pod_result(body) is not None:
        await asyncio.to_thread(actions.record_check_pod, body)


# Async: a dict update needs no thread. A sync handler waits in Kopf's executor queue, and
# a burst of Labs queued thousands of such calls, each keeping its event alive meanwhile.
@kopf.on.event(*LAB)
async def lab_event(type: str, name: str, body: kopf.Body, **_: Any) -> None:
    if type == "DELETED":
        state.labs.pop(name, None)
        metrics.LAB_STATES.forget(name)
    else:
        # Without managedFields: a third of a Lab's size, and nothing here reads them.
        metadata = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
        state.labs[name] = {**body, "metadata": metadata}
        ticking.ensure_ticker()  # the ticker only has work once there is a Lab


@kopf.on.event("", "v1", "secrets", labels={naming.LABEL_COMPONENT: naming.COMPONENT_PORTAL})
async def portal_access_changed(type: str, labels: kopf.Labels, **_: Any) -> None:
    # Deleting a Lab's access token revokes its links; a new token replaces it.
    lab = state.labs.get(labels.get(naming.LABEL_LAB, ""))
    if type == "DELETED" and lab is not None:
        await asyncio.to_thread(actions.renew_portal_access, lab)


# --- Roadmaps, Enrollments, Cohorts (controller.roadmap_actions) ------------------------------


@kopf.on.resume(*ROADMAP)
@kopf.on.create(*ROADMAP)
@kopf.on.update(*ROADMAP, field="spec")
def roadmap_changed(body: kopf.Body, **_: Any) -> None:
    roadmap_actions.roadmap_changed(body)


@kopf.on.resume(*ENROLLMENT)
@kopf.on.create(*ENROLLMENT)
@kopf.on.update(*ENROLLMENT, field="spec")
def enrollment_changed(name: str, **_: Any) -> None:
    roadmap_actions.enrollment_changed(name)


@kopf.on.field(*ENROLLMENT, field=("metadata", "annotations", naming.ANNOTATION_START_REQUESTED))
def start_requested(name: str, new: Any, **_: Any) -> None:
    if new:
        roadmap_actions.enrollment_changed(name)


@kopf.on.event(*ENROLLMENT)
async def enrollment_event(type: str, name: str, **_: Any) -> None:
    if type == "DELETED":
        metrics.ENROLLMENT_STATES.forget(name)


@kopf.on.event(*LAB, labels={naming.LABEL_ENROLLMENT: kopf.PRESENT})
async def enrolled_lab_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    # The listing at start-up (type None) only for Labs waiting to be recorded: the
    # Enrollments' resume passes record the rest.
    if type is None and not body["metadata"].get("deletionTimestamp"):
        return
    await asyncio.to_thread(roadmap_actions.enrolled_lab_changed, type or "ADDED", body)


@kopf.on.resume(*COHORT)
@kopf.on.create(*COHORT)
@kopf.on.update(*COHORT, field="spec")
def cohort_changed(body: kopf.Body, **_: Any) -> None:
    roadmap_actions.cohort_changed(body, enroll=True)


def _guarded(value: str | None, **_: Any) -> bool:
    return value in GUARDED_COMPONENTS


async def guardrail_changed(type: str, body: kopf.Body, labels: kopf.Labels, **_: Any) -> None:
    """A guardrail of a lab changed or went: put back what the operator set, and only that.

    Async, so that the events needing nothing (the listing at start-up, ADDED, a Lab not
    seen yet) end in the event loop: as a sync handler each waited in Kopf's executor
    queue, and at 1,000 Labs thousands of them queued with their events.
    """
    if type not in ("MODIFIED", "DELETED"):
        return
    # The Lab as the watch last saw it: no API read per guardrail event.
    lab = state.labs.get(labels[naming.LABEL_LAB])
    if lab is None:
        return
    await asyncio.to_thread(actions.restore, type, lab, body)


# What a learner changes when they work on a task: a change to one of these in a lab
# namespace re-checks the lab a moment later (ticking.recheck_lab, debounced).
LEARNER_RESOURCES = (
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("", "v1", "services"),
    ("", "v1", "configmaps"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("batch", "v1", "jobs"),
    ("networking.istio.io", "v1", "virtualservices"),
    ("networking.istio.io", "v1", "destinationrules"),
)


def _in_a_lab_namespace(namespace: str | None, **_: Any) -> bool:
    return bool(namespace and namespace.startswith(naming.NAMESPACE_PREFIX))


async def learner_object_changed(type: str, namespace: str | None, **_: Any) -> None:
    # Not the listing at start-up (type None): only a change made while the operator runs.
    lab_name = (namespace or "").removeprefix(naming.NAMESPACE_PREFIX)
    if type and lab_name in state.labs:
        ticking.note_change(lab_name)


for _group, _version, _plural in LEARNER_RESOURCES:
    kopf.on.event(_group, _version, _plural, when=_in_a_lab_namespace)(learner_object_changed)

for _group, _version, _plural in GUARDED_RESOURCES:
    kopf.on.event(
        _group,
        _version,
        _plural,
        labels={naming.LABEL_LAB: kopf.PRESENT, naming.LABEL_COMPONENT: _guarded},
    )(guardrail_changed)
