"""roadlab-check end to end: spec in, report out, bounded result file written."""

from __future__ import annotations

import io
import json
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from probe_support import NS, FakeContext, deployment

from roadlab.api.results import TERMINATION_MESSAGE_LIMIT, parse_check_output
from roadlab.catalog.loader import load_catalog
from roadlab.catalog.rendering import render_context
from roadlab.checker import main as checker
from roadlab.checker import probe_context
from roadlab.controller import checks
from roadlab.kube.operator_api import KubeApi
from roadlab.probes import PROBES, CheckResult, Probe, ProbeApiError

REPO = Path(__file__).resolve().parents[2]

CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "answer"},
    "data": {"answer": "41"},
}
TASKS = [
    {
        "id": "scale-web",
        "probe": "resource",
        "args": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "web",
            "fieldEquals": {"spec.replicas": 2},
        },
    },
    {
        "id": "configmap-answer",
        "probe": "resource",
        "args": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "answer",
            "fieldEquals": {"data.answer": "42"},
        },
    },
    {"id": "typo", "probe": "resourse", "args": {}},
]


def spec(tasks: list[dict[str, Any]] = TASKS, deadline: int = 60) -> str:
    return json.dumps(
        {"lab": "smoke-alice", "namespace": NS, "tasks": tasks, "deadlineSeconds": deadline}
    )


class Run:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "termination-log"
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.namespaces: list[str] = []

    def __call__(self, raw: str | None, ctx: Any = None, **kwargs: Any) -> int:
        environ = {checker.RESULT_PATH_ENV: str(self.path)}
        if raw is not None:
            environ[checker.SPEC_ENV] = raw

        def factory(namespace: str) -> Any:
            self.namespaces.append(namespace)
            return ctx if ctx is not None else FakeContext()

        return checker.main(
            [], environ=environ, context_factory=factory, out=self.out, err=self.err, **kwargs
        )

    def document(self) -> dict[str, Any]:
        return json.loads(self.path.read_text())  # type: ignore[no-any-return]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path)


def test_main_end_to_end(run: Run, now: datetime) -> None:
    ctx = FakeContext().add(deployment(replicas=2)).add(CONFIGMAP)
    assert run(spec(), ctx) == 0
    assert run.namespaces == [NS]
    text = run.path.read_text()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    document = json.loads(text)
    assert document["version"] == 1
    assert [(r["id"], r["state"]) for r in document["results"]] == [
        ("scale-web", "Passed"),
        ("configmap-answer", "Failed"),
        ("typo", "Error"),
    ]
    assert document["results"][1]["message"] == (
        'ConfigMap answer: data.answer is "41", expected "42"'
    )
    assert document["results"][1]["evidence"] == {"data.answer": "41"}
    assert document["results"][2]["message"].startswith(
        "the check is misconfigured: unknown probe 'resourse' "
        "(known: flux, gitops_drift, helm_release, http, http_latency, kafka, kserve_v2, "
    )
    # The operator's side reads it back.
    parsed = parse_check_output(text, ["scale-web", "configmap-answer", "typo"], now)
    assert [r.state for r in parsed] == ["Passed", "Failed", "Error"]

    report = run.out.getvalue()
    assert report.startswith(
        f"Roadlab check of lab smoke-alice in namespace {NS}: 3 task(s), deadline 60 s\n"
    )
    assert "[PASS] scale-web (resource, " in report
    assert "    Deployment web: spec.replicas is 2 as expected\n" in report
    assert "    evidence: spec.replicas=2\n" in report
    assert "[FAIL] configmap-answer (resource, " in report
    assert "[ERROR] typo (resourse, " in report
    assert report.endswith("Summary: 1 passed, 1 failed, 1 error(s)\n")
    assert run.err.getvalue() == ""


def test_main_with_the_operators_own_spec(run: Run) -> None:
    """The JSON the operator builds (checks.check_spec) is what the checker reads."""
    smoke = load_catalog(REPO / "labs")["smoke"]
    context = render_context({"greeting": "hello", "replicas": 2}, "smoke-alice", "alice", NS)
    raw = checks.check_spec(smoke, context, "smoke-alice", timeout=180)
    ctx = FakeContext().add(deployment(replicas=2)).add(dict(CONFIGMAP, data={"answer": "42"}))
    assert run(raw, ctx) == 0
    assert [r["state"] for r in run.document()["results"]] == ["Passed", "Passed"]


