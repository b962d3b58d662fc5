"""The new-project wizard, project edits, and the project's state actions.

The form has three parts: the project (name, description, task type), the
chosen type's own settings, generated from its config schema by
web.console.schema_form (so any installed type gets a form and the type's
own messages come back beside the field), and "Advanced" (redundancy,
confidence, lease, strategy, gold), generated the same way from
``AdvancedForm`` below. A new project is a draft: only its organisation
sees it until "Publish" (engine.lifecycle holds the states and what each
move and edit may do; this module only turns forms into those calls).

Without JavaScript everything still works: "Show this type's settings"
re-renders the form for another type, "Refresh preview" posts the form into
the preview's iframe (web.console.preview), and destructive actions go
through a confirmation page rather than a script's confirm().
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import flash, redirect, render_template, request, url_for
from marshmallow import Schema, ValidationError, fields, post_load, validates_schema
from marshmallow.validate import Length, OneOf, Range

from engine import lifecycle
from engine.dispatch.dispatcher import STRATEGIES
from engine.errors import BitesizeError, ConflictError, NotFoundError
from engine.projects import create_project, get_owned_project, refuse_if_final
from engine.store.models import Project
from task_types.base import TaskType
from web.api.schemas import MAX_TUTORIAL_SCREENS
from web.console import bp, sent_once, staff_identity
from web.console import preview as _preview  # noqa: F401 - registers the preview views
from web.console.forms import SCREEN_BREAK, engine_errors, flatten, tutorial_screens
from web.console.schema_form import FormField, describe, names, place_errors, read, reword
from web.services import services

PREVIEW_URL_MAX = 1800  # longer: the iframe starts from the saved or example values


GUIDE_KEYS = ("tutorial", "field_guide")


class ProjectForm(Schema):
    name = fields.String(required=True, validate=Length(1, 200),
                         error_messages={"required": "Give the project a name."})
    description = fields.String(load_default="", validate=Length(max=5000))
    tutorial = fields.String(load_default="", validate=Length(max=60_000))
    field_guide = fields.String(load_default="", validate=Length(max=20_000))

    @post_load
    def _screens(self, data, **_):
        """The tutorial's text as screens (the API's list), each within the API's limits."""
        screens = tutorial_screens(data["tutorial"])
        if len(screens) > MAX_TUTORIAL_SCREENS:
            raise ValidationError(f"At most {MAX_TUTORIAL_SCREENS} screens: put more on each.",
                                  "tutorial")
        if any(len(s) > 5000 for s in screens):
            raise ValidationError("A screen may be 5,000 characters at most: split it "
                                  f"with a line of {SCREEN_BREAK}.", "tutorial")
        return {**data, "tutorial": screens, "field_guide": data["field_guide"] or None}


class AdvancedForm(Schema):
    """What engine.projects stores beside the config; defaults as the API's."""

    min_answers = fields.Integer(load_default=3, validate=Range(1, 50), metadata={
        "label": "Fewest answers per task",
        "description": "Default 3: each task is answered by at least this many volunteers "
                       "before their answers are merged."})
    max_answers = fields.Integer(load_default=5, validate=Range(1, 100), metadata={
        "label": "Most answers per task",
        "description": "Default 5: a task still unsure after this many answers goes to your "
                       "review queue as contested."})
    confidence = fields.Float(load_default=0.8, validate=Range(0.0, 1.0), metadata={
        "label": "Confidence target",
        "description": "Default 0.8: a task is done as soon as its merged answer is this sure "
                       "(0 to 1); higher asks more volunteers."})
    lease_seconds = fields.Integer(load_default=None, allow_none=True, validate=Range(5, 3600),
                                   metadata={"label": "Lease length in seconds"})
    strategy = fields.String(load_default="breadth", validate=OneOf(
        STRATEGIES, labels=("Breadth", "In upload order (fifo)", "Depth", "Random")), metadata={
        "label": "Strategy",
        "description": "Default breadth: tasks with the fewest answers first; depth finishes "
                       "tasks one by one; fifo goes in upload order; random shuffles."})
    gold_start = fields.Float(load_default=0.4, validate=Range(0.0, 1.0), metadata={
        "label": "Gold share for newcomers",
        "description": "Default 0.4: the share of gold tasks (whose answer you uploaded) "
                       "among a new volunteer's first tasks, to learn how reliable they are."})
    gold_floor = fields.Float(load_default=0.1, validate=Range(0.0, 1.0), metadata={
        "label": "Gold share later",
        "description": "Default 0.1: the share it tapers down to for experienced volunteers."})
    gold_ramp = fields.Integer(load_default=20, validate=Range(1, 10_000), metadata={
        "label": "Gold ramp in tasks",
        "description": "Default 20: newcomers get the higher share for this many tasks, "
                       "then it tapers over as many again."})

    @validates_schema
    def _answers_range(self, data, **_):
        if data.get("max_answers", 5) < data.get("min_answers", 3):
            raise ValidationError("Must be at least the fewest answers per task.",
                                  "max_answers")


