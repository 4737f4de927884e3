"""Operator settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from roadlab.api import naming
from roadlab.catalog.location import default_catalog_dir

DEFAULT_CHECKER_IMAGE = "localhost/roadlab/operator:0.1.0"
# The cluster's pod addresses (ROADLAB_MESH_POD_CIDR): the local cluster's and kind's.
DEFAULT_POD_CIDR = "10.244.0.0/16"


@dataclass(frozen=True)
class CheckSettings:
    """What a validation run needs to know about the operator's deployment."""

    operator_namespace: str
    checker_image: str
    # Secrets (in the operator's namespace) to pull checker_image with: the chart's
    # imagePullSecrets, since the check Jobs run the operator's own image.
    image_pull_secrets: tuple[str, ...] = ()
    # Short checks go to the warm checker (a Deployment) rather than a Job, when it answers.
    warm_checker: bool = False
    # The key the warm checker's requests are signed with; None: read from its Secret.
    checker_key: str | None = None
    # The cluster's pod addresses, which a meshed check run reaches without its sidecar.
    mesh_pod_cidr: str = DEFAULT_POD_CIDR


@dataclass(frozen=True)
class PortalSettings:
    """What the learner portal needs made for each Lab."""

    access_tokens: bool = True  # a portal access token Secret per Lab
    workspace_image: str | None = None  # the workspace pod's image; None: no workspace


@dataclass(frozen=True)
class Settings:
    catalog_dir: Path
    operator_namespace: str
    metrics_port: int
    liveness_port: int
    tick_seconds: float
    checker_image: str
    image_pull_secrets: tuple[str, ...] = ()
    warm_checker: bool = False
    checker_key: str | None = None
    mesh_pod_cidr: str = DEFAULT_POD_CIDR
    portal: PortalSettings = PortalSettings()
    # Where the metrics and liveness endpoints listen: every address in a pod (the kubelet
    # and Prometheus reach it there); 127.0.0.1 for an operator run on a node, such as the
    # e2e suite's, where every pod could otherwise reach it at the node's address.
    listen_address: str = "0.0.0.0"

    @property
    def checks(self) -> CheckSettings:
        return CheckSettings(
            self.operator_namespace,
            self.checker_image,
            self.image_pull_secrets,
            self.warm_checker,
            self.checker_key,
            self.mesh_pod_cidr,
        )

    @classmethod
    def from_environment(cls) -> Settings:
        env = os.environ
        return cls(
            # ROADLAB_CATALOG, else the wheel's packaged catalog (the image), else labs/.
            catalog_dir=default_catalog_dir(env),
            operator_namespace=env.get(
                "ROADLAB_OPERATOR_NAMESPACE", naming.DEFAULT_OPERATOR_NAMESPACE
            ),
            metrics_port=int(env.get("ROADLAB_METRICS_PORT", "9090")),
            liveness_port=int(env.get("ROADLAB_LIVENESS_PORT", "8080")),
            tick_seconds=float(env.get("ROADLAB_TICK_SECONDS", "30")),
            listen_address=env.get("ROADLAB_LISTEN_ADDRESS", "0.0.0.0"),
            checker_image=env.get("ROADLAB_CHECKER_IMAGE", DEFAULT_CHECKER_IMAGE),
            image_pull_secrets=secret_names(env.get("ROADLAB_IMAGE_PULL_SECRETS", "")),
            warm_checker=env.get("ROADLAB_WARM_CHECKER", "true").strip().lower() == "true",
            checker_key=env.get("ROADLAB_CHECKER_KEY") or None,
            mesh_pod_cidr=env.get("ROADLAB_MESH_POD_CIDR") or DEFAULT_POD_CIDR,
            portal=PortalSettings(
                access_tokens=env.get("ROADLAB_PORTAL", "true").strip().lower() == "true",
                workspace_image=env.get("ROADLAB_WORKSPACE_IMAGE") or None,
            ),
        )


def secret_names(value: str) -> tuple[str, ...]:
    """ROADLAB_IMAGE_PULL_SECRETS: comma-separated Secret names; blanks and repeats dropped."""
    names = (name.strip() for name in value.split(","))
    return tuple(dict.fromkeys(name for name in names if name))
