"""A project's quality page in a real Chromium: the charts found by their
accessible names, their tables opened and read, the confusion matrix read
through its row and column headers, and axe-core clean throughout."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from engine.accounts.staff import find_staff
from engine.identity import create_volunteer
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.store.models import Answer, Result, Task, VolunteerStat, utcnow

pytestmark = pytest.mark.browser
LABELS = ["penguin", "seal", "empty"]


def make_project(services, who, items, task_type="classify", config=None):
    project = create_project(services, who, {
        "name": "Seal cams", "task_type": task_type,
        "config": config or {"question": "What is it?", "labels": LABELS},
        "min_answers": 2, "max_answers": 2, "confidence": 0.5,
        "quality": {"quarantine": False, "trusted_after_minutes": 0}}).project
    run_job(services, create_job(services, who, project.id, items=items).id)
    return project


def answer_all(services, project, answer_for, days_ago=0):
    """A new volunteer answers every task of the project, `days_ago` days ago."""
    volunteer = create_volunteer(services)[0]
    with services.db.session() as session:
        for task in session.scalars(select(Task).where(Task.project_id == project.id)):
            session.add(Answer(task_id=task.id, project_id=project.id, volunteer_id=volunteer,
                               value=answer_for(task.payload),
                               created_at=utcnow() - timedelta(days=days_ago)))
    return volunteer


@pytest.fixture
def seals(services, admin_page):
    """Gold penguin and seal, two plain photos with results; three volunteers
    over three days, one of them estimated."""
    me = find_staff(services, admin_page.staff.email).identity
    project = make_project(services, me, [{"text": "g1", "gold": "penguin"},
                                          {"text": "g2", "gold": "seal"},
                                          {"text": "p1"}, {"text": "p2"}])
    with services.db.session() as session:
        for task in session.scalars(select(Task).where(Task.project_id == project.id)):
            if not task.is_gold:
                session.add(Result(task_id=task.id, project_id=project.id, value="seal",
                                   confidence=0.9, answers=2))
                task.state = "retired"
    right = {"g1": "penguin", "g2": "seal", "p1": "seal", "p2": "seal"}
    first = answer_all(services, project, lambda p: {"label": right[p["text"]]}, 2)
    answer_all(services, project, lambda p: {"label": "seal"}, 1)
    answer_all(services, project, lambda p: {"label": "empty"}, 0)
    with services.db.session() as session:
        session.add(VolunteerStat(project_id=project.id, volunteer_id=first,
                                  reliability=0.96, flags=[], blocked=False))
    return project


def test_the_quality_page_reads_as_charts_and_tables(admin_page, live_server, seals,
                                                     accessible):
    page = admin_page
    page.goto(f"{live_server}/console/projects/{seals.id}/quality")
    expect(page.get_by_role("heading", name="Quality of Seal cams")).to_be_visible()
    for name in ("Reliability of volunteers", "Confidence of results",
                 "Agreement with results per day", "Gold accuracy per day"):
        expect(page.get_by_role("img", name=name)).to_be_visible()
    expect(page.get_by_role("img", name="Gold accuracy per day")).to_have_accessible_name(
        re.compile(r"6 counted answers on gold tasks gave the gold answer 50% of the time"))
    expect(page.locator("#stat-counted")).to_have_text("12")
    expect(page.get_by_role("link", name="Open this project's inbox")).to_have_attribute(
        "href", f"/console/desk?project={seals.id}")
    expect(page.get_by_role("link", name="Spot-check newcomers")).to_have_attribute(
        "href", f"/console/projects/{seals.id}/newcomers")
    accessible(page)

    matrix = page.get_by_role("table", name=re.compile("Counted answers on gold tasks"))
    expect(matrix).to_be_visible()
    expect(matrix.get_by_role("columnheader", name="answered seal")).to_be_visible()
    penguin = matrix.get_by_role("row", name=re.compile(r"^penguin"))
    expect(penguin.get_by_role("cell")).to_have_text(["1", "1", "1", "3", "33%"])
    seal = matrix.get_by_role("row", name=re.compile(r"^seal"))
    expect(seal.get_by_role("cell")).to_have_text(["0", "2", "1", "3", "67%"])

    page.get_by_text("Gold accuracy per day as a table").click()
    days = page.get_by_role("table", name=re.compile("Gold accuracy per day: days with"))
    expect(days).to_be_visible()
    expect(days.get_by_role("row")).to_have_count(4)  # the header and three days
    expect(days.get_by_role("row").nth(1).get_by_role("cell").nth(2)).to_have_text("100%")
    page.get_by_text("Reliability of volunteers as a table").click()
    reliability = page.get_by_role("table", name="Volunteers per reliability bin")
    expect(reliability.get_by_role("row", name=re.compile("90–100%"))).to_contain_text("1")
    expect(reliability.get_by_role("row", name=re.compile("No estimate yet"))) \
        .to_contain_text("2")
    accessible(page)


def test_a_type_without_labels_shows_gold_scores(admin_page, live_server, services,
                                                 accessible):
    page = admin_page
    me = find_staff(services, page.staff.email).identity
    project = make_project(services, me, [{"image": "https://example.org/b1.jpg", "gold": 12}],
                           "number", {"question": "How many birds?", "integer": True, "min": 0})
    for value in (12, 15):
        answer_all(services, project, lambda _payload, v=value: {"value": v})
    page.goto(f"{live_server}/console/projects/{project.id}/quality")
    chart = page.get_by_role("img", name="Gold scores of answers")
    expect(chart).to_have_accessible_name(re.compile("2 counted answers on gold tasks"))
    expect(page.get_by_role("table", name=re.compile("Counted answers on gold tasks: one"))) \
        .to_have_count(0)
    page.get_by_text("Gold scores as a table").click()
    expect(page.get_by_role("table", name="Counted answers on gold tasks per score bin")
           .get_by_role("row", name=re.compile("50–60%"))).to_contain_text("1")
    accessible(page)


def test_without_gold_the_page_says_what_gold_is_for(admin_page, live_server, services,
                                                     accessible):
    page = admin_page
    me = find_staff(services, page.staff.email).identity
    project = make_project(services, me, [{"text": "p1"}])
    page.goto(f"{live_server}/console/projects/{project.id}/quality")
    expect(page.get_by_text("No gold yet.")).to_be_visible()
    expect(page.get_by_role("img", name="Reliability of volunteers")).to_have_accessible_name(
        re.compile("No volunteer has a reliability estimate yet"))
    accessible(page)
