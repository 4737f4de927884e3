"""The one module that talks to the Kubernetes API.

Everything here is a thin, idempotent verb: server-side apply for objects we own (so a
repeat is a no-op and a killed operator converges), 404-tolerant deletes, discovery
lookups. Decisions live in the pure modules; this module only carries them out.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import (
    ConflictError,
    DynamicApiError,
    NotFoundError,
    ResourceNotFoundError,
)

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

    def namespace_phase(self, name: str) -> str | None:
        """ "Active", "Terminating", or None when the namespace is gone."""
        try:
            status = self.core.read_namespace(name).status
            return status.phase if status else None
        except ApiException as error:
            if error.status == 404:
                return None
            raise


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
