"""A typed in-memory stand-in for roadlab.kube.portal_api.PortalApi (the Protocols of
roadlab.portal.ports), and a harness that serves the portal over it with Starlette's
TestClient.

The fake acts like the API server where the portal's safety depends on it: a learner
token works for its own Lab only (403 for any other, as the per-Lab resourceNames rule
does), and for the one Enrollment its Lab was started for (the Lab's
roadlab.dev/enrollment label: the operator's binding of the Lab's learner), a TokenRequest
fails once the lab namespace is gone, and every call is recorded with the credentials it
came with ("portal" for the portal's own ServiceAccount).
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from roadlab.api import naming
from roadlab.portal.app import create_app
from roadlab.portal.context import Portal
from roadlab.portal.settings import PortalSettings

Manifest = dict[str, Any]
REPO_LABS = Path(__file__).resolve().parents[2] / "labs"
NOW = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
PORTAL = "portal"  # the credentials of the portal's own calls, in FakeCluster.calls
ACCESS_TOKEN = "alice-access-token-0123456789abcdefghijklmnop"
LAB = "alice-smoke"


class FakeApiError(Exception):
    """What the kubernetes client raises: an HTTP status and a reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"({status}) {reason}")
        self.status = status
        self.reason = reason


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_lab(
    name: str = LAB,
    *,
    learner: str = "alice",
    expires_in: timedelta = timedelta(hours=1, minutes=52),
    tasks: list[Manifest] | None = None,
    expired: bool = False,
    completed: bool = False,
) -> Manifest:
    """A Lab of the smoke lab, provisioned, as the operator reports it."""
    default_tasks = [
        {
            "id": "scale-web",
            "title": "Scale the web Deployment to 2 replicas",
            "state": "Passed",
            "message": "spec.replicas is 2",
        },
        {
            "id": "configmap-answer",
            "title": 'Create a ConfigMap named answer with data.answer set to "42"',
            "state": "Failed",
            "message": "ConfigMap answer not found",
            "hint": "kubectl create configmap answer --from-literal=answer=42",
        },
    ]
    tasks = default_tasks if tasks is None else tasks
    passed = sum(task["state"] == "Passed" for task in tasks)

    def condition(type_: str, status: bool, reason: str) -> Manifest:
        return {
            "type": type_,
            "status": "True" if status else "False",
            "reason": reason,
            "message": "",
            "lastTransitionTime": ts(NOW - timedelta(minutes=5)),
        }

    return {
        "apiVersion": naming.API_VERSION,
        "kind": naming.KIND,
        "metadata": {"name": name, "resourceVersion": "1"},
        "spec": {"lab": "smoke", "learner": learner, "ttl": "2h"},
        "status": {
            "conditions": [
                condition("Ready", True, "Ready"),
                condition("Completed", completed, "TasksPending"),
                condition("Expired", expired, "WithinTTL"),
            ],
            "namespace": naming.namespace_for(name),
            "tasks": tasks,
            "progress": f"{passed}/{len(tasks)}",
            "tasksPassed": passed,
            "tasksTotal": len(tasks),
            "expiresAt": ts(NOW + expires_in),
        },
    }


@dataclass
class FakeShell:
    """The exec stream of the workspace pod: echoes what is typed."""

    output: deque[bytes] = field(default_factory=lambda: deque([b"$ "]))
    stdin: list[bytes] = field(default_factory=list)
    channels: list[tuple[int, str | bytes]] = field(default_factory=list)
    open: bool = True
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def is_open(self) -> bool:
        return self.open

    def update(self, timeout: float = 0) -> None:
        if not self.output:
            time.sleep(min(timeout, 0.01))

    def read_stdout(self, timeout: float | None = None) -> bytes:
        with self.lock:
            data = b"".join(self.output)
            self.output.clear()
        return data

    def read_stderr(self, timeout: float | None = None) -> bytes:
        return b""

    def write_stdin(self, data: bytes) -> None:
        with self.lock:
            self.stdin.append(data)
            self.output.append(data)

    def write_channel(self, channel: int, data: str | bytes) -> None:
        with self.lock:
            self.channels.append((channel, data))

    def close(self) -> None:
        self.open, self.closed = False, True


