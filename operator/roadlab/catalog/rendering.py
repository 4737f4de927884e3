"""Render a lab's environment templates into Kubernetes objects, safely.

Rendering is structure-first: the template is parsed as YAML *before* any Jinja runs, and
Jinja only ever produces the value of an existing string scalar. A parameter value is data,
never template source and never YAML source, so it cannot add keys, objects or documents,
and it cannot run code. Jinja itself runs in an immutable sandbox with StrictUndefined so
a typo in a template fails loudly instead of rendering an empty string.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from roadlab.api import naming
from roadlab.api.lab import ParamValue
from roadlab.catalog.schema import LabDefinition


class RenderError(ValueError):
    """A template cannot be rendered or produced an object Roadlab will not create."""


# Namespaced kinds a lab environment may contain. Everything else (RBAC, cluster-scoped
# objects, NetworkPolicies, quotas, DaemonSets, webhooks...) is the operator's business.
ALLOWED_KINDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("v1", "PersistentVolumeClaim"),
        ("v1", "Pod"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("networking.k8s.io/v1", "Ingress"),
        ("policy/v1", "PodDisruptionBudget"),
    }
)

_ENV = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,  # YAML block scalars end in "\n"; keep it
)
_SINGLE_EXPRESSION = re.compile(r"\{\{-?(?P<expr>.*)-?\}\}", re.DOTALL)
_JINJA_MARKERS = ("{{", "{%", "{#")


def render_context(
    params: Mapping[str, ParamValue], lab_name: str, learner: str, namespace: str
) -> dict[str, Any]:
    """The variables templates may use: params.*, lab.{name,learner,namespace}, namespace."""
    return {
        "params": dict(params),
        "lab": {"name": lab_name, "learner": learner, "namespace": namespace},
        "namespace": namespace,
    }


def _is_template(text: str) -> bool:
    return any(marker in text for marker in _JINJA_MARKERS)


def _single_expression(text: str) -> str | None:
    """The expression if text is exactly one {{ ... }} (surrounding whitespace allowed)."""
    match = _SINGLE_EXPRESSION.fullmatch(text.strip())
    if match is None:
        return None
    expr = match.group("expr").removesuffix("-")
    if any(marker in expr for marker in ("{{", "}}", "{%", "%}", "{#", "#}")):
        return None
    return expr


def _render_scalar(text: str, context: Mapping[str, Any]) -> Any:
    if not _is_template(text):
        return text
    expr = _single_expression(text)
    if expr is not None:
        # A lone expression keeps int/bool results native: replicas: "{{ params.replicas }}".
        try:
            value = _ENV.compile_expression(expr, undefined_to_none=False)(**context)
        except jinja2.TemplateSyntaxError:
            value = None  # fall through; the full render below reports it properly
        if isinstance(value, bool | int) and not isinstance(value, jinja2.Undefined):
            return value
    return _ENV.from_string(text).render(context)


def evaluate_rule(expression: str, params: Mapping[str, Any]) -> bool:
    """A lab's parameter rule, evaluated in the sandbox over `params` (RenderError if it
    does not compile or fails)."""
    try:
        value = _ENV.compile_expression(expression, undefined_to_none=False)(params=params)
        return bool(value)  # an Undefined raises here
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        raise RenderError(f"parameter rule {expression!r}: {exc}") from exc


def _render_node(node: Any, context: Mapping[str, Any], path: str) -> Any:
    try:
        if isinstance(node, str):
            return _render_scalar(node, context)
    except RenderError:
        raise
    except Exception as exc:  # any Jinja or Python error inside an expression
        raise RenderError(f"at {path or '<root>'}: {type(exc).__name__}: {exc}") from exc
    if isinstance(node, dict):
        # Keys are never templated: a template cannot grow new keys from data.
        return {
            k: _render_node(v, context, f"{path}.{k}" if path else str(k)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_render_node(v, context, f"{path}[{i}]") for i, v in enumerate(node)]
    return node


# Parsed once per template text: parsing took about 7 % of the operator's samples in a
# burst of Labs. Sharing is safe because rendering builds new containers and never changes these.
@functools.lru_cache(maxsize=256)
def _load_documents(filename: str, text: str) -> tuple[Any, ...]:
    try:
        documents = tuple(doc for doc in yaml.safe_load_all(text) if doc is not None)
    except yaml.YAMLError as exc:
        raise RenderError(
            f"{filename}: invalid YAML (Jinja expressions must be inside quoted strings, "
            f'e.g. key: "{{{{ params.x }}}}"): {exc}'
        ) from exc
    return documents


def render_template(filename: str, text: str, context: Mapping[str, Any]) -> list[Any]:
    """Parse one template file as YAML, then render each string scalar with Jinja."""
    rendered = []
    for index, document in enumerate(_load_documents(filename, text), start=1):
        try:
            rendered.append(_render_node(document, context, ""))
        except RenderError as exc:
            raise RenderError(f"{filename}: document {index} {exc}") from exc
    return rendered


def render_data(where: str, data: Any, context: Mapping[str, Any]) -> Any:
    """Render the string scalars of already-parsed data (e.g. a task's check args)."""
    try:
        return _render_node(data, context, "")
    except RenderError as exc:
        raise RenderError(f"{where}: {exc}") from exc


def check_template(filename: str, text: str) -> None:
    """Catalog-load-time check: valid YAML and valid Jinja syntax in every string scalar."""

    def walk(node: Any, path: str) -> None:
        if isinstance(node, str) and _is_template(node):
            try:
                _ENV.parse(node)
            except jinja2.TemplateSyntaxError as exc:
                raise RenderError(f"{filename}: at {path or '<root>'}: {exc}") from exc
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    for document in _load_documents(filename, text):
        walk(document, "")


def _check_json_like(node: Any, where: str) -> None:
    # safe_load can produce dates, bytes or sets that would not survive the trip to the API.
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise RenderError(f"{where}: non-string key {key!r}")
            _check_json_like(value, where)
    elif isinstance(node, list):
        for value in node:
            _check_json_like(value, where)
    elif node is not None and not isinstance(node, str | int | float | bool):
        raise RenderError(f"{where}: unsupported YAML value {node!r} (quote it)")


def _guard_one(
    obj: Any,
    where: str,
    namespace: str,
    lab_name: str,
    allowed_kinds: frozenset[tuple[str, str]],
) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise RenderError(
            f"{where}: expected a Kubernetes object (mapping), got {type(obj).__name__}"
        )
    api_version, kind, metadata = obj.get("apiVersion"), obj.get("kind"), obj.get("metadata")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise RenderError(f"{where}: apiVersion and kind are required strings")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise RenderError(f"{where}: metadata.name is required")
    name = metadata["name"]
    where = f"{where} ({kind} {name!r})"
    if (api_version, kind) not in allowed_kinds:
        raise RenderError(f"{where}: {api_version} {kind} is not allowed in a lab environment")
    valid_name = (
        naming.is_dns1035_label(name) if kind == "Service" else naming.is_dns1123_subdomain(name)
    )
    if not valid_name:
        raise RenderError(f"{where}: {name!r} is not a valid DNS-1123 name for a {kind}")
    given_namespace = metadata.get("namespace")
    if given_namespace is not None and given_namespace != namespace:
        raise RenderError(f"{where}: namespace {given_namespace!r} is not the lab namespace")
    for forbidden in ("ownerReferences", "generateName"):
        if forbidden in metadata:
            raise RenderError(f"{where}: metadata.{forbidden} is managed by Roadlab")
    given_labels = metadata.get("labels") or {}
    if not isinstance(given_labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in given_labels.items()
    ):
        raise RenderError(f"{where}: metadata.labels must map strings to strings")
    _check_json_like(obj, where)

    result = copy.deepcopy(obj)
    result["metadata"]["namespace"] = namespace
    result["metadata"]["labels"] = {
        **given_labels,
        **naming.labels(lab_name, naming.COMPONENT_ENVIRONMENT),
    }
    return result


def guard_objects(
    objects: Sequence[Any],
    namespace: str,
    allowed_kinds: frozenset[tuple[str, str]] = ALLOWED_KINDS,
    *,
    lab_name: str,
    sources: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Validate rendered objects and pin them to the lab namespace, returning copies.

    sources, if given, names the template file of each object for error messages.
    """
    seen: dict[tuple[str, str], str] = {}
    guarded = []
    for index, obj in enumerate(objects):
        source = sources[index] if sources is not None else "<objects>"
        result = _guard_one(
            obj, f"{source}: object {index + 1}", namespace, lab_name, allowed_kinds
        )
        key = (result["kind"], result["metadata"]["name"])
        if key in seen:
            raise RenderError(f"{source}: duplicate {key[0]} {key[1]!r} (first in {seen[key]})")
        seen[key] = source
        guarded.append(result)
    return guarded


def render_environment(
    definition: LabDefinition,
    params: Mapping[str, ParamValue],
    *,
    lab_name: str,
    learner: str,
    namespace: str,
    allowed_kinds: frozenset[tuple[str, str]] = ALLOWED_KINDS,
) -> list[dict[str, Any]]:
    """Render every template of a lab (in listed order) and guard the result."""
    context = render_context(params, lab_name, learner, namespace)
    sources = definition.template_sources
    objects: list[Any] = []
    names: list[str] = []
    for path in definition.environment.templates:
        if path not in sources:
            raise RenderError(f"{path}: template was not loaded with the catalog")
        rendered = render_template(path, sources[path], context)
        objects.extend(rendered)
        names.extend([path] * len(rendered))
    return guard_objects(objects, namespace, allowed_kinds, lab_name=lab_name, sources=names)
