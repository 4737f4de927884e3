"""Shared fixtures for the cluster-free unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings

from roadlab.catalog.loader import load_catalog
from roadlab.catalog.schema import LabDefinition

# The machine running these is shared with heavy builds: no wall-clock deadlines.
settings.register_profile("roadlab", deadline=None, max_examples=100)
settings.load_profile("roadlab")

REPO_ROOT = Path(__file__).resolve().parents[2]
LABS_ROOT = REPO_ROOT / "labs"
CRD_PATH = REPO_ROOT / "crds" / "lab.yaml"
NOW = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def labs_root() -> Path:
    return LABS_ROOT


@pytest.fixture(scope="session")
def crd_path() -> Path:
    return CRD_PATH


@pytest.fixture(scope="session")
def catalog() -> dict[str, LabDefinition]:
    return load_catalog(LABS_ROOT)


@pytest.fixture(scope="session")
def smoke(catalog: dict[str, LabDefinition]) -> LabDefinition:
    return catalog["smoke"]