class FakeLearnerApi:
    """A client with one learner token: it may use its own Lab only."""

    def __init__(self, cluster: FakeCluster, token: str) -> None:
        self.cluster = cluster
        self.token = token

    def _own(self, verb: str, lab_name: str, *args: object) -> None:
        self.cluster.record(self.token, verb, lab_name, *args)
        namespace = self.cluster.learner_tokens.get(self.token)
        if namespace != naming.NAMESPACE_PREFIX + lab_name:
            raise FakeApiError(403, "Forbidden")

    def get_lab(self, name: str) -> Manifest | None:
        self._own("get_lab", name)
        return self.cluster.read_lab(name)

    def watch_lab(self, name: str, timeout_seconds: int) -> Iterator[tuple[str, Manifest]]:
        self._own("watch_lab", name)
        if self.cluster.watch_error is not None:
            raise self.cluster.watch_error
        events = self.cluster.watch_events.pop(name, [])
        for kind, lab in events:
            yield kind, copy.deepcopy(lab)
        if not events:
            time.sleep(0.01)

    def patch_lab_annotations(self, name: str, annotations: Mapping[str, str]) -> Manifest:
        self._own("patch_lab_annotations", name, dict(annotations))
        if self.cluster.patch_error is not None:
            raise self.cluster.patch_error
        lab = self.cluster.labs[name]
        lab["metadata"].setdefault("annotations", {}).update(annotations)
        return copy.deepcopy(lab)

    def _own_enrollment(self, verb: str, name: str, *args: object) -> None:
        self.cluster.record(self.token, verb, name, *args)
        namespace = self.cluster.learner_tokens.get(self.token, "")
        lab = self.cluster.labs.get(namespace.removeprefix(naming.NAMESPACE_PREFIX)) or {}
        labels = lab.get("metadata", {}).get("labels") or {}
        if not namespace or labels.get(naming.LABEL_ENROLLMENT) != name:
            raise FakeApiError(403, "Forbidden")

    def get_enrollment(self, name: str) -> Manifest | None:
        self._own_enrollment("get_enrollment", name)
        if self.cluster.enrollment_error is not None:
            raise self.cluster.enrollment_error
        found = self.cluster.enrollments.get(name)
        return copy.deepcopy(found) if found is not None else None

    def watch_enrollment(self, name: str, timeout_seconds: int) -> Iterator[tuple[str, Manifest]]:
        self._own_enrollment("watch_enrollment", name)
        if self.cluster.enrollment_watch_error is not None:
            raise self.cluster.enrollment_watch_error
        events = self.cluster.enrollment_watch_events.pop(name, [])
        for kind, enrollment in events:
            yield kind, copy.deepcopy(enrollment)
        if not events:
            time.sleep(0.01)

    def get_roadmap(self, name: str) -> Manifest | None:
        # Any learner of an Enrollment may get (and list) Roadmaps.
        self.cluster.record(self.token, "get_roadmap", name)
        if self.token not in self.cluster.learner_tokens:
            raise FakeApiError(401, "Unauthorized")
        found = self.cluster.roadmaps.get(name)
        return copy.deepcopy(found) if found is not None else None

    def request_start(self, enrollment: str, request: str) -> Manifest:
        self._own_enrollment("request_start", enrollment, request)
        if self.cluster.start_error is not None:
            raise self.cluster.start_error
        found = self.cluster.enrollments[enrollment]
        annotations = found["metadata"].setdefault("annotations", {})
        annotations[naming.ANNOTATION_START_REQUESTED] = request
        return copy.deepcopy(found)

    def workspace_pod(self, namespace: str) -> tuple[str, str] | None:
        self._own("workspace_pod", namespace.removeprefix(naming.NAMESPACE_PREFIX))
        phase = self.cluster.pods.get((namespace, naming.WORKSPACE_POD))
        return (naming.WORKSPACE_POD, phase) if phase is not None else None

    def exec_shell(self, namespace: str, pod: str, container: str, command: list[str]) -> FakeShell:
        lab = namespace.removeprefix(naming.NAMESPACE_PREFIX)
        self._own("exec_shell", lab, namespace, pod, container, list(command))
        shell = FakeShell()
        self.cluster.shells.append(shell)
        return shell


