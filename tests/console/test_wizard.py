"""The project wizard, edits and state actions, through Flask's test client.

Forms are filled as a browser would: the page's own generated inputs are read
(with their defaults), some are changed, and the lot is posted with the CSRF
token of the page.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from engine import lifecycle
from engine.intake.jobs import create_job, run_job
from engine.projects import get_project
from engine.store.models import Project


class FormReader(HTMLParser):
    """The first form[data-wizard] of a page: its controls' values as a browser
    would send them, the labels' texts by the id they point at, and each
    control's tag and attributes by id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.labels: dict[str, str] = {}  # label text -> id
        self.controls: dict[str, dict] = {}  # id -> attrs + tag
        self._in_form = self._done = False
        self._label = self._textarea = self._select = None
        self._text = ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and "data-wizard" in a and not self._done:
            self._in_form = True
        if not self._in_form:
            return
        if a.get("id"):
            self.controls[a["id"]] = {**a, "tag": tag}
        if tag == "label":
            self._label, self._text = a.get("for"), ""
        elif tag == "input" and a.get("name") and a.get("type") != "submit":
            if a.get("type") != "checkbox" or "checked" in a:
                self.values[a["name"]] = a.get("value", "")
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and ("selected" in a
                                                   or self._select not in self.values):
            self.values[self._select] = a["value"]

    def handle_data(self, data):
        self._text += data

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True
        elif tag == "label" and self._label:
            self.labels[self._text.strip()] = self._label
            self._label = None
        elif tag == "textarea" and self._textarea:
            self.values[self._textarea] = self._text.removeprefix("\n")
            self._textarea = None
        elif tag == "select":
            self._select = None

    def control(self, label: str) -> dict:
        return self.controls[self.labels[label]]


def wizard(console, task_type: str | None = None) -> FormReader:
    page = console.get("/console/projects/new" + (f"?task_type={task_type}" if task_type
                                                  else ""))
    assert page.status_code == 200
    return FormReader(page.get_data(as_text=True))


def post_wizard(console, forms, values: dict, url: str = "/console/projects/new",
                page: str | None = None):
    return forms.post(console, url, values, page=page or url)


def projects_of(services) -> list[Project]:
    with services.db.session() as session:
        return list(session.query(Project).order_by(Project.id))


TYPES = {
    "classify": ({"config.question": "Which animal?", "config.labels": "Deer\r\nFox\r\n\r\n"},
                 {"question": "Which animal?", "labels": ["Deer", "Fox"]}),
    "tag": ({"config.question": "What is there?", "config.tags": "Deer\nFox",
             "config.free_tags": "on", "config.synonyms": "reynard = Fox",
             "config.max_tags": "5"},
            {"question": "What is there?", "tags": ["Deer", "Fox"], "free_tags": True,
             "synonyms": {"reynard": "fox"}, "max_tags": 5, "threshold": 0.5}),
    "number": ({"config.question": "How many birds?", "config.unit": "birds",
                "config.min": "0", "config.max": "500", "config.integer": "on"},
               {"question": "How many birds?", "unit": "birds", "min": 0.0, "max": 500.0,
                "integer": True, "method": "median"}),
    "locate": ({"config.question": "Mark every penguin", "config.shape": "point",
                "config.tile_size": "512"},
               {"question": "Mark every penguin", "shape": "point", "tile_size": 512,
                "overlap": 128}),
    "transcribe": ({"config.language": "en", "config.split": "none",
                    "config.instructions": "Type *each* line."},
                   {"language": "en", "split": "none", "instructions": "Type *each* line.",
                    "min_line_height": 12}),
}


