"""The lab page: the guide filled in and rendered inert, whatever its README or the Lab's
parameters hold; the page's own parts; nothing loaded from outside the portal."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from portal_fake import LAB, REPO_LABS, Harness, make_lab

from roadlab.catalog import guide_text
from roadlab.cli import guide as cli_guide
from roadlab.portal import pages
from roadlab.portal.guide_html import markdown_to_safe_html

HOSTILE_README = """# Lab `{{ lab }}`

<script>alert(1)</script>

[x](javascript:alert(1)) [y](JAVASCRIPT:alert(1)) [z](  javascript:alert(1)) [d](data:text/html,x)

<img src=x onerror=alert(1)>

<iframe src="https://evil.example"></iframe>

<a href="javascript:alert(1)" onclick="alert(1)">raw</a>

![pic](https://evil.example/track.png)

Seven sevens: {{ 7*7 }}. Class: `{{ ''.__class__ }}`. MRO: `{{ lab.__class__.__mro__ }}`.
Config: `{{ config }} {{ cycler.__init__.__globals__ }}` {{ ''.__class__ }}

Greeting: {{ params.greeting }}

[ok](https://example.com/docs) [mail](mailto:help@example.com) [rel](../solution/apply.sh)

```bash
kubectl get pods -n {{ namespace }}
```
"""


class Elements(HTMLParser):
    """Every start tag and its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html)
    return parser.tags


def assert_inert(html: str) -> None:
    for tag, attributes in elements(html):
        assert tag not in {"script", "iframe", "img", "object", "embed", "style", "form"}, tag
        for name, value in attributes.items():
            assert not name.startswith("on"), (tag, name)
            assert name != "style", tag
            if name in ("href", "src"):
                assert (value or "").startswith(("https://", "http://", "mailto:")), value


@pytest.fixture
def hostile_catalog(tmp_path: Path) -> Path:
    shutil.copytree(REPO_LABS / "smoke", tmp_path / "smoke")
    (tmp_path / "smoke" / "README.md").write_text(HOSTILE_README)
    return tmp_path


def guide_part(page: str) -> str:
    start = page.index('<article class="guide" id="guide">')
    return page[start : page.index("</article>", start)]


def test_a_hostile_readme_renders_inert(hostile_catalog: Path) -> None:
    harness = Harness(catalog_dir=hostile_catalog)
    lab = make_lab()
    lab["spec"]["parameters"] = {"greeting": '<script>alert("p")</script> [p](javascript:x)'}
    harness.cluster.labs[LAB] = lab
    harness.signed_in()
    page = harness.client.get(f"/labs/{LAB}").text
    guide = guide_part(page)
    assert_inert(guide)
    scripts = [a.get("src") for tag, a in elements(page) if tag == "script"]
    assert scripts[-1] == "/static/portal.js"  # after xterm.js, when vendored
    assert set(scripts) <= {"/static/vendor/xterm.js", "/static/vendor/addon-fit.js", scripts[-1]}
    assert "<script" not in guide
    assert "javascript:" not in "".join(str(a.get("href")) for _, a in elements(guide))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in guide  # shown as text
    assert "Lab <code>alice-smoke</code>" in guide  # placeholders filled in
    assert "Seven sevens: 49." in guide  # an expression is fine,
    assert "Class: <code>{{ ''.__class__ }}</code>" in guide  # escaping the sandbox is not
    assert "<code>{{ lab.__class__.__mro__ }}</code>" in guide
    assert "<code>{{ config }} {{ cycler.__init__.__globals__ }}</code>" in guide
    assert "class &#39;" not in guide
    assert "class 'str'" not in guide
    assert "&lt;class" not in guide
    assert "kubectl get pods -n lab-alice-smoke" in guide
    links = [a for tag, a in elements(guide) if tag == "a"]
    hrefs = [a.get("href") for a in links if a.get("href")]
    assert hrefs == ["https://example.com/docs", "mailto:help@example.com"]
    assert all(a.get("rel") == "noopener noreferrer" for a in links)


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "[x](javascript:alert(1))",
        "<img src=x onerror=alert(1)>",
        "<iframe src=x></iframe>",
        "<div style='position:fixed'>x</div>",
        "<svg><script>alert(1)</script></svg>",
        "[x](vbscript:msgbox)",
        "<a href='javascript:alert(1)'>x</a>",
        "``` onload=alert(1)\ncode\n```",
        '```"><script>alert(1)</script>\ncode\n```',
        "| a |\n|:-:|\n| b |",
    ],
)
def test_markdown_renders_inert(markdown: str) -> None:
    assert_inert(markdown_to_safe_html(markdown))


def test_code_blocks_keep_their_language_only() -> None:
    html = markdown_to_safe_html("```bash\nls\n```\n\n```x y\nls\n```")
    classes = [a.get("class") for tag, a in elements(html) if tag == "code"]
    assert classes == ["language-bash", "language-x"]


def test_the_filling_is_shared_with_kubectl_lab_guide() -> None:
    assert cli_guide.fill_placeholders is guide_text.fill_placeholders
    assert cli_guide.guide_context is guide_text.guide_context
    assert cli_guide.GUIDE_FILE == guide_text.GUIDE_FILE == "README.md"


def test_the_page_has_its_parts() -> None:
    harness = Harness()
    csrf = harness.signed_in()
    page = harness.client.get(f"/labs/{LAB}")
    text = page.text
    assert f'data-csrf="{csrf}"' in text
    assert "<title>Smoke test · alice-smoke · Roadlab</title>" in text
    for part in ('id="check"', 'id="extend"', 'id="tasks"', 'id="time-left"', 'id="terminal"'):
        assert part in text
    assert text.count('class="hint-button"') == 2
    assert "Your lab is" in guide_part(text)  # the smoke guide, filled in
    # Nothing from elsewhere: every script and stylesheet is the portal's own.
    for tag, attributes in elements(text):
        for name in ("src", "href"):
            value = attributes.get(name)
            if tag in ("script", "link") and value:
                assert value.startswith("/static/") or value == "data:,", value
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"


def test_without_xterm_the_terminal_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(pages, "VENDOR_DIR", tmp_path)
    monkeypatch.setattr(pages, "terminal_assets_present", lambda: False)
    harness = Harness()
    harness.signed_in()
    text = harness.client.get(f"/labs/{LAB}").text
    assert "make portal-assets" in text
    assert "/static/vendor/xterm.js" not in text
    assert "/static/portal.js" in text


def test_the_static_files_are_served() -> None:
    client = Harness().client
    for name in ("portal.js", "portal.css"):
        answer = client.get(f"/static/{name}")
        assert answer.status_code == 200
        assert (
            "cache-control" not in answer.headers
            or "no-store" not in answer.headers["cache-control"]
        )


def test_a_lab_the_catalog_lacks_still_has_a_page() -> None:
    harness = Harness()
    lab = make_lab()
    lab["spec"]["lab"] = "gone"
    harness.cluster.labs[LAB] = lab
    harness.signed_in()
    page = harness.client.get(f"/labs/{LAB}").text
    assert "no guide for the lab <code>gone</code>" in page
