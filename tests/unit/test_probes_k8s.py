"""Probes that read Kubernetes objects: resource, rollout, pods_ready, pod_metrics."""

from __future__ import annotations

from typing import Any

import pytest
from probe_support import NS, FakeContext, deployment, pod

from roadlab.probes import ProbeApiError, run_check

HPA = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web", "labels": {"istio-injection": "enabled"}},
    "spec": {
        "minReplicas": 1,
        "maxReplicas": 5,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 50},
                },
            }
        ],
    },
}
CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "answer"},
    "data": {"answer": "42", "motto": "Hello, world"},
}


def ctx_with(*objects: dict[str, Any]) -> FakeContext:
    ctx = FakeContext()
    for obj in objects:
        ctx.add(obj)
    return ctx


def resource(**args: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", **args}


# --- resource -------------------------------------------------------------------------------


def test_resource_field_equals_passes() -> None:
    ctx = ctx_with(deployment(replicas=2))
    result = run_check(ctx, "resource", resource(fieldEquals={"spec.replicas": 2}))
    assert result.state == "Passed"
    assert result.message == "Deployment web: spec.replicas is 2 as expected"
    assert result.evidence == {"spec.replicas": 2}
    assert ctx.reads == [("apps/v1", "Deployment", "web")]


def test_resource_field_equals_fails_word_for_word() -> None:
    ctx = ctx_with(deployment(replicas=1))
    result = run_check(ctx, "resource", resource(fieldEquals={"spec.replicas": 2}))
    assert result.state == "Failed"
    assert result.message == "Deployment web: spec.replicas is 1, expected 2"
    assert result.evidence == {"spec.replicas": 1}


def test_resource_not_found_word_for_word() -> None:
    result = run_check(
        FakeContext(),
        "resource",
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "web"},
    )
    assert result.state == "Failed"
    assert result.message == (
        f"HorizontalPodAutoscaler web not found in namespace {NS}: create one with "
        "`kubectl autoscale` or a manifest"
    )


def test_resource_configmap_string_value() -> None:
    ok = run_check(
        ctx_with(CONFIGMAP),
        "resource",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "answer",
            "fieldEquals": {"data.answer": "42"},
        },
    )
    assert ok.passed
    wrong = dict(CONFIGMAP, data={"answer": "41"})
    result = run_check(
        ctx_with(wrong),
        "resource",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "answer",
            "fieldEquals": {"data.answer": "42"},
        },
    )
    assert result.message == 'ConfigMap answer: data.answer is "41", expected "42"'


def test_resource_hpa_paths_and_labels() -> None:
    args = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "name": "web",
        "fieldEquals": {
            "spec.metrics[0].resource.target.averageUtilization": 50,
            'metadata.labels["istio-injection"]': "enabled",
        },
        "fieldAtLeast": {"spec.maxReplicas": 3},
        "fieldAtMost": {"spec.minReplicas": 2},
        "fieldPresent": ["spec.metrics[type=Resource].resource.name"],
    }
    result = run_check(ctx_with(HPA), "resource", args)
    assert result.state == "Passed", result.message
    assert result.evidence["spec.maxReplicas"] == 5
    assert result.evidence['metadata.labels["istio-injection"]'] == "enabled"


def test_resource_quantities() -> None:
    ctx = ctx_with(deployment(cpu="0.1"))
    path = "spec.template.spec.containers[name=web].resources.requests.cpu"
    mem = "spec.template.spec.containers[name=web].resources.requests.memory"
    result = run_check(
        ctx,
        "resource",
        resource(
            fieldEquals={path: "100m"},
            fieldAtLeast={path: "50m", mem: "64Mi"},
            fieldAtMost={path: 0.25, mem: "1Gi"},
        ),
    )
    assert result.state == "Passed", result.message
    low = run_check(ctx, "resource", resource(fieldAtLeast={path: "200m"}))
    assert low.message == f'Deployment web: {path} is "0.1", expected at least "200m"'
    high = run_check(ctx, "resource", resource(fieldAtMost={mem: "100Mi"}))
    assert high.message == f'Deployment web: {mem} is "128Mi", expected at most "100Mi"'


def test_resource_reports_every_problem() -> None:
    ctx = ctx_with(deployment(replicas=1))
    result = run_check(
        ctx,
        "resource",
        resource(
            fieldEquals={"spec.replicas": 3, "spec.paused": True},
            fieldMatches={"spec.template.spec.containers[0].image": r"^nginx:1\.28"},
            fieldPresent=["spec.template.spec.containers[name=web].readinessProbe"],
            fieldAtLeast={"spec.template.spec.containers[0].name": 1},
        ),
    )
    assert result.state == "Failed"
    assert result.message == (
        "Deployment web: spec.replicas is 1, expected 3; spec.paused is not set, expected true; "
        'spec.template.spec.containers[0].name is "web", which is not a number; expected at '
        'least 1; spec.template.spec.containers[0].image is "nginx:1.27", expected to match '
        r"^nginx:1\.28; spec.template.spec.containers[name=web].readinessProbe is not set, "
        "expected it to be present"
    )
    assert result.evidence["spec.paused"] == "<unset>"