@pytest.mark.parametrize("task_type", sorted(TYPES))
def test_each_built_in_type_is_made_through_its_generated_form(console, forms, services,
                                                               task_type):
    changes, expected = TYPES[task_type]
    form = wizard(console, task_type)
    assert form.values["task_type"] == task_type
    assert form.values["config_type"] == task_type
    for name in changes:
        assert name in form.values or form.controls.get("f-" + name.replace(".", "-")), name
    reply = post_wizard(console, forms, {**form.values, "name": f"A {task_type} project",
                                         "description": "Because it matters.", **changes})
    assert reply.status_code == 302, reply.get_data(as_text=True)
    (project,) = projects_of(services)
    assert reply.headers["Location"] == f"/console/projects/{project.id}"
    assert (project.state, project.task_type, project.name) == (
        "draft", task_type, f"A {task_type} project")
    assert project.description == "Because it matters."
    assert {key: project.config[key] for key in expected} == expected
    assert (project.min_answers, project.max_answers, project.confidence) == (3, 5, 0.8)
    assert console.get(reply.headers["Location"]).status_code == 200


def test_typed_settings_survive_a_change_of_task_type_and_back(console, forms, services):
    """Question and labels typed, type switched to tag and back: both were empty
    (a charity console audit). The question carries over to tag; the labels ride
    along unseen and come back; a tag project made meanwhile takes no label."""
    form = wizard(console, "classify")
    typed = {**form.values, "name": "Deer cams", "config.question": "Which animal?",
             "config.labels": "Deer\nFox"}
    as_tag = post_wizard(console, forms, {**typed, "task_type": "tag", "show_type": "1"})
    assert as_tag.status_code == 200
    tag_form = FormReader(as_tag.get_data(as_text=True))
    assert tag_form.values["config.question"] == "Which animal?"
    assert tag_form.values["config.labels"] == "Deer\nFox"  # unseen, kept
    assert not form.controls.get("f-config-tags") and tag_form.controls["f-config-tags"]
    back = post_wizard(console, forms, {**tag_form.values, "task_type": "classify",
                                        "show_type": "1"})
    again = FormReader(back.get_data(as_text=True))
    assert (again.values["config.question"], again.values["config.labels"]) == (
        "Which animal?", "Deer\nFox")
    made = post_wizard(console, forms, {**tag_form.values, "config.tags": "Deer\nFox"})
    assert made.status_code == 302, made.get_data(as_text=True)[:2000]
    (project,) = projects_of(services)
    assert project.task_type == "tag" and "labels" not in project.config
    assert project.config["question"] == "Which animal?"


def test_a_form_sent_twice_makes_one_project_and_changed_values_another(console, forms,
                                                                        services):
    """A double click on "Create project", or Back and Create again, made two
    drafts (a charity console audit): the form's key is claimed by the first."""
    changes, _ = TYPES["classify"]
    form = wizard(console, "classify")
    assert len(form.values["form_key"]) >= 16
    assert wizard(console, "classify").values["form_key"] != form.values["form_key"]
    sent = {**form.values, "name": "Deer cams", **changes}
    first = post_wizard(console, forms, sent)
    again = post_wizard(console, forms, sent)
    (project,) = projects_of(services)
    assert first.status_code == again.status_code == 302
    assert again.headers["Location"] == first.headers["Location"] == \
        f"/console/projects/{project.id}"
    assert "sent twice" in console.get(again.headers["Location"]).get_data(as_text=True)
    # Back, another name, Create: a second project, as asked
    other = post_wizard(console, forms, {**sent, "name": "Fox cams"})
    assert other.status_code == 302
    assert [p.name for p in projects_of(services)] == ["Deer cams", "Fox cams"]


def test_a_refused_form_keeps_its_key_and_makes_its_project_once_corrected(console, forms,
                                                                           services):
    form = wizard(console, "classify")
    refused = post_wizard(console, forms, {**form.values, "name": ""})
    assert refused.status_code == 422
    assert "Give the project a name." in refused.get_data(as_text=True)  # not marshmallow's
    kept = FormReader(refused.get_data(as_text=True)).values["form_key"]
    assert kept == form.values["form_key"]
    changes, _ = TYPES["classify"]
    made = post_wizard(console, forms, {**form.values, "name": "Deer cams", **changes})
    assert made.status_code == 302 and len(projects_of(services)) == 1


