"""Entry point of the operator: `roadlab-operator` (or `python -m roadlab.main`)."""

from __future__ import annotations

import logging

import kopf

from roadlab import handlers  # noqa: F401 - registers the handlers with Kopf
from roadlab.settings import Settings


def main() -> None:
    settings = Settings.from_environment()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    kopf.run(
        clusterwide=True,
        standalone=True,
        liveness_endpoint=f"http://0.0.0.0:{settings.liveness_port}/healthz",
    )


if __name__ == "__main__":
    main()
