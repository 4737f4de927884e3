"""Fixtures of the end-to-end suite: a real cluster chosen by cluster/ensure.sh."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from .operator_fixtures import (
    Labs,
    OperatorProcess,
    combined_catalog,
    install_crd_and_prereqs,
    uninstall_other_roadlabs,
)

REPO = Path(__file__).resolve().parents[2]
WEB_IMAGE = "localhost/roadlab/web:0.1.0"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


CACHE = Path(os.environ.get("ROADLAB_CACHE", Path.home() / ".cache" / "roadlab"))


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """Path of the cluster's kubeconfig; brings the cluster up when needed."""
    result = subprocess.run(
        [str(REPO / "cluster" / "ensure.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    path = result.stdout.strip().splitlines()[-1]
    os.environ["KUBECONFIG"] = path
    # The cluster's own kubectl first (the local cluster builds one).
    os.environ["PATH"] = f"{CACHE / 'bin'}{os.pathsep}{os.environ['PATH']}"
    return path


def kubectl(*args: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", *args], check=check, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="session")
def api(kubeconfig: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture(scope="session")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


@pytest.fixture(scope="session")
def batch(api: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api)


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="session")
def crd(kubeconfig: str) -> None:
    uninstalled = uninstall_other_roadlabs(kubeconfig)
    if uninstalled:
        message = (
            f"uninstalled the Roadlab release(s) {', '.join(uninstalled)} found on the cluster "
            "(e.g. from `make demo`), so the operator under test is the only one; "
            "`make demo` installs it again"
        )
        print(f"\n[e2e] {message}", file=sys.__stderr__, flush=True)
        warnings.warn(message, stacklevel=1)
    install_crd_and_prereqs(kubeconfig)


# Per module: a module that installs the operator with Helm must not have a second
# operator (this one, from source) acting on the same Labs.
@pytest.fixture(scope="module")
def operator(
    kubeconfig: str, crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    catalog = combined_catalog(tmp_path_factory.mktemp("catalog"))
    process = OperatorProcess(
        kubeconfig,
        tmp_path_factory.mktemp("operator"),
        ROADLAB_TICK_SECONDS="3",
        ROADLAB_CATALOG=str(catalog),
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
def labs(api: client.ApiClient, operator: OperatorProcess) -> Iterator[Labs]:
    labs = Labs(api)
    yield labs
    labs.cleanup()


@pytest.fixture(scope="module")
def labs_module(api: client.ApiClient, operator: OperatorProcess) -> Iterator[Labs]:
    """Labs shared by a module's tests (e.g. two tenants probed by many checks)."""
    labs = Labs(api)
    yield labs
    labs.cleanup()
