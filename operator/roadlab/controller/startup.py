"""Start-up of the operator process: Kopf's settings, and the runtime every handler shares
(settings, API client with its request counter, catalog, metrics endpoint)."""

from __future__ import annotations

import logging

import kopf

from roadlab.api import naming
from roadlab.catalog.loader import load_catalog
from roadlab.controller import metrics, state
from roadlab.controller.settings import Settings
from roadlab.kube.client import count_requests, load_api_client
from roadlab.kube.operator_api import KubeApi


def diffbase_storage() -> kopf.AnnotationsDiffBaseStorage:
    """Kopf's record of the last handled Lab, under a prefix of its own.

    Not roadlab.dev itself: Kopf leaves every annotation under its storage prefix out of
    the diff, so roadlab.dev/check-requested would never trigger its handler (checks then
    waited for the ticker, up to 30 s).
    """
    return kopf.AnnotationsDiffBaseStorage(
        prefix=naming.KOPF_PREFIX, key="last-handled-configuration"
    )


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=naming.KOPF_PREFIX
    )
    settings.persistence.diffbase_storage = diffbase_storage()
    # Every INFO log line would become an Event; Events are posted explicitly instead.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


def start_runtime(logger: kopf.Logger) -> None:
    """Settings, API client, catalog and metrics endpoint, set up once before any handler."""
    config = Settings.from_environment()
    catalog = load_catalog(config.catalog_dir)
    api_client = load_api_client()
    count_requests(
        api_client,
        lambda method, resource, code: metrics.KUBE_API_REQUESTS.labels(
            method, resource, code
        ).inc(),
    )
    state.set_runtime(state.Runtime(config, KubeApi(api_client), catalog))
    metrics.serve(config.metrics_port, config.listen_address)
    logger.info("catalog %s: %s", config.catalog_dir, ", ".join(sorted(catalog)))
