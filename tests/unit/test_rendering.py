from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from roadlab.catalog.rendering import (
    ALLOWED_KINDS,
    RenderError,
    check_template,
    guard_objects,
    render_context,
    render_environment,
    render_template,
)
from roadlab.catalog.schema import LabDefinition

NS = "lab-demo"
TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  value: "{{ params.value }}"
  sentence: "value={{ params.value }}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: "{{ params.replicas }}"
  paused: "{{ params.flag }}"
"""


def context(**params: Any) -> dict[str, Any]:
    return render_context(
        {"value": "v", "replicas": 2, "flag": False, **params}, "demo", "alice", NS
    )


def render(text: str = TEMPLATE, **params: Any) -> list[Any]:
    return render_template("t.yaml", text, context(**params))


def test_render_basic_and_native_types() -> None:
    config, deployment = render()
    assert config["data"] == {"value": "v", "sentence": "value=v"}
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["paused"] is False


def test_native_only_for_int_and_bool() -> None:
    (doc,) = render(
        'a: "{{ params.value }}"\n'
        'b: " {{- params.replicas -}} "\n'
        'c: "{{ params.replicas }}{{ params.replicas }}"\n'
        'd: "{{ 1.5 }}"\n'
        'e: "{{ params.replicas | string }}"\n',
        value="42",
    )
    assert doc == {"a": "42", "b": 2, "c": "22", "d": "1.5", "e": "2"}


def test_context_variables() -> None:
    (doc,) = render('a: "{{ lab.name }}/{{ lab.learner }}/{{ lab.namespace }}/{{ namespace }}"\n')
    assert doc == {"a": "demo/alice/lab-demo/lab-demo"}


def test_block_scalars_keep_trailing_newline_and_keys_are_not_templated() -> None:
    (doc,) = render('"{{ params.value }}": |\n  line {{ params.value }}\n')
    assert doc == {"{{ params.value }}": "line v\n"}


def test_plain_strings_with_braces_untouched() -> None:
    (doc,) = render('a: "json {\\"k\\": 1}"\nb: 3\nc: null\n')
    assert doc == {"a": 'json {"k": 1}', "b": 3, "c": None}


def test_empty_documents_skipped() -> None:
    assert render("---\n---\na: 1\n---\n") == [{"a": 1}]


def test_undefined_variable_names_file_and_path() -> None:
    with pytest.raises(RenderError, match=r"t.yaml: document 2 at spec.x: UndefinedError") as info:
        render('a: 1\n---\nspec:\n  x: "{{ params.nope }}"\n')
    assert "nope" in str(info.value)
    with pytest.raises(RenderError, match=r"at items\[1\]"):
        render('items: ["ok", "{{ missing }}"]\n')


def test_sandbox_blocks_introspection() -> None:
    for expression in (
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ params.__class__ }}",
        "{{ lab.update({'name': 'x'}) }}",
        "{{ cycler.__init__.__globals__ }}",
    ):
        with pytest.raises(RenderError, match=r"t\.yaml"):
            render(f'a: "{expression}"\n')


def test_syntax_and_runtime_errors_become_render_errors() -> None:
    with pytest.raises(RenderError, match="TemplateSyntaxError"):
        render('a: "{{ params.value "\n')
    with pytest.raises(RenderError, match="ZeroDivisionError"):
        render('a: "{{ 1 / 0 }}"\n')
    with pytest.raises(RenderError, match=r"t\.yaml: invalid YAML .*quoted"):
        render("a: {{ params.value }}\n")


INJECTIONS = [
    "x\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
    "metadata:\n  name: pwn\nroleRef: {kind: ClusterRole, name: cluster-admin}\n",
    "x\nextra: key",
    '"\nextra: key\n"',
    "{{ 7*7 }}",
    "{{ ''.__class__ }}",
    "{% for x in range(10) %}{{ x }}{% endfor %}",
    "!!python/object/apply:os.system ['id']",
    "&a [*a]",
    "}}{{",
    "...\n---\n",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_parameter_values_are_data_not_structure_or_code(value: str) -> None:
    config, deployment = render(value=value)
    assert config["data"] == {"value": value, "sentence": "value=" + value}
    assert set(config) == {"apiVersion", "kind", "metadata", "data"}
    assert deployment["spec"] == {"replicas": 2, "paused": False}


@given(st.text(max_size=300))
def test_any_string_value_renders_verbatim(value: str) -> None:
    documents = render(value=value)
    assert len(documents) == 2
    assert documents[0]["data"]["value"] == value
    assert documents[0]["data"]["sentence"] == "value=" + value
    guarded = guard_objects(documents, NS, lab_name="demo")
    assert [(o["kind"], o["metadata"]["name"]) for o in guarded] == [
        ("ConfigMap", "settings"),
        ("Deployment", "web"),
    ]


@given(st.one_of(st.integers(), st.booleans()))
def test_native_values_roundtrip(value: int | bool) -> None:
    (doc,) = render('a: "{{ params.value }}"\n', value=value)
    assert doc["a"] == value
    assert type(doc["a"]) is type(value)


# --- guard_objects --------------------------------------------------------------------------


def cm(name: str = "settings", **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **metadata}}


def test_guard_pins_namespace_and_labels_without_mutating() -> None:
    original = cm(labels={"app": "x", "roadlab.dev/lab": "spoofed"})
    (guarded,) = guard_objects([original], NS, lab_name="demo")
    assert guarded["metadata"]["namespace"] == NS
    assert guarded["metadata"]["labels"] == {
        "app": "x",
        "app.kubernetes.io/managed-by": "roadlab",
        "roadlab.dev/lab": "demo",
        "roadlab.dev/component": "environment",
    }
    assert "namespace" not in original["metadata"]
    assert guard_objects([cm(namespace=NS)], NS, lab_name="demo")[0]["metadata"]["namespace"] == NS


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "pwn"},
            },
            "ClusterRoleBinding is not allowed",
        ),
        (
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "r"},
            },
            "not allowed",
        ),
        ({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"}}, "not allowed"),
        ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}, "not allowed"),
        (
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "n"},
            },
            "not allowed",
        ),
        ({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"}}, "not allowed"),
        (
            {"apiVersion": "apps/v1beta1", "kind": "Deployment", "metadata": {"name": "d"}},
            "not allowed",
        ),
        (cm(namespace="kube-system"), "namespace 'kube-system' is not the lab namespace"),
        (cm("Bad_Name"), "not a valid DNS-1123 name"),
        ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1web"}}, "not a valid"),
        (cm(ownerReferences=[]), "ownerReferences is managed by Roadlab"),
        (cm(labels={"a": 1}), "labels must map strings to strings"),
        ({"kind": "ConfigMap", "metadata": {"name": "x"}}, "apiVersion and kind"),
        ({"apiVersion": "v1", "kind": "ConfigMap"}, "metadata.name is required"),
        ("just a string", "expected a Kubernetes object"),
        ({**cm(), "data": {"when": yaml.safe_load("2026-01-01")}}, "unsupported YAML value"),
    ],
)
def test_guard_rejects(obj: Any, message: str) -> None:
    with pytest.raises(RenderError, match=message) as info:
        guard_objects([obj], NS, lab_name="demo", sources=["templates/x.yaml"])
    assert str(info.value).startswith("templates/x.yaml: object 1")


def test_guard_rejects_duplicates_and_respects_custom_allow_list() -> None:
    with pytest.raises(RenderError, match="duplicate ConfigMap 'settings'"):
        guard_objects([cm(), cm()], NS, lab_name="demo")
    assert guard_objects([cm(), {**cm(), "kind": "Secret"}], NS, lab_name="demo")
    with pytest.raises(RenderError, match="not allowed"):
        guard_objects([cm()], NS, frozenset({("v1", "Secret")}), lab_name="demo")


def test_allow_list_is_namespaced_and_has_no_rbac() -> None:
    kinds = {kind for _, kind in ALLOWED_KINDS}
    assert "DaemonSet" not in kinds
    assert not {a for a, _ in ALLOWED_KINDS if a.startswith("rbac.")}
    assert ("autoscaling/v2", "HorizontalPodAutoscaler") in ALLOWED_KINDS


# --- whole environment ----------------------------------------------------------------------


def test_render_smoke_environment(smoke: LabDefinition) -> None:
    objects = render_environment(
        smoke, {"greeting": "hi there", "replicas": 3}, lab_name="s", learner="a", namespace="lab-s"
    )
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ConfigMap", "welcome"),
        ("Deployment", "web"),
        ("Service", "web"),
    ]
    assert objects[0]["data"]["greeting"] == "hi there"
    deployment = objects[1]
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "localhost/roadlab/web:0.1.0"
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert all(o["metadata"]["namespace"] == "lab-s" for o in objects)


def test_render_environment_template_errors_name_the_file(smoke: LabDefinition) -> None:
    bad = smoke.with_template_sources(
        {"templates/app.yaml": 'kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: "{{ nope }}"\n'}
    )
    with pytest.raises(RenderError, match=r"^templates/app.yaml: document 1 at metadata.name"):
        render_environment(bad, {}, lab_name="s", learner="a", namespace="lab-s")
    crb = smoke.with_template_sources(
        {
            "templates/app.yaml": "apiVersion: rbac.authorization.k8s.io/v1\n"
            "kind: ClusterRoleBinding\nmetadata:\n  name: x\n"
        }
    )
    with pytest.raises(RenderError, match=r"^templates/app.yaml: object 1 \(ClusterRoleBinding"):
        render_environment(crb, {}, lab_name="s", learner="a", namespace="lab-s")
    missing = smoke.with_template_sources({})
    with pytest.raises(RenderError, match="not loaded"):
        render_environment(missing, {}, lab_name="s", learner="a", namespace="lab-s")


def test_check_template() -> None:
    check_template("ok.yaml", TEMPLATE)
    with pytest.raises(RenderError, match=r"bad.yaml: at a\[0\].b"):
        check_template("bad.yaml", 'a:\n  - b: "{% if %}"\n')
