"""The project page's uploads panel: send files, match a CSV's columns, watch the split.

Why it works this way:

- The upload is a plain multipart form, so it works without JavaScript (POST,
  then back to the project page). uploads.js sends the same form with
  XMLHttpRequest, to show the bytes sent, and asks for JSON (``Accept``)
  instead of a redirect.
- A CSV is not split at once: it is staged (engine.intake.staging) and a page
  shows its first rows with a column to choose per item field; "Start import"
  then creates the job through the same checks as the API's ``mapping``.
- A job's row is drawn once, server-side (``console/_upload_job.html``): the
  page shows it without JavaScript (a "Refresh" link, never a meta refresh),
  and the JSON status that uploads.js polls carries the same row as HTML.
"""
from __future__ import annotations

import json
from typing import Any

from flask import (
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from marshmallow import fields
from marshmallow.validate import Length
from werkzeug.exceptions import RequestEntityTooLarge

from engine.errors import BitesizeError, ConflictError, NotFoundError
from engine.intake import staging
from engine.intake.importers import item_fields
from engine.intake.jobs import create_job, get_job, gold_counts, list_jobs, rerun_job
from engine.projects import get_owned_project, is_final, project_view
from engine.store.models import Job
from web.api.schemas import JobForm
from web.console import bp, staff_identity
from web.console.forms import load_form
from web.errors import error_page
from web.services import services

JOBS_SHOWN = 20  # the newest; older ones stay in the API's job list
PROBLEMS_SHOWN = 100  # per job on the page (a job keeps its first 1,000)
UPLOAD_KINDS = (".zip", ".csv", ".json")
KIND_NAMES = {"zip": "zip of pictures", "csv": "CSV", "items": "JSON items",
              "iiif": "IIIF manifest", "folder": "folder"}
FIELD_HINTS = {"image": "the picture: an http(s) address",
               "text": "the text to show volunteers",
               "thumb": "a small version of the picture (optional)",
               "id": "your own reference, kept with the results",
               "gold": "the known answer: makes the row a gold item",
               "regions": "regions of the page (JSON)"}


class UploadForm(JobForm):
    """The panel's form: the API's own fields (priority; mapping for a CSV), and
    the manifest URL that the API takes as JSON ``iiif``."""

    iiif = fields.String(load_default="", validate=Length(max=2048))


# --- what the panel shows ------------------------------------------------------------

@bp.app_template_global()
def uploads_panel(project) -> dict[str, Any]:
    """Everything the uploads panel draws, for console/_project_uploads.html."""
    s, who = services(), staff_identity()
    jobs = list_jobs(s, who, project.id, limit=JOBS_SHOWN)
    gold = gold_counts(s, who, project.id)
    rows = [job_row(job, gold.get(job.id, 0)) for job in jobs]
    names = [f.name for f in item_fields(s, project)]
    return {"jobs": rows, "staged": staging.staged_uploads(s, who, project.id),
            "gold": "gold" in names, "max_mb": _max_bytes() // (1024 * 1024),
            "max_bytes": _max_bytes(), "active": any(not r["finished"] for r in rows),
            "final": is_final(project)}  # archived: no upload would be taken


def job_row(job: Job, gold: int = 0) -> dict[str, Any]:
    """A job as its row shows it (and as the JSON status gives it)."""
    problems = [p for p in job.problems or [] if not _unlisted(p)]
    unlisted = sum(_unlisted(p) for p in job.problems or [])
    finished = job.state in ("done", "failed")
    return {"id": job.id, "project": job.project_id, "file": _name(job), "kind": job.kind,
            "kind_name": KIND_NAMES.get(job.kind, job.kind), "state": job.state,
            "finished": finished, "percent": percent(job),
            "items_total": job.items_total, "items_read": job.items_read,
            "items_split": job.items_split, "tasks_made": job.tasks_made,
            "duplicates": job.duplicates, "gold": gold,
            "problems_count": len(problems) + unlisted, "resumed": job.resumed,
            "error": job.error, "problems": [_problem(p) for p in problems[:PROBLEMS_SHOWN]],
            "problems_hidden": max(len(problems) - PROBLEMS_SHOWN, 0) + unlisted}


def percent(job: Job) -> int:
    """How far the split is, 0..100; 100 only once the job is done."""
    if job.state == "done":
        return 100
    if not job.items_total:
        return 0
    return min(99, job.items_read * 100 // job.items_total)


def _name(job: Job) -> str:
    return job.filename or {"items": "items sent through the API"}.get(job.kind, f"job {job.id}")


def _unlisted(problem: dict) -> int:
    """The report's last line, "N more problems not listed", as N."""
    reason = str(problem.get("reason", ""))
    if set(problem) == {"reason"} and reason.endswith("more problems not listed"):
        return int(reason.split(" ", 1)[0])
    return 0


def _problem(problem: dict) -> dict[str, str]:
    """Where a problem is (file in a zip, CSV line, canvas, item) and why."""
    if "path" in problem:
        where = str(problem["path"])
    elif "line" in problem:
        where = f"line {problem['line']}"
    elif "canvas" in problem:
        where = str(problem["canvas"])
    else:
        where = f"item {int(problem.get('item', 0)) + 1}"
    if problem.get("ref") and problem.get("ref") != where:
        where += f" ({problem['ref']})"
    return {"where": where, "reason": str(problem.get("reason", ""))}


def _max_bytes() -> int:
    return int(current_app.config.get("MAX_CONTENT_LENGTH") or 0)


# --- sending files -------------------------------------------------------------------

@bp.post("/projects/<int:project_id>/uploads")
def upload(project_id: int):
    s, who = services(), staff_identity()
    project = get_owned_project(s, who, project_id)
    values, errors = load_form(UploadForm())
    files = [f for f in request.files.getlist("files") if f.filename]
    if not errors and not files and not values.get("iiif", "").strip():
        errors = {"files": "choose a file (zip, CSV or JSON) or give a IIIF manifest URL"}
    made, staged, problems = [], [], []
    if not errors:
        made, staged, problems = _take_files(project.id, files, values)
        if values["iiif"].strip():
            try:
                made.append(create_job(s, who, project.id, iiif=values["iiif"].strip(),
                                       priority=values["priority"]))
            except BitesizeError as exc:
                errors["iiif"] = exc.message
        if problems:
            errors["files"] = problems
    following = url_for("console.upload_columns", project_id=project.id,
                        token=staged[0].token) if staged else None
    if _wants_json():
        return jsonify({"jobs": [job.id for job in made], "next": following,
                        "errors": _as_text(errors)}), 422 if errors else 200
    if errors:
        if made:
            flash(_started(made), "info")
        return render_template("console/project.html", project=project,
                               view=project_view(s, project), upload_errors=_as_text(errors),
                               upload_values=values), 422
    if made:
        flash(_started(made), "info")
    return redirect(following or url_for("console.project", project_id=project.id,
                                         _anchor="uploads"))


def _take_files(project_id: int, files: list, values: dict) -> tuple[list, list, list[str]]:
    """Each file becomes a job, or (a CSV without a mapping) waits for its columns;
    a file that cannot be used is named with the reason, and the others go on."""
    s, who = services(), staff_identity()
    made, staged, problems = [], [], []
    for upload in files:
        name = upload.filename
        try:
            if name.lower().endswith(".csv") and not (values.get("mapping") or "").strip():
                staged.append(staging.stage_csv(s, who, project_id, upload.stream, name,
                                                values["priority"])[0])
            else:
                made.append(create_job(s, who, project_id, upload=upload.stream,
                                       filename=name, priority=values["priority"],
                                       mapping=values.get("mapping")))
        except BitesizeError as exc:
            said = exc.message if name in exc.message else f"{name}: {exc.message}"
            problems.append(said + _which_items((exc.fields or {}).get("items")))
    return made, staged, problems


def _which_items(errors, shown: int = 5) -> str:
    """Which items of a JSON upload were refused, and why, counted from 1 as a
    person counts (the API's reply has them by index from 0): "2 item(s) are
    not valid" alone left the charity to guess."""
    if not isinstance(errors, dict):
        return ""
    said = [f"item {int(index) + 1}: {'; '.join(_reasons(why))}"
            for index, why in list(errors.items())[:shown] if str(index).isdigit()]
    more = "; ..." if len(errors) > shown else ""
    return f" ({'; '.join(said)}{more})" if said else ""


def _reasons(why, field: str = "") -> list[str]:
    """marshmallow's messages of one item (field -> list, or nested) as lines."""
    if isinstance(why, dict):
        return [line for key, inner in why.items()
                for line in _reasons(inner, f"{field}.{key}" if field else str(key))]
    if isinstance(why, list) and all(isinstance(w, str) for w in why):
        return [f"{field}: {' '.join(why)}" if field else " ".join(why)]
    if isinstance(why, list):
        return [line for inner in why for line in _reasons(inner, field)]
    return [f"{field}: {why}" if field else str(why)]


def _started(made: list[Job], next_file: str | None = None) -> str:
    """Said once the jobs start: on the project page, where their progress
    shows below; or on the column page of `next_file`, another CSV still
    waiting for its columns, which shows no progress."""
    names = ", ".join(_name(job) for job in made)
    if next_file is None:
        return f"Upload started: {names}. Its progress shows below."
    return (f"Upload started: {names}. Its progress shows on the project's page. "
            f"Next, match the columns of {next_file}.")


def _as_text(errors: dict) -> dict[str, str]:
    return {k: "; ".join(v) if isinstance(v, list) else str(v) for k, v in errors.items()}


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge):
    """Say how large an upload may be, rather than the server's bare 413."""
    limit = _max_bytes() // (1024 * 1024)
    message = (f"This upload is larger than {limit} MB, the most the server takes at once: "
               "send fewer files at a time, or split the file.")
    if request.endpoint != "console.upload":
        message = exc.description or message
    if _wants_json():
        return jsonify({"errors": {"files": message}}), 413
    return error_page(413, message)


# --- a CSV's columns -----------------------------------------------------------------

@bp.route("/projects/<int:project_id>/uploads/<token>", methods=["GET", "POST"])
def upload_columns(project_id: int, token: str):
    s, who = services(), staff_identity()
    project = get_owned_project(s, who, project_id)
    try:
        staged, preview = staging.get_staged(s, who, project.id, token)
    except NotFoundError:  # a second click on "Start import", Back, an old tab
        flash("This file is no longer waiting for its columns: it was imported (its "
              "progress shows below) or discarded.", "info")
        return redirect(url_for("console.project", project_id=project.id, _anchor="uploads"))
    chosen, errors = dict(preview.suggested), {}
    if request.method == "POST":
        chosen = {f.name: request.form.get(f"map.{f.name}", "") for f in preview.fields}
        chosen = {name: column for name, column in chosen.items() if column}
        mapping = json.dumps(chosen) if chosen else ""
        _, errors = load_form(JobForm(), {"mapping": mapping})
        if not chosen:
            errors = {"_schema": "choose the column of at least one field"}
        if not errors:
            try:
                job = staging.import_staged(s, who, project.id, token, mapping)
            except BitesizeError as exc:
                errors = _mapping_errors(exc)
            else:
                waiting = staging.staged_uploads(s, who, project.id)
                flash(_started([job], waiting[0].filename if waiting else None), "info")
                return redirect(url_for("console.upload_columns", project_id=project.id,
                                        token=waiting[0].token) if waiting else
                                url_for("console.project", project_id=project.id,
                                        _anchor="uploads"))
    return render_template("console/upload_columns.html", project=project, staged=staged,
                           preview=preview, chosen=chosen, errors=errors,
                           hints=FIELD_HINTS), 422 if errors else 200


def _mapping_errors(exc: BitesizeError) -> dict[str, str]:
    """The engine's mapping errors by item field, to show beside its select."""
    errors: dict[str, str] = {"_schema": exc.message}
    mapping = (exc.fields or {}).get("mapping")
    if isinstance(mapping, dict):
        errors.update({f"map.{name}": str(text) for name, text in mapping.items()})
    return errors


@bp.post("/projects/<int:project_id>/uploads/<token>/discard")
def discard_upload(project_id: int, token: str):
    staging.discard_staged(services(), staff_identity(), project_id, token)
    flash("The CSV is discarded: nothing was imported from it.", "info")
    return redirect(url_for("console.project", project_id=project_id, _anchor="uploads"))


# --- following jobs ------------------------------------------------------------------

@bp.get("/projects/<int:project_id>/jobs.json")
def jobs_status(project_id: int):
    """The newest jobs of the project, each with its row as HTML, for uploads.js."""
    s, who = services(), staff_identity()
    project = get_owned_project(s, who, project_id)
    gold = gold_counts(s, who, project.id)
    rows = [job_row(job, gold.get(job.id, 0))
            for job in list_jobs(s, who, project.id, limit=JOBS_SHOWN)]
    reply = jsonify({"jobs": [_status(row) for row in rows],
                     "active": any(not row["finished"] for row in rows)})
    reply.headers["Cache-Control"] = "no-store"  # polled: always the state of now
    return reply


@bp.get("/projects/<int:project_id>/jobs/<int:job_id>.json")
def job_status(project_id: int, job_id: int):
    s, who = services(), staff_identity()
    job = _project_job(project_id, job_id)
    reply = jsonify(_status(job_row(job, gold_counts(s, who, project_id).get(job.id, 0))))
    reply.headers["Cache-Control"] = "no-store"
    return reply


@bp.post("/projects/<int:project_id>/jobs/<int:job_id>/rerun")
def rerun(project_id: int, job_id: int):
    job = _project_job(project_id, job_id)
    try:
        rerun_job(services(), staff_identity(), job.id)
    except ConflictError as exc:
        flash(f"{_name(job)}: {exc.message}", "error")
    else:
        flash(f"{_name(job)} runs again: it resumes where it stopped.", "info")
    return redirect(url_for("console.project", project_id=project_id, _anchor=f"job-{job.id}"))


def _project_job(project_id: int, job_id: int) -> Job:
    """The job, if it belongs to this project of the staff member's organisation."""
    get_owned_project(services(), staff_identity(), project_id)
    job = get_job(services(), staff_identity(), job_id)
    if job.project_id != project_id:
        raise NotFoundError(f"job {job_id} does not exist", {"job": "not found"})
    return job


def _status(row: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in row.items() if k not in ("problems", "problems_hidden")}
    return {**shown, "html": render_template("console/_upload_job.html", row=row)}