def test_classify_fields_are_question_and_a_labels_textarea(console):
    form = wizard(console)
    assert form.values["task_type"] == "classify"
    assert form.control("Question")["tag"] == "input"
    assert "required" in form.control("Question")
    labels = form.control("Labels")
    assert labels["tag"] == "textarea" and labels["name"] == "config.labels"
    assert form.control("Task type")["tag"] == "select"
    assert form.control("Name")["tag"] == "input"
    assert form.control("Description")["tag"] == "textarea"
    assert form.control("Instructions")["tag"] == "textarea"


def test_generated_inputs_follow_the_schema(console):
    tag = wizard(console, "tag")
    assert tag.control("Free tags")["type"] == "checkbox"
    assert tag.control("Synonyms")["tag"] == "textarea"
    assert (tag.control("Max tags")["min"], tag.control("Max tags")["max"]) == ("1", "200")
    assert tag.values["config.max_tags"] == "20"  # load_default, pre-filled
    locate = wizard(console, "locate")
    assert locate.control("Shape")["tag"] == "select" and locate.values["config.shape"] == "box"
    assert locate.control("Tile size")["step"] == "1"
    number = wizard(console, "number")
    assert number.control("Min")["type"] == "number" and number.values["config.min"] == ""
    assert number.control("Trim")["step"] == "any"
    transcribe = wizard(console, "transcribe")
    assert transcribe.control("Split")["tag"] == "select"
    assert "Question" not in transcribe.labels  # transcribe has none


def test_advanced_settings_have_defaults_explained(console, forms, services):
    page = console.get("/console/projects/new").get_data(as_text=True)
    assert re.search(r"<details class=\"advanced\">\s*<summary>Advanced</summary>", page)
    form = FormReader(page)
    assert {form.values[k] for k in ("min_answers", "max_answers", "confidence",
                                     "strategy", "gold_start", "gold_floor",
                                     "gold_ramp")} >= {"3", "5", "0.8", "breadth", "0.4",
                                                       "0.1", "20"}
    assert "Default 3:" in page and "60 seconds for classify" in page
    reply = post_wizard(console, forms, {**form.values, "name": "x", **TYPES["classify"][0],
                                         "min_answers": "2", "max_answers": "4",
                                         "lease_seconds": "120", "strategy": "depth",
                                         "gold_ramp": "5"})
    assert reply.status_code == 302
    (project,) = projects_of(services)
    assert (project.min_answers, project.max_answers, project.lease_seconds,
            project.strategy, project.gold_ramp) == (2, 4, 120, "depth", 5)


def test_errors_are_shown_beside_their_fields(console, forms, services):
    form = wizard(console)
    reply = post_wizard(console, forms, {**form.values, "name": "",
                                         "config.question": "Which?",
                                         "config.labels": "Only one",
                                         "max_answers": "1", "min_answers": "2"})
    assert reply.status_code == 422
    again = FormReader(reply.get_data(as_text=True))
    for label, error_id in (("Labels", "f-config-labels-error"), ("Name", "f-name-error"),
                            ("Most answers per task", "f-max_answers-error")):
        control = again.control(label)
        assert control["aria-invalid"] == "true"
        assert error_id in control["aria-describedby"].split()
    html = reply.get_data(as_text=True)
    labels_error = re.search(r'id="f-config-labels-error">([^<]+)<', html).group(1)
    assert labels_error == "Give between 2 and 50, one per line."  # the schema's, in lines
    assert again.values["config.labels"] == "Only one"  # what was typed is kept
    assert again.values["config.question"] == "Which?"
    assert '<details class="advanced" open>' in html  # its error is not hidden
    assert projects_of(services) == []


