"""The quality desk's front door: the inbox and the audit log.

The inbox (engine.quality.inbox) is what waits for a human across the
projects the signed-in staff member runs, newest first; every row links to
the page where it is dealt with (a volunteer's page, a contested task, the
project's uploads or webhooks). The audit log (engine.quality.audit) says
who did what to whom and why, and downloads as CSV for the charity's own
records. Both call the engine, never the HTTP API, as the rest of the console.
"""
from __future__ import annotations

from datetime import datetime

from flask import Response, render_template, url_for
from marshmallow import Schema, fields, validate

from engine.delivery.exports import render
from engine.quality import audit, held, inbox, trust
from web.api.schemas import load_query
from web.console import bp, staff_identity
from web.converters import MAX_ID
from web.services import services

PAGE = 50
KIND_NAMES = {"volunteer": "Quarantined volunteers", "task": "Contested tasks",
              "report": "Reported tasks", "job": "Failed uploads",
              "webhook": "Undelivered webhook events"}
REASONS = {"too_fast": "answers too fast", "same_answer": "gives the same answer",
           "failing_gold": "fails gold tasks", "low_agreement": "rarely agrees with others",
           "manual": "quarantined by hand"}
ACTION_NAMES = {"quarantine": "Quarantined", "clear": "Cleared", "block": "Blocked",
                "unblock": "Unblocked", "settle": "Settled", "spot_check": "Spot-checked",
                "reopen": "Reopened tasks", "dismiss_reports": "Dismissed reports",
                "delete_draft": "Deleted a draft"}


class DeskQuery(Schema):
    kind = fields.String(validate=validate.OneOf(inbox.KINDS), load_default=None)
    project = fields.Integer(validate=validate.Range(min=1, max=MAX_ID), load_default=None)
    page = fields.Integer(validate=validate.Range(min=1, max=inbox.MAX_OFFSET // PAGE + 1),
                          load_default=1)


class AuditPageQuery(Schema):
    project = fields.Integer(validate=validate.Range(min=1, max=MAX_ID), load_default=None)
    page = fields.Integer(validate=validate.Range(min=1, max=100_000), load_default=1)


@bp.get("/desk")
def desk():
    """The inbox, one page at a time, filtered by kind or project if asked."""
    query = load_query(DeskQuery())
    found = inbox.inbox(services(), staff_identity(), PAGE, (query["page"] - 1) * PAGE,
                        query["kind"], query["project"])
    shown = found["counts"][query["kind"]] if query["kind"] else found["total"]
    return render_template("console/desk/inbox.html", found=found, query=query,
                           kinds=KIND_NAMES, reasons=REASONS, shown=shown,
                           more=query["page"] * PAGE < shown)


@bp.get("/desk/audit")
def audit_page():
    """The audit log of the projects this admin moderates, newest first."""
    query = load_query(AuditPageQuery())
    found = audit.audit_log(services(), staff_identity(), query["project"], PAGE,
                            (query["page"] - 1) * PAGE)
    return render_template("console/desk/audit.html", found=found, query=query,
                           actions=ACTION_NAMES, reasons=REASONS,
                           more=query["page"] * PAGE < found["total"])


@bp.get("/desk/audit.csv")
def audit_csv():
    """The whole audit log as CSV, formula-like text escaped for spreadsheets."""
    query = load_query(AuditPageQuery())
    rows = audit.audit_rows(services(), staff_identity(), query["project"])
    chunks = render(rows, "csv", audit.COLUMNS, bom=True)
    name = f"audit-log-project-{query['project']}.csv" if query["project"] else "audit-log.csv"
    return Response(chunks, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.app_template_filter("since")
def since(iso: str) -> str:
    """A moment as people read it: "14:05 UTC, Fri 4 Dec 2026"."""
    moment = datetime.fromisoformat(iso)
    return f"{moment:%H:%M} UTC, {moment:%a} {moment.day} {moment:%b %Y}"


@bp.app_template_global("page_url")
def page_url(endpoint: str, query: dict, page: int) -> str:
    """The same listing's URL at another page, keeping its filters."""
    args = {k: v for k, v in query.items() if v is not None and k != "page"}
    return url_for(endpoint, page=page, **args)



@bp.app_template_global("desk_counts")
def desk_counts(project) -> dict:
    """For the project page's quality panel: what waits in this project's inbox,
    and whether the signed-in staff member may act on volunteers."""
    who = staff_identity()
    counts = inbox.inbox(services(), who, limit=1, project_id=project.id)["counts"]
    with services().db.session() as session:
        held_here = held.count_held(session, [project.id]).get(project.id, 0)
    return {**counts, "held": held_here,
            "trust": trust.limits_of(project.quality),
            "moderates": who.moderates(project.organisation_id)}


@bp.app_template_global("staff_moderates")
def staff_moderates(project) -> bool:
    """Whether the signed-in staff member may act on the project's volunteers
    (admins of its organisation, platform admins): pages link to the desk's
    volunteer pages only for them."""
    return staff_identity().moderates(project.organisation_id)