@pytest.mark.parametrize(
    ("raw", "ids", "problem"),
    [
        (None, [], "ROADLAB_CHECK_SPEC is not set"),
        ("{nope", [], "Invalid JSON"),
        ('["a"]', [], "Input should be an object"),
        (
            json.dumps({"lab": "x", "namespace": NS, "tasks": [{"id": "a", "probe": "p"}]}),
            ["a"],
            "deadlineSeconds: Field required",
        ),
        (
            json.dumps(
                {
                    "lab": "x",
                    "namespace": "Not A Namespace",
                    "deadlineSeconds": 10,
                    "tasks": [{"id": "a", "probe": "p"}, {"id": "BAD ID", "probe": "p"}, 5],
                }
            ),
            ["a"],
            "namespace: String should match pattern",
        ),
    ],
)
def test_main_malformed_spec(run: Run, raw: str | None, ids: list[str], problem: str) -> None:
    assert run(raw) == 0
    assert run.namespaces == []  # nothing was checked
    document = run.document()
    assert problem in document["error"]
    assert document["error"].startswith("the check spec was malformed: ")
    assert [r["id"] for r in document["results"]] == ids
    for result in document["results"]:
        assert result["state"] == "Error"
        assert result["message"] == document["error"]
    assert "roadlab-check: the check spec was malformed" in run.out.getvalue()


def test_main_cannot_connect(run: Run) -> None:
    def factory(namespace: str) -> Any:
        raise RuntimeError("Service host/port is not set")

    environ = {checker.SPEC_ENV: spec(), checker.RESULT_PATH_ENV: str(run.path)}
    assert checker.main([], environ=environ, context_factory=factory, out=run.out) == 0
    results = run.document()["results"]
    assert {r["state"] for r in results} == {"Error"}
    assert results[0]["message"] == (
        "the checker could not connect to the Kubernetes API: Service host/port is not set"
    )


def test_main_deadline(run: Run) -> None:
    ticks = iter([0.0, 0.0, 50.0, 50.0, 70.0, 70.0, 70.0, 70.0])

    def clock() -> float:
        return next(ticks)

    ctx = FakeContext().add(deployment(replicas=2)).add(CONFIGMAP)
    assert run(spec(deadline=60), ctx, clock=clock) == 0
    results = run.document()["results"]
    assert [r["state"] for r in results] == ["Passed", "Failed", "Error"]
    assert results[2]["message"] == "not run: the check deadline was reached"
    assert "[ERROR] typo (resourse)\n" in run.out.getvalue()  # not run: no timing


def test_main_huge_messages_stay_bounded(run: Run) -> None:
    huge = "x" * 50_000
    tasks = [
        {
            "id": f"task-{i}",
            "probe": "resource",
            "args": {"apiVersion": "v1", "kind": "ConfigMap", "name": huge[:200] + str(i)},
        }
        for i in range(30)
    ]
    assert run(spec(tasks)) == 0
    text = run.path.read_text()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    assert len(json.loads(text)["results"]) == 30


def test_main_cannot_write_result(run: Run, tmp_path: Path) -> None:
    run.path = tmp_path / "missing-dir" / "termination-log"
    assert run(spec([])) == 1
    assert "cannot write the result to" in run.err.getvalue()


def test_console_script_is_declared() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["roadlab-check"] == "roadlab.checker.main:main"


# --- the real context over KubeApi -----------------------------------------------------------


class FakeListing:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return self.data


class FakeResource:
    def __init__(self, items: list[dict[str, Any]], error: Exception | None = None) -> None:
        self.items = items
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def get(self, **kwargs: Any) -> FakeListing:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        if kwargs.get("name"):
            return FakeListing(self.items[0])
        return FakeListing({"kind": "PodList", "items": self.items})


class FakeResources:
    def __init__(self, resource: FakeResource | None) -> None:
        self.resource = resource

    def get(self, api_version: str, kind: str) -> FakeResource:
        if self.resource is None:
            raise ResourceNotFoundError(f"No matches found for {{'kind': '{kind}'}}")
        return self.resource


class FakeDynamic:
    def __init__(self, resource: FakeResource | None) -> None:
        self.resources = FakeResources(resource)


def kube(resource: FakeResource | None) -> probe_context.KubeProbeContext:
    api = KubeApi(client.ApiClient())
    api._dynamic = FakeDynamic(resource)  # type: ignore[assignment]
    return probe_context.KubeProbeContext(api, NS)


