"""Shell completion: candidates from the parser and stand-in sources, and both protocols."""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from roadlab.catalog.loader import load_catalog
from roadlab.catalog.schema import LabDefinition
from roadlab.cli import app as cli
from roadlab.cli import completion, session

REPO_LABS = Path(__file__).resolve().parents[2] / "labs"
Manifest = dict[str, Any]


def lab(name: str, lab_id: str = "smoke", learner: str = "alice", **status: Any) -> Manifest:
    return {
        "metadata": {"name": name},
        "spec": {"lab": lab_id, "learner": learner},
        **({"status": status} if status else {}),
    }


@pytest.fixture(scope="module")
def catalog() -> dict[str, LabDefinition]:
    return load_catalog(REPO_LABS)


class Sources:
    """Stand-in sources that record what was asked."""

    def __init__(self, labs: Sequence[Manifest], catalog: dict[str, LabDefinition]) -> None:
        self.labs = list(labs)
        self.catalog = catalog
        self.lab_requests: list[argparse.Namespace] = []

    def build(self) -> completion.CompletionSources:
        def labs(parsed_args: argparse.Namespace) -> Sequence[Manifest]:
            self.lab_requests.append(parsed_args)
            return self.labs

        return completion.CompletionSources(
            labs=labs,
            catalog=lambda: self.catalog,
            contexts=lambda _: ["kind-roadlab", "prod"],
        )


LABS = [
    lab("alice-smoke", learner="alice"),
    lab("alice-hpa", "hpa", "alice"),
    lab("bob-smoke", learner="bob", tasks=[{"id": "scale-web", "title": "Scale it"}]),
]


def complete(
    words: Sequence[str], catalog: dict[str, LabDefinition], labs: Sequence[Manifest] = LABS
) -> tuple[dict[str, str], int, Sources]:
    sources = Sources(labs, catalog)
    found, directive = completion.complete_words(cli.build_parser(), words, sources.build())
    return found, directive, sources


def test_the_commands(catalog: dict[str, LabDefinition]) -> None:
    found, directive, sources = complete([""], catalog)
    assert list(found) == [
        "catalog",
        "start",
        "list",
        "status",
        "check",
        "hint",
        "guide",
        "watch",
        "extend",
        "kubeconfig",
        "url",
        "open",
        "roadmap",
        "next",
        "enroll",
        "cohort",
        "report",
        "certificate",
        "public-key",
        "verify",
        "delete",
        "version",
        "completion",
    ]
    assert found["start"] == "start a lab"
    assert directive == completion.DIRECTIVE_NO_FILE_COMP
    assert sources.lab_requests == []  # the cluster is asked only for Lab names
    assert list(complete(["st"], catalog)[0]) == ["start", "status"]


def test_catalog_labs_for_start_and_catalog(catalog: dict[str, LabDefinition]) -> None:
    found, directive, sources = complete(["start", ""], catalog)
    assert list(found) == [
        "gitops",
        "helm",
        "hpa",
        "istio",
        "mlflow",
        "model-api",
        "observability",
        "smoke",
        "streaming",
        "triton",
    ]
    assert found["smoke"] == "Smoke test"
    assert directive == completion.DIRECTIVE_NO_FILE_COMP
    assert sources.lab_requests == []
    assert list(complete(["start", "--learner", "bob", "m"], catalog)[0]) == ["mlflow", "model-api"]
    assert list(complete(["catalog", "-o", "yaml", "i"], catalog)[0]) == ["istio"]
    assert complete(["start", "smoke", ""], catalog)[0] == {}  # one catalog lab per start


@pytest.mark.parametrize("command", ["status", "check", "hint", "kubeconfig", "delete"])
def test_lab_names_for_commands_that_take_a_lab(
    command: str, catalog: dict[str, LabDefinition]
) -> None:
    found, directive, _ = complete([command, ""], catalog)
    assert found == {
        "alice-hpa": "hpa for alice",
        "alice-smoke": "smoke for alice",
        "bob-smoke": "smoke for bob",
    }
    assert directive == completion.DIRECTIVE_NO_FILE_COMP
    assert list(complete([command, "alice-"], catalog)[0]) == ["alice-hpa", "alice-smoke"]


def test_labs_are_listed_with_the_kubeconfig_and_context_given(
    catalog: dict[str, LabDefinition],
) -> None:
    _, _, sources = complete(["--kubeconfig", "k", "status", "--context", "c", ""], catalog)
    [asked] = sources.lab_requests
    assert (asked.kubeconfig, asked.context) == ("k", "c")


def test_tasks_of_the_lab_given_before(catalog: dict[str, LabDefinition]) -> None:
    # From the Lab's status when it reports its tasks...
    assert complete(["hint", "bob-smoke", ""], catalog)[0] == {"scale-web": "Scale it"}
    # ...else from its catalog lab.
    found = complete(["hint", "alice-smoke", "c"], catalog)[0]
    assert list(found) == ["configmap-answer"]
    assert complete(["hint", "nobody", ""], catalog)[0] == {}
    assert complete(["hint", "bob-smoke", "scale-web", ""], catalog)[0] == {}


def test_flags_and_their_values(catalog: dict[str, LabDefinition]) -> None:
    assert set(complete(["start", "--t"], catalog)[0]) == {"--ttl", "--timeout"}
    assert list(complete(["-o", ""], catalog)[0]) == ["text", "json", "yaml", "name", "wide"]
    assert list(complete(["list", "-o", "w"], catalog)[0]) == ["wide"]
    assert list(complete(["list", "--output=y"], catalog)[0]) == ["--output=yaml"]
    assert list(complete(["completion", ""], catalog)[0]) == ["bash", "zsh"]
    assert list(complete(["--context", ""], catalog)[0]) == ["kind-roadlab", "prod"]
    assert complete(["start", "smoke", "--ttl", ""], catalog)[0] == {}