# Buttons of the state panel: action -> (label, asks for confirmation first)
ACTION_BUTTONS = {"publish": ("Publish", False), "pause": ("Pause", False),
                  "complete": ("Mark completed", False), "archive": ("Archive", True),
                  "delete": ("Delete draft", True)}
STATE_TEXT = {
    "draft": "Draft: only your team sees it. Publish it when it is ready, and volunteers "
             "start getting its tasks.",
    "active": "Active: volunteers are getting its tasks.",
    "paused": "Paused: volunteers get no tasks until you publish it again.",
    "completed": "Completed: no tasks are handed out, results stay. You can publish it again.",
    "archived": "Archived: this is final. Its results stay ready to download.",
}
DONE_TEXT = {"publish": "is published: volunteers can now get its tasks.",
             "pause": "is paused: volunteers get no tasks until you publish it again.",
             "complete": "is marked completed.", "archive": "is archived."}


@dataclass
class WizardPage:
    """Everything the wizard and edit templates show."""

    task_type: TaskType
    types: list[TaskType]
    values: dict[str, str]
    type_fields: list[FormField]
    advanced: list[FormField]
    errors: dict[str, str] = field(default_factory=dict)
    preview_src: str = ""
    preview_partial: bool = False  # the iframe's address could not carry every value
    stored_config: dict | None = None  # the project's, when editing one
    form_key: str = ""  # web.console.sent_once: a new project's form, sent twice, makes one
    saved_as: str = ""  # the edit page: the settings it showed (_saved_as)
    carried: dict[str, str] = field(default_factory=dict)  # another type's settings (_carry_over)


@bp.app_template_global()
def project_state_panel(project: Project) -> dict[str, Any]:
    """What console/_project_state.html shows: the state, what it means, and the
    actions open from it as (label, url, confirm first)."""
    buttons = []
    for action in lifecycle.actions(project.state):
        label, confirm = ACTION_BUTTONS[action]
        endpoint = "console.delete_project" if action == "delete" else "console.move_project"
        kwargs = {} if action == "delete" else {"action": action}
        buttons.append({"action": action, "label": label, "confirm": confirm,
                        "url": url_for(endpoint, project_id=project.id, **kwargs)})
    return {"text": STATE_TEXT.get(project.state, project.state), "buttons": buttons}


@bp.route("/projects/new", methods=["GET", "POST"])
def new_project():
    registry = services().registry
    form = request.form if request.method == "POST" else request.args
    errors: dict[str, str] = {}
    chosen = form.get("task_type") or _default_type(registry)
    if chosen not in registry:
        errors["task_type"] = f"Choose one of the installed task types, not {chosen!r}."
        chosen = _default_type(registry)
    task_type = registry.get(chosen)
    # The settings on the page were drawn for this type: read them. Otherwise the
    # type was just changed: show its settings with their defaults.
    same_type = form.get("config_type") == chosen
    posted = form if request.method == "POST" else None
    page = _page(task_type, posted, posted if same_type else None, None)
    if posted is not None:
        _carry_over(page, posted, fill=not same_type)
    page.errors.update(errors)
    if request.method == "POST" and same_type and "show_type" not in form and not errors:
        values, page.errors = _read_project(task_type, form, page)
        me = staff_identity().id
        if not page.errors and (first := sent_once.claim(me, form)) is not None:
            flash("This form was sent twice: the project it made is here, made once.", "info")
            return redirect(first)
        if not page.errors:
            try:
                view = create_project(services(), staff_identity(), {
                    **values, "task_type": task_type.name, "state": "draft"})
            except BitesizeError as exc:
                sent_once.failed(me, form)
                page.errors = place_errors(engine_errors(exc), _known(page))
            else:
                made = url_for("console.project", project_id=view.project.id)
                sent_once.made(me, form, made)
                flash(f"“{view.project.name}” is made, as a draft: only your team sees it. "
                      "Upload its items, then publish it.", "info")
                return redirect(made)
    page.form_key = sent_once.key_of(form)
    page.preview_src, page.preview_partial = _preview_src(url_for("console.preview"), page)
    return render_template("console/wizard.html", page=page), 422 if page.errors else 200


