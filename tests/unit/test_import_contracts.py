"""The package's import contracts ([tool.importlinter] in pyproject.toml) hold, and a broken
one is caught: the same check as `make lint`, in the unit suite too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT = (
    "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
)


def lint_imports(operator_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(operator_dir)}
    return subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=operator_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_contracts_hold() -> None:
    pytest.importorskip("importlinter")
    result = lint_imports(REPO / "operator")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_pure_module_importing_kubernetes_breaks_a_contract(tmp_path: Path) -> None:
    pytest.importorskip("importlinter")
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "operator" / "roadlab", copy / "operator" / "roadlab")
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    policy = copy / "operator" / "roadlab" / "catalog" / "policy.py"
    policy.write_text(policy.read_text() + "\nimport kubernetes  # noqa\n")
    result = lint_imports(copy / "operator")
    assert result.returncode != 0
    assert "roadlab.catalog.policy -> kubernetes" in result.stdout
