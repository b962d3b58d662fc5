"""The newcomers' spot-check: each new volunteer's first answers, for a quick look.

A volunteer who misunderstood the question (or a script that slipped under
the flags) is cheapest to catch early. The page lists the project's
volunteers no admin has looked at yet, newest first, each with their first
few answers beside the task, its current result or gold, and whether they
agree (engine.quality.volunteer_view.newcomers). Per volunteer: "Looks right"
(they leave the list; the audit log keeps who looked and their note),
"Quarantine" (engine.quality.moderation, with a reason) and a link to their
volunteer page. Admins only, like the rest of the desk.
"""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from marshmallow import Schema, fields, validate

from engine.errors import BitesizeError
from engine.projects import get_moderated_project
from engine.quality import volunteer_view
from engine.store.models import Project
from web.api.schemas import load_query
from web.console import bp, staff_identity
from web.console.desk import REASONS
from web.console.forms import load_form
from web.console.volunteer_page import quarantine
from web.errors import describe
from web.services import services

PAGE = volunteer_view.PAGE  # volunteers a page
NOTE_MAX = 2000


class NewcomersQuery(Schema):
    page = fields.Integer(validate=validate.Range(min=1, max=100_000), load_default=1)


class NoteForm(Schema):
    """"Looks right"'s optional note, or "Quarantine"'s reason."""

    note = fields.String(validate=validate.Length(max=NOTE_MAX), load_default="")
    reason = fields.String(validate=validate.Length(max=NOTE_MAX), load_default="")


@bp.get("/projects/<int:project_id>/newcomers")
def newcomers(project_id: int):
    return newcomers_page(project_id, load_query(NewcomersQuery())["page"])


def newcomers_page(project_id: int, page: int, status: int = 200):
    found = volunteer_view.newcomers(services(), staff_identity(), project_id,
                                     limit=PAGE, offset=(page - 1) * PAGE)
    return render_template("console/desk/newcomers.html", found=found,
                           project=found["project"], page=page, reasons=REASONS,
                           sample=volunteer_view.SAMPLE), status


@bp.post("/projects/<int:project_id>/newcomers/<int:volunteer_id>/"
         "<any(checked, quarantine):action>")
def newcomer_action(project_id: int, volunteer_id: int, action: str):
    """"Looks right" or "Quarantine" for one newcomer, then back to the same
    page of the list; a refusal is flashed on the page with its 4xx status."""
    page = load_query(NewcomersQuery())["page"]
    project = get_moderated_project(services(), staff_identity(), project_id)
    values, errors = load_form(NoteForm())
    if errors:
        flash("Not done: " + "; ".join(errors.values()), "error")
        return newcomers_page(project_id, page, 422)
    try:
        done = ACTIONS[action](project, volunteer_id, values)
    except BitesizeError as exc:
        flash(f"Not done: {exc.message}.", "error")
        return newcomers_page(project_id, page, describe(exc)[0])
    flash(done, "info")
    return redirect(newcomers_page_url(project_id, page))


def _checked(project: Project, volunteer_id: int, values: dict) -> str:
    volunteer_view.mark_checked(services(), staff_identity(), project.id, volunteer_id,
                                values["note"])
    return f"Volunteer {volunteer_id} spot-checked: their first answers look right"


def _quarantine(project: Project, volunteer_id: int, values: dict) -> str:
    return quarantine(project, volunteer_id, "project", values["reason"].strip())


ACTIONS = {"checked": _checked, "quarantine": _quarantine}


@bp.app_template_global("newcomers_page_url")
def newcomers_page_url(project_id: int, page: int) -> str:
    """The list at a page (page 1 without the query string)."""
    return url_for("console.newcomers", project_id=project_id,
                   page=page if page > 1 else None)
