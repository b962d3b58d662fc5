"""Jobs: upload items (JSON) or a zip of images into a project; follow progress."""
from __future__ import annotations

from flask import request

from engine.errors import InvalidError
from engine.intake import create_job, get_job
from web.api import bp, serialize
from web.api.schemas import JobForm, JobItems, load_body, load_form
from web.auth import identity
from web.services import services


@bp.post("/projects/<int:project_id>/jobs")
def create_job_(project_id: int):
    caller = identity().require_user()
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise InvalidError("attach the upload as the form field 'file'",
                               {"file": "missing"})
        priority = load_form(JobForm(), request.form)["priority"]
        job = create_job(services(), caller, project_id, upload=upload.stream,
                         filename=upload.filename, priority=priority)
    else:
        body = load_body(JobItems())
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