def test_resource_matches_and_exists_only() -> None:
    ctx = ctx_with(CONFIGMAP)
    base = {"apiVersion": "v1", "kind": "ConfigMap", "name": "answer"}
    assert run_check(ctx, "resource", {**base, "fieldMatches": {"data.motto": "^Hello"}}).passed
    only = run_check(ctx, "resource", base)
    assert only.passed and only.message == f"ConfigMap answer exists in namespace {NS}"


def test_resource_absent() -> None:
    base = {"apiVersion": "v1", "kind": "ConfigMap", "name": "answer", "exists": False}
    assert run_check(FakeContext(), "resource", base).passed
    result = run_check(ctx_with(CONFIGMAP), "resource", base)
    assert result.state == "Failed"
    assert result.message == (
        f"ConfigMap answer still exists in namespace {NS}: expected it to be deleted "
        "(`kubectl delete configmap answer`)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"kind": "Deployment", "name": "web"}, "apiVersion: Field required"),
        (resource(fieldEquals={"spec..x": 1}), "empty segment"),
        (resource(fieldAtLeast={"spec.replicas": "lots"}), "not a number or quantity"),
        (resource(fieldMatches={"spec.x": "("}), "invalid regular expression"),
        (resource(exists=False, fieldPresent=["spec"]), "cannot be combined"),
        (resource(fieldEqual={"spec.replicas": 1}), "fieldEqual: Extra inputs are not permitted"),
    ],
)
def test_resource_bad_args_are_errors(args: dict[str, Any], message: str) -> None:
    result = run_check(FakeContext(), "resource", args)
    assert result.state == "Error"
    assert result.message.startswith("the check is misconfigured: probe 'resource': invalid args")
    assert message in result.message


