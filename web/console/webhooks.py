"""A project's webhook in the console: set its URL, secret and events, see the
outbox and the delivery log, redeliver an event, remove the webhook.

The same engine calls as the API (engine.delivery.webhooks) and the same
schema (web.api.webhooks.WebhookSet), so the console accepts exactly what the
API accepts; errors are shown beside the field they concern. One console
convenience: a blank secret keeps the current one, so changing the URL does
not mean retyping a secret nobody can read back.
"""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from engine.delivery import webhooks
from engine.delivery.outbox import EVENTS
from engine.errors import BitesizeError, NotFoundError
from engine.projects import get_owned_project
from web.api.webhooks import WebhookSet
from web.console import bp, staff_identity
from web.console.forms import engine_errors, load_form
from web.services import services

LOG_SIZE = 50


@bp.route("/projects/<int:project_id>/webhooks", methods=["GET", "POST"], endpoint="webhooks")
def webhooks_page(project_id: int):
    project = get_owned_project(services(), staff_identity(), project_id)
    hook = _current(project.id)
    errors, values, status = {}, _shown(hook), 200
    if request.method == "POST":
        values, errors = _save(project.id, hook)
        if not errors:
            flash("The webhook is saved." if hook else
                  "The webhook is set: events go to it from now on.", "info")
            return redirect(url_for("console.webhooks", project_id=project.id))
        status = 422
    events_total, events = (webhooks.list_events(services(), staff_identity(), project.id,
                                                 limit=LOG_SIZE) if hook else (0, []))
    log_total, log = (webhooks.list_deliveries(services(), staff_identity(), project.id,
                                               limit=LOG_SIZE) if hook else (0, []))
    return render_template("console/webhooks.html", project=project, hook=hook,
                           values=values, errors=errors, all_events=EVENTS,
                           events=events, events_total=events_total, log=log,
                           event_types={e.id: e.type for e in events},
                           log_total=log_total,
                           redeliverable=webhooks.REDELIVERABLE), status


def _current(project_id: int):
    try:
        return webhooks.get_webhook(services(), staff_identity(), project_id)
    except NotFoundError:
        return None


def _shown(hook) -> dict:
    if hook is None:
        return {"url": "", "events": list(EVENTS), "active": True}
    return {"url": hook.url, "events": list(hook.events), "active": hook.active}


def _save(project_id: int, hook) -> tuple[dict, dict]:
    """Validate as the API does, then set; (values to show again, errors by field)."""
    form = request.form
    data = {"url": form.get("url", "").strip(), "secret": form.get("secret", ""),
            "events": form.getlist("events"), "active": form.get("active") == "on"}
    if hook is not None and not data["secret"]:
        data["secret"] = hook.secret  # blank: keep the current secret
    shown = {"url": data["url"], "events": data["events"], "active": data["active"]}
    values, errors = load_form(WebhookSet(), data)
    if errors:  # "events.1: Must be one of ..." is shown beside the events
        return shown, {key.split(".")[0]: message for key, message in errors.items()}
    try:
        webhooks.set_webhook(services(), staff_identity(), project_id, values)
    except BitesizeError as exc:  # the engine's sentence, beside the field it names
        return shown, ({key: exc.message for key in exc.fields} if exc.fields
                       else engine_errors(exc))
    return shown, {}


@bp.post("/projects/<int:project_id>/webhooks/events/<int:event_id>/redeliver")
def redeliver_event(project_id: int, event_id: int):
    project = get_owned_project(services(), staff_identity(), project_id)
    try:
        event = webhooks.redeliver(services(), staff_identity(), project.id, event_id)
    except BitesizeError as exc:
        if isinstance(exc, NotFoundError):
            raise
        flash(f"Not sent again: {exc.message}.", "error")
    else:
        flash(f"Event {event.id} ({event.type}) will be sent again in a moment.", "info")
    return redirect(url_for("console.webhooks", project_id=project.id))


@bp.post("/projects/<int:project_id>/webhooks/delete")
def delete_webhook(project_id: int):
    project = get_owned_project(services(), staff_identity(), project_id)
    dropped = webhooks.delete_webhook(services(), staff_identity(), project.id)
    flash("The webhook is removed" + (f"; {dropped} undelivered events were dropped."
                                      if dropped else "."), "info")
    return redirect(url_for("console.webhooks", project_id=project.id))
