"""What the probes that talk HTTP to a lab Service share: argument types (a Service of the
lab namespace, a port, a URL path, a method) and how a response or a failure reads."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from roadlab.probes.base import HttpResponse, show

SERVICE_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
ServiceName = Annotated[str, StringConstraints(pattern=SERVICE_NAME)]
Port = Annotated[int, Field(ge=1, le=65535)]
UrlPath = Annotated[str, StringConstraints(pattern=r"^/[^\s#]*$", max_length=1024)]
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
BODY_SNIPPET = 120


def snippet(response: HttpResponse) -> str:
    text = " ".join(response.text().split())
    return show(text, BODY_SNIPPET)


def unreachable(service: str, port: int, request: str, error: Exception) -> str:
    return (
        f"could not reach Service {service} port {port} ({request}: {error}); check that the "
        "Service exists, that its selector matches ready pods (`kubectl get endpoints "
        f"{service}`) and that the port is right"
    )
