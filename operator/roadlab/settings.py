"""Operator settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from roadlab import naming

# Running from a checkout, the catalog is the repo's labs/; the image sets ROADLAB_CATALOG.
_REPO_CATALOG = Path(__file__).resolve().parents[2] / "labs"


DEFAULT_CHECKER_IMAGE = "localhost/roadlab/operator:0.1.0"


@dataclass(frozen=True)
class CheckSettings:
    """What a validation run needs to know about the operator's deployment."""

    operator_namespace: str
    checker_image: str


@dataclass(frozen=True)
class Settings:
    catalog_dir: Path
    operator_namespace: str
    metrics_port: int
    liveness_port: int
    tick_seconds: float
    checker_image: str

    @property
    def checks(self) -> CheckSettings:
        return CheckSettings(self.operator_namespace, self.checker_image)

    @classmethod
    def from_environment(cls) -> Settings:
        env = os.environ
        return cls(
            catalog_dir=Path(env.get("ROADLAB_CATALOG", str(_REPO_CATALOG))),
            operator_namespace=env.get(
                "ROADLAB_OPERATOR_NAMESPACE", naming.DEFAULT_OPERATOR_NAMESPACE
            ),
            metrics_port=int(env.get("ROADLAB_METRICS_PORT", "9090")),
            liveness_port=int(env.get("ROADLAB_LIVENESS_PORT", "8080")),
            tick_seconds=float(env.get("ROADLAB_TICK_SECONDS", "30")),
            checker_image=env.get("ROADLAB_CHECKER_IMAGE", DEFAULT_CHECKER_IMAGE),
        )
