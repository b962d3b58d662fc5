"""A project's quality page (GET /console/projects/<id>/quality) through Flask's
test client: who may open it, and that each chart is named, described in
words, and has its numbers in a table.

Answers are written as the engine stores them, each on a chosen day, so every
number on the page is known in advance.
"""
from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.accounts.staff import find_staff
from engine.identity import create_volunteer
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.store.models import Answer, Result, Task, VolunteerStat, utcnow

LABELS = ["penguin", "seal", "empty"]


def squash(html: str) -> str:
    """The page's text with tags and runs of whitespace removed, for phrases."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def text_of(reply) -> str:
    assert reply.status_code == 200, reply.get_data(as_text=True)[:500]
    return reply.get_data(as_text=True)


@pytest.fixture
def admin(make_staff):
    return make_staff(email="ada@penguins.org", role="admin")


@pytest.fixture
def desk(app, admin, forms):
    """A test client signed in as an admin of Penguin Watch."""
    client = app.test_client()
    forms.sign_in(client, admin)
    return client


def make_project(services, who, items, task_type="classify", config=None, name="Seal cams"):
    project = create_project(services, who, {
        "name": name, "task_type": task_type,
        "config": config or {"question": "What is it?", "labels": LABELS},
        "min_answers": 2, "max_answers": 2, "confidence": 0.5,
        # answers here take no time (and minutes old)
        "quality": {"quarantine": False, "trusted_after_minutes": 0}}).project
    run_job(services, create_job(services, who, project.id, items=items).id)
    return project


@pytest.fixture
def seals(services, admin):
    """Two gold items (penguin, seal) and two plain ones."""
    me = find_staff(services, admin.email).identity
    return make_project(services, me, [{"text": "g1", "gold": "penguin"},
                                       {"text": "g2", "gold": "seal"},
                                       {"text": "p1"}, {"text": "p2"}])


def answer_all(services, project, answer_for, days_ago=0):
    """A new volunteer answers every task of the project, ``answer_for(payload)``
    each, ``days_ago`` days ago: written as the engine stores answers, so the
    page's numbers are known exactly (the dispatcher mixes gold in at random)."""
    volunteer = create_volunteer(services)[0]
    with services.db.session() as session:
        for task in session.scalars(select(Task).where(Task.project_id == project.id)):
            session.add(Answer(task_id=task.id, project_id=project.id, volunteer_id=volunteer,
                               value=answer_for(task.payload),
                               created_at=utcnow() - timedelta(days=days_ago)))
    return volunteer


def results(services, project, labels: dict[str, str]):
    """The merged results of the tasks named by their text."""
    with services.db.session() as session:
        for task in session.scalars(select(Task).where(Task.project_id == project.id)):
            if task.payload["text"] in labels:
                session.add(Result(task_id=task.id, project_id=project.id,
                                   value=labels[task.payload["text"]], confidence=1.0))


def by_text(services, project, labels: dict[str, str], days_ago: int):
    """A volunteer labelling each task (named by its text) as ``labels`` says."""
    return answer_all(services, project, lambda p: {"label": labels[p["text"]]}, days_ago)


