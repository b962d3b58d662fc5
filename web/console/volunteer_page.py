"""The quality desk's volunteer page: one volunteer in one project, and the
admin's four decisions about them (block, unblock, clear, quarantine).

An admin arrives here from the inbox (a quarantined volunteer) or the
newcomers' spot-check, and must judge a person from what they did: their
answers over time, how they do on gold, how often they agree with the
crowd's results, how fast they answer, what the flags say, their answers on
contested tasks and their last answers next to each task's current result
(engine.quality.volunteer_view counts it all). Each decision is a POST form
with a reason, which engine.quality.moderation writes to the audit log; what
happened is flashed, and an engine refusal (a clear of someone not
quarantined, a platform-wide block by an organisation's admin) is shown as an
error on the page with its 4xx status, nothing changed. Admins only:
get_moderated_project answers 404 for another organisation's project and 403
for a charity member, as an error page.
"""
from __future__ import annotations

import math
from collections.abc import Callable

from flask import flash, redirect, render_template, url_for
from markupsafe import Markup
from marshmallow import Schema, fields, validate

from engine.errors import BitesizeError
from engine.projects import get_moderated_project
from engine.quality import moderation, volunteer_view
from engine.store.models import Organisation, Project
from web.console import bp, staff_identity
from web.console.charts import Bar, bar_chart
from web.console.desk import REASONS
from web.console.forms import load_form
from web.errors import describe
from web.services import services

REASON_MAX = 2000  # as the API's notes
MAX_TICKS = 8  # dates written under the per-day chart


class ActionForm(Schema):
    """Every action's form: where (block and unblock) and why."""

    scope = fields.String(validate=validate.OneOf(moderation.SCOPES), load_default="project")
    reason = fields.String(validate=validate.Length(max=REASON_MAX), load_default="")


@bp.get("/desk/projects/<int:project_id>/volunteers/<int:volunteer_id>")
def volunteer(project_id: int, volunteer_id: int):
    return volunteer_page(project_id, volunteer_id)


def volunteer_page(project_id: int, volunteer_id: int, status: int = 200):
    """The page, with the given status (an action refused shows it again)."""
    identity = staff_identity()
    profile = volunteer_view.volunteer_profile(services(), identity, project_id, volunteer_id)
    scopes = scope_choices(profile["organisation"], identity.is_platform_admin)
    return render_template("console/desk/volunteer.html", p=profile,
                           chart=days_chart(profile), reasons=REASONS, scopes=scopes,
                           unblock_scopes=unblock_choices(scopes, profile["blocked_scope"]),
                           block_scopes=block_choices(scopes, profile)), status


@bp.post("/desk/projects/<int:project_id>/volunteers/<int:volunteer_id>/"
         "<any(block, unblock, clear, quarantine):action>")
def volunteer_action(project_id: int, volunteer_id: int, action: str):
    """Do one action, flash what it did and go back to the page; a refusal is
    flashed as an error on the page, with the engine's status."""
    project = get_moderated_project(services(), staff_identity(), project_id)
    values, errors = load_form(ActionForm())
    if errors:
        flash("Not done: " + "; ".join(errors.values()), "error")
        return volunteer_page(project_id, volunteer_id, 422)
    try:
        done = ACTIONS[action](project, volunteer_id, values["scope"], values["reason"].strip())
    except BitesizeError as exc:
        flash(f"Not done: {exc.message}.", "error")
        return volunteer_page(project_id, volunteer_id, describe(exc)[0])
    flash(done, "info")
    return redirect(url_for("console.volunteer", project_id=project_id,
                            volunteer_id=volunteer_id))


def _block(project: Project, volunteer_id: int, scope: str, reason: str) -> str:
    reopened = moderation.block(services(), staff_identity(), project.id, volunteer_id,
                                scope, reason)
    return (f"Volunteer {volunteer_id} blocked {where(project, scope)}; "
            f"{tasks(reopened)} reopened for more answers")


