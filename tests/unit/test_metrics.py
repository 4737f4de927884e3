"""The operator's Prometheus metrics: build info, reconcile results and durations, API
requests by status code, no _created series, and every metric the chart's dashboard and
alerts query being one the operator exports."""

from __future__ import annotations

import json
import platform
import re
import socket
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY, generate_latest

from roadlab.api.lab import LabStatus
from roadlab.controller import actions, metrics, reconciler, state
from roadlab.controller.settings import Settings
from roadlab.kube.client import count_requests

CHART = Path(__file__).resolve().parents[2] / "charts" / "roadlab"
# A metric name in PromQL: not part of a longer identifier, a label value with a dash
# (job="roadlab-operator"), or a template's "roadlab.labels".
ROADLAB_NAME = re.compile(r"(?<![\w:])roadlab_[A-Za-z0-9_:]*")
TEMPLATE_ACTION = re.compile(r"\{\{.*?\}\}")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- roadlab_build_info -------------------------------------------------------------------


def test_build_info_is_one_with_the_versions() -> None:
    labels = {
        "version": metadata.version("roadlab"),
        "python_version": platform.python_version(),
        "kopf_version": metadata.version("kopf"),
    }
    assert REGISTRY.get_sample_value("roadlab_build_info", labels) == 1.0
    # One series: the versions are those of this one process.
    text = generate_latest(REGISTRY).decode()
    assert len([line for line in text.splitlines() if line.startswith("roadlab_build_info")]) == 1


def test_version_of_an_uninstalled_distribution_is_unknown() -> None:
    assert metrics._version("roadlab-no-such-distribution") == "unknown"


# --- no _created series -------------------------------------------------------------------


def test_counters_and_histograms_export_no_created_series() -> None:
    metrics.RECONCILES.labels("ok").inc(0)
    metrics.PROVISIONING_SECONDS.labels("created-test").observe(1)
    metrics.KUBE_API_REQUESTS.labels("GET", "labs", "200").inc(0)
    text = generate_latest(REGISTRY).decode()
    assert "roadlab_reconciles_total" in text
    assert "roadlab_provisioning_duration_seconds_bucket" in text
    assert "_created" not in text


# --- roadlab_reconciles_total and roadlab_reconcile_duration_seconds ----------------------


@dataclass
class StatusApi:
    """patch_lab_status only, as report() uses it; `conflict` answers 409."""

    conflict: bool = False
    patches: list[dict[str, Any]] = field(default_factory=list)

    def patch_lab_status(
        self, name: str, status: dict[str, Any], resource_version: str | None
    ) -> None:
        if self.conflict:
            raise ApiException(status=409, reason="Conflict")
        self.patches.append(status)