def test_kube_context_lists_and_gets() -> None:
    pods = [{"metadata": {"name": "web-1"}}, {"metadata": {"name": "web-2"}}]
    resource = FakeResource(pods)
    ctx = kube(resource)
    assert ctx.list_objects("v1", "Pod", "app=web") == pods
    assert ctx.get_object("v1", "Pod", "web-1") == pods[0]
    assert resource.calls == [
        {"namespace": NS, "label_selector": "app=web"},
        {"name": "web-1", "namespace": NS},
    ]
    assert ctx.service_url("web", 80, "/x") == f"http://web.{NS}.svc.cluster.local:80/x"


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (None, "the API server does not serve PodMetrics (metrics.k8s.io/v1beta1)"),
        (
            FakeResource([], ApiException(status=403, reason="Forbidden")),
            f"the checker is not allowed to read PodMetrics (metrics.k8s.io/v1beta1) in "
            f"namespace {NS}",
        ),
        (FakeResource([], ApiException(status=500, reason="Boom")), "reading PodMetrics"),
        (
            FakeResource([], ConnectionRefusedError(111, "refused")),
            "the Kubernetes API is unreachable",
        ),
    ],
)
def test_kube_context_errors(resource: FakeResource | None, message: str) -> None:
    ctx = kube(resource)
    with pytest.raises(ProbeApiError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ctx.list_objects("metrics.k8s.io/v1beta1", "PodMetrics", "app=web")


def test_probes_see_the_time_left_before_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float | None] = []

    def record(ctx: Any, args: Any) -> CheckResult:
        seen.append(ctx.time_left())
        assert ctx.namespace == NS
        assert ctx.service_url("web", 80, "/") == "http://web.lab-x.svc.cluster.local:80/"
        return CheckResult.ok("fine")

    original = PROBES["rollout"]
    monkeypatch.setitem(PROBES, "rollout", Probe("rollout", original.args_model, record))
    ticks = iter([100.0, 100.0, 100.0, 100.0, 130.0, 130.0, 130.0])
    tasks = [{"id": f"t{i}", "probe": "rollout", "args": {"name": "web"}} for i in range(2)]
    parsed = checker.CheckSpec.model_validate_json(spec(tasks, deadline=60))
    runs = checker.run_tasks(parsed, FakeContext(), clock=lambda: next(ticks))
    assert [r.result.state for r in runs] == ["Passed", "Passed"]
    assert seen == [60.0, 30.0]


@pytest.mark.parametrize(
    ("url", "service"),
    [
        ("http://triton.lab-a.svc.cluster.local:8000/v2", "triton"),
        ("http://triton.lab-b.svc.cluster.local:8000/v2", None),
        ("http://a.b.lab-a.svc.cluster.local/", None),
        ("http://example.com/", None),
    ],
)
def test_lab_service_name(url: str, service: str | None) -> None:
    assert probe_context.lab_service_name(url, "lab-a") == service


class _ServiceApi:
    """KubeApi's get, answering for the Services named at construction."""

    def __init__(self, services: set[str]) -> None:
        self.services = services
        self.reads = 0

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        self.reads += 1
        return {"kind": kind, "metadata": {"name": name}} if name in self.services else None


@pytest.mark.parametrize(("exists", "resolves_after"), [(True, 2), (False, None)])
def test_a_new_service_gets_time_to_resolve(
    monkeypatch: pytest.MonkeyPatch, exists: bool, resolves_after: int | None
) -> None:
    # Cluster DNS caches NXDOMAIN: a Service just created may not resolve for a while.
    attempts: list[str] = []

    def request(method: str, url: str, **_: Any) -> probe_context.HttpResponse:
        attempts.append(url)
        if resolves_after is None or len(attempts) <= resolves_after:
            raise probe_context.NameResolutionError("host does not resolve")
        return probe_context.HttpResponse(status=200, body=b"ok", seconds=0.01)

    clock = iter(range(0, 1000, 1))
    monkeypatch.setattr(probe_context, "http_request", request)
    monkeypatch.setattr(checker.time, "sleep", lambda _: None)
    monkeypatch.setattr(checker.time, "monotonic", lambda: float(next(clock)))
    api = _ServiceApi({"web"} if exists else set())
    context = probe_context.KubeProbeContext(api, "lab-a")  # type: ignore[arg-type]
    url = "http://web.lab-a.svc.cluster.local:80/"
    if exists:
        assert context.http("GET", url).status == 200
        assert len(attempts) == 3
    else:
        with pytest.raises(probe_context.NameResolutionError):
            context.http("GET", url)
        assert len(attempts) == 1  # no such Service: reported at once


def test_a_service_that_never_resolves_is_reported_after_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[str] = []

    def request(method: str, url: str, **_: Any) -> probe_context.HttpResponse:
        attempts.append(url)
        raise probe_context.NameResolutionError("host does not resolve")

    now = [0.0]
    monkeypatch.setattr(probe_context, "http_request", request)
    monkeypatch.setattr(checker.time, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    monkeypatch.setattr(checker.time, "monotonic", lambda: now[0])
    context = probe_context.KubeProbeContext(_ServiceApi({"web"}), "lab-a")  # type: ignore[arg-type]
    with pytest.raises(probe_context.NameResolutionError):
        context.http("GET", "http://web.lab-a.svc.cluster.local/")
    assert now[0] <= probe_context.NEW_SERVICE_DNS_WAIT_SECONDS
    # The first attempt, then one every retry interval within the wait.
    assert len(attempts) == 1 + int(
        probe_context.NEW_SERVICE_DNS_WAIT_SECONDS // probe_context.NEW_SERVICE_DNS_RETRY_SECONDS
    )
