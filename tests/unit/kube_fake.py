"""A typed in-memory stand-in for roadlab.kube.operator_api.OperatorApi.

Objects live in a dict keyed by (apiVersion, kind, namespace, name); applies, creates,
deletes and status patches are recorded in order, so a test asserts what the reconciler
did to the cluster, not how. The warm checker answers what `proxy_answer` says.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str, str | None, str]
Manifest = dict[str, Any]


def key_of(manifest: Mapping[str, Any]) -> Key:
    metadata = manifest["metadata"]
    return (manifest["apiVersion"], manifest["kind"], metadata.get("namespace"), metadata["name"])


@dataclass
class FakeKubeApi:
    objects: dict[Key, Manifest] = field(default_factory=dict)
    applied: list[Key] = field(default_factory=list)
    created: list[Key] = field(default_factory=list)
    deleted: list[Key] = field(default_factory=list)
    status_patches: list[tuple[str, Manifest, str | None]] = field(default_factory=list)
    served: set[tuple[str, str]] = field(default_factory=set)
    termination_messages: dict[str, str] = field(default_factory=dict)  # Job name -> text
    secrets: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # (path, body, headers, timeout) -> (status, body), or raises; None: no checker (503).
    proxy_answer: Callable[[str, bytes, Mapping[str, str], float], tuple[int, bytes]] | None = None
    proxied: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def add(self, manifest: Manifest) -> None:
        self.objects[key_of(manifest)] = copy.deepcopy(manifest)

    def apply(self, manifest: Manifest) -> Manifest:
        key = key_of(manifest)
        self.applied.append(key)
        self.objects[key] = copy.deepcopy(manifest)
        return manifest

    def create_if_absent(self, manifest: Manifest) -> bool:
        key = key_of(manifest)
        if key in self.objects:
            return False
        self.created.append(key)
        self.objects[key] = copy.deepcopy(manifest)
        return True

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Manifest | None:
        found = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        key = (api_version, kind, namespace, name)
        self.deleted.append(key)
        return self.objects.pop(key, None) is not None

    def serves(self, api_version: str, resource: str) -> bool:
        return (api_version, resource) in self.served

    def object_exists(self, api_version: str, resource: str, name: str) -> bool:
        return any(k[0] == api_version and k[3] == name for k in self.objects)

    def namespace_phase(self, name: str) -> str | None:
        return "Active" if ("v1", "Namespace", None, name) in self.objects else None

    def termination_message(self, namespace: str, job_name: str, container: str) -> str | None:
        return self.termination_messages.get(job_name)

    def patch_lab_status(self, name: str, status: Manifest, resource_version: str | None) -> None:
        self.status_patches.append((name, copy.deepcopy(status), resource_version))
        lab = self.objects.get(("roadlab.dev/v1alpha1", "Lab", None, name))
        if lab is not None:
            lab.setdefault("status", {}).update(copy.deepcopy(status))

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        if (namespace, name, key) in self.secrets:
            return self.secrets[(namespace, name, key)]
        secret = self.objects.get(("v1", "Secret", namespace, name)) or {}
        value = (secret.get("stringData") or {}).get(key)
        return str(value) if value is not None else None

    # --- RoadmapApi ---------------------------------------------------------------------

    def list_cluster_objects(
        self, api_version: str, kind: str, label_selector: str | None = None
    ) -> list[Manifest]:
        wanted = dict(
            term.split("=", 1) for term in (label_selector or "").split(",") if "=" in term
        )
        found = []
        for (version, object_kind, _, _), manifest in self.objects.items():
            labels = manifest["metadata"].get("labels") or {}
            if (version, object_kind) == (api_version, kind) and all(
                labels.get(k) == v for k, v in wanted.items()
            ):
                found.append(copy.deepcopy(manifest))
        return found

    def _by_plural(self, api_version: str, plural: str, name: str) -> Manifest | None:
        for (version, kind, namespace, object_name), manifest in self.objects.items():
            if (version, namespace, object_name) == (api_version, None, name) and (
                kind.lower() + "s" == plural
            ):
                return manifest
        return None

    def patch_status(
        self,
        api_version: str,
        plural: str,
        name: str,
        status: Manifest,
        resource_version: str | None,
    ) -> None:
        self.status_patches.append((name, copy.deepcopy(status), resource_version))
        found = self._by_plural(api_version, plural, name)
        if found is None:
            raise LookupError(f"{plural}/{name} not found")
        merged = found.setdefault("status", {})
        for key, value in status.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = copy.deepcopy(value)

    def patch_metadata(self, api_version: str, kind: str, name: str, metadata: Manifest) -> None:
        found = self.objects[(api_version, kind, None, name)]
        for key in ("labels", "annotations"):
            if key in metadata:
                found["metadata"].setdefault(key, {}).update(metadata[key])

    def remove_finalizer(self, api_version: str, kind: str, name: str, finalizer: str) -> bool:
        found = self.objects.get((api_version, kind, None, name))
        if found is None or finalizer not in (found["metadata"].get("finalizers") or []):
            return False
        found["metadata"]["finalizers"].remove(finalizer)
        if not found["metadata"]["finalizers"] and found["metadata"].get("deletionTimestamp"):
            del self.objects[(api_version, kind, None, name)]  # nothing holds it any more
        return True

    def post_through_service_proxy(
        self, path: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, bytes]:
        self.proxied.append((path, body, dict(headers)))
        if self.proxy_answer is None:
            return 503, b'{"kind":"Status","message":"no endpoints available"}'
        return self.proxy_answer(path, body, headers, timeout)
