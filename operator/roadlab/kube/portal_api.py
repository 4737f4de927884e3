"""The learner portal's API: its own few rights, and a client per learner token.

The portal itself may only read a Lab's access Secret in the operator's namespace and ask
for a token of the Lab's `learner` ServiceAccount (TokenRequest). Everything it does to a
Lab, and the terminal's exec, goes through a LearnerClient: a separate ApiClient that
carries only that learner token, so the API server applies the learner's RBAC and the
admission policy on their Lab, never the portal's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, cast

from kubernetes import client, watch
from kubernetes.stream import stream

from roadlab.api import naming
from roadlab.api.roadmap import ENROLLMENT_PLURAL, ROADMAP_PLURAL
from roadlab.kube.client import Manifest, load_api_client, unless_not_found

REQUEST_TIMEOUT = (10, 30)  # (connect, read) seconds: a page must not hang on the API
MERGE_PATCH = "application/merge-patch+json"
# What a learner client keeps of the portal's configuration: where the API server is and
# how to trust it, never how the portal authenticates (client certificates, its token).
_CONNECTION_SETTINGS = (
    "host",
    "ssl_ca_cert",
    "ca_cert_data",
    "verify_ssl",
    "assert_hostname",
    "tls_server_name",
    "proxy",
    "no_proxy",
    "proxy_headers",
)


class LearnerClient:
    """The Lab's verbs, as the learner: an ApiClient with only the learner's bearer token
    (and, for a Lab started for an Enrollment, that Enrollment's and its Roadmap's)."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.labs = client.CustomObjectsApi(api_client)

    def get_lab(self, name: str) -> Manifest | None:
        """The Lab, or None when it does not exist."""
        return self._get(naming.PLURAL, name)

    def watch_lab(self, name: str, timeout_seconds: int) -> Iterator[tuple[str, Manifest]]:
        """(event type, Lab) for the Lab now (ADDED) and at every change, until the server
        ends the watch after timeout_seconds. The learner may watch their Lab by name only:
        the collection narrowed by a field selector, which RBAC's resourceNames allows."""
        return self._watch(naming.PLURAL, name, timeout_seconds)

    def patch_lab_annotations(self, name: str, annotations: Mapping[str, str]) -> Manifest:
        """A merge patch of metadata.annotations only (all the admission policy allows)."""
        return self._patch_annotations(naming.PLURAL, name, annotations)

    # --- the Enrollment of a Lab started for one (and its Roadmap) ---------------------------

    def get_enrollment(self, name: str) -> Manifest | None:
        """The Enrollment, or None when it does not exist (the learner may get their own)."""
        return self._get(ENROLLMENT_PLURAL, name)

    def watch_enrollment(self, name: str, timeout_seconds: int) -> Iterator[tuple[str, Manifest]]:
        """(event type, Enrollment) now and at every change, as watch_lab does for the Lab."""
        return self._watch(ENROLLMENT_PLURAL, name, timeout_seconds)

    def get_roadmap(self, name: str) -> Manifest | None:
        """The Roadmap (its milestones' titles), or None when it does not exist."""
        return self._get(ROADMAP_PLURAL, name)

    def request_start(self, enrollment: str, request: str) -> Manifest:
        """Ask the operator to start a milestone: the start-requested annotation of the
        Enrollment ("<token>" or "<token>/<milestone>"), all the admission policy allows."""
        return self._patch_annotations(
            ENROLLMENT_PLURAL, enrollment, {naming.ANNOTATION_START_REQUESTED: request}
        )

    # --- one cluster-scoped roadlab.dev object, by name ------------------------------------

    def _get(self, plural: str, name: str) -> Manifest | None:
        found = unless_not_found(
            lambda: self.labs.get_cluster_custom_object(
                naming.GROUP, naming.VERSION, plural, name, _request_timeout=REQUEST_TIMEOUT
            )
        )
        return cast(Manifest | None, found)

    def _watch(
        self, plural: str, name: str, timeout_seconds: int
    ) -> Iterator[tuple[str, Manifest]]:
        watcher = watch.Watch()  # type: ignore[no-untyped-call]
        events = watcher.stream(  # type: ignore[no-untyped-call]
            self.labs.list_cluster_custom_object,
            naming.GROUP,
            naming.VERSION,
            plural,
            field_selector=f"metadata.name={name}",
            timeout_seconds=timeout_seconds,
            # The read timeout must outlast the server's own end of the watch.
            _request_timeout=(REQUEST_TIMEOUT[0], timeout_seconds + 30),
        )
        try:
            for event in events:
                kind, found = event.get("type"), event.get("raw_object")
                if kind == "ERROR":  # e.g. 410 Gone: the caller starts a new watch
                    return
                if isinstance(kind, str) and isinstance(found, dict):
                    yield kind, cast(Manifest, found)
        finally:
            events.close()  # closes the response at once, not when garbage-collected

    def _patch_annotations(
        self, plural: str, name: str, annotations: Mapping[str, str]
    ) -> Manifest:
        return cast(
            Manifest,
            self.labs.patch_cluster_custom_object(
                naming.GROUP,
                naming.VERSION,
                plural,
                name,
                {"metadata": {"annotations": dict(annotations)}},
                _content_type=MERGE_PATCH,
                _request_timeout=REQUEST_TIMEOUT,
            ),
        )

    def workspace_pod(self, namespace: str) -> tuple[str, str] | None:
        """(name, phase) of the workspace Deployment's pod (a Running one first), or None
        when it has none: its pods are named by the Deployment, so they are found by label."""
        pods = self.core.list_namespaced_pod(
            namespace,
            label_selector=f"app={naming.WORKSPACE_POD}",
            _request_timeout=REQUEST_TIMEOUT,
        ).items
        live: list[tuple[str, str]] = []
        for pod in pods:
            meta, status = pod.metadata, pod.status
            if meta is not None and status is not None and meta.deletion_timestamp is None:
                live.append((str(meta.name), str(status.phase)))
        if not live:
            return None
        live.sort(key=lambda found: (found[1] != "Running", found[0]))
        return live[0]

    def exec_shell(self, namespace: str, pod: str, container: str, command: list[str]) -> Any:
        """An interactive exec (stdin, a tty) in the pod: the kubernetes WSClient, in binary
        mode, so output arrives as bytes (a UTF-8 character may span two frames)."""
        # A client of its own: kubernetes.stream swaps the ApiClient's request method for a
        # WebSocket one while it connects, and a watch sharing it then failed its handshake.
        own = client.CoreV1Api(client.ApiClient(self.api_client.configuration))
        return stream(
            own.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            container=container,
            command=command,
            stdin=True,
            stdout=True,
            stderr=True,
            tty=True,
            binary=True,
            _preload_content=False,
        )


