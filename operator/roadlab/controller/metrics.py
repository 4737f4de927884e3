"""Prometheus metrics of the operator, served by prometheus-client."""

from __future__ import annotations

import platform
from collections import Counter as Tally
from collections.abc import Iterator
from importlib import metadata
from threading import Lock

import prometheus_client
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# No <name>_created series beside every counter and histogram child: in the text format each
# is a gauge of its own (one more series per child) that dashboards and alerts never use.
# The switch is read at each scrape; set here, before any metric exists or is served.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown"


BUILD_INFO = Gauge(
    "roadlab_build_info",
    "Always 1: the operator's version and the Python and Kopf it runs on, as labels",
    ["version", "python_version", "kopf_version"],
)
BUILD_INFO.labels(_version("roadlab"), platform.python_version(), _version("kopf")).set(1)

KUBE_API_REQUESTS = Counter(
    "roadlab_kube_api_requests",
    "Requests roadlab's own client sent to the Kubernetes API (Kopf's watches and patches "
    "not included), by method, resource and HTTP status code (error: no response)",
    ["method", "resource", "code"],
)
RECONCILE_RESULTS = ("ok", "retry", "invalid", "error")
RECONCILES = Counter(
    "roadlab_reconciles", "Lab reconciles by result (ok, retry, invalid, error)", ["result"]
)
RECONCILE_SECONDS = Histogram(
    "roadlab_reconcile_duration_seconds",
    "Time one Lab reconcile took, status write included, by result (as roadlab_reconciles)",
    ["result"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
for _result in RECONCILE_RESULTS:  # every result exported from the start, at 0: rate() works
    RECONCILES.labels(_result)
    RECONCILE_SECONDS.labels(_result)


def reconciled(result: str, seconds: float) -> None:
    """Count one finished reconcile and its duration: the counter and the histogram's
    _count then always agree."""
    RECONCILES.labels(result).inc()
    RECONCILE_SECONDS.labels(result).observe(seconds)


RECONCILE_ERRORS = Counter(
    "roadlab_reconcile_errors", "Lab reconciles that did not converge, by reason", ["reason"]
)
PROVISIONED = Counter("roadlab_labs_provisioned", "Labs provisioned, by catalog lab", ["lab"])
EXPIRED = Counter("roadlab_labs_expired", "Labs torn down at expiry, by catalog lab", ["lab"])
PROVISIONING_SECONDS = Histogram(
    "roadlab_provisioning_duration_seconds",
    "Time from a Lab's creation to its environment being provisioned",
    ["lab"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)


class StateTally(Collector):
    """A gauge of how many objects are in each (kind, state), as last reconciled: the
    objects are remembered by name, so a repeat or a move from one state to another is
    counted once. roadlab_labs{lab, state}, roadlab_enrollments{roadmap, state}."""

    def __init__(self, name: str, documentation: str, labels: list[str]) -> None:
        self._name, self._documentation, self._labels = name, documentation, labels
        self._lock = Lock()
        self._states: dict[str, tuple[str, str]] = {}

    def set(self, name: str, kind: str, state: str) -> None:
        with self._lock:
            self._states[name] = (kind, state)

    def forget(self, name: str) -> None:
        with self._lock:
            self._states.pop(name, None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            tally = Tally(self._states.values())
        family = GaugeMetricFamily(self._name, self._documentation, labels=self._labels)
        for (kind, state), count in sorted(tally.items()):
            family.add_metric([kind, state], count)
        yield family


LAB_STATES = StateTally("roadlab_labs", "Labs by catalog lab and state", ["lab", "state"])
REGISTRY.register(LAB_STATES)


def serve(port: int, address: str) -> None:
    start_http_server(port, addr=address)


VALIDATION_RUNS = Counter(
    "roadlab_validation_runs",
    "Finished validation runs by catalog lab and result",
    ["lab", "result"],
)
CHECK_LATENCY_SECONDS = Histogram(
    "roadlab_check_latency_seconds",
    "Time from a validation run being requested to its results being in the Lab's status",
    ["lab"],
    buckets=(0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300, 900),
)
EXTENSIONS = Counter(
    "roadlab_extensions",
    "Learners' requests for more time, by catalog lab and answer (Accepted, Refused)",
    ["lab", "state"],
)
TIME_TO_COMPLETE_SECONDS = Histogram(
    "roadlab_time_to_complete_seconds",
    "Time from a Lab's start to every task passing",
    ["lab"],
    buckets=(60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400),
)

MILESTONES_COMPLETED = Counter(
    "roadlab_milestones_completed",
    "Roadmap milestones completed by enrolled learners, by roadmap and milestone",
    ["roadmap", "milestone"],
)
MILESTONE_COMPLETION_SECONDS = Histogram(
    "roadlab_milestone_completion_seconds",
    "Time from a milestone's Lab starting to the milestone being completed",
    ["roadmap", "milestone"],
    buckets=(60, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800),
)


# InProgress, Completed or Invalid (the roadmap is missing or cannot be followed).
ENROLLMENT_STATES = StateTally(
    "roadlab_enrollments", "Enrollments by roadmap and state", ["roadmap", "state"]
)
REGISTRY.register(ENROLLMENT_STATES)
