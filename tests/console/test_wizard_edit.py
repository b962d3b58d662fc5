"""The project's edit page, through Flask's test client: prefilled from the
stored project, saved, refused beside the field, and refused whole when the
project was saved since the page was opened (two tabs, two teammates).
Forms are filled as in test_wizard: the page's own inputs, some changed."""
from __future__ import annotations

import re

import pytest

from engine import lifecycle
from engine.identity import Identity, create_volunteer
from engine.projects import get_project
from engine.volunteering import next_tasks, submit_answer
from tests.console.test_wizard import FormReader, add_items, post_wizard


@pytest.fixture
def volunteer(services):
    return lambda: Identity("volunteer", create_volunteer(services)[0])


def test_the_edit_page_is_prefilled_and_saves(console, forms, services, draft_of):
    project = draft_of(instructions="Look for **ears**.")
    url = f"/console/projects/{project.id}/edit"
    form = FormReader(console.get(url).get_data(as_text=True))
    assert form.values["name"] == "Owl cams"
    assert form.values["config.labels"] == "Owl\nNo owl"
    assert form.values["config.instructions"] == "Look for **ears**."
    assert form.values["min_answers"] == "1"
    reply = post_wizard(console, forms, {**form.values, "config.question": "Is it an owl?",
                                         "description": "", "config.labels": "Owl\nNo owl\nBat"},
                        url=url)
    assert reply.status_code == 302
    saved = get_project(services, draft_of.identity(), project.id)
    assert saved.config["question"] == "Is it an owl?"
    assert saved.config["labels"] == ["Owl", "No owl", "Bat"]
    assert saved.description == ""


def test_a_save_from_a_page_older_than_the_last_save_is_refused_not_written_over_it(
        console, forms, services, draft_of):
    """Tab A renamed the project; tab B, opened before, saved its description and
    silently undid the rename (a charity console audit)."""
    project = draft_of()
    url = f"/console/projects/{project.id}/edit"
    tab_a = FormReader(console.get(url).get_data(as_text=True))
    tab_b = FormReader(console.get(url).get_data(as_text=True))
    assert tab_a.values["saved_as"] == tab_b.values["saved_as"]
    assert post_wizard(console, forms, {**tab_a.values, "name": "Owl cams 2026"},
                       url=url).status_code == 302
    refused = post_wizard(console, forms, {**tab_b.values, "description": "Night owls."},
                          url=url)
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "This project was saved (in another tab, or by a teammate) since you opened" in page
    saved = get_project(services, draft_of.identity(), project.id)
    assert (saved.name, saved.description) == ("Owl cams 2026", "Owls need you")
    again = FormReader(page)  # the person's values, and the settings saved now
    assert again.values["description"] == "Night owls."
    assert post_wizard(console, forms, {**again.values, "name": "Owl cams 2026"},
                       url=url).status_code == 302
    saved = get_project(services, draft_of.identity(), project.id)
    assert (saved.name, saved.description) == ("Owl cams 2026", "Night owls.")


def test_a_refused_edit_is_explained_beside_the_field(console, forms, services, draft_of,
                                                      volunteer):
    project = draft_of()
    who = draft_of.identity()
    add_items(services, who, project, [{"text": "an owl?"}])
    lifecycle.move(services, who, project.id, "publish")
    person = volunteer()
    handout = next_tasks(services, person, project.id)[0]
    submit_answer(services, person, handout.task_id, handout.lease, {"label": "Owl"})
    url = f"/console/projects/{project.id}/edit"
    form = FormReader(console.get(url).get_data(as_text=True))
    reply = post_wizard(console, forms, {**form.values, "config.labels": "Owl\nBat"}, url=url)
    assert reply.status_code == 422
    html = reply.get_data(as_text=True)
    message = re.search(r'id="f-config-labels-error">([^<]+)<', html).group(1)
    assert "Labels cannot lose" in message and "No owl" in message
    assert 'aria-invalid="true"' in re.search(r'<textarea id="f-config-labels"[^>]*>',
                                              html).group(0)
    assert get_project(services, who, project.id).config["labels"] == ["Owl", "No owl"]


def test_a_stored_label_from_before_the_character_rule_still_lets_the_page_save(
        console, forms, services, draft_of):
    """A tab in a label (pasted from a spreadsheet, stored before labels were
    held to the rule) froze the edit page: every save was refused."""
    from sqlalchemy import update

    from engine.store.models import Project

    project = draft_of()
    with services.db.writing() as session:
        session.execute(update(Project).where(Project.id == project.id).values(
            config={**project.config, "labels": ["Owl", "No\towl"]}))
    url = f"/console/projects/{project.id}/edit"
    form = FormReader(console.get(url).get_data(as_text=True))
    reply = post_wizard(console, forms, {**form.values, "config.question": "Which owl?"},
                        url=url)
    assert reply.status_code == 302, reply.get_data(as_text=True)[-500:]
    saved = get_project(services, draft_of.identity(), project.id).config
    assert (saved["question"], saved["labels"]) == ("Which owl?", ["Owl", "No\towl"])
