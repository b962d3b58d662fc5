"""The live preview: the real volunteer page, for a sample item, in preview mode.

The wizard and the edit page show it in an iframe. It is web/templates/
project.html with the type's own fragment, exactly as volunteers get it, with
two differences: the task comes from the page (a JSON data block) instead of
the API, and volunteer.js answers "Preview: this answer is not sent" instead
of sending. So what a charity sees is what volunteers will see, and trying
it leaves no answer, lease or volunteer behind.

The sample is the project's first task once something is uploaded, else the
task type's own example item split under the form's settings. The preview
fetches nothing from the internet: an example picture given as a web address
is replaced by a drawn stand-in, and one the split cannot use falls back to
the item as uploaded.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from flask import current_app, render_template, request, url_for
from marshmallow import ValidationError

from engine.intake.samples import shape_image
from engine.lifecycle import readable
from engine.projects import get_owned_project, sample_payload
from engine.quality.reports import REASONS
from engine.services import Services
from task_types.base import TaskType
from task_types.errors import ItemError
from web.console import bp, staff_identity
from web.console.forms import tutorial_screens
from web.console.schema_form import read
from web.services import services

PICTURE_KEYS = ("image", "thumb")
EXTENSIONS = ("jpg", "png", "webp", "gif")


@dataclass(frozen=True)
class PreviewProject:
    """What project.html reads of a project, for one that may not exist yet."""

    id: int | str
    name: str
    description: str
    task_type: str
    config: dict
    tutorial: list[str] = field(default_factory=list)
    field_guide: str = ""


@bp.route("/preview", methods=["GET", "POST"])
def preview():
    """A project being made in the wizard: its values come in the query or body."""
    registry = services().registry
    form = request.form if request.method == "POST" else request.args
    name = form.get("task_type", "")
    if name not in registry:
        name = "classify" if "classify" in registry else registry.names()[0]
    task_type = registry.get(name)
    config, unset = preview_config(task_type, read(task_type.config_schema(), form,
                                                   prefix="config")[0])
    payload = example_payload(services(), task_type, config)
    project = PreviewProject("preview", form.get("name", "").strip() or "Your project",
                             form.get("description", "").strip(), name, config,
                             tutorial_screens(form.get("tutorial", "")),
                             form.get("field_guide", "").strip())
    return _render(project, payload, unset, from_upload=False)


@bp.route("/projects/<int:project_id>/preview", methods=["GET", "POST"])
def preview_project(project_id: int):
    """A saved project, or its edit form's values if they come with the request."""
    saved = get_owned_project(services(), staff_identity(), project_id)
    task_type = services().registry.get(saved.task_type)
    form = request.form if request.method == "POST" else request.args
    config, unset = saved.config, []
    if any(key.startswith("config.") for key in form):
        config, unset = preview_config(task_type, read(task_type.config_schema(), form,
                                                       prefix="config")[0])
    payload = sample_payload(services(), saved.id)
    from_upload = payload is not None
    if payload is None:
        payload = example_payload(services(), task_type, config)
    guide = "\n---\n".join(saved.tutorial or [])
    project = PreviewProject(saved.id, form.get("name", "").strip() or saved.name,
                             form.get("description", saved.description or "").strip(),
                             saved.task_type, config,
                             tutorial_screens(form.get("tutorial", guide)),
                             form.get("field_guide", saved.field_guide or "").strip())
    return _render(project, payload, unset, from_upload)


def _render(project: PreviewProject, payload: dict, unset: list[str], from_upload: bool):
    task = {"task": {"id": 0, "type": project.task_type, "payload": payload},
            "lease": {"token": "preview", "expires_at": None}}
    notes = ["Preview: answers given here are not sent."]
    notes.append("The sample is the first item you uploaded." if from_upload else
                 "The sample is the task type's example; once you upload, your first item "
                 "shows here.")
    if unset:
        notes.append("Not valid yet, so shown with the example's: "
                     + ", ".join(readable(name) for name in unset) + ".")
    api_base = url_for("api.openapi_json").rsplit("/", 1)[0]
    return render_template("project.html", project=project, api_base=api_base,
                           task_template=f"task_types/{project.task_type}.html",
                           preview={"task": task, "notes": notes}, report_reasons=REASONS)


def preview_config(task_type: TaskType, raw: Mapping[str, Any]) -> tuple[dict, list[str]]:
    """The config to show, and the fields taken from the type's example because
    the form's are not valid yet (a half-filled form still shows a page). A
    fix can reveal another problem (tags checked once the question is
    there), so the example stands in field by field, a few rounds at most."""
    example = task_type.example()["config"]
    config, unset = dict(raw), []
    for _ in range(4):
        try:
            return task_type.load_config(config), unset
        except ValidationError as exc:
            bad = [str(key) for key in exc.messages] if isinstance(exc.messages, dict) else []
        fixable = [key for key in bad if key in example and key not in unset]
        if not fixable:
            break
        config.update({key: example[key] for key in fixable})
        unset.extend(fixable)
    return task_type.load_config(example), sorted(task_type.config_schema().fields)


class ExampleMedia:
    """``Media`` for splitting an example item: its own pictures (already in the
    media store, so the page can show the pieces); never the internet."""

    def __init__(self, services: Services) -> None:
        self.media = services.media

    def read(self, ref: str) -> bytes:
        try:
            return self.media.read(ref)
        except Exception as exc:  # noqa: BLE001 - any failure: this picture is not here
            raise ItemError(f"no stored picture {ref!r}", {"image": ["not stored"]}) from exc

    def store(self, data: bytes, ext: str) -> str:
        return self.media.store(data, ext)


def example_payload(services: Services, task_type: TaskType, config: dict) -> dict:
    """The task type's example item split under ``config``: the first piece's payload."""
    example = task_type.example()
    item = {key: value for key, value in example["item"].items() if key != "gold"}
    stored = {ref: _store(services, ref, data) for ref, data in
              (example.get("media") or {}).items()}
    for key in PICTURE_KEYS:
        ref = item.get(key)
        if not isinstance(ref, str):
            continue
        if stored.get(ref):
            item[key] = stored[ref]
        elif not ref.startswith("/media/") or not services.media.exists(ref[7:]):
            item[key] = services.media.store(_stand_in(), "jpg")
    try:
        pieces = task_type.split(item, config, ExampleMedia(services))
    except Exception:  # noqa: BLE001 - a preview shows the item as it is instead
        current_app.logger.info("preview: %s could not split its example", task_type.name,
                                exc_info=True)
        pieces = []
    if pieces:
        return dict(pieces[0].payload)
    return {key: item[key] for key in ("image", "text") if key in item} or {
        "text": "A sample item"}


def _store(services: Services, ref: str, data: bytes) -> str | None:
    ext = ref.rsplit(".", 1)[-1].lower() if "." in ref else ""
    ext = "jpg" if ext == "jpeg" else ext
    return services.media.store(data, ext) if ext in EXTENSIONS else None


@lru_cache(maxsize=1)
def _stand_in() -> bytes:
    """A drawn picture in place of an example's web address."""
    return shape_image("circle", 7, size=360)
