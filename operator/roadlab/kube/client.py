"""Client set-up and error mapping, shared by the operator's API and the CLI's Lab client.

roadlab.kube is the only package that talks to the Kubernetes API; everything outside it
gets plain dicts, and API errors as one line (`describe_api_error`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError

Manifest = dict[str, Any]
T = TypeVar("T")

NOT_FOUND = 404


def unless_not_found(call: Callable[[], T]) -> T | None:
    """call(), or None when the API answers 404.

    The one place a 404 is handled: the typed clients raise ApiException, the dynamic client
    its own DynamicApiError subclasses (NotFoundError); both carry the status.
    """
    try:
        return call()
    except (ApiException, DynamicApiError) as error:
        if error.status == NOT_FOUND:
            return None
        raise


def went_through(call: Callable[[], object]) -> bool:
    """True once call() succeeds, False when the API answers 404 (nothing was there)."""

    def run() -> bool:
        call()
        return True

    return unless_not_found(run) is not None


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