@bp.route("/projects/<int:project_id>/edit", methods=["GET", "POST"])
def edit_project(project_id: int):
    project = get_owned_project(services(), staff_identity(), project_id)
    refuse_if_final(project)  # the page says so rather than offer a form it would refuse
    task_type = services().registry.get(project.task_type)
    posted = request.form if request.method == "POST" else None
    saved = _saved_as(task_type, project)
    page = _page(task_type, posted, posted, project)
    page.saved_as = saved
    if posted is not None:
        values, page.errors = _read_project(task_type, posted, page)
        if not page.errors and posted.get("saved_as", saved) != saved:
            page.errors["_schema"] = CHANGED_MEANWHILE
        if not page.errors:
            try:
                lifecycle.update_project(services(), staff_identity(), project_id, values)
            except (NotFoundError, ConflictError):
                raise  # a missing or archived project: the whole page's error, not a field's
            except BitesizeError as exc:
                page.errors = place_errors(engine_errors(exc), _known(page))
            else:
                flash("Your changes are saved.", "info")
                return redirect(url_for("console.project", project_id=project_id))
    page.preview_src = url_for("console.preview_project", project_id=project_id)
    return render_template("console/wizard_edit.html", page=page, project=project), (
        422 if page.errors else 200)


CHANGED_MEANWHILE = (
    "This project was saved (in another tab, or by a teammate) since you opened this "
    "page: your changes are not saved yet, so that they do not undo those. The form "
    "shows yours, the project's page what is saved now. Save again to keep yours.")


def _saved_as(task_type: TaskType, project: Project) -> str:
    """The project's settings as the edit page shows them, as a short digest: the
    page carries it, and a save whose page showed other settings than those saved
    now is refused, not written over them (two tabs, two teammates)."""
    shown = _page(task_type, None, None, project).values
    return hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode()
                          ).hexdigest()[:32]


@bp.post("/projects/<int:project_id>/<any(publish, pause, complete, archive):action>")
def move_project(project_id: int, action: str):
    try:
        view = lifecycle.move(services(), staff_identity(), project_id, action)
    except NotFoundError:
        raise
    except BitesizeError as exc:
        flash(f"Not done: {exc.message}.", "error")
    else:
        flash(f"“{view.project.name}” {DONE_TEXT[action]}", "info")
    return redirect(url_for("console.project", project_id=project_id))


@bp.get("/projects/<int:project_id>/<any(archive, delete):action>")
def confirm_action(project_id: int, action: str):
    """The confirmation step of a destructive action: a page, not a script."""
    project = get_owned_project(services(), staff_identity(), project_id)
    endpoint = "console.delete_project" if action == "delete" else "console.move_project"
    kwargs = {} if action == "delete" else {"action": action}
    return render_template("console/wizard_confirm.html", project=project, action=action,
                           label=ACTION_BUTTONS[action][0],
                           url=url_for(endpoint, project_id=project_id, **kwargs))


@bp.post("/projects/<int:project_id>/delete")
def delete_project(project_id: int):
    project = get_owned_project(services(), staff_identity(), project_id)
    try:
        lifecycle.delete_draft(services(), staff_identity(), project_id)
    except NotFoundError:
        raise
    except BitesizeError as exc:
        flash(f"Not deleted: {exc.message}.", "error")
        return redirect(url_for("console.project", project_id=project_id))
    flash(f"The draft “{project.name}” is deleted, with everything uploaded to it.", "info")
    return redirect(url_for("console.projects"))


