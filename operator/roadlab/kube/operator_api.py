"""The operator's API: thin, idempotent verbs over the dynamic client.

Server-side apply for objects we own (so a repeat is a no-op and a killed operator
converges), 404-tolerant deletes, discovery lookups. Decisions live in the pure modules;
this module only carries them out.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping
from typing import Any, Protocol, cast, runtime_checkable

from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, DynamicApiError, ResourceNotFoundError

from roadlab.api import naming
from roadlab.kube.client import Manifest, unless_not_found, went_through

FIELD_MANAGER = "roadlab-operator"


@runtime_checkable
class OperatorApi(Protocol):
    """The verbs the reconciler uses: KubeApi over a real API server, or the typed
    in-memory fake of the unit tests (tests/unit/kube_fake.py)."""

    def apply(self, manifest: Manifest) -> Manifest: ...
    def create_if_absent(self, manifest: Manifest) -> bool: ...
    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Manifest | None: ...
    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> bool: ...
    def serves(self, api_version: str, resource: str) -> bool: ...
    def object_exists(self, api_version: str, resource: str, name: str) -> bool: ...
    def namespace_phase(self, name: str) -> str | None: ...
    def termination_message(self, namespace: str, job_name: str, container: str) -> str | None: ...
    def patch_lab_status(
        self, name: str, status: Manifest, resource_version: str | None
    ) -> None: ...
    def secret_value(self, namespace: str, name: str, key: str) -> str | None: ...
    def post_through_service_proxy(
        self, path: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, bytes]: ...


@runtime_checkable
class RoadmapApi(Protocol):
    """The verbs the Roadmap, Enrollment and Cohort reconcilers use (KubeApi, or the fake)."""

    def apply(self, manifest: Manifest) -> Manifest: ...
    def create_if_absent(self, manifest: Manifest) -> bool: ...
    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Manifest | None: ...
    def list_cluster_objects(
        self, api_version: str, kind: str, label_selector: str | None = None
    ) -> list[Manifest]: ...
    def patch_status(
        self,
        api_version: str,
        plural: str,
        name: str,
        status: Manifest,
        resource_version: str | None,
    ) -> None: ...
    def patch_metadata(
        self, api_version: str, kind: str, name: str, metadata: Manifest
    ) -> None: ...
    def remove_finalizer(self, api_version: str, kind: str, name: str, finalizer: str) -> bool: ...
    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> bool: ...
    def secret_value(self, namespace: str, name: str, key: str) -> str | None: ...


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
        found = unless_not_found(lambda: resource.get(name=name, namespace=namespace))
        return None if found is None else cast(Manifest, found.to_dict())

    def list_objects(
        self, api_version: str, kind: str, namespace: str, label_selector: str | None = None
    ) -> list[Manifest]:
        """Objects of a kind in a namespace, optionally filtered by a label selector."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        listing = resource.get(namespace=namespace, label_selector=label_selector).to_dict()
        return [cast(Manifest, item) for item in listing.get("items") or []]

    def merge_patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str,
        patch: Manifest,
        *,
        field_manager: str,
    ) -> Manifest | None:
        """Merge-patch a namespaced object as `field_manager`; None when it does not exist."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        found = unless_not_found(
            lambda: resource.patch(
                name=name,
                namespace=namespace,
                body=patch,
                content_type="application/merge-patch+json",
                field_manager=field_manager,
            )
        )
        return None if found is None else cast(Manifest, found.to_dict())

    def list_cluster_objects(
        self, api_version: str, kind: str, label_selector: str | None = None
    ) -> list[Manifest]:
        """Cluster-scoped objects of a kind (or of every namespace), optionally by labels."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        listing = resource.get(label_selector=label_selector).to_dict()
        return [cast(Manifest, item) for item in listing.get("items") or []]

    def patch_status(
        self,
        api_version: str,
        plural: str,
        name: str,
        status: Manifest,
        resource_version: str | None,
    ) -> None:
        """Merge-patch a cluster-scoped custom object's status; with resource_version, 409 if
        it changed meanwhile."""
        group, version = api_version.split("/", 1)
        body: Manifest = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        client.CustomObjectsApi(self.api_client).patch_cluster_custom_object_status(
            group, version, plural, name, body
        )

    def patch_metadata(self, api_version: str, kind: str, name: str, metadata: Manifest) -> None:
        """Merge-patch a cluster-scoped object's metadata (labels, annotations)."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        resource.patch(
            name=name,
            body={"metadata": metadata},
            content_type="application/merge-patch+json",
        )

    def remove_finalizer(self, api_version: str, kind: str, name: str, finalizer: str) -> bool:
        """Take `finalizer` off a cluster-scoped object; False when the object or the
        finalizer is already gone. A JSON patch that tests the list first, so a finalizer
        someone added meanwhile is never dropped with it (a 422 then: read again)."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        for _ in range(5):
            found = unless_not_found(lambda: resource.get(name=name))
            if found is None:
                return False
            finalizers = list(found.metadata.get("finalizers") or [])
            if finalizer not in finalizers:
                return False
            patch = [
                {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
                {
                    "op": "replace",
                    "path": "/metadata/finalizers",
                    "value": [f for f in finalizers if f != finalizer],
                },
            ]
            try:
                resource.patch(name=name, body=patch, content_type="application/json-patch+json")
            except (client.ApiException, DynamicApiError) as error:
                if error.status in (409, 422):
                    continue
                if error.status == 404:
                    return False
                raise
            return True
        return False

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete in the background; True if it was there."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        return went_through(
            lambda: resource.delete(
                name=name, namespace=namespace, body={"propagationPolicy": "Background"}
            )
        )

    def serves(self, api_version: str, resource: str) -> bool:
        """Whether the API server serves `resource` in `api_version` ("v1", "apps/v1", ...)."""
        if api_version == "v1":
            listing = unless_not_found(self.core.get_api_resources)
        else:
            group, version = api_version.split("/", 1)
            custom = client.CustomObjectsApi(self.api_client)
            listing = unless_not_found(lambda: custom.get_api_resources(group, version))
        return listing is not None and any(r.name == resource for r in listing.resources)

    def object_exists(self, api_version: str, resource: str, name: str) -> bool:
        """Whether the cluster-scoped object `resource`/`name` exists (False if not served)."""
        try:
            kind = self.dynamic.resources.get(api_version=api_version, name=resource)
        except ResourceNotFoundError:  # discovery: the API does not serve the resource
            return False
        return went_through(lambda: kind.get(name=name))

    def namespace_phase(self, name: str) -> str | None:
        """ "Active", "Terminating", or None when the namespace is gone."""
        namespace = unless_not_found(lambda: self.core.read_namespace(name))
        status = namespace.status if namespace is not None else None
        return status.phase if status else None

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

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """One key of a Secret, decoded; None when the Secret or the key is absent."""
        secret = unless_not_found(lambda: self.core.read_namespaced_secret(name, namespace))
        data = (secret.data or {}) if secret is not None else {}
        return base64.b64decode(data[key]).decode() if key in data else None

    def post_through_service_proxy(
        self, path: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, bytes]:
        """POST raw bytes to an API server proxy path; (HTTP status, response body).

        Through the API server, so it works wherever the API does (an operator run on a
        laptop against kind too) and only for those allowed services/proxy. Any status is
        returned, not raised: the caller decides what a 503 (no checker ready) means.
        """
        # Serialized without the body: param_serialize would treat bytes as an object.
        method, url, header_params, _, _ = self.api_client.param_serialize(
            "POST",
            path,
            header_params={"Content-Type": "application/octet-stream", **headers},
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api_client.call_api(
                method, url, header_params=header_params, body=body, _request_timeout=(5, timeout)
            )
            response.read()  # type: ignore[no-untyped-call]
        except client.ApiException as error:
            raw = error.body
            return int(error.status or 0), raw if isinstance(raw, bytes) else str(
                raw or ""
            ).encode()
        return int(response.status), bytes(response.data or b"")