def test_the_quality_page_names_each_chart_and_shows_its_numbers(desk, services, seals):
    project = seals
    results(services, project, {"p1": "seal", "p2": "seal"})
    by_text(services, project, {"g1": "penguin", "g2": "seal", "p1": "seal", "p2": "empty"}, 1)
    by_text(services, project, {"g1": "seal", "g2": "seal", "p1": "seal", "p2": "seal"}, 0)

    page = text_of(desk.get(f"/console/projects/{project.id}/quality"))
    text = squash(page)

    assert "<h1>Quality of Seal cams</h1>" in page
    for name in ("Reliability of volunteers", "Confidence of results",
                 "Agreement with results per day", "Gold accuracy per day"):
        assert re.search(rf'<svg[^>]*role="img"[^>]*><title id="[\w-]+-title">{name}</title>'
                         r'<desc id="[\w-]+-desc">[^<]+</desc>', page), name
        assert f"<summary>{name} as a table</summary>" in page
    # the confusion matrix: rows gold, columns answered, per-class accuracy
    matrix = re.search(r'<table class="data matrix" id="confusion">.*?</table>', page).group(0)
    assert '<th scope="col">Gold label</th>' in matrix
    assert ('<th scope="row">penguin</th><td class="num heat-2 match">1</td>'
            '<td class="num heat-2">1</td><td class="num heat-0">0</td>'
            '<td class="num">2</td><td class="num">50%</td>') in matrix
    assert ('<th scope="row">seal</th><td class="num heat-0">0</td>'
            '<td class="num heat-4 match">2</td>') in matrix
    assert '<span class="visually-hidden">answered </span>empty</th>' in matrix
    assert ("Of 4 counted answers on gold tasks, 3 (75%) gave the gold label. "
            "The most common mistake: “seal” for “penguin” (1 time).") in text
    # the daily charts say their numbers in words and in their tables
    today, yesterday = utcnow().date(), utcnow().date() - timedelta(days=1)
    gold_days = re.search(r'id="table-gold-daily">.*?</table>', page, re.S).group(0)
    assert squash(gold_days).endswith(
        f"{yesterday:%a} {yesterday.day} {yesterday:%b} 2 100% "
        f"{today:%a} {today.day} {today:%b} 2 50%")
    assert re.search(r'<desc id="chart-gold-daily-desc">Over the last 30 days, 4 counted '
                     r'answers on gold tasks gave the gold answer 75% of the time \(2 days '
                     r'with answers\)\. Lowest: 50% on', page)
    agreement = squash(re.search(r'id="table-agreement">.*?</table>', page, re.S).group(0))
    assert agreement.endswith(f"{yesterday:%a} {yesterday.day} {yesterday:%b} 2 50% "
                              f"{today:%a} {today.day} {today:%b} 2 100%")
    # the summary, and where to act on it
    assert "Answers counted 8 Answers not counted 0" in text
    assert "Contested tasks 0 Gold tasks 2" in text
    assert f'href="/console/desk?project={project.id}"' in page
    assert f'href="/console/projects/{project.id}/newcomers"' in page
    assert "No gold yet" not in text


def test_the_reliability_chart_counts_estimates_and_says_who_has_none(desk, services, seals):
    project = seals
    first = by_text(services, project, dict.fromkeys(("g1", "g2", "p1", "p2"), "seal"), 0)
    by_text(services, project, dict.fromkeys(("g1", "g2", "p1", "p2"), "seal"), 0)
    with services.db.session() as session:
        session.add(VolunteerStat(project_id=project.id, volunteer_id=first,
                                  reliability=0.93, flags=[], blocked=False))
    page = text_of(desk.get(f"/console/projects/{project.id}/quality"))
    assert re.search(r'<desc id="chart-reliability-desc">1 volunteer by estimated '
                     r'reliability[^<]*Not yet estimated: 1 more volunteer who answered\.</desc>',
                     page)
    rows = squash(re.search(r"<caption>Volunteers per reliability bin.*?</table>",
                            page, re.S).group(0))
    assert "90–100% 1" in rows and "No estimate yet 1" in rows
    assert '<span id="no-estimate">not yet estimated: 1 who answered</span>' in page


def test_without_gold_the_page_says_so_and_what_gold_is_for(desk, services, admin):
    me = find_staff(services, admin.email).identity
    project = make_project(services, me, [{"text": "p1"}])
    text = squash(text_of(desk.get(f"/console/projects/{project.id}/quality")))
    assert "No gold yet. Gold tasks are tasks whose right answer you know" in text
    assert "measure how reliable each volunteer is" in text
    assert "Confusion matrix" not in text
    assert "No answers to score in the last 30 days." in text