def test_a_type_specific_message_lands_on_its_field(console, forms):
    form = wizard(console, "tag")
    reply = post_wizard(console, forms, {**form.values, "name": "tags",
                                         "config.question": "Which?", "config.tags": "",
                                         "config.synonyms": "no equals sign here"})
    assert reply.status_code == 422
    html = reply.get_data(as_text=True)
    assert "Give at least one tag, or allow free tags." in re.search(
        r'id="f-config-tags-error">([^<]+)<', html).group(1)
    assert "needs an =" in re.search(r'id="f-config-synonyms-error">([^<]+)<', html).group(1)


def test_show_this_types_settings_redraws_the_form_without_making_anything(
        console, forms, services):
    form = wizard(console)
    reply = post_wizard(console, forms, {**form.values, "name": "Keep me",
                                         "task_type": "number", "show_type": "1"})
    assert reply.status_code == 200
    again = FormReader(reply.get_data(as_text=True))
    assert again.values["config_type"] == "number" and again.values["name"] == "Keep me"
    assert "Unit" in again.labels and "Labels" not in again.labels
    assert projects_of(services) == []
    page = reply.get_data(as_text=True)
    assert re.search(r'<button type="submit" name="show_type"[^>]*>Show this type\'s '
                     r'settings</button>', page)
    # choices read as words, their values stay the schema's
    assert '<option value="trimmed_mean">Trimmed mean</option>' in page
    assert '<option value="fifo">In upload order (fifo)</option>' in page


def test_a_form_without_its_csrf_token_is_refused(console, services, draft_of):
    form = wizard(console)
    assert form.values.pop("csrf_token")
    bare = console.post("/console/projects/new", data={**form.values, "name": "x",
                                                      **TYPES["classify"][0]})
    assert bare.status_code == 400
    assert projects_of(services) == []
    project = draft_of()
    assert console.post(f"/console/projects/{project.id}/publish").status_code == 400
    assert console.post(f"/console/projects/{project.id}/delete").status_code == 400
    assert console.post(f"/console/projects/{project.id}/edit",
                        data={"name": "changed"}).status_code == 400
    assert get_project(services, draft_of.identity(), project.id).state == "draft"


def add_items(services, who, project, items):
    job = create_job(services, who, project.id, items=items)
    run_job(services, job.id)


def test_the_state_panel_moves_a_project_through_its_life(console, forms, services, draft_of):
    project = draft_of()
    url = f"/console/projects/{project.id}"
    page = console.get(url).get_data(as_text=True)
    for label in ("Publish", "Delete draft", "Edit project"):
        assert f">{label}<" in page
    assert ">Pause<" not in page and ">Archive<" not in page
    reply = forms.post(console, f"{url}/publish", {}, page=url)
    assert reply.status_code == 302 and reply.headers["Location"] == url
    shown = console.get(url).get_data(as_text=True)
    assert "is published" in shown and ">Pause<" in shown and ">Mark completed<" in shown
    forms.post(console, f"{url}/pause", {}, page=url)
    assert get_project(services, draft_of.identity(), project.id).state == "paused"
    again = forms.post(console, f"{url}/pause", {}, page=url)  # a stale page's button
    assert again.status_code == 302
    assert "it is paused" in console.get(url).get_data(as_text=True)
    confirm = console.get(f"{url}/archive")
    assert confirm.status_code == 200 and "Yes, archive" in confirm.get_data(as_text=True)
    assert get_project(services, draft_of.identity(), project.id).state == "paused"
    forms.post(console, f"{url}/archive", {}, page=f"{url}/archive")
    assert get_project(services, draft_of.identity(), project.id).state == "archived"
    final = console.get(url).get_data(as_text=True)
    assert ">Publish<" not in final and "this is final" in final
    # nor is an archived project's edit page offered, nor served
    assert ">Edit project<" not in final
    refused = console.get(f"{url}/edit")
    assert refused.status_code == 409 and "archiving is final" in refused.get_data(as_text=True)


