"""A lab's guide as HTML for the page: placeholders filled in, Markdown rendered with HTML
off, and the result sanitized, so that no guide (nor a parameter value in it) can put a
script, a handler, a style or a foreign frame on the learner's page.

Two layers on purpose: markdown-it never passes raw HTML through and refuses
javascript: links; nh3 then keeps only a short list of tags and attributes whatever the
renderer made. The page's script adds the "copy" and "run in terminal" buttons to code
blocks, so the guide itself needs no buttons (nor any attribute a button would).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nh3
from markdown_it import MarkdownIt

from roadlab.api import naming
from roadlab.catalog.guide_text import GUIDE_FILE, fill_placeholders, guide_context
from roadlab.catalog.schema import LabDefinition

ALLOWED_TAGS = frozenset(
    {
        "a",
        "blockquote",
        "br",
        "code",
        "del",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "li",
        "ol",
        "p",
        "pre",
        "strong",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "ol": {"start"}}
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_LINK = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)
_LANGUAGE_CLASS = re.compile(r"^language-[A-Za-z0-9_+-]{1,32}$")

_MARKDOWN = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    .enable("table")
    .enable("strikethrough")
)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href":
        # Absolute http(s) and mailto only: a relative link would point into the portal.
        return value if _LINK.match(value.strip()) else None
    if tag == "code" and attribute == "class":
        return value if _LANGUAGE_CLASS.match(value) else None
    return value


def markdown_to_safe_html(markdown: str) -> str:
    return nh3.clean(
        _MARKDOWN.render(markdown),
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        url_schemes=set(LINK_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def fallback_context(lab: Mapping[str, Any]) -> dict[str, Any]:
    """The values of a guide whose catalog lab this portal does not know."""
    name = str((lab.get("metadata") or {}).get("name", ""))
    spec: Mapping[str, Any] = lab.get("spec") or {}
    context: dict[str, Any] = {"lab": name, "params": dict(spec.get("parameters") or {})}
    if naming.is_dns1123_label(name) and len(name) <= naming.MAX_LAB_NAME_LENGTH:
        context["namespace"] = naming.namespace_for(name)
    if spec.get("learner"):
        context["learner"] = spec["learner"]
    return context


def guide_html(lab: Mapping[str, Any], definition: LabDefinition | None, catalog: Path) -> str:
    """The Lab's guide (labs/<id>/README.md) filled in and rendered; a line saying so when
    the catalog has none."""
    lab_id = str((lab.get("spec") or {}).get("lab", ""))
    path = catalog / lab_id / GUIDE_FILE
    if not naming.is_dns1123_label(lab_id) or not path.is_file():
        return markdown_to_safe_html(f"This portal's catalog has no guide for the lab `{lab_id}`.")
    context = guide_context(lab, definition) if definition is not None else fallback_context(lab)
    return markdown_to_safe_html(fill_placeholders(path.read_text(), context))