def _unblock(project: Project, volunteer_id: int, scope: str, reason: str) -> str:
    remerged = moderation.unblock(services(), staff_identity(), project.id, volunteer_id,
                                  scope, reason)
    if moderation.still_blocked(services(), project.id, volunteer_id):
        return (f"Volunteer {volunteer_id}: the platform's block ended, but they stay blocked "
                f"in {project.name} by a block of its own or of {organisation_name(project)}; "
                f"{tasks(remerged)} merged again")
    return (f"Volunteer {volunteer_id} unblocked {where(project, scope)}: their answers "
            f"count again; {tasks(remerged)} merged again")


def _clear(project: Project, volunteer_id: int, _scope: str, reason: str) -> str:
    remerged = moderation.clear(services(), staff_identity(), project.id, volunteer_id, reason)
    return (f"Volunteer {volunteer_id} cleared: their answers count again; "
            f"{tasks(remerged)} merged again")


def quarantine(project: Project, volunteer_id: int, _scope: str, reason: str) -> str:
    """Quarantine by hand (the newcomers' page too); a 409 if nothing changed."""
    moderation.quarantine_volunteer(services(), staff_identity(), project.id, volunteer_id,
                                    reason)
    return (f"Volunteer {volunteer_id} quarantined: their answers no longer count until "
            "someone blocks or clears them")


ACTIONS: dict[str, Callable[[Project, int, str, str], str]] = {
    "block": _block, "unblock": _unblock, "clear": _clear, "quarantine": quarantine}


def where(project: Project, scope: str) -> str:
    """A scope in words, as the flash says it."""
    if scope == "project":
        return f"in {project.name}"
    if scope == "organisation":
        return f"in every project of {organisation_name(project)}"
    return "everywhere on this platform"


def organisation_name(project: Project) -> str:
    with services().db.session() as session:
        return session.get(Organisation, project.organisation_id).name


def tasks(count: int) -> str:
    return "no task" if count == 0 else f"{count} task{'s' if count != 1 else ''}"


def scope_choices(organisation: str, platform_admin: bool) -> list[tuple[str, str]]:
    """The block and unblock forms' radios: the platform only for platform admins."""
    choices = [("project", "This project"), ("organisation", f"Every project of {organisation}")]
    if platform_admin:
        choices.append(("platform", "Everywhere on this platform"))
    return choices


def block_choices(scopes: list[tuple[str, str]], profile: dict) -> list[tuple[str, str]]:
    """The block form's radios: every scope while they are not blocked here; a
    charity's own scopes while only the platform blocks them (a platform
    unblock leaves a charity's own block, so it may want one); else none."""
    if not profile["blocked"]:
        return scopes
    if profile["blocked_everywhere"] and not (profile["blocked_here"]
                                              or profile["blocked_organisation"]):
        return [c for c in scopes if c[0] != "platform"]
    return []


def unblock_choices(scopes: list[tuple[str, str]],
                    blocked_scope: str | None) -> list[tuple[str, str]]:
    """The unblock form's radios: only scopes that lift the block (an
    organisation-wide block is not lifted in one project, and a platform
    unblock lifts only a platform block); none when the block is wider than
    this admin may act."""
    widest = moderation.SCOPES.index(blocked_scope or "project")
    return [c for c in scopes if moderation.SCOPES.index(c[0]) >= widest
            and (c[0] != "platform" or blocked_scope == "platform")]


def days_chart(profile: dict) -> Markup | None:
    """Answers per day as bars, a date under a few of them; None with no answers."""
    days = profile["days"]
    if not days:
        return None
    every = max(1, math.ceil(len(days) / MAX_TICKS))
    bars = [Bar(f"{d['day']:%a %d %b %Y}", d["count"],
                f"{d['day']:%d %b}" if n % every == 0 else "")
            for n, d in enumerate(days)]
    busiest = max(days, key=lambda d: d["count"])
    total = sum(d["count"] for d in days)
    desc = (f"{total} answer{'s' if total != 1 else ''} over {len(days)} "
            f"day{'s' if len(days) != 1 else ''} from {days[0]['day']:%d %B %Y} to "
            f"{days[-1]['day']:%d %B %Y}; the busiest day was {busiest['day']:%A %d %B %Y} "
            f"with {busiest['count']}.")
    return bar_chart("chart-volunteer-days", bars, "Answers per day", desc, " answers")