LAB = {
    "apiVersion": "roadlab.dev/v1alpha1",
    "kind": "Lab",
    "metadata": {"name": "metrics-lab", "uid": "u1", "resourceVersion": "7"},
    "spec": {"lab": "smoke"},
}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[StatusApi]:
    fake = StatusApi()
    runtime = state.Runtime(Settings.from_environment(), fake, {})  # type: ignore[arg-type]
    monkeypatch.setattr(state, "_runtime", runtime)
    # Each reconcile takes 0.3 s on this clock.
    ticks = iter([100.0, 100.3])
    monkeypatch.setattr(actions, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    yield fake
    metrics.LAB_STATES.forget("metrics-lab")


def reconcile_with(monkeypatch: pytest.MonkeyPatch, outcome: reconciler.Outcome | Exception) -> str:
    """Run one reconcile whose reconciler returns (or raises) `outcome`; what it raised."""

    def reconcile_lab(*_: Any, **__: Any) -> reconciler.Outcome:
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(reconciler, "reconcile_lab", reconcile_lab)
    try:
        actions.reconcile_and_report(LAB, {})
    except Exception as error:
        return type(error).__name__
    return "nothing"


# Written back while the Lab changed meanwhile: the status write gets a 409.
CONFLICTING = reconciler.Outcome(status=LabStatus())


@pytest.mark.parametrize(
    ("outcome", "result", "raised"),
    [
        (reconciler.Outcome(status=LabStatus()), "ok", "nothing"),
        (reconciler.Outcome(status=LabStatus(), retry_after=15), "retry", "TemporaryError"),
        (CONFLICTING, "retry", "StatusConflict"),
        (
            reconciler.Outcome(status=LabStatus(), permanent_error="no such lab"),
            "invalid",
            "PermanentError",
        ),
        (ApiException(status=500, reason="etcd"), "error", "ApiException"),
    ],
)
def test_every_reconcile_is_counted_and_timed_by_its_result(
    monkeypatch: pytest.MonkeyPatch,
    api: StatusApi,
    outcome: reconciler.Outcome | Exception,
    result: str,
    raised: str,
) -> None:
    api.conflict = outcome is CONFLICTING
    before = {
        name: sample(name, result=result)
        for name in (
            "roadlab_reconciles_total",
            "roadlab_reconcile_duration_seconds_count",
            "roadlab_reconcile_duration_seconds_sum",
        )
    }
    bucket = {"result": result, "le": "0.5"}
    in_bucket = sample("roadlab_reconcile_duration_seconds_bucket", **bucket)
    below = sample("roadlab_reconcile_duration_seconds_bucket", result=result, le="0.25")

    assert reconcile_with(monkeypatch, outcome) == raised

    assert (
        sample("roadlab_reconciles_total", result=result) == before["roadlab_reconciles_total"] + 1
    )
    assert (
        sample("roadlab_reconcile_duration_seconds_count", result=result)
        == before["roadlab_reconcile_duration_seconds_count"] + 1
    )
    assert sample("roadlab_reconcile_duration_seconds_sum", result=result) == pytest.approx(
        before["roadlab_reconcile_duration_seconds_sum"] + 0.3
    )
    assert sample("roadlab_reconcile_duration_seconds_bucket", **bucket) == in_bucket + 1
    assert sample("roadlab_reconcile_duration_seconds_bucket", result=result, le="0.25") == below


def test_every_result_is_exported_before_any_reconcile() -> None:
    text = generate_latest(REGISTRY).decode()
    for result in metrics.RECONCILE_RESULTS:
        assert f'roadlab_reconciles_total{{result="{result}"}}' in text
        assert f'roadlab_reconcile_duration_seconds_count{{result="{result}"}}' in text


# --- roadlab_kube_api_requests_total{code} ------------------------------------------------


class Pool:
    """A urllib3 pool manager that answers every request with `status` (or raises)."""

    def __init__(self, status: int | Exception) -> None:
        self.status = status

    def request(self, method: str, url: str, **_: Any) -> urllib3.HTTPResponse:
        if isinstance(self.status, Exception):
            raise self.status
        body = json.dumps({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "x"}})
        return urllib3.HTTPResponse(
            body=body.encode(),
            status=self.status,
            headers={"content-type": "application/json"},
            preload_content=False,
        )


def counted_client(status: int | Exception) -> tuple[client.CoreV1Api, list[tuple[str, ...]]]:
    """A real API client over a fake connection pool, its requests counted into a list."""
    configuration = client.Configuration(host="https://kube.invalid")
    api_client = client.ApiClient(configuration)
    api_client.rest_client.pool_manager = Pool(status)  # type: ignore[assignment]
    counts: list[tuple[str, ...]] = []
    count_requests(api_client, lambda *labels: counts.append(labels))
    return client.CoreV1Api(api_client), counts


@pytest.mark.parametrize("status", [200, 404, 409, 500])
def test_requests_are_counted_with_their_status_code(status: int) -> None:
    core, counts = counted_client(status)
    try:
        core.read_namespace("x")
    except ApiException as error:
        assert error.status == status  # the client still raises for the caller
    assert counts == [("GET", "namespaces", str(status))]


@pytest.mark.parametrize(
    "error",
    [
        urllib3.exceptions.MaxRetryError(
            urllib3.HTTPSConnectionPool("kube.invalid"), "/api/v1/namespaces/x", ConnectionError()
        ),
        urllib3.exceptions.ProtocolError("Connection aborted."),
        urllib3.exceptions.SSLError("certificate verify failed"),
    ],
)
def test_requests_without_a_response_are_counted_as_errors(error: Exception) -> None:
    core, counts = counted_client(error)
    with pytest.raises((urllib3.exceptions.HTTPError, ApiException)):
        core.read_namespace("x")
    assert counts == [("GET", "namespaces", "error")]


