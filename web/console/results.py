"""Results in the console: the merged results table, one item with its tasks and
answers and its result drawn on its picture, and the downloads.

Downloads are the API's exports (engine.delivery.exports, annotations),
served by the same functions (web.api.projects.results_file, ...), but authorised by the
console's session instead of a bearer token, so a browser can simply follow
a link. Every route looks the project up through get_owned_project: another
organisation's project is a 404, like a missing one.
"""
from __future__ import annotations

from flask import render_template
from marshmallow import Schema, fields, validate

from engine.delivery import insight, item_results
from engine.projects import get_owned_project
from engine.store.models import Project
from web.api.projects import annotations_file, answers_file, results_file
from web.api.schemas import AnswersQuery, ResultsQuery, load_query
from web.console import bp, staff_identity
from web.console.charts import overlay
from web.services import services


class ResultsFilter(Schema):
    state = fields.String(validate=validate.OneOf(("", *item_results.ITEM_STATES)), load_default="")
    page = fields.Integer(validate=validate.Range(min=1, max=10**6), load_default=1)


def _project(project_id: int) -> Project:
    return get_owned_project(services(), staff_identity(), project_id)


@bp.get("/projects/<int:project_id>/results")
def results(project_id: int):
    project = _project(project_id)
    query = load_query(ResultsFilter())
    found = item_results.result_page(services(), project, query["state"] or None, query["page"])
    return render_template("console/results.html", project=project, found=found,
                           state=query["state"], states=item_results.ITEM_STATES)


@bp.get("/projects/<int:project_id>/items/<int:item_id>")
def item(project_id: int, item_id: int):
    project = _project(project_id)
    detail = item_results.item_detail(services(), project, item_id)
    return render_template("console/results_item.html", project=project, detail=detail,
                           drawing=_drawing(detail))


def _drawing(detail: item_results.ItemDetail):
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
    return results_file(project, load_query(ResultsQuery()))


@bp.get("/projects/<int:project_id>/download/answers")
def download_answers(project_id: int):
    """Every raw answer; the CSV is the one `bitesize consensus` reads."""
    project = _project(project_id)
    return answers_file(project, load_query(AnswersQuery()))


@bp.get("/projects/<int:project_id>/download/annotations")
def download_annotations(project_id: int):
    """Results of IIIF items as a IIIF AnnotationPage; the same ids as the API's."""
    return annotations_file(_project(project_id))


@bp.app_template_global("project_has_iiif")
def project_has_iiif(project: Project) -> bool:
    """For the downloads panel: offer IIIF annotations only where they can exist."""
    return insight.has_iiif_items(services(), project.id)