def test_resource_api_error_becomes_error() -> None:
    class Broken(FakeContext):
        def get_object(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
            raise ProbeApiError("the API server does not serve Widget (example.com/v1)")

    result = run_check(
        Broken(), "resource", {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w"}
    )
    assert result.state == "Error"
    assert result.message == (
        "probe resource could not read from the Kubernetes API: the API server does not serve "
        "Widget (example.com/v1)"
    )


def test_unexpected_exception_becomes_error() -> None:
    class Broken(FakeContext):
        def get_object(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
            raise KeyError("boom")

    result = run_check(Broken(), "rollout", {"name": "web"})
    assert result.state == "Error"
    assert result.message == "probe rollout failed unexpectedly: KeyError: 'boom'"


# --- rollout --------------------------------------------------------------------------------


def test_rollout_passes() -> None:
    result = run_check(ctx_with(deployment(replicas=3)), "rollout", {"name": "web"})
    assert result.state == "Passed"
    assert result.message == "Deployment web is rolled out: 3 of 3 replicas ready (needed 3)"
    assert result.evidence["readyReplicas"] == 3


def test_rollout_not_enough_ready() -> None:
    result = run_check(ctx_with(deployment(replicas=3, ready=1)), "rollout", {"name": "web"})
    assert result.state == "Failed"
    assert result.message == (
        "Deployment web: 1 of 3 replicas ready, expected at least 3 (see `kubectl rollout "
        "status deployment/web` and `kubectl get pods`)"
    )
    relaxed = run_check(
        ctx_with(deployment(replicas=3, ready=1)), "rollout", {"name": "web", "minReady": 1}
    )
    assert relaxed.passed


def test_rollout_generation_not_observed() -> None:
    result = run_check(
        ctx_with(deployment(replicas=2, generation=3, observed=2)), "rollout", {"name": "web"}
    )
    assert result.state == "Failed"
    assert "has not processed the latest change yet (generation 3, observed 2)" in result.message


def test_rollout_in_progress_and_statefulset() -> None:
    ctx = ctx_with(deployment(replicas=2, updated=1))
    result = run_check(ctx, "rollout", {"name": "web"})
    assert result.state == "Failed"
    assert "only 1 of 2 replicas run the latest template" in result.message
    sts = deployment("db", replicas=2, updated=0)
    sts["kind"] = "StatefulSet"
    assert run_check(ctx_with(sts), "rollout", {"kind": "StatefulSet", "name": "db"}).passed
    missing = run_check(FakeContext(), "rollout", {"kind": "StatefulSet", "name": "db"})
    assert missing.message == (
        f"StatefulSet db not found in namespace {NS}: "
        "create one with a manifest (`kubectl apply -f`)"
    )


def test_rollout_rejects_other_kinds() -> None:
    result = run_check(FakeContext(), "rollout", {"kind": "DaemonSet", "name": "x"})
    assert result.state == "Error"
    assert "kind: Input should be 'Deployment' or 'StatefulSet'" in result.message


# --- pods_ready -----------------------------------------------------------------------------


def test_pods_ready_passes_and_filters_by_label() -> None:
    ctx = ctx_with(pod("web-1"), pod("web-2"), pod("db-1", {"app": "db"}, ready=False))
    result = run_check(ctx, "pods_ready", {"labelSelector": "app=web", "minCount": 2})
    assert result.state == "Passed"
    assert result.message == "2 of 2 pods matching app=web ready (needed 2)"
    assert ctx.lists == [("v1", "Pod", "app=web")]


def test_pods_ready_not_enough() -> None:
    ctx = ctx_with(pod("web-1"), pod("web-2", ready=False, waiting="ImagePullBackOff"))
    result = run_check(ctx, "pods_ready", {"labelSelector": "app=web", "minCount": 2})
    assert result.state == "Failed"
    assert result.message == (
        "1 of 2 pods matching app=web is ready, expected at least 2; not ready: web-2 "
        "(ImagePullBackOff)"
    )


def test_pods_ready_none_match() -> None:
    result = run_check(FakeContext(), "pods_ready", {"labelSelector": "app=web"})
    assert result.message.startswith(f"no pods match app=web in namespace {NS}: expected")


def test_pods_ready_terminating_pods_do_not_count() -> None:
    leaving = pod("web-1")
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    result = run_check(ctx_with(leaving), "pods_ready", {"labelSelector": "app=web"})
    assert result.state == "Failed"
    assert "web-1 (Terminating)" in result.message


def test_pods_ready_container_has_sidecar() -> None:
    ctx = ctx_with(
        pod("web-1", containers=("web", "istio-proxy")),
        pod("web-2", init_sidecars=("istio-proxy",)),  # native sidecar
        pod("web-3"),
    )
    args = {"labelSelector": "app=web", "minCount": 3, "containerHas": [{"name": "istio-proxy"}]}
    result = run_check(ctx, "pods_ready", args)
    assert result.state == "Failed"
    assert result.message == (
        "1 of 3 ready pods matching app=web lack a container named istio-proxy: web-3; expected "
        "at least 3 pods with it (pods only get new containers when they are recreated)"
    )
    args["minCount"] = 2
    ok = run_check(ctx, "pods_ready", args)
    assert ok.state == "Passed"
    assert ok.evidence == {"matching": 3, "ready": 3, "with istio-proxy": 2}
    image = {"name": "istio-proxy", "image": r"^example/istio-proxy:\d"}
    assert run_check(ctx, "pods_ready", {**args, "containerHas": [image]}).passed
    wrong = {"name": "istio-proxy", "image": "proxyv2"}
    assert not run_check(ctx, "pods_ready", {**args, "containerHas": [wrong]}).passed


# --- pod_metrics ----------------------------------------------------------------------------


def pod_metrics(
    name: str, *usages: tuple[str, str], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.k8s.io/v1beta1",
        "kind": "PodMetrics",
        "metadata": {"name": name, "labels": labels or {"app": "web"}},
        "timestamp": "2026-11-21T10:00:00Z",
        "window": "15s",
        "containers": [
            {"name": f"c{i}", "usage": {"cpu": cpu, "memory": memory}}
            for i, (cpu, memory) in enumerate(usages)
        ],
    }


def test_pod_metrics_passes_with_evidence() -> None:
    ctx = ctx_with(
        pod_metrics("web-1", ("250m", "64Mi"), ("5000000n", "1024Ki")),
        pod_metrics("web-2", ("1", "131072Ki")),
        pod_metrics("db-1", ("2", "1Gi"), labels={"app": "db"}),
    )
    result = run_check(ctx, "pod_metrics", {"labelSelector": "app=web", "minPods": 2})
    assert result.state == "Passed"
    assert result.evidence == {
        "pods": 2,
        "cpuMillicores": 1255.0,
        "memoryMiB": 193.0,
        "web-1 cpuMillicores": 255.0,
        "web-1 memoryMiB": 65.0,
        "web-2 cpuMillicores": 1000.0,
        "web-2 memoryMiB": 128.0,
    }
    assert result.message == (
        "the metrics API reports usage for 2 pods matching app=web: 1255.0m CPU, 193.0 MiB "
        "memory in total"
    )
    assert ctx.lists == [("metrics.k8s.io/v1beta1", "PodMetrics", "app=web")]


def test_pod_metrics_fails_when_too_few() -> None:
    ctx = ctx_with(pod_metrics("web-1", ("1m", "1Mi")), pod_metrics("web-2"))  # no containers yet
    result = run_check(ctx, "pod_metrics", {"labelSelector": "app=web", "minPods": 2})
    assert result.state == "Failed"
    assert result.message.startswith(
        "the metrics API reports usage for 1 pod matching app=web, expected at least 2"
    )


def test_pod_metrics_api_missing_is_error() -> None:
    class NoMetrics(FakeContext):
        def list_objects(
            self, api_version: str, kind: str, label_selector: str | None = None
        ) -> list[dict[str, Any]]:
            raise ProbeApiError("the API server does not serve PodMetrics (metrics.k8s.io/v1beta1)")

    result = run_check(NoMetrics(), "pod_metrics", {"labelSelector": "app=web"})
    assert result.state == "Error"
    assert "does not serve PodMetrics" in result.message
