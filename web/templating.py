"""Jinja setup: task types' HTML fragments are templates named task_types/<name>.html.

Task types hand over their template source as text (they never import
Flask); this loader serves it to Jinja, with the app's autoescaping.

The ``markdown`` filter renders what charities write in Markdown (a
project's instructions) as HTML for volunteers: CommonMark with raw HTML
turned off, so a ``<script>`` typed into the instructions shows as text,
and markdown-it's link check refuses ``javascript:`` and similar addresses.

A type's script and styles are files next to its template (``<name>.js``,
``<name>.css``, in the same package: a third-party type ships them the same
way), served at /task-types/<name>.js and .css; the page links them with
``task_type_files``. The site's Content-Security-Policy runs no inline script
or style, so a fragment carries neither.
"""
from __future__ import annotations

import hashlib
from importlib.resources import files

from flask import Flask, Response, abort, request, url_for
from jinja2 import ChoiceLoader, FunctionLoader
from markdown_it import MarkdownIt
from markupsafe import Markup

_MARKDOWN = MarkdownIt("commonmark", {"html": False})


def markdown(text: str | None) -> Markup:
    """Markdown as safe HTML: raw HTML is escaped, unsafe link schemes dropped."""
    return Markup(_MARKDOWN.render(text or ""))

PREFIX = "task_types/"
FILE_TYPES = {"js": "text/javascript", "css": "text/css"}


def type_file(app: Flask, name: str, kind: str) -> bytes | None:
    """A registered type's script or styles, None when it has none."""
    registry = app.extensions["bitesize"].registry
    if name not in registry:
        return None
    found = files(registry.get(name).template_package).joinpath(f"{name}.{kind}")
    return found.read_bytes() if found.is_file() else None


def task_type_files(app: Flask, name: str) -> dict[str, str]:
    """{"js": url, "css": url} of the files a type has, for project.html; the
    content's hash in the URL lets browsers keep them."""
    urls = {}
    for kind in FILE_TYPES:
        data = type_file(app, name, kind)
        if data is not None:
            urls[kind] = url_for(f"task_type_{kind}", name=name,
                                 v=hashlib.sha256(data).hexdigest()[:12])
    return urls


def serve_type_file(app: Flask, name: str, kind: str) -> Response:
    data = type_file(app, name, kind)
    if data is None:
        abort(404)
    digest = hashlib.sha256(data).hexdigest()
    response = Response(data, mimetype=FILE_TYPES[kind])
    response.set_etag(digest)
    response.cache_control.public = True  # a year when the URL names this very content
    response.cache_control.max_age = 365 * 24 * 3600 if request.args.get("v") == digest[:12] \
        else 300
    return response.make_conditional(request)


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
    app.add_template_global(lambda name: task_type_files(app, name), "task_type_files")
    for kind in FILE_TYPES:
        app.add_url_rule(f"/task-types/<name>.{kind}", f"task_type_{kind}",
                         lambda name, kind=kind: serve_type_file(app, name, kind))
