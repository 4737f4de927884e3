"""A lab's guide (labs/<id>/README.md) for the terminal, with the learner's values filled in.

Guides are Markdown with Jinja placeholders: `{{ lab }}` (the Lab's name), `{{ namespace }}`,
`{{ learner }}` and `{{ params.NAME }}` (the Lab's parameters over the lab's defaults).
Each `{{ ... }}` is evaluated on its own in a sandbox; one that does not evaluate (an
unknown name, a typo, a shell snippet that happens to use braces) stays as written, so a
guide always renders. There are no statements (`{% ... %}`): a guide is read on GitHub too.

On a terminal the guide is rendered with rich; HTML in it is shown as text, never
interpreted (the Markdown parser runs with HTML off). A pipe or a file gets the filled-in
Markdown, which is plain text already.
"""

from __future__ import annotations

from typing import TextIO

from markdown_it import MarkdownIt
from rich.console import Console
from rich.markdown import Markdown

# The filling is shared with the learner portal, so it lives in the (pure) catalog package.
from roadlab.catalog.guide_text import GUIDE_FILE, fill_placeholders, guide_context

__all__ = ["GUIDE_FILE", "InertMarkdown", "fill_placeholders", "guide_context", "print_markdown"]


class InertMarkdown(Markdown):
    """rich's Markdown with the parser's HTML off: tags are text, shown as written."""

    def __init__(self, markup: str) -> None:
        # No terminal hyperlinks: a link shows where it goes, "text (url)".
        super().__init__(markup, hyperlinks=False)
        parser = MarkdownIt("commonmark", {"html": False}).enable("strikethrough").enable("table")
        self.parsed = parser.parse(markup)


def print_markdown(markdown: str, out: TextIO) -> None:
    """Rendered with styles on a terminal; as the Markdown itself to a pipe or a file: plain
    text that keeps every command whole (rich wraps and crops code blocks to its width)."""
    console = Console(file=out)
    if console.is_terminal:
        console.print(InertMarkdown(markdown))
    else:
        out.write(markdown if markdown.endswith("\n") else markdown + "\n")
