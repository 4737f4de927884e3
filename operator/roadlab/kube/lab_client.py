"""The CLI's Lab client: Labs, Roadmaps, Enrollments and Cohorts through the typed
custom-objects API (no discovery round trips), learner tokens, the published public keys,
and the caller's cluster coordinates, for `kubectl lab`."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any, cast

from kubernetes import client, config, watch

from roadlab.api import naming
from roadlab.api.roadmap import COHORT_PLURAL, ENROLLMENT_PLURAL, ROADMAP_PLURAL
from roadlab.kube.client import Manifest, unless_not_found, went_through

# Server-side apply (`kubectl lab cohort`): the CLI owns the fields it sets, and a second run
# with fewer learners takes the others off the list.
APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "kubectl-lab"


class LabClient:
    """The Kubernetes verbs of the `kubectl lab` plugin, over one API client."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)

    CLI_REQUEST_TIMEOUT = (10, 30)  # (connect, read) seconds: a CLI must not hang silently

    @classmethod
    def from_kubeconfig(
        cls, kubeconfig: str | None = None, context: str | None = None
    ) -> LabClient:
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
        found = unless_not_found(
            lambda: self._labs().get_cluster_custom_object(
                naming.GROUP,
                naming.VERSION,
                naming.PLURAL,
                name,
                _request_timeout=self.CLI_REQUEST_TIMEOUT,
            )
        )
        return cast(Manifest | None, found)

    def list_labs(self) -> list[Manifest]:
        """Every Lab in the cluster."""
        listing = self._labs().list_cluster_custom_object(
            naming.GROUP, naming.VERSION, naming.PLURAL, _request_timeout=self.CLI_REQUEST_TIMEOUT
        )
        return cast(list[Manifest], listing.get("items") or [])

    def watch_lab(self, name: str, timeout_seconds: int) -> Iterator[Manifest]:
        """The Lab now and at every change, for up to timeout_seconds (the server ends the
        watch then); the iterator also ends when the Lab is deleted.

        A watch of the collection narrowed to one name by a field selector: RBAC lets a
        learner whose Role names only their Lab (resourceNames) watch it this way. Errors
        (403, a broken stream) are ApiException and urllib3 errors, as for any call.
        """
        watcher = watch.Watch()  # type: ignore[no-untyped-call]
        stream = watcher.stream(  # type: ignore[no-untyped-call]
            self._labs().list_cluster_custom_object,
            naming.GROUP,
            naming.VERSION,
            naming.PLURAL,
            field_selector=f"metadata.name={name}",
            timeout_seconds=timeout_seconds,
            # The read timeout must outlast the server's own end of the watch.
            _request_timeout=(self.CLI_REQUEST_TIMEOUT[0], timeout_seconds + 30),
        )
        try:
            for event in stream:
                kind, lab = event.get("type"), event.get("raw_object")
                if kind == "DELETED":
                    return
                if kind in ("ADDED", "MODIFIED") and isinstance(lab, dict):
                    yield cast(Manifest, lab)
        finally:
            stream.close()  # closes the response at once, not when garbage-collected

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
        return went_through(
            lambda: self._labs().delete_cluster_custom_object(
                naming.GROUP,
                naming.VERSION,
                naming.PLURAL,
                name,
                _request_timeout=self.CLI_REQUEST_TIMEOUT,
            )
        )

    # --- Roadmaps, Enrollments, Cohorts (cluster-scoped custom objects) ---------------------

    def _get_object(self, plural: str, name: str) -> Manifest | None:
        found = unless_not_found(
            lambda: self._labs().get_cluster_custom_object(
                naming.GROUP,
                naming.VERSION,
                plural,
                name,
                _request_timeout=self.CLI_REQUEST_TIMEOUT,
            )
        )
        return cast(Manifest | None, found)

    def _list_objects(self, plural: str, label_selector: str | None = None) -> list[Manifest]:
        listing = self._labs().list_cluster_custom_object(
            naming.GROUP,
            naming.VERSION,
            plural,
            label_selector=label_selector,
            _request_timeout=self.CLI_REQUEST_TIMEOUT,
        )
        return cast(list[Manifest], listing.get("items") or [])

    def get_roadmap(self, name: str) -> Manifest | None:
        """The Roadmap, or None when it does not exist."""
        return self._get_object(ROADMAP_PLURAL, name)

    def list_roadmaps(self) -> list[Manifest]:
        return self._list_objects(ROADMAP_PLURAL)

    def get_enrollment(self, name: str) -> Manifest | None:
        """The Enrollment, or None when it does not exist."""
        return self._get_object(ENROLLMENT_PLURAL, name)

    def list_enrollments(self, label_selector: str | None = None) -> list[Manifest]:
        """Every Enrollment, or those matching a label selector (a Cohort's)."""
        return self._list_objects(ENROLLMENT_PLURAL, label_selector)

    def create_enrollment(self, manifest: Manifest) -> Manifest:
        """Create an Enrollment (ApiException 409 when the name is taken)."""
        return cast(
            Manifest,
            self._labs().create_cluster_custom_object(
                naming.GROUP,
                naming.VERSION,
                ENROLLMENT_PLURAL,
                manifest,
                _request_timeout=self.CLI_REQUEST_TIMEOUT,
            ),
        )

    def patch_enrollment(self, name: str, patch: Manifest) -> Manifest:
        """Merge-patch an Enrollment, e.g. to set the start-requested annotation."""
        return cast(
            Manifest,
            self._labs().patch_cluster_custom_object(
                naming.GROUP,
                naming.VERSION,
                ENROLLMENT_PLURAL,
                name,
                patch,
                _request_timeout=self.CLI_REQUEST_TIMEOUT,
            ),
        )

    def list_cohorts(self) -> list[Manifest]:
        return self._list_objects(COHORT_PLURAL)

    def apply_cohort(self, manifest: Manifest) -> Manifest:
        """Create or update a Cohort by server-side apply (as FIELD_MANAGER, forcing)."""
        return cast(
            Manifest,
            self._labs().patch_cluster_custom_object(
                naming.GROUP,
                naming.VERSION,
                COHORT_PLURAL,
                manifest["metadata"]["name"],
                manifest,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY_PATCH,
                _request_timeout=self.CLI_REQUEST_TIMEOUT,
            ),
        )

    def config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's data (e.g. the certificates' public keys); None when it is absent."""
        found = unless_not_found(
            lambda: self.core.read_namespaced_config_map(
                name, namespace, _request_timeout=self.CLI_REQUEST_TIMEOUT
            )
        )
        return dict(found.data or {}) if found is not None else None

    # --- the learner's credentials and the cluster ------------------------------------------

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

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """One key of a Secret, decoded; None when the Secret or the key is absent."""
        secret = unless_not_found(
            lambda: self.core.read_namespaced_secret(
                name, namespace, _request_timeout=self.CLI_REQUEST_TIMEOUT
            )
        )
        data = (secret.data or {}) if secret is not None else {}
        return base64.b64decode(data[key]).decode() if key in data else None

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
