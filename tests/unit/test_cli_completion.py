"""Shell completion of the learner's verbs, and with a learner's kubeconfig (which may get
its own Lab but not list Labs)."""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from test_cli import REPO_LABS, api_error
from test_cli_learner import admin_kubeconfig, learner_kubeconfig

from roadlab.catalog.loader import load_catalog
from roadlab.catalog.schema import LabDefinition
from roadlab.cli import app as cli
from roadlab.cli import completion, session

Manifest = dict[str, Any]


def lab(name: str, lab_id: str = "smoke", learner: str = "alice") -> Manifest:
    return {"metadata": {"name": name}, "spec": {"lab": lab_id, "learner": learner}}


LABS = [lab("alice-smoke"), lab("bob-hpa", "hpa", "bob")]


@pytest.fixture(scope="module")
def catalog() -> dict[str, LabDefinition]:
    return load_catalog(REPO_LABS)


def complete(
    words: Sequence[str],
    catalog: dict[str, LabDefinition],
    own: str | None = None,
    labs: Sequence[Manifest] = LABS,
) -> dict[str, str]:
    sources = completion.CompletionSources(
        labs=lambda _: labs,
        catalog=lambda: catalog,
        contexts=lambda _: [],
        kubeconfig_lab=lambda _: own,
    )
    return completion.complete_words(cli.build_parser(), words, sources)[0]


def test_the_learners_verbs_are_commands(catalog: dict[str, LabDefinition]) -> None:
    found = complete([""], catalog)
    assert {"guide", "watch", "extend"} <= set(found)
    assert found["extend"] == "ask for more time before the lab expires"


@pytest.mark.parametrize("command", ["guide", "watch", "extend"])
def test_they_complete_lab_names(command: str, catalog: dict[str, LabDefinition]) -> None:
    assert list(complete([command, ""], catalog)) == ["alice-smoke", "bob-hpa"]


def test_nothing_to_complete_for_a_duration(catalog: dict[str, LabDefinition]) -> None:
    assert complete(["extend", "alice-smoke", ""], catalog) == {}
    assert "--no-wait" in complete(["extend", "--no"], catalog)


def test_hint_offers_the_kubeconfig_labs_tasks_first_too(
    catalog: dict[str, LabDefinition],
) -> None:
    found = complete(["hint", ""], catalog, own="alice-smoke")
    assert found == {
        "alice-smoke": "smoke for alice",
        "bob-hpa": "hpa for bob",
        "configmap-answer": 'Create a ConfigMap named answer with data.answer set to "42"',
        "scale-web": "Scale the web Deployment to 2 replicas",
    }
    assert list(complete(["hint", "sc"], catalog, own="alice-smoke")) == ["scale-web"]
    # Without a lab in the kubeconfig, or for another command: Lab names only.
    assert list(complete(["hint", ""], catalog)) == ["alice-smoke", "bob-hpa"]
    assert list(complete(["status", ""], catalog, own="alice-smoke")) == ["alice-smoke", "bob-hpa"]
    # `hint LAB TASK` as before.
    assert list(complete(["hint", "bob-hpa", "hpa-c"], catalog)) == ["hpa-configured"]


class LearnerApi:
    """A learner's view: listing Labs is refused, getting their own works."""

    def __init__(self, own: Manifest) -> None:
        self.own = own
        self.gets: list[str] = []

    def list_labs(self) -> list[Manifest]:
        raise api_error(403, "labs.roadlab.dev is forbidden")

    def get_lab(self, name: str) -> Manifest | None:
        self.gets.append(name)
        return self.own if name == self.own["metadata"]["name"] else None


def learner_app(api: Any, kubeconfig: Path) -> session.App:
    return session.App(
        connect=lambda *_: api,
        catalog_dir=REPO_LABS,
        err=io.StringIO(),
        env={"KUBECONFIG": str(kubeconfig)},
    )


def test_a_learner_completes_their_own_lab(tmp_path: Path) -> None:
    api = LearnerApi(lab("alice-smoke"))
    sources = completion.app_sources(learner_app(api, learner_kubeconfig(tmp_path)))
    args = argparse.Namespace(kubeconfig=None, context=None)
    assert sources.labs(args) == [lab("alice-smoke")]
    assert sources.kubeconfig_lab(args) == "alice-smoke"
    assert api.gets == ["alice-smoke"]


def test_a_refusal_without_a_lab_in_the_kubeconfig_completes_nothing(tmp_path: Path) -> None:
    api = LearnerApi(lab("alice-smoke"))
    sources = completion.app_sources(learner_app(api, admin_kubeconfig(tmp_path)))
    args = argparse.Namespace(kubeconfig=None, context=None)
    assert sources.labs(args) == []
    assert sources.kubeconfig_lab(args) is None
    assert api.gets == []


def test_the_kubeconfig_given_on_the_line_is_the_one_read(tmp_path: Path) -> None:
    app = learner_app(LearnerApi(lab("x")), admin_kubeconfig(tmp_path))
    sources = completion.app_sources(app)
    path = learner_kubeconfig(tmp_path, "bob-hpa")
    assert sources.kubeconfig_lab(argparse.Namespace(kubeconfig=str(path))) == "bob-hpa"
