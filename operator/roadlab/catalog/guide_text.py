"""A lab's guide (labs/<id>/README.md) as text, with the learner's values filled in.

Guides are Markdown with Jinja placeholders: `{{ lab }}` (the Lab's name), `{{ namespace }}`,
`{{ learner }}` and `{{ params.NAME }}` (the Lab's parameters over the lab's defaults).
Each `{{ ... }}` is evaluated on its own in a sandbox; one that does not evaluate (an
unknown name, a typo, a shell snippet that happens to use braces) stays as written, so a
guide always renders. There are no statements (`{% ... %}`): a guide is read on GitHub too.

Pure: shared by `kubectl lab guide` (a terminal) and the learner portal (a browser), which
each render the filled-in Markdown their own way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from roadlab.api import naming
from roadlab.catalog.loader import resolve_parameters
from roadlab.catalog.schema import LabDefinition

GUIDE_FILE = "README.md"
# One placeholder: {{ ... }} on one line (whitespace control {{- -}} allowed).
_PLACEHOLDER = re.compile(r"\{\{(?P<expr>[^\n]*?)\}\}")
# Control characters (but newline and tab) that a value could use to drive the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


def guide_context(lab: Mapping[str, Any], definition: LabDefinition) -> dict[str, Any]:
    """The values a guide may use, from the Lab and its catalog lab."""
    name = str((lab.get("metadata") or {}).get("name", ""))
    spec: Mapping[str, Any] = lab.get("spec") or {}
    status: Mapping[str, Any] = lab.get("status") or {}
    given = spec.get("parameters") or {}
    try:
        params: dict[str, Any] = dict(resolve_parameters(definition, given))
    except ValueError:  # values the operator refuses as well: show them as they are
        defaults = {
            key: p.default for key, p in definition.parameters.items() if p.default is not None
        }
        params = {**defaults, **given}
    namespace = status.get("namespace")
    if not namespace:
        try:
            namespace = naming.namespace_for(name)
        except ValueError:
            namespace = None
    context: dict[str, Any] = {"lab": name, "params": params}
    if namespace:
        context["namespace"] = namespace
    if spec.get("learner"):
        context["learner"] = spec["learner"]
    return context


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, jinja2.Undefined):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"  # as a Kubernetes manifest writes it
    return _CONTROL.sub("", str(value))


def fill_placeholders(text: str, context: Mapping[str, Any]) -> str:
    """text with every {{ expression }} that evaluates replaced by its value."""

    def fill(match: re.Match[str]) -> str:
        expr = match["expr"].removeprefix("-").removesuffix("-").strip()
        try:
            value = _ENV.compile_expression(expr, undefined_to_none=False)(**context)
            filled = _as_text(value)
        except Exception:  # a syntax error, an undefined name, the sandbox: left as written
            filled = None
        return match[0] if filled is None else filled

    return _PLACEHOLDER.sub(fill, text)
