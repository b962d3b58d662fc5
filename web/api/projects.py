"""Projects: create (charity), list and show with progress, edit, move through
their states (engine.lifecycle), delete drafts, download results."""
from __future__ import annotations

from flask import Response, stream_with_context, url_for

from engine import lifecycle
from engine.delivery import annotations, exports
from engine.projects import (
    create_project,
    get_owned_project,
    get_project,
    list_projects,
    owns,
    project_view,
)
from engine.quality import crowd_model
from web.api import bp, serialize
from web.api.schemas import (
    AnswersQuery,
    ProjectCreate,
    ProjectUpdate,
    ResultsQuery,
    load_body,
    load_query,
)
from web.auth import identity, optional_identity
from web.services import services


@bp.post("/projects")
def create_project_():
    caller = identity().require_user()
    data = load_body(ProjectCreate())
    view = create_project(services(), caller, data)
    return serialize.project(view, owner=True), 201


@bp.get("/projects")
def list_projects_():
    caller = optional_identity()
    views = list_projects(services(), caller)
    return {"projects": [serialize.project(v, owner=bool(caller and owns(caller, v.project)))
                         for v in views]}


@bp.get("/projects/<int:project_id>")
def show_project(project_id: int):
    caller = optional_identity()
    project = get_project(services(), caller, project_id)
    owner = bool(caller and owns(caller, project))
    shown = serialize.project(project_view(services(), project), owner=owner)
    if owner:  # which crowd model weighs the answers, and why (engine.quality.crowd_model)
        shown["crowd_model"] = crowd_model.read(services(), project_id)
    return shown


@bp.patch("/projects/<int:project_id>")
def update_project_(project_id: int):
    caller = identity().require_user()
    data = load_body(ProjectUpdate())
    view = lifecycle.update_project(services(), caller, project_id, data)
    return serialize.project(view, owner=True)


@bp.post("/projects/<int:project_id>/<any(publish, pause, complete, archive):action>")
def move_project(project_id: int, action: str):
    caller = identity().require_user()
    view = lifecycle.move(services(), caller, project_id, action)
    return serialize.project(view, owner=True)


@bp.delete("/projects/<int:project_id>")
def delete_project(project_id: int):
    caller = identity().require_user()
    lifecycle.delete_draft(services(), caller, project_id)
    return "", 204


@bp.get("/projects/<int:project_id>/results")
def project_results(project_id: int):
    caller = identity().require_user()  # who first: a stranger learns nothing from a 422
    query = load_query(ResultsQuery())
    return results_file(get_owned_project(services(), caller, project_id), query)


@bp.get("/projects/<int:project_id>/answers")
def project_answers(project_id: int):
    """Every raw answer; the CSV is what `bitesize consensus` reads."""
    caller = identity().require_user()
    query = load_query(AnswersQuery())
    return answers_file(get_owned_project(services(), caller, project_id), query)


@bp.get("/projects/<int:project_id>/annotations")
def project_annotations(project_id: int):
    """Results of IIIF items as a IIIF AnnotationPage of W3C Web Annotations."""
    caller = identity().require_user()
    return annotations_file(get_owned_project(services(), caller, project_id))


def annotations_file(project) -> Response:
    """The IIIF AnnotationPage download; its id is the API's URL wherever it is served."""
    page_id = url_for("api.project_annotations", project_id=project.id, _external=True)
    response = Response(stream_with_context(
        annotations.annotation_page(services(), project.id, page_id)),
        mimetype="application/ld+json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="project-{project.id}-annotations.json"')
    return response


def results_file(project, query: dict) -> Response:
    """The results download (a ResultsQuery's format, level and bom); the
    console's download links serve the same file."""
    fmt, level = query["format"], query["level"]
    if level == "item":
        rows, columns = exports.item_rows(services(), project.id), exports.ITEM_COLUMNS
    else:
        rows, columns = exports.result_rows(services(), project.id), exports.COLUMNS
    suffix = "-items" if level == "item" else ""
    return download(exports.render(rows, fmt, columns, query["bom"]), fmt,
                    f"project-{project.id}-results{suffix}.{fmt}")


def answers_file(project, query: dict) -> Response:
    """Every raw answer (an AnswersQuery's format and bom), for the API and the console."""
    fmt = query["format"]
    rows = exports.answer_rows(services(), project.id, as_text=fmt == "csv")
    return download(exports.render(rows, fmt, exports.ANSWER_COLUMNS, query["bom"]), fmt,
                    f"project-{project.id}-answers.{fmt}")


def download(chunks, fmt: str, filename: str) -> Response:
    """A streamed attachment: rows are written as they are read."""
    # content_type, not mimetype: the format names its charset, which mimetype would add again
    response = Response(stream_with_context(chunks), content_type=exports.FORMATS[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