def _default_type(registry) -> str:
    names_ = registry.names()
    return "classify" if "classify" in names_ else names_[0]


def _page(task_type: TaskType, posted, posted_config, project: Project | None) -> WizardPage:
    """The form for ``task_type``: what was posted, else the project's values,
    else the defaults."""
    if posted is not None:
        values = {key: posted.get(key, "") for key in ("name", "description", *GUIDE_KEYS)}
    elif project is not None:
        values = {"name": project.name, "description": project.description or "",
                  "tutorial": f"\n{SCREEN_BREAK}\n".join(project.tutorial or []),
                  "field_guide": project.field_guide or ""}
    else:
        values = {"name": "", "description": "", "tutorial": "", "field_guide": ""}
    stored = project.config if project is not None else None
    type_fields = describe(task_type.config_schema(), stored, prefix="config",
                           posted=posted_config)
    saved = ({key: getattr(project, key) for key in AdvancedForm().fields}
             if project is not None else None)
    advanced = describe(AdvancedForm(), saved, posted=posted)
    for f in advanced:
        if f.name == "lease_seconds":
            f.hint = (f"Empty: the task type's own, {task_type.lease_seconds} seconds for "
                      f"{task_type.name}. How long a volunteer may keep a task before it "
                      "goes back to the others.")
    return WizardPage(task_type, list(services().registry), values, type_fields, advanced,
                      stored_config=stored)


def _carry_over(page: WizardPage, posted, fill: bool) -> None:
    """What was typed in another task type's settings stays when the type
    changes (``fill``): a setting both types have (the question, the
    instructions) keeps its value, and the others ride along unseen
    (``page.carried``), so that going back to the first type finds them as
    typed (they were lost, a console audit)."""
    typed = {key: posted[key] for key in posted if key.startswith("config.") and posted[key]}
    for f in _flat(page.type_fields):
        value = typed.pop(f.name, None)
        if fill and value is not None and f.kind != "checkbox":
            f.value = value
    page.carried = typed


def _flat(form_fields: list[FormField]) -> list[FormField]:
    return [leaf for f in form_fields
            for leaf in (_flat(f.children) if f.kind == "group" else [f])]


def _known(page: WizardPage) -> list[str]:
    return ["name", "description", *GUIDE_KEYS, "task_type", "config",
            *names(page.type_fields), *names(page.advanced)]


def _read_project(task_type: TaskType, form, page: WizardPage
                  ) -> tuple[dict[str, Any], dict[str, str]]:
    """The form as engine values, or errors placed beside their fields."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    basics = {key: form.get(key, "").strip() for key in ("name", "description", *GUIDE_KEYS)}
    if not basics["name"]:
        del basics["name"]  # required: "Give the project a name."
    try:
        values.update(ProjectForm().load(basics))
    except ValidationError as exc:
        errors.update(flatten(exc.messages))
    advanced_raw, _ = read(AdvancedForm(), form)
    try:
        values.update(AdvancedForm().load(advanced_raw))
    except ValidationError as exc:
        errors.update(flatten(exc.messages))
    config_raw, problems = read(task_type.config_schema(), form, prefix="config")
    errors.update(problems)
    try:
        values["config"] = task_type.load_config(config_raw, stored=page.stored_config)
    except ValidationError as exc:
        for key, message in flatten({"config": exc.messages}).items():
            errors.setdefault(key, message)
    return values, reword(place_errors(errors, _known(page)), page.type_fields)


def _preview_src(base: str, page: WizardPage) -> tuple[str, bool]:
    """The iframe's first address: the form's values in the query when short
    enough for any server's request line, else just the type (wizard.js then
    posts the whole form at once)."""
    query = {"task_type": page.task_type.name, **page.values}
    for f in page.type_fields:
        if f.kind == "checkbox":
            if f.checked:
                query[f.name] = "on"
        elif f.kind != "group":
            query[f.name] = f.value
    full = f"{base}?{urlencode(query)}"
    if len(full) <= PREVIEW_URL_MAX:
        return full, False
    return f"{base}?{urlencode({'task_type': page.task_type.name})}", True