def test_kubeconfig_files_are_left_to_the_shell(catalog: dict[str, LabDefinition]) -> None:
    found, directive, _ = complete(["list", "--kubeconfig", ""], catalog)
    assert (found, directive) == ({}, completion.DIRECTIVE_DEFAULT)


def test_nothing_from_an_empty_cluster(catalog: dict[str, LabDefinition]) -> None:
    found, directive, _ = complete(["status", ""], catalog, labs=[])
    assert (found, directive) == ({}, completion.DIRECTIVE_NO_FILE_COMP)


def test_cobra_output() -> None:
    assert completion.cobra_output({"a": "first", "b": ""}, 4) == "a\tfirst\nb\n:4\n"
    assert completion.cobra_output({}, 0) == ":0\n"
    # A description that every candidate shares is the flag's help: left out.
    assert completion.cobra_output({"json": "format", "yaml": "format"}, 4) == "json\nyaml\n:4\n"


def test_within_deadline_gives_the_fallback_on_failure_or_delay() -> None:
    assert completion.within_deadline(1.0, lambda: ["x"], []) == ["x"]

    def fail() -> list[str]:
        raise ConnectionError("refused")

    assert completion.within_deadline(1.0, fail, ["fallback"]) == ["fallback"]
    release = threading.Event()
    try:
        assert completion.within_deadline(0.05, lambda: [str(release.wait(5))], []) == []
    finally:
        release.set()


class ListingApi:
    def __init__(self, labs: list[Manifest]) -> None:
        self.labs = labs

    def list_labs(self) -> list[Manifest]:
        return self.labs


def test_app_sources_use_the_apps_api_and_catalog(tmp_path: Path) -> None:
    connected: list[tuple[str | None, str | None]] = []

    def connect(kubeconfig: str | None, context: str | None) -> Any:
        connected.append((kubeconfig, context))
        return ListingApi(LABS)

    app = session.App(connect=connect, catalog_dir=REPO_LABS, err=io.StringIO())
    sources = completion.app_sources(app)
    args = argparse.Namespace(kubeconfig="k", context="c")
    assert sources.labs(args) == LABS
    assert sources.labs(args) == LABS
    assert connected == [("k", "c")]  # once
    assert "smoke" in sources.catalog()
    missing = session.App(connect=connect, catalog_dir=tmp_path / "none", err=io.StringIO())
    assert completion.app_sources(missing).catalog() == {}


def test_app_sources_complete_nothing_when_the_cluster_is_unreachable() -> None:
    def connect(kubeconfig: str | None, context: str | None) -> Any:
        raise ConnectionError("connection refused")

    app = session.App(connect=connect, catalog_dir=REPO_LABS, err=io.StringIO())
    assert completion.app_sources(app).labs(argparse.Namespace()) == []
    assert app.err.getvalue() == ""  # type: ignore[attr-defined]


def test_contexts_come_from_the_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: one\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: one, context: {cluster: c, user: u}},"
        " {name: two, context: {cluster: c, user: u}}]\n"
    )
    app = session.App(connect=cli.connect_lab_api, catalog_dir=REPO_LABS, err=io.StringIO())
    sources = completion.app_sources(app)
    assert sources.contexts(argparse.Namespace(kubeconfig=str(kubeconfig))) == ["one", "two"]
    assert sources.contexts(argparse.Namespace(kubeconfig=str(tmp_path / "none"))) == []


def test_shell_scripts() -> None:
    bash = completion.shell_script("bash")
    assert "complete " in bash
    assert "kubectl-lab" in bash
    zsh = completion.shell_script("zsh")
    assert zsh.startswith("#compdef kubectl-lab\n")  # zsh reads it from the first line
    with pytest.raises(ValueError, match="fish"):
        completion.shell_script("fish")


def test_completion_command_prints_the_script() -> None:
    out = io.StringIO()
    app = session.App(connect=cli.connect_lab_api, catalog_dir=REPO_LABS, out=out)
    assert cli.run(app, ["completion", "bash"]) == 0
    assert out.getvalue() == completion.shell_script("bash")


def _isolated_env(tmp_path: Path, catalog_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_ARGCOMPLETE", "COMP_"))}
    env["ROADLAB_CATALOG"] = str(catalog_dir)
    env["KUBECONFIG"] = str(tmp_path / "no-kubeconfig")  # no cluster: Lab names complete to none
    return env


@pytest.fixture
def smoke_only(tmp_path: Path) -> Path:
    root = tmp_path / "labs"
    shutil.copytree(REPO_LABS / "smoke", root / "smoke")
    return root


def test_kubectl_complete_entry_point(
    smoke_only: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    for key, value in _isolated_env(tmp_path, smoke_only).items():
        monkeypatch.setenv(key, value)
    assert completion.kubectl_complete(["start", ""]) == 0
    assert capsys.readouterr().out == "smoke\tSmoke test\n:4\n"
    assert completion.kubectl_complete(["status", ""]) == 0
    assert capsys.readouterr() == (":4\n", "")  # silently nothing without a cluster


def test_argcomplete_protocol_end_to_end(smoke_only: Path, tmp_path: Path) -> None:
    """As the script from `kubectl lab completion bash` runs it: variables in, words out."""
    answer = tmp_path / "answer"
    env = _isolated_env(tmp_path, smoke_only)
    line = "kubectl-lab start "
    env |= {
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_SHELL": "bash",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
    }
    result = subprocess.run(
        [sys.executable, "-c", "from roadlab.cli.app import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")
    assert answer.read_text() == "smoke "  # the only candidate, and a space after it
