"""`kubectl lab guide`: the lab's README with the learner's values filled in, safely."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from test_cli import REPO_LABS, FakeApi, Harness, Manifest, catalog_dir, make_lab, ready_status

from roadlab.catalog.loader import load_catalog
from roadlab.catalog.schema import LabDefinition
from roadlab.cli import guide

__all__ = ["catalog_dir"]  # the autouse fixture of test_cli: a catalog of the smoke lab

CONTEXT: dict[str, Any] = {
    "lab": "alice-hpa",
    "namespace": "lab-alice-hpa",
    "learner": "alice",
    "params": {"maxReplicas": 5, "enabled": True, "canaryWeight": 10},
}


@pytest.fixture(scope="module")
def repo_catalog() -> dict[str, LabDefinition]:
    return load_catalog(REPO_LABS)


def lab_with(parameters: Manifest | None = None, **status: Any) -> Manifest:
    lab = make_lab(status=ready_status() | status)
    if parameters is not None:
        lab["spec"]["parameters"] = parameters
    return lab


@pytest.mark.parametrize(
    ("text", "filled"),
    [
        ("ns `{{ namespace }}`, lab {{lab}}", "ns `lab-alice-hpa`, lab alice-hpa"),
        ("max {{ params.maxReplicas }}", "max 5"),
        ("v1 gets {{ 100 - params.canaryWeight }} %", "v1 gets 90 %"),
        ("{{- learner -}}!", "alice!"),
        ("on: {{ params.enabled }}", "on: true"),
        ("{{ params.maxReplicas | string }}x", "5x"),
        # What does not evaluate stays as written: the guide still renders.
        ("{{ params.nope }} {{ nope }}", "{{ params.nope }} {{ nope }}"),
        ("{{ nope.deeper }}", "{{ nope.deeper }}"),
        ("-o go-template='{{.metadata.name}}'", "-o go-template='{{.metadata.name}}'"),
        ("{{ 1 / 0 }} and {{ ) }}", "{{ 1 / 0 }} and {{ ) }}"),
        ("{{ lab.__class__.__mro__ }}", "{{ lab.__class__.__mro__ }}"),  # the sandbox says no
        ("{% if true %}x{% endif %} {# c #}", "{% if true %}x{% endif %} {# c #}"),
        ("{{ none }}", "{{ none }}"),
        ("a {{\nlab }} b", "a {{\nlab }} b"),  # one line only
    ],
)
def test_fill_placeholders(text: str, filled: str) -> None:
    assert guide.fill_placeholders(text, CONTEXT) == filled


def test_values_cannot_drive_the_terminal() -> None:
    context = {"params": {"greeting": "hi\x1b[2J\x07 there\tyou"}}
    assert guide.fill_placeholders("{{ params.greeting }}", context) == "hi[2J there\tyou"


def test_a_value_is_data_not_template_source() -> None:
    context = {"params": {"greeting": "{{ lab }}"}, "lab": "x"}
    assert guide.fill_placeholders("{{ params.greeting }}", context) == "{{ lab }}"


def test_guide_context_merges_the_lab_over_the_defaults(
    repo_catalog: dict[str, LabDefinition],
) -> None:
    smoke = repo_catalog["smoke"]
    assert guide.guide_context(lab_with({"replicas": 3}), smoke) == {
        "lab": "alice-smoke",
        "namespace": "lab-alice-smoke",
        "learner": "alice",
        "params": {"greeting": "hello", "replicas": 3},
    }
    # Values the catalog refuses are still shown (the operator reports them).
    context = guide.guide_context(lab_with({"replicas": 99, "extra": "x"}), smoke)
    assert context["params"] == {"greeting": "hello", "replicas": 99, "extra": "x"}
    # No status yet: the namespace is the one the Lab will own.
    assert guide.guide_context(make_lab(), smoke)["namespace"] == "lab-alice-smoke"
    nameless = make_lab(name="")
    del nameless["spec"]["learner"]
    assert guide.guide_context(nameless, smoke) == {
        "lab": "",
        "params": {"greeting": "hello", "replicas": 1},
    }


@pytest.mark.parametrize("lab_id", ["hpa", "istio", "mlflow", "model-api", "smoke", "triton"])
def test_every_placeholder_of_every_guide_fills_in(
    lab_id: str, repo_catalog: dict[str, LabDefinition]
) -> None:
    text = (REPO_LABS / lab_id / "README.md").read_text()
    lab = make_lab(name=f"alice-{lab_id}")
    lab["spec"]["lab"] = lab_id
    filled = guide.fill_placeholders(text, guide.guide_context(lab, repo_catalog[lab_id]))
    assert "{{" not in filled, re.findall(r"\{\{[^}]*\}\}", filled)
    assert f"lab-alice-{lab_id}" in filled
    # The learner's commands work as written with the learner's kubeconfig: no lab names.
    for line in filled.splitlines():
        assert not re.search(r"kubectl lab (status|check|hint|watch|extend|guide) <", line), line
    for command in ("status", "check --wait", "watch", "extend 30m"):
        assert f"kubectl lab {command}" in filled
    # The guide says truly when checks run: after each change (re-checks are the warm
    # checker's), or, for a lab checked from the mesh by a Job, when asked and periodically.
    if repo_catalog[lab_id].check_runner == "mesh":
        assert "not after each change" in filled
    else:
        assert "run again by themselves" in filled


ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def on_terminal(markdown: str) -> str:
    out = Terminal()
    guide.print_markdown(markdown, out)
    return out.getvalue()


def test_a_terminal_gets_the_guide_rendered_with_styles() -> None:
    text = on_terminal("# Title\n\n**strong** `code` [a link](https://example.com)\n")
    assert "\x1b[" in text
    plain = ANSI.sub("", text)
    assert "strong code a link (https://example.com)" in plain  # links show where they go
    assert "**" not in plain


def test_html_in_a_guide_is_shown_as_text() -> None:
    text = ANSI.sub(
        "", on_terminal("Some <b>bold</b> <script>alert(1)</script>.\n\n<div>b</div>\n")
    )
    assert "<b>bold</b> <script>alert(1)</script>" in text
    assert "<div>b</div>" in text


def test_a_pipe_gets_the_markdown_itself() -> None:
    out = io.StringIO()
    guide.print_markdown("# Title\n\n```bash\n" + "x" * 200 + "\n```", out)
    assert out.getvalue() == "# Title\n\n```bash\n" + "x" * 200 + "\n```\n"


def test_guide_command(catalog_dir: Path) -> None:
    harness = Harness(FakeApi(lab_with({"greeting": "hi there"})))
    assert harness.run("guide", "alice-smoke", "--raw") == 0
    assert "Your lab is `alice-smoke`, in the namespace `lab-alice-smoke`" in harness.out
    assert '| ConfigMap `welcome` | `greeting`: "hi there" |' in harness.out
    assert harness.out.startswith("# Lab `smoke`")
    harness = Harness(FakeApi(lab_with({"greeting": "hi there"})))
    assert harness.run("guide", "alice-smoke") == 0  # not a terminal: the same Markdown
    raw = harness.out
    harness = Harness(FakeApi(lab_with({"greeting": "hi there"})))
    assert harness.run("guide", "alice-smoke", "--raw") == 0
    assert harness.out == raw
    harness = Harness(FakeApi(lab_with()), out=Terminal())
    assert harness.run("guide") == 2  # no lab name, and no kubeconfig to take it from
    assert harness.run("guide", "alice-smoke") == 0
    assert "Your lab is alice-smoke, in the namespace lab-alice-smoke" in ANSI.sub("", harness.out)
    (catalog_dir / "smoke" / "README.md").unlink()
    harness = Harness(FakeApi(lab_with()))
    assert harness.run("guide", "alice-smoke") == 3
    assert harness.err.startswith("error: catalog lab smoke has no guide (")


def test_guide_of_a_lab_the_local_catalog_lacks() -> None:
    lab = lab_with()
    lab["spec"]["lab"] = "gone"
    harness = Harness(FakeApi(lab))
    assert harness.run("guide", "alice-smoke") == 3
    assert harness.err.startswith("error: catalog lab gone is not in the local catalog at ")


def test_guide_takes_only_text_output() -> None:
    harness = Harness(FakeApi(lab_with()))
    assert harness.run("guide", "alice-smoke", "-o", "json") == 2
    assert harness.err == "error: guide has no -o json (it takes: text)\n"