def test_deleting_a_draft_asks_first_then_removes_it(console, forms, services, draft_of):
    project = draft_of()
    add_items(services, draft_of.identity(), project, [{"text": "an owl?"}])
    url = f"/console/projects/{project.id}"
    confirm = console.get(f"{url}/delete").get_data(as_text=True)
    assert "Yes, delete draft" in confirm and "cannot be undone" in confirm
    assert projects_of(services)  # asking deletes nothing
    reply = forms.post(console, f"{url}/delete", {}, page=f"{url}/delete")
    assert reply.status_code == 302 and reply.headers["Location"] == "/console/"
    assert projects_of(services) == []
    assert console.get(url).status_code == 404


def test_another_organisation_gets_404_everywhere(app, forms, make_staff, services, draft_of):
    project = draft_of()
    other = app.test_client()
    forms.sign_in(other, make_staff(org="Seal Count", email="dee@seals.org"))
    base = f"/console/projects/{project.id}"
    for url in (base, f"{base}/edit", f"{base}/preview", f"{base}/archive", f"{base}/delete"):
        assert other.get(url).status_code == 404, url
    for url in (f"{base}/publish", f"{base}/archive", f"{base}/delete", f"{base}/edit",
                f"{base}/preview"):
        assert forms.post(other, url, {"name": "mine"}, page="/console/tokens"
                          ).status_code == 404, url
    still = get_project(services, draft_of.identity(), project.id)
    assert (still.state, still.name) == ("draft", "Owl cams")


def test_volunteer_page_shows_description_and_markdown_instructions(app, services, draft_of):
    project = draft_of(instructions="<script>alert(1)</script> Look for **ears**. "
                                    "[bad](javascript:alert(1))")
    lifecycle.move(services, draft_of.identity(), project.id, "publish")
    html = app.test_client().get(f"/projects/{project.id}").get_data(as_text=True)
    assert '<p class="project-why">Owls need you</p>' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert "<strong>ears</strong>" in html
    assert 'href="javascript:' not in html


def test_the_home_page_lists_only_active_projects_with_work(app, services, draft_of):
    empty, full = draft_of(), draft_of()
    who = draft_of.identity()
    add_items(services, who, full, [{"text": "an owl?"}])
    home = app.test_client()
    assert f'data-project="{full.id}"' not in home.get("/").get_data(as_text=True)
    for project in (empty, full):
        lifecycle.move(services, who, project.id, "publish")
    page = home.get("/").get_data(as_text=True)
    assert f'data-project="{full.id}"' in page and f'data-project="{empty.id}"' not in page


def test_the_tutorial_and_field_guide_are_written_in_the_wizard(console, forms, services):
    form = wizard(console, "classify")
    assert "Tutorial (optional)" in form.labels and "Field guide (optional)" in form.labels
    reply = post_wizard(console, forms, {
        **form.values, "name": "Guided", **TYPES["classify"][0],
        "tutorial": "Welcome!\r\n---\r\nSeals have **ear holes**.\r\n---\r\n\r\n",
        "field_guide": "Look at the flippers."})
    assert reply.status_code == 302, reply.get_data(as_text=True)
    (project,) = projects_of(services)
    assert project.tutorial == ["Welcome!", "Seals have **ear holes**."]
    assert project.field_guide == "Look at the flippers."
    # the edit form shows the screens as written, and takes them back the same
    edit = f"/console/projects/{project.id}/edit"
    shown = FormReader(console.get(edit).get_data(as_text=True))
    assert shown.values["tutorial"] == "Welcome!\n---\nSeals have **ear holes**."
    too_many = "\n---\n".join(f"screen {n}" for n in range(11))
    refused = post_wizard(console, forms, {**shown.values, "tutorial": too_many}, url=edit)
    assert refused.status_code == 422
    assert "At most 10 screens" in refused.get_data(as_text=True)
    assert 'id="f-tutorial-error"' in refused.get_data(as_text=True)
