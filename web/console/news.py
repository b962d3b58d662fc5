"""A project's news in the console: write a note to the volunteers who asked
for the project's news by email, and see how earlier notes went.

The same engine calls and schema as the API (engine.accounts.news,
web.api.news.NewsCreate); without a mail server the page says so and offers
no form, since nobody can have asked.
"""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from engine.accounts import news
from engine.accounts.mail import mail_configured
from engine.errors import BitesizeError
from engine.projects import get_owned_project
from web.api.news import NewsCreate
from web.console import bp, staff_identity
from web.console.forms import engine_errors, load_form
from web.services import services


@bp.route("/projects/<int:project_id>/news", methods=["GET", "POST"], endpoint="news")
def news_page(project_id: int):
    project = get_owned_project(services(), staff_identity(), project_id)
    values, errors, status = {"subject": "", "message": ""}, {}, 200
    if request.method == "POST":
        values, errors = load_form(NewsCreate())
        if not errors:
            try:
                sent = news.announce(services(), staff_identity(), project.id,
                                     values["subject"], values["message"])
            except BitesizeError as exc:
                errors = engine_errors(exc)
            else:
                flash(f"Your note is on its way to {sent.recipients} volunteer"
                      f"{'' if sent.recipients == 1 else 's'}.", "info")
                return redirect(url_for("console.news", project_id=project.id))
        status = 422
    return render_template(
        "console/news.html", project=project, values=values, errors=errors,
        mail=mail_configured(services().settings),
        subscribers=news.subscriber_count(services(), staff_identity(), project.id),
        notes=news.sent_news(services(), staff_identity(), project.id)), status
