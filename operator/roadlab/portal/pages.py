"""The HTML the portal serves: Jinja2 templates with autoescape on (the guide is the one
piece marked safe, and only after guide_html sanitized it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.responses import HTMLResponse

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
VENDOR_FILES = ("xterm.js", "xterm.css", "addon-fit.js")

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def terminal_assets_present(vendor_dir: Path = VENDOR_DIR) -> bool:
    """xterm.js is vendored by `make portal-assets`, not committed: the page says so."""
    return all((vendor_dir / name).is_file() for name in VENDOR_FILES)


def lab_page(
    *,
    title: str,
    lab: str,
    learner: str,
    namespace: str,
    csrf: str,
    guide: str,
    status: dict[str, Any],
    roadmap: dict[str, Any] | None = None,
) -> HTMLResponse:
    """The lab page; `roadmap` (roadmap_view's JSON) for a Lab started for an Enrollment."""
    template = _ENV.get_template("lab.html")
    return HTMLResponse(
        template.render(
            title=title,
            lab=lab,
            learner=learner,
            namespace=namespace,
            csrf=csrf,
            guide=Markup(guide),  # sanitized by guide_html.markdown_to_safe_html
            status=status,
            roadmap=roadmap,
            terminal_assets=terminal_assets_present(),
        )
    )


def message_page(
    status_code: int, heading: str, text: str, *, refresh_to: str | None = None
) -> HTMLResponse:
    template = _ENV.get_template("message.html")
    return HTMLResponse(
        template.render(heading=heading, text=text, refresh_to=refresh_to),
        status_code=status_code,
    )
