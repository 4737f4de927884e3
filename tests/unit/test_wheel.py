"""The wheel works without the checkout: built, installed into a fresh venv, run elsewhere.

The venv sees this interpreter's site-packages (--system-site-packages), so the
dependencies need no download; the wheel itself is installed into the venv, and the
scripts run from a directory outside the repository with no ROADLAB_CATALOG.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
CATALOG_LABS = sorted(p.name for p in (REPO_ROOT / "labs").iterdir() if p.is_dir())
# What the build reads; a copy keeps setuptools' build/ and egg-info out of the checkout.
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "operator/roadlab", "labs")


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        if (REPO_ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
            shutil.copytree(REPO_ROOT / name, source / name, ignore=ignore)
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    # Build isolation: pip fetches the build requirements (setuptools>=77), as for a user.
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), "."], source)
    [built] = out.glob("roadlab-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("venv")
    made = subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot create a venv here: {made.stderr.strip()}")
    python = root / "bin" / "python"
    # pip comes from the system site-packages and installs into the venv it runs in.
    _run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
        root,
    )
    return root


@pytest.fixture
def elsewhere(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A working directory outside the checkout, and an environment that knows no catalog."""
    env = {k: v for k, v in os.environ.items() if k not in ("ROADLAB_CATALOG", "PYTHONPATH")}
    env["KUBECONFIG"] = str(tmp_path / "no-kubeconfig")
    return tmp_path, env


def test_the_wheel_holds_the_code_the_catalog_and_the_license(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {
        "/".join(init.parent.relative_to(REPO_ROOT / "operator").parts)
        for init in (REPO_ROOT / "operator" / "roadlab").rglob("__init__.py")
    }
    assert packages <= {name.rsplit("/", 1)[0] for name in names}  # none left out of the list
    assert "roadlab/py.typed" in names
    for lab_id in CATALOG_LABS:
        assert f"roadlab/catalog_data/{lab_id}/lab.yaml" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    dist_info = f"roadlab-{VERSION}.dist-info"
    assert f"{dist_info}/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: Apache-2.0\n" in metadata
    assert "Classifier: License ::" not in metadata  # PEP 639: the expression says it
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "kubectl_complete-lab = roadlab.cli.completion:kubectl_complete" in entry_points


def test_the_installed_package_is_the_wheel(
    venv: Path, elsewhere: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = elsewhere
    code = "import roadlab.catalog.location as c; print(c.__file__); print(c.default_catalog_dir())"
    module, catalog = _run([str(venv / "bin" / "python"), "-c", code], cwd, env).split()
    assert Path(module).is_relative_to(venv)
    assert Path(catalog).is_relative_to(venv)


def test_catalog_and_version_work_from_the_wheel(
    venv: Path, elsewhere: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = elsewhere
    listing = _run([str(venv / "bin" / "kubectl-lab"), "catalog"], cwd, env)
    assert [line.split()[0] for line in listing.splitlines()[1:]] == CATALOG_LABS
    assert {"hpa", "istio", "triton", "mlflow", "smoke"} <= set(CATALOG_LABS)
    version = _run([str(venv / "bin" / "kubectl-lab"), "--version"], cwd, env)
    assert version == f"kubectl lab {VERSION}\n"
    assert VERSION == "0.1.0"


def test_start_knows_the_parameter_types_from_the_wheel(
    venv: Path, elsewhere: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = elsewhere
    # The catalog check comes before the cluster: an unknown parameter is refused from the
    # catalog, not guessed at ("note: no lab catalog ...") and sent.
    result = subprocess.run(
        [str(venv / "bin" / "kubectl-lab"), "start", "smoke", "--param", "size=1"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown parameter(s) size for lab smoke")


def test_kubectl_completion_from_the_wheel(
    venv: Path, elsewhere: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = elsewhere
    answer = _run([str(venv / "bin" / "kubectl_complete-lab"), "start", ""], cwd, env)
    assert [line.split("\t")[0] for line in answer.splitlines()] == [*CATALOG_LABS, ":4"]