def test_the_request_counter_has_a_code_label() -> None:
    metrics.KUBE_API_REQUESTS.labels(method="PATCH", resource="labs/status", code="409").inc()
    labels = {"method": "PATCH", "resource": "labs/status", "code": "409"}
    assert sample("roadlab_kube_api_requests_total", **labels) >= 1


# --- the dashboard's and the alerts' metrics ----------------------------------------------


def exported_names() -> set[str]:
    """Every sample name the operator's registry can export, with or without samples yet
    (a labelled metric has none before its first use)."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "summary": ("", "_sum", "_count"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(s.name for s in family.samples)
    return names


def dashboard_exprs() -> list[str]:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    paths = sorted(CHART.glob("dashboards/*.json"))
    return [expr for path in paths for expr in walk(json.loads(path.read_text()))]


def alert_exprs() -> tuple[list[str], set[str]]:
    """The `expr:` of every rule in the chart's monitoring template (a Helm template, not
    YAML yet), and the names its recording rules define."""
    lines = (CHART / "templates" / "monitoring.yaml").read_text().splitlines()
    exprs: list[str] = []
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)(?:-\s+)?expr:\s*(.*)$", line)
        if not match:
            continue
        indent, value = len(match.group(1)), match.group(2).strip()
        if value[:1] in ("|", ">"):  # a block scalar: the more indented lines below
            block = []
            for following in lines[i + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                block.append(following)
            value = "\n".join(block)
        exprs.append(value)
    recorded = set(re.findall(r"^\s*(?:-\s+)?record:\s*['\"]?([\w:]+)", "\n".join(lines), re.M))
    return exprs, recorded


def roadlab_names(exprs: list[str]) -> set[str]:
    return {n for e in exprs for n in ROADLAB_NAME.findall(TEMPLATE_ACTION.sub("", e))}


def test_names_are_found_in_promql() -> None:
    expr = 'absent(roadlab_build_info{namespace="{{ .Release.Namespace }}", job="roadlab-x"})'
    assert roadlab_names([expr]) == {"roadlab_build_info"}
    expr = "histogram_quantile(0.9, sum(rate(roadlab_a_bucket[5m])) by (le)) / up"
    assert roadlab_names([expr]) == {"roadlab_a_bucket"}


def test_exported_names_have_the_exposition_suffixes() -> None:
    names = exported_names()
    assert {
        "roadlab_labs",
        "roadlab_build_info",
        "roadlab_reconciles_total",
        "roadlab_reconcile_duration_seconds_bucket",
        "roadlab_provisioning_duration_seconds_count",
        "roadlab_kube_api_requests_total",
    } <= names
    assert "roadlab_reconciles" not in names  # a counter is only ever exported as _total


def test_the_dashboard_queries_only_exported_metrics() -> None:
    exprs = dashboard_exprs()
    assert exprs, "no expr in charts/roadlab/dashboards/*.json"
    used = roadlab_names(exprs)
    assert used, "the dashboard queries no roadlab_ metric"
    assert used - exported_names() == set()


def test_the_alerts_query_only_exported_metrics() -> None:
    exprs, recorded = alert_exprs()
    assert exprs, "no expr in charts/roadlab/templates/monitoring.yaml"
    used = roadlab_names(exprs) - recorded
    assert used, "the alerts query no roadlab_ metric"
    assert used - exported_names() == set()


def test_the_endpoints_listen_on_the_address_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every address by default (a pod's); only loopback when told (an operator on a node)."""
    monkeypatch.delenv("ROADLAB_LISTEN_ADDRESS", raising=False)
    assert Settings.from_environment().listen_address == "0.0.0.0"
    monkeypatch.setenv("ROADLAB_LISTEN_ADDRESS", "127.0.0.1")
    address = Settings.from_environment().listen_address
    with socket.socket() as probe:
        probe.bind((address, 0))
        port = probe.getsockname()[1]
    metrics.serve(port, address)
    listening = {line.split()[1] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]}
    assert f"0100007F:{port:04X}" in listening  # 127.0.0.1, little-endian, as the kernel lists it
    assert f"00000000:{port:04X}" not in listening
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        assert b"roadlab_" in answer.read()