def test_a_type_without_labels_shows_the_gold_score_distribution(desk, services, admin):
    me = find_staff(services, admin.email).identity
    project = make_project(services, me, [{"image": "https://example.org/b1.jpg", "gold": 12}],
                           "number", {"question": "How many birds?", "integer": True,
                                      "min": 0})
    for value in (12, 15, 120):  # scores 1, 0.5 and 0 against 12
        answer_all(services, project, lambda _payload, v=value: {"value": v})
    page = text_of(desk.get(f"/console/projects/{project.id}/quality"))
    assert 'id="confusion"' not in page and "Confusion matrix" not in page
    assert re.search(r'<title id="chart-gold-scores-title">Gold scores of answers</title>'
                     r'<desc id="chart-gold-scores-desc">3 counted answers on gold tasks by '
                     r'their score against gold; mean 50%\.', page)
    rows = squash(re.search(r"<caption>Counted answers on gold tasks per score bin.*?</table>",
                            page, re.S).group(0))
    assert "0–10% 1" in rows and "50–60% 1" in rows and "90–100% 1" in rows
    assert "3 counted answers on gold tasks scored 50% on average against gold; 1 of them " \
           "scored 90% or more." in squash(page)


def test_a_charity_member_may_not_see_the_quality_page(console, services, staff):
    me = find_staff(services, staff.email).identity
    project = make_project(services, me, [{"text": "p1"}])
    assert console.get(f"/console/projects/{project.id}/quality").status_code == 403


def test_another_organisations_admin_gets_404(app, services, seals, make_staff, forms):
    outsider = make_staff(org="Seal Count", email="dee@seals.org", role="admin")
    client = app.test_client()
    forms.sign_in(client, outsider)
    assert client.get(f"/console/projects/{seals.id}/quality").status_code == 404
    assert client.get("/console/projects/999999/quality").status_code == 404


def test_the_page_says_which_crowd_model_weighs_answers(desk, services, seals):
    """Before any quality run the page says answers count equally; after one,
    it names the model auto chose and why."""
    from engine.quality.reliability import estimate_project

    page = squash(text_of(desk.get(f"/console/projects/{seals.id}/quality")))
    assert "No crowd model yet" in page
    for _ in range(3):
        by_text(services, seals, {"g1": "penguin", "g2": "seal", "p1": "seal", "p2": "seal"}, 0)
    estimate_project(services, seals.id)
    page = html.unescape(squash(text_of(desk.get(f"/console/projects/{seals.id}/quality"))))
    assert "Volunteers' answers are weighed by the crowd's vote: one accuracy for everyone" \
        in page
    assert "fewer than 50 answers to hold out" in page  # 4 tasks: too few to choose on
    # 4 tasks: too few answers to choose τ on, so nothing is tempered
    assert "confidence is tempered" not in page
    from engine.store.models import Project

    with services.db.writing() as session:  # as a quality run on a bigger crowd stores it
        session.get(Project, seals.id).calibration = {"temperature": 0.65}
    page = html.unescape(squash(text_of(desk.get(f"/console/projects/{seals.id}/quality"))))
    assert "Results' confidence is tempered (τ 0.65)" in page
    assert "predict answers they were not shown" in page
    with services.db.writing() as session:  # gold lowered it (truth_choice.gold_calibration)
        session.get(Project, seals.id).calibration = {"temperature": 0.3, "tempered_by": "gold"}
    page = html.unescape(squash(text_of(desk.get(f"/console/projects/{seals.id}/quality"))))
    assert "Results' confidence is tempered (τ 0.30)" in page
    assert "results on gold tasks, merged from their answers, were right" in page
    assert "how common each label is" not in page  # no class prior stored
    assert "mistakes the whole crowd shares" not in page  # nor any lapse
    with services.db.writing() as session:  # gold found firm mistakes too
        session.get(Project, seals.id).calibration = {"temperature": 0.9, "tempered_by": "gold",
                                                      "lapse": 0.075}
    page = html.unescape(squash(text_of(desk.get(f"/console/projects/{seals.id}/quality"))))
    assert ("allows for mistakes the whole crowd shares: at the last quality run, 7.5% of "
            "gold tasks were answered firmly the wrong way") in page
    with services.db.writing() as session:  # what a quality run stores now
        session.get(Project, seals.id).calibration = {
            "temperature": 1.0, "prior": {"seal": 0.25, "penguin": 0.7, "empty": 0.05}}
    page = html.unescape(squash(text_of(desk.get(f"/console/projects/{seals.id}/quality"))))
    assert "how common each label is, as estimated at the last quality run: " \
        "penguin 70%, seal 25%, empty 5%." in page
