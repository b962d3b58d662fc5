"""Volunteer pages: the list of active projects with work left, and the answering page.

The pages are server-rendered shells; the answering page then talks to the
same JSON API as every other client (static/volunteer.js).
"""
from __future__ import annotations

import mimetypes

from flask import (
    Flask,
    Response,
    abort,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)

from engine.accounts.confirmations import confirm_email
from engine.accounts.news import unsubscribe_by_token
from engine.errors import BitesizeError
from engine.projects import get_project, in_language, list_projects, project_view
from engine.quality.reports import REASONS
from web.i18n import page_lang
from web.services import services


def init_app(app: Flask) -> None:
    app.add_url_rule("/", "index", index)
    app.add_url_rule("/projects/<int:project_id>", "project_page", project_page)
    app.add_url_rule("/me", "my_volunteering", my_volunteering)
    app.add_url_rule("/media/<name>", "media", media)
    app.add_url_rule("/unsubscribe/<token>", "unsubscribe", unsubscribe, methods=["GET", "POST"])
    # Volunteer pages have no session, so no CSRF token: the signed token in the
    # link, which only its email's reader has, is what a forger would need.
    app.extensions["csrf"].exempt(unsubscribe)
    app.add_url_rule("/confirm-email/<token>", "confirm_email", confirm_email_page,
                     methods=["GET", "POST"])
    app.extensions["csrf"].exempt(confirm_email_page)  # the same: the token is the proof
    # a project's own words in the page's language, for the list of projects
    app.add_template_global(lambda project: in_language(project, page_lang()),
                            "in_page_language")


def index():
    return render_template("index.html", projects=list_projects(services(), None, with_work=True))


def project_page(project_id: int):
    try:
        project = get_project(services(), None, project_id)
    except BitesizeError:
        abort(404)
    template = f"task_types/{project.task_type}.html"
    api_base = url_for("api.openapi_json").rsplit("/", 1)[0]
    texts = in_language(project, page_lang())  # the charity's words in the page's language
    return render_template("project.html", project=texts, task_template=template,
                           api_base=api_base, label_names=texts.label_names,
                           progress=project_view(services(), project).progress,
                           report_reasons=REASONS)


def my_volunteering():
    """The volunteer's own page: what their answers did, and a certificate to print.
    A shell: the token lives in the browser, so static/me.js asks the API."""
    api_base = url_for("api.openapi_json").rsplit("/", 1)[0]
    return render_template("me.html", api_base=api_base)


def unsubscribe(token: str):
    """The link at the foot of a project's news email: a page with one button (a
    mail scanner that fetches the link unsubscribes nobody), then done."""
    if request.method == "GET":
        return render_template("unsubscribe.html", done=None)
    try:
        name = unsubscribe_by_token(services(), token)
    except BitesizeError:
        abort(404)
    return render_template("unsubscribe.html", done=name)


def confirm_email_page(token: str):
    """The link in a volunteer's confirmation email: a page with one button (a
    mail scanner that fetches the link confirms nothing), then done. A link
    that no longer works says so, with the way to a new one."""
    if request.method == "GET":
        return render_template("confirm_email.html", done=None)
    try:
        confirm_email(services(), token)
    except BitesizeError:
        return render_template("confirm_email.html", done=False), 410
    return render_template("confirm_email.html", done=True)


def media(name: str):
    """Stored images, by content hash. Names are unguessable but not secret.
    From a folder, the file itself; from a bucket, its bytes as they come."""
    try:
        path, chunks, size = services().media.opened(name)
    except BitesizeError:
        abort(404)
    if path is not None:
        return send_file(path, max_age=365 * 24 * 3600)
    response = Response(stream_with_context(chunks), mimetype=mimetypes.guess_type(name)[0])
    response.headers["Content-Length"] = str(size)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
