"""Results in the console: the merged results table, one item with its tasks and
answers and its result drawn on its picture, and the downloads.

Downloads are the API's exports (engine.delivery.exports, annotations),
streamed the same way (web.api.projects.download), but authorised by the
console's session instead of a bearer token, so a browser can simply follow
a link. Every route looks the project up through get_owned_project: another
organisation's project is a 404, like a missing one.
"""
from __future__ import annotations

from flask import Response, render_template, stream_with_context, url_for
from marshmallow import Schema, fields, validate

from engine.delivery import annotations, exports, insight
from engine.projects import get_owned_project
from engine.store.models import Project
from web.api.projects import download
from web.api.schemas import AnswersQuery, ResultsQuery, load_query
from web.console import bp, staff_identity
from web.console.charts import overlay
from web.services import services


class ResultsFilter(Schema):
    state = fields.String(validate=validate.OneOf(("", *insight.ITEM_STATES)), load_default="")
    page = fields.Integer(validate=validate.Range(min=1, max=10**6), load_default=1)


def _project(project_id: int) -> Project:
    return get_owned_project(services(), staff_identity(), project_id)


@bp.get("/projects/<int:project_id>/results")
def results(project_id: int):
    project = _project(project_id)
    query = load_query(ResultsFilter())
    found = insight.result_page(services(), project, query["state"] or None, query["page"])
    return render_template("console/results.html", project=project, found=found,
                           state=query["state"], states=insight.ITEM_STATES)


@bp.get("/projects/<int:project_id>/items/<int:item_id>")
def item(project_id: int, item_id: int):
    project = _project(project_id)
    detail = insight.item_detail(services(), project, item_id)
    return render_template("console/results_item.html", project=project, detail=detail,
                           drawing=_drawing(detail))


def _drawing(detail: insight.ItemDetail):
    """The picture with the result drawn on it, when its size is known."""
    picture = detail.picture
    if picture is None or not picture.width or not picture.height:
        return None
    marks = len(detail.regions)
    if detail.result.value is None:
        desc = "The picture; it has no result to draw yet."
    elif marks:
        desc = f"{marks} mark{'s' if marks != 1 else ''} of the merged result drawn on the picture."
    else:
        desc = "The picture; its merged result marks nothing on it."
    return overlay("item-overlay", picture.url, picture.width, picture.height,
                   detail.regions, "The item's picture with its merged result", desc)


@bp.get("/projects/<int:project_id>/download/results")
def download_results(project_id: int):
    """Results per item or per task, as CSV (optionally with a BOM for
    spreadsheets), JSON or JSON Lines."""
    project = _project(project_id)
    query = load_query(ResultsQuery())
    fmt, level = query["format"], query["level"]
    if level == "item":
        rows, columns = exports.item_rows(services(), project.id), exports.ITEM_COLUMNS
    else:
        rows, columns = exports.result_rows(services(), project.id), exports.COLUMNS
    suffix = "-items" if level == "item" else ""
    return download(exports.render(rows, fmt, columns, query["bom"]), fmt,
                    f"project-{project.id}-results{suffix}.{fmt}")


@bp.get("/projects/<int:project_id>/download/answers")
def download_answers(project_id: int):
    """Every raw answer; the CSV is the one `bitesize consensus` reads."""
    project = _project(project_id)
    query = load_query(AnswersQuery())
    fmt = query["format"]
    rows = exports.answer_rows(services(), project.id, as_text=fmt == "csv")
    return download(exports.render(rows, fmt, exports.ANSWER_COLUMNS, query["bom"]), fmt,
                    f"project-{project.id}-answers.{fmt}")


@bp.get("/projects/<int:project_id>/download/annotations")
def download_annotations(project_id: int):
    """Results of IIIF items as a IIIF AnnotationPage; the same ids as the API's."""
    project = _project(project_id)
    page_id = url_for("api.project_annotations", project_id=project.id, _external=True)
    response = Response(stream_with_context(
        annotations.annotation_page(services(), project.id, page_id)),
        mimetype="application/ld+json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="project-{project.id}-annotations.json"')
    return response


@bp.app_template_global("project_has_iiif")
def project_has_iiif(project: Project) -> bool:
    """For the downloads panel: offer IIIF annotations only where they can exist."""
    return insight.has_iiif_items(services(), project.id)
