"""Pure decisions and builders for validation runs (check Jobs).

A run is a Job in the operator's namespace, from the operator's image, under the
read-only checker ServiceAccount: out of the learner's reach. Its name derives from the
Lab and the request token, so a repeated request (or a restarted operator) finds the
same Job instead of starting another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from roadlab.api import naming
from roadlab.api.durations import parse_timestamp
from roadlab.api.lab import CheckRunState, LabStatus
from roadlab.catalog.rendering import render_data
from roadlab.catalog.schema import LabDefinition
from roadlab.controller.settings import DEFAULT_POD_CIDR

# The checker stops starting tasks this long before the Job's deadline, so it can
# still report what it has; the deadline itself catches a check that hangs.
CHECKER_DEADLINE_MARGIN_SECONDS = 5
JOB_TTL_SECONDS = 600
INITIAL_TOKEN_PREFIX = "initial"
PERIODIC_TOKEN_PREFIX = "periodic"
# A re-check after a change to the lab's objects (controller.autocheck): recorded in
# status.lastRecheck, so lastCheck stays the run of the latest request, which a learner's
# `kubectl lab check --wait` is waiting for.
RECHECK_TOKEN_PREFIX = "auto"


def is_recheck(token: str) -> bool:
    return token.startswith(f"{RECHECK_TOKEN_PREFIX}-")


JobPhase = Literal["Running", "Succeeded", "Failed", "TimedOut"]
# Probes that take longer than a request should (a load test of an autoscaler: minutes), or
# that generate load (http_latency: up to 1000 threads) which the warm checker, shared by
# every lab, should not carry: they run in a Job of their own.
LONG_PROBES = frozenset({"load_then_assert", "http_latency"})
TOKEN_ANNOTATION = f"{naming.GROUP}/check-token"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"  # set on a Job's pods by the Job controller
WARM_JOB = "warm"  # lastCheck.job of a run made by the warm checker
WAIT_RETRY_SECONDS = 2  # a request that must wait (a run in flight) is tried again then

# A lab with checkRunner: mesh (the istio lab) is checked from a pod on the service mesh:
# Istio's injector gives the check Job's pod a sidecar (Istio's pod-level opt-in label; a
# native sidecar, so the Job ends when the check container does). Routing such as a weighted
# split happens in the client's sidecar, so only a meshed client can measure it. Two kinds of
# traffic bypass the sidecar: the Kubernetes API (port 443: the checker reads the lab with its
# own credentials, whatever the mesh does) and connections straight to pod IPs, so that
# plaintext_refused speaks plain text as a client without a mesh identity would.
MESH_INJECT_LABEL = "sidecar.istio.io/inject"
MESH_POD_ANNOTATIONS = {
    "sidecar.istio.io/nativeSidecar": "true",
    "traffic.sidecar.istio.io/excludeOutboundPorts": "443",
    "sidecar.istio.io/proxyCPU": "20m",
    "sidecar.istio.io/proxyMemory": "48Mi",
    "sidecar.istio.io/proxyCPULimit": "500m",
    "sidecar.istio.io/proxyMemoryLimit": "128Mi",
}
MESH_BYPASS_ANNOTATION = "traffic.sidecar.istio.io/excludeOutboundIPRanges"


def runs_warm(definition: LabDefinition, warm_checker: bool) -> bool:
    """Whether the lab's checks go to the warm checker: it is on, the lab does not ask for
    Jobs, and no task uses a long probe."""
    return (
        warm_checker
        and definition.check_runner == "auto"
        and not any(task.check.probe in LONG_PROBES for task in definition.tasks)
    )


@dataclass(frozen=True)
class CheckRequest:
    lab_name: str
    lab_uid: str
    token: str
    lab_namespace: str


def check_spec(
    definition: LabDefinition, context: Mapping[str, Any], lab_name: str, timeout: int
) -> str:
    """The checker's input (env ROADLAB_CHECK_SPEC): the tasks to run and where.

    Check args are rendered like environment templates (structure first), so a task can
    check against the Lab's own parameters: maxReplicas: "{{ params.maxReplicas }}".
    """
    tasks = [
        {
            "id": t.id,
            "probe": t.check.probe,
            "args": render_data(f"task {t.id} check args", t.check.args, context),
        }
        for t in definition.tasks
    ]
    return json.dumps(
        {
            "lab": lab_name,
            "namespace": context["namespace"],
            "deadlineSeconds": max(1, timeout - CHECKER_DEADLINE_MARGIN_SECONDS),
            "tasks": tasks,
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def check_job(
    request: CheckRequest,
    spec_json: str,
    *,
    image: str,
    operator_namespace: str,
    timeout: int,
    image_pull_secrets: Sequence[str] = (),
    meshed: bool = False,
    pod_cidr: str = DEFAULT_POD_CIDR,
) -> dict[str, Any]:
    """The Job of one validation run; owned by the Lab, so it goes when the Lab goes.

    image_pull_secrets: Secrets in operator_namespace to pull `image` with (the chart's
    imagePullSecrets: the image is the operator's own). meshed: the pod joins the service
    mesh (MESH_INJECT_LABEL); pod_cidr: the pod addresses its sidecar lets it reach directly.
    """
    labels = {
        **naming.labels(request.lab_name, naming.COMPONENT_CHECK),
        "app.kubernetes.io/name": "roadlab-check",
    }
    restricted = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod: dict[str, Any] = {
        "serviceAccountName": naming.CHECKER_SERVICE_ACCOUNT,
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "check",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["roadlab-check"],
                "env": [{"name": "ROADLAB_CHECK_SPEC", "value": spec_json}],
                "resources": {
                    "requests": {"cpu": "50m", "memory": "96Mi"},
                    "limits": {"cpu": "1", "memory": "256Mi"},
                },
                "securityContext": restricted,
                "terminationMessagePolicy": "File",
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
    }
    if image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in image_pull_secrets]
    pod_labels = dict(labels)
    pod_annotations = {TOKEN_ANNOTATION: request.token}
    if meshed:
        pod_labels[MESH_INJECT_LABEL] = "true"
        pod_annotations |= {**MESH_POD_ANNOTATIONS, MESH_BYPASS_ANNOTATION: pod_cidr}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": naming.check_job_name(request.lab_name, request.token),
            "namespace": operator_namespace,
            "labels": labels,
            "annotations": {TOKEN_ANNOTATION: request.token},
            "ownerReferences": [
                {
                    "apiVersion": naming.API_VERSION,
                    "kind": naming.KIND,
                    "name": request.lab_name,
                    "uid": request.lab_uid,
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": timeout,
            "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
            # The token on the pod too: its end is recorded from the pod (collect_check_pod).
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": pod,
            },
        },
    }


def job_phase(job: Mapping[str, Any]) -> JobPhase:
    """Where a check Job stands, from its status conditions."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return "Succeeded"
        if condition.get("type") == "Failed":
            return "TimedOut" if condition.get("reason") == "DeadlineExceeded" else "Failed"
    return "Running"


def pod_result(pod: Mapping[str, Any]) -> tuple[JobPhase, str | None] | None:
    """The check container's termination message once it has ended well (exit 0: the
    checker wrote its result); None otherwise. Every other end (killed at the deadline,
    could not write) is the Job's to report, as TimedOut or Failed."""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        ended = (container.get("state") or {}).get("terminated")
        if container.get("name") == "check" and ended and ended.get("exitCode") == 0:
            return "Succeeded", ended.get("message")
    return None


def periodic_token(status: LabStatus, interval_seconds: int, now: datetime) -> str | None:
    """A token for a periodic run when one is due, else None (0 disables periodic runs)."""
    if interval_seconds <= 0:
        return None
    last = status.last_check
    if last is not None and last.state == "Running":
        return None
    since = last.finished_at if last and last.finished_at else status.started_at
    if since is not None and now - parse_timestamp(since) < timedelta(seconds=interval_seconds):
        return None
    return f"{PERIODIC_TOKEN_PREFIX}-{int(now.timestamp())}"


def pending_request(annotations: Mapping[str, str], status: LabStatus) -> str | None:
    """The check-requested annotation's value when no run has been made for it yet."""
    token = annotations.get(naming.ANNOTATION_CHECK_REQUESTED)
    if not token or token == status.last_request:
        return None
    if status.last_check is not None and status.last_check.token == token:
        return None
    return token


def run_state(results_states: Sequence[str], phase: JobPhase) -> CheckRunState:
    """The lastCheck.state of a finished run."""
    if phase == "TimedOut":
        return "TimedOut"
    if any(state == "Error" for state in results_states):
        return "Error"
    if all(state == "Passed" for state in results_states):
        return "Passed"
    return "Failed"
