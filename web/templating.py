"""Jinja setup: task types' HTML fragments are templates named task_types/<name>.html.

Task types hand over their template source as text (they never import
Flask); this loader serves it to Jinja, with the app's autoescaping.

The ``markdown`` filter renders what charities write in Markdown (a
project's instructions) as HTML for volunteers: CommonMark with raw HTML
turned off, so a ``<script>`` typed into the instructions shows as text,
and markdown-it's link check refuses ``javascript:`` and similar addresses.
"""
from __future__ import annotations

from flask import Flask
from jinja2 import ChoiceLoader, FunctionLoader
from markdown_it import MarkdownIt
from markupsafe import Markup

_MARKDOWN = MarkdownIt("commonmark", {"html": False})


def markdown(text: str | None) -> Markup:
    """Markdown as safe HTML: raw HTML is escaped, unsafe link schemes dropped."""
    return Markup(_MARKDOWN.render(text or ""))

PREFIX = "task_types/"


def init_app(app: Flask) -> None:
    def load(name: str):
        if not name.startswith(PREFIX) or not name.endswith(".html"):
            return None
        type_name = name[len(PREFIX):-len(".html")]
        registry = app.extensions["bitesize"].registry
        if type_name not in registry:
            return None
        return registry.get(type_name).template

    app.jinja_loader = ChoiceLoader([app.jinja_loader, FunctionLoader(load)])
    app.add_template_filter(markdown, "markdown")
