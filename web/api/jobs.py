"""Jobs: upload items (JSON), a zip of images, a CSV, a IIIF manifest into a
project; follow progress; run a failed job again."""
from __future__ import annotations

from flask import request

from engine.errors import InvalidError
from engine.intake.jobs import create_job, get_job, list_jobs, rerun_job
from web import rate_limits
from web.api import bp, serialize
from web.api.schemas import JobForm, JobItems, JobsQuery, load_body, load_form, load_query
from web.auth import identity
from web.services import services


@bp.post("/projects/<int:project_id>/jobs")
def create_job_(project_id: int):
    caller = identity().require_user()
    rate_limits.enforce(*rate_limits.upload_checks(caller))
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise InvalidError("attach the upload as the form field 'file'",
                               {"file": "missing"})
        form = load_form(JobForm(), request.form)
        job = create_job(services(), caller, project_id, upload=upload.stream,
                         filename=upload.filename, priority=form["priority"],
                         mapping=form["mapping"])
    elif (body := load_body(JobItems())).get("iiif") is not None:
        job = create_job(services(), caller, project_id, iiif=body["iiif"],
                         priority=body["priority"])
    else:
        items = body["items"]
        limit = services().settings.max_items_per_request
        if len(items) > limit:
            raise InvalidError(f"at most {limit} items per request; upload a file for more",
                               {"items": f"more than {limit} items"})
        job = create_job(services(), caller, project_id, items=items,
                         priority=body["priority"])
    return serialize.job(job), 202


@bp.get("/jobs/<int:job_id>")
def show_job(job_id: int):
    return serialize.job(get_job(services(), identity().require_user(), job_id))


@bp.get("/projects/<int:project_id>/jobs")
def list_jobs_(project_id: int):
    """The project's jobs, newest first (?state=failed for what needs a look)."""
    caller = identity().require_user()
    jobs = list_jobs(services(), caller, project_id, **load_query(JobsQuery()))
    return {"jobs": [serialize.job(job, max_problems=20) for job in jobs]}


@bp.post("/jobs/<int:job_id>/rerun")
def rerun_job_(job_id: int):
    return serialize.job(rerun_job(services(), identity().require_user(), job_id)), 202
