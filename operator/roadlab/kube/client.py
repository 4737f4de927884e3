"""The one module that talks to the Kubernetes API.

Everything here is a thin, idempotent verb: server-side apply for objects we own (so a
repeat is a no-op and a killed operator converges), 404-tolerant deletes, discovery
lookups. Decisions live in the pure modules; this module only carries them out.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import (
    ConflictError,
    DynamicApiError,
    NotFoundError,
    ResourceNotFoundError,
)

from roadlab.api import naming

log = logging.getLogger(__name__)

FIELD_MANAGER = "roadlab-operator"

Manifest = dict[str, Any]


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In a pod, the service account; elsewhere the given or default kubeconfig."""
    if kubeconfig is None:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
        except config.ConfigException:
            pass
    api_client: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig
    )
    return api_client


def request_resource(path: str) -> str:
    """The resource (with subresource) an API path addresses, for counting requests:
    /api/v1/namespaces/x/configmaps/y -> "configmaps", /apis/g/v/labs/x/status ->
    "labs/status", discovery paths -> "discovery"."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        rest = parts[3:]
    else:
        return (
            "discovery" if parts[:1] in (["api"], ["apis"], ["openapi"], ["version"]) else "other"
        )
    if not rest:
        return "discovery"
    if rest[0] == "namespaces" and len(rest) == 3 and rest[2] in ("status", "finalize"):
        return f"namespaces/{rest[2]}"
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]  # a namespaced resource: drop namespaces/<name>
    resource = rest[0]
    return f"{resource}/{rest[2]}" if len(rest) >= 3 else resource


NO_RESPONSE = "error"  # the status code counted for a request that got no HTTP response


def response_code(error: Exception) -> str:
    """The status code to count for a request that raised `error`."""
    # The client raises ApiException(status=0) for a TLS failure: no response either.
    if isinstance(error, ApiException) and error.status:
        return str(error.status)
    return NO_RESPONSE


def count_requests(api_client: client.ApiClient, count: Callable[[str, str, str], None]) -> None:
    """Call count(method, resource, code) for every request the client sends, once it has
    its answer (requests/metrics): code is the HTTP status ("200", "404", "409"), or
    NO_RESPONSE when the request failed without one (connection refused, timed out)."""
    rest: Any = api_client.rest_client  # untyped in the client library
    send = rest.request

    def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        resource = request_resource(urlsplit(url).path)
        try:
            # 4xx and 5xx return here too (the ApiClient raises for them afterwards); an
            # older client raised ApiException here, which carries the status as well.
            response = send(method, url, *args, **kwargs)
        except Exception as error:
            count(method, resource, response_code(error))
            raise
        count(method, resource, str(response.status))
        return response

    rest.request = counted


class KubeApi:
    """Kubernetes verbs the operator needs, over one API client."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self._dynamic: DynamicClient | None = None
        self._lock = threading.Lock()

    @property
    def dynamic(self) -> DynamicClient:
        # Discovery is lazy and costs requests: do it once, on first use.
        with self._lock:
            if self._dynamic is None:
                self._dynamic = DynamicClient(self.api_client)  # type: ignore[no-untyped-call]
            return self._dynamic

    def _resource(self, manifest: Manifest) -> Any:
        return self.dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])

    def apply(self, manifest: Manifest) -> Manifest:
        """Server-side apply `manifest` as the operator; our fields win, others' stay."""
        resource = self._resource(manifest)
        metadata = manifest["metadata"]
        result = self.dynamic.server_side_apply(  # type: ignore[no-untyped-call]
            resource,
            body=manifest,
            name=metadata["name"],
            namespace=metadata.get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        return cast(Manifest, result.to_dict())

    def create_if_absent(self, manifest: Manifest) -> bool:
        """Create `manifest` unless it exists (409 means already there); True if created.

        For objects the learner may change afterwards: they are seeded, never re-applied.
        """
        resource = self._resource(manifest)
        try:
            resource.create(body=manifest, namespace=manifest["metadata"].get("namespace"))
        except ConflictError:
            return False
        return True

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Manifest | None:
        """The object, or None when it does not exist."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        try:
            return cast(Manifest, resource.get(name=name, namespace=namespace).to_dict())
        except NotFoundError:
            return None

    def list_objects(
        self, api_version: str, kind: str, namespace: str, label_selector: str | None = None
    ) -> list[Manifest]:
        """Objects of a kind in a namespace, optionally filtered by a label selector."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        listing = resource.get(namespace=namespace, label_selector=label_selector).to_dict()
        return [cast(Manifest, item) for item in listing.get("items") or []]

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete in the background; True if it was there."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        try:
            resource.delete(
                name=name, namespace=namespace, body={"propagationPolicy": "Background"}
            )
        except NotFoundError:
            return False
        return True

    def serves(self, api_version: str, resource: str) -> bool:
        """Whether the API server serves `resource` in `api_version` ("v1", "apps/v1", ...)."""
        try:
            if api_version == "v1":
                listing = self.core.get_api_resources()
            else:
                group, version = api_version.split("/", 1)
                listing = client.CustomObjectsApi(self.api_client).get_api_resources(group, version)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return any(r.name == resource for r in listing.resources)

    def object_exists(self, api_version: str, resource: str, name: str) -> bool:
        """Whether the cluster-scoped object `resource`/`name` exists (False if not served)."""
        try:
            kind = self.dynamic.resources.get(api_version=api_version, name=resource)
            kind.get(name=name)
        except (NotFoundError, ResourceNotFoundError):
            return False
        return True

    def namespace_phase(self, name: str) -> str | None:
        """ "Active", "Terminating", or None when the namespace is gone."""
        try:
            status = self.core.read_namespace(name).status
            return status.phase if status else None
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def termination_message(self, namespace: str, job_name: str, container: str) -> str | None:
        """What `container` of the Job's (last) pod wrote to its termination log, if anything."""
        pods = self.core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}").items
        # backoffLimit 0: at most one pod per check Job.
        for pod in pods:
            for state in (pod.status and pod.status.container_statuses) or []:
                if state.name == container and state.state and state.state.terminated:
                    return state.state.terminated.message
        return None

    def patch_lab_status(self, name: str, status: Manifest, resource_version: str | None) -> None:
        """Merge-patch a Lab's status; with resource_version, 409 if it changed meanwhile."""
        body: Manifest = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        client.CustomObjectsApi(self.api_client).patch_cluster_custom_object_status(
            naming.GROUP, naming.VERSION, naming.PLURAL, name, body
        )

    # --- kubectl lab ---
    # Verbs of the `kubectl lab` plugin (roadlab.cli): Labs through the typed custom-objects
    # API (no discovery round trips), learner tokens, and the caller's cluster coordinates.

    CLI_REQUEST_TIMEOUT = (10, 30)  # (connect, read) seconds: a CLI must not hang silently

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeApi:
        """A client from a kubeconfig file ($KUBECONFIG or ~/.kube/config when None)."""
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
        configuration.retries = 1  # an unreachable server fails fast instead of 3 retries
        return cls(client.ApiClient(configuration))

    def _labs(self) -> Any:
        return client.CustomObjectsApi(self.api_client)

    def get_lab(self, name: str) -> Manifest | None:
        """The Lab, or None when it does not exist."""
        try:
            return cast(
                Manifest,
                self._labs().get_cluster_custom_object(
                    naming.GROUP,
                    naming.VERSION,
                    naming.PLURAL,
                    name,
                    _request_timeout=self.CLI_REQUEST_TIMEOUT,
                ),
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list_labs(self) -> list[Manifest]:
        """Every Lab in the cluster."""
        listing = self._labs().list_cluster_custom_object(
            naming.GROUP, naming.VERSION, naming.PLURAL, _request_timeout=self.CLI_REQUEST_TIMEOUT
        )
        return cast(list[Manifest], listing.get("items") or [])

    def create_lab(self, manifest: Manifest) -> Manifest:
        """Create a Lab (ApiException 409 when the name is taken)."""
        return cast(
            Manifest,
            self._labs().create_cluster_custom_object(
                naming.GROUP,
                naming.VERSION,
                naming.PLURAL,
                manifest,
                _request_timeout=self.CLI_REQUEST_TIMEOUT,
            ),
        )

    def patch_lab(self, name: str, patch: Manifest) -> Manifest:
        """Merge-patch a Lab (metadata/spec), e.g. to set the check-requested annotation."""
        return cast(
            Manifest,
            self._labs().patch_cluster_custom_object(
                naming.GROUP,
                naming.VERSION,
                naming.PLURAL,
                name,
                patch,
                _request_timeout=self.CLI_REQUEST_TIMEOUT,
            ),
        )

    def delete_lab(self, name: str) -> bool:
        """Ask for a Lab's deletion (its namespace goes with it); False if absent."""
        try:
            self._labs().delete_cluster_custom_object(
                naming.GROUP,
                naming.VERSION,
                naming.PLURAL,
                name,
                _request_timeout=self.CLI_REQUEST_TIMEOUT,
            )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def create_service_account_token(
        self, namespace: str, service_account: str, expiration_seconds: int
    ) -> tuple[str, str | None]:
        """A TokenRequest token for the ServiceAccount: (token, RFC 3339 expiry if reported)."""
        body = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
        )
        response = self.core.create_namespaced_service_account_token(
            service_account, namespace, body, _request_timeout=self.CLI_REQUEST_TIMEOUT
        )
        status = response.status
        if status is None or not status.token:
            raise RuntimeError(f"no token returned for {namespace}/{service_account}")
        expires = status.expiration_timestamp
        expiry = expires.strftime("%Y-%m-%dT%H:%M:%SZ") if expires is not None else None
        return status.token, expiry

    def kubeconfig_cluster(self) -> Manifest:
        """The kubeconfig `cluster` entry of the API server this client talks to."""
        configuration = self.api_client.configuration
        cluster: Manifest = {"server": configuration.host}
        if not configuration.verify_ssl:
            cluster["insecure-skip-tls-verify"] = True
        elif getattr(configuration, "ca_cert_data", None):
            data = configuration.ca_cert_data
            raw = data.encode() if isinstance(data, str) else bytes(data)
            cluster["certificate-authority-data"] = base64.b64encode(raw).decode()
        elif configuration.ssl_ca_cert:
            with open(configuration.ssl_ca_cert, "rb") as ca_file:
                cluster["certificate-authority-data"] = base64.b64encode(ca_file.read()).decode()
        if getattr(configuration, "tls_server_name", None):
            cluster["tls-server-name"] = configuration.tls_server_name
        return cluster


def describe_api_error(error: Exception) -> str:
    """A one-line reason from an API error, for conditions and events."""
    if isinstance(error, ApiException):
        try:
            body = json.loads(error.body or "{}")
            return f"{error.status} {body.get('reason', '')}: {body.get('message', error.reason)}"
        except ValueError:
            return f"{error.status}: {error.reason}"
    if isinstance(error, DynamicApiError):
        return str(error.summary())  # type: ignore[no-untyped-call]
    if isinstance(error, ResourceNotFoundError):
        return f"the API server does not serve this kind: {error}"
    return str(error)