class PortalApi:
    """The portal's own verbs, over its ServiceAccount's ApiClient."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self._api_client = api_client
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> PortalApi:
        """In a pod, the portal's ServiceAccount; elsewhere the default kubeconfig. Loaded
        at the first call, so that the portal starts (and answers /healthz) without one."""
        return cls()

    @property
    def api_client(self) -> client.ApiClient:
        with self._lock:
            if self._api_client is None:
                self._api_client = load_api_client()
            return self._api_client

    @property
    def core(self) -> Any:
        return client.CoreV1Api(self.api_client)

    def access_token_digest(self, lab_name: str) -> str | None:
        """The SHA-256 (hex) of the Lab's portal access token, from the Lab's status; None
        when the Lab or the digest is not there. The portal may read Labs, not Secrets."""
        lab = unless_not_found(
            lambda: client.CustomObjectsApi(self.api_client).get_cluster_custom_object(
                naming.GROUP, naming.VERSION, naming.PLURAL, lab_name,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )  # fmt: skip
        status = (lab.get("status") if isinstance(lab, dict) else None) or {}
        digest = status.get("portalTokenSHA256")
        return digest if isinstance(digest, str) and len(digest) == 64 else None

    def learner_token(
        self, namespace: str, service_account: str, expiration_seconds: int
    ) -> tuple[str, datetime | None]:
        """A TokenRequest token of the ServiceAccount, and when it expires (if reported)."""
        body = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
        )
        response = self.core.create_namespaced_service_account_token(
            service_account, namespace, body, _request_timeout=REQUEST_TIMEOUT
        )
        status = response.status
        if status is None or not status.token:
            raise RuntimeError(f"no token returned for {namespace}/{service_account}")
        return status.token, status.expiration_timestamp

    def learner_client(self, token: str) -> LearnerClient:
        """A client of the same API server that authenticates with `token` and nothing else."""
        mine = self.api_client.configuration
        configuration = client.Configuration()
        for setting in _CONNECTION_SETTINGS:
            if hasattr(mine, setting):
                setattr(configuration, setting, getattr(mine, setting))
        configuration.api_key = {"BearerToken": token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return LearnerClient(client.ApiClient(configuration))