@dataclass
class FakeCluster:
    """The API server as the portal sees it (roadlab.portal.ports.PortalBackend)."""

    now: Callable[[], datetime] = lambda: NOW
    operator_namespace: str = naming.DEFAULT_OPERATOR_NAMESPACE
    labs: dict[str, Manifest] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)
    pods: dict[tuple[str, str], str] = field(default_factory=dict)
    # What successive get_lab calls of a Lab answer (the last one stays), before `labs`.
    scripted_reads: dict[str, deque[Manifest | None]] = field(default_factory=dict)
    watch_events: dict[str, list[tuple[str, Manifest]]] = field(default_factory=dict)
    watch_error: Exception | None = None
    patch_error: Exception | None = None  # what patching a Lab raises (an admission refusal)
    learner_tokens: dict[str, str] = field(default_factory=dict)  # token -> its namespace
    enrollments: dict[str, Manifest] = field(default_factory=dict)
    roadmaps: dict[str, Manifest] = field(default_factory=dict)
    enrollment_watch_events: dict[str, list[tuple[str, Manifest]]] = field(default_factory=dict)
    enrollment_watch_error: Exception | None = None
    enrollment_error: Exception | None = None  # what getting an Enrollment raises
    start_error: Exception | None = None  # what a start request raises
    calls: list[tuple[str, str, tuple[object, ...]]] = field(default_factory=list)
    shells: list[FakeShell] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_lab(self, lab: Manifest, access_token: str | None = None) -> None:
        name = lab["metadata"]["name"]
        self.labs[name] = copy.deepcopy(lab)
        self.namespaces.add(naming.namespace_for(name))
        self.pods[(naming.namespace_for(name), naming.WORKSPACE_POD)] = "Running"
        if access_token is not None:
            self.access_tokens[name] = access_token

    def record(self, who: str, verb: str, *args: object) -> None:
        with self.lock:
            self.calls.append((who, verb, args))

    def calls_of(self, verb: str) -> list[tuple[str, tuple[object, ...]]]:
        with self.lock:
            return [(who, args) for who, name, args in self.calls if name == verb]

    def read_lab(self, name: str) -> Manifest | None:
        with self.lock:
            script = self.scripted_reads.get(name)
            if script:
                lab = script.popleft() if len(script) > 1 else script[0]
                return copy.deepcopy(lab)
        found = self.labs.get(name)
        return copy.deepcopy(found) if found is not None else None

    # --- PortalBackend ------------------------------------------------------------------

    def access_token_digest(self, lab_name: str) -> str | None:
        # The operator writes the digest of the Lab's token into the Lab's status.
        self.record(PORTAL, "access_token", lab_name)
        token = self.access_tokens.get(lab_name)
        return hashlib.sha256(token.encode()).hexdigest() if token is not None else None

    def learner_token(
        self, namespace: str, service_account: str, expiration_seconds: int
    ) -> tuple[str, datetime | None]:
        self.record(PORTAL, "learner_token", namespace, service_account, expiration_seconds)
        if namespace not in self.namespaces or service_account != naming.LEARNER_SERVICE_ACCOUNT:
            raise FakeApiError(404, "Not Found")
        with self.lock:
            token = f"learner-{namespace}-{len(self.learner_tokens) + 1}"
            self.learner_tokens[token] = namespace
        return token, self.now() + timedelta(seconds=expiration_seconds)

    def learner_client(self, token: str) -> FakeLearnerApi:
        return FakeLearnerApi(self, token)


class Clock:
    """The portal's two clocks, moved by hand."""

    def __init__(self) -> None:
        self.wall = NOW
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


class Harness:
    """The portal over a FakeCluster with alice-smoke (and its access token) in it."""

    def __init__(self, catalog_dir: Path = REPO_LABS, **settings: Any) -> None:
        self.clock = Clock()
        self.cluster = FakeCluster(now=self.clock.now)
        self.cluster.add_lab(make_lab(), ACCESS_TOKEN)
        self.settings = PortalSettings(catalog_dir=catalog_dir, **settings)
        self.portal = Portal(
            self.cluster, self.settings, now=self.clock.now, monotonic=self.clock.monotonic
        )
        self.client = TestClient(create_app(self.portal), follow_redirects=False)

    def sign_in(self, lab: str = LAB, token: str = ACCESS_TOKEN) -> Any:
        return self.client.get(f"/enter/{lab}", params={"token": token})

    def csrf(self, lab: str = LAB) -> str:
        page = self.client.get(f"/labs/{lab}")
        assert page.status_code == 200, page.text
        found = re.search(r'data-csrf="([^"]+)"', page.text)
        assert found is not None
        return found[1]

    def signed_in(self, lab: str = LAB) -> str:
        """Sign in; the page's CSRF token."""
        assert self.sign_in(lab).status_code == 303
        return self.csrf(lab)

    def learner_token_of(self, lab: str = LAB) -> str:
        namespace = naming.namespace_for(lab)
        return next(t for t, ns in self.cluster.learner_tokens.items() if ns == namespace)
