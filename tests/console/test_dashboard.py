"""The projects list, the project dashboard and the webhooks page, through
Flask's test client signed in as a staff member.

Projects, uploads and answers go through the engine's own doors (the same
calls the API makes), so the pages show what a real project would.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from engine.accounts.staff import find_staff
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.store.models import Project, WebhookEvent
from engine.volunteering import next_task, submit_answer

LABELS = ["penguin", "seal", "empty"]


@pytest.fixture
def me(services, staff):
    """The signed-in staff member as the engine's Identity."""
    return find_staff(services, staff.email).identity


def make_project(services, who, items=4, name="Seal cams", **options):
    view = create_project(services, who, {
        "name": name, "task_type": "classify",
        "config": {"question": "What is it?", "labels": LABELS},
        "min_answers": 1, "max_answers": 1, "confidence": 0.5,
        # answers here take no time (and minutes old)
        "quality": {"quarantine": False, "trusted_after_minutes": 0}, **options})
    if items:
        upload(services, who, view.project, [{"text": f"photo {n}", "id": f"p{n}"}
                                             for n in range(items)])
    return view.project


def upload(services, who, project, items, split=True):
    """Upload items; split them here, or leave that to the worker (`work`)."""
    job = create_job(services, who, project.id, items=items)
    if split:
        run_job(services, job.id)
    return job


def answer(services, project, labels, volunteer=None):
    from engine.identity import Identity, create_volunteer
    volunteer = volunteer or Identity("volunteer", create_volunteer(services)[0])
    for label in labels:
        handout = next_task(services, volunteer, project.id)
        submit_answer(services, volunteer, handout.task_id, handout.lease, {"label": label})
    return volunteer


def text_of(reply) -> str:
    assert reply.status_code == 200, reply.get_data(as_text=True)[:500]
    return reply.get_data(as_text=True)


def squash(html: str) -> str:
    """The page's text with tags and runs of whitespace removed, for phrases."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# -- the projects list ------------------------------------------------------------


def test_the_projects_list_shows_state_progress_and_estimated_finish(console, services, me):
    busy = make_project(services, me)
    answer(services, busy, ["penguin", "seal"])
    make_project(services, me, name="Owl cams")
    page = text_of(console.get("/console/"))
    assert 'href="/console/projects/new"' in page and ">New project<" in page
    assert re.search(r'role="progressbar" aria-label="Progress of Seal cams"[^>]*'
                     r'aria-valuenow="50"', page)
    assert re.search(r'aria-label="Progress of Owl cams"[^>]*aria-valuenow="0"', page)
    text = squash(page)
    assert "2 open · 0 contested · 2 done" in text
    assert "in about an hour" in text  # 2 answers to go at 2 in (at least) the last hour
    assert "No estimate yet: no answers in the last 3 days." in text
    assert "no volunteers lately" in text  # the idle project says why


def test_the_projects_list_shows_only_the_organisation_s_projects(console, services, auth):
    from engine.identity import Identity, create_user
    from engine.store.models import User
    user_id, _ = create_user(services, "Seal Trust", "charity")
    with services.db.session() as session:
        org = session.get(User, user_id).organisation_id
    make_project(services, Identity("user", user_id, org, "charity"), name="Secret seals")
    assert "Secret seals" not in text_of(console.get("/console/"))


# -- the dashboard panel -------------------------------------------------------------


def test_the_dashboard_shows_progress_rate_volunteers_and_confidence(console, services, me):
    project = make_project(services, me, items=5, min_answers=2, max_answers=2)
    answer(services, project, ["penguin"] * 5)
    answer(services, project, ["penguin"] * 2)  # two tasks have both their answers
    page = text_of(console.get(f"/console/projects/{project.id}"))
    for stat, value in {"open": "3", "contested": "0", "done": "2", "items": "2 of 5",
                        "volunteers-day": "2", "volunteers-week": "2"}.items():
        assert f'id="stat-{stat}">{value}<' in page, stat
    hourly = re.search(r'<svg class="chart chart-bars" id="chart-hourly".*?</svg>', page, re.S)
    assert hourly and 'role="img"' in hourly.group(0)
    assert '<title id="chart-hourly-title">Answers per hour</title>' in hourly.group(0)
    assert "7 answers in the last 7 days" in hourly.group(0)
    assert hourly.group(0).count('<rect class="bar"') == 1  # all seven in this hour
    confidence = re.search(r'id="chart-confidence".*?</svg>', page, re.S).group(0)
    assert "2 finished tasks by the confidence of their result" in confidence
    text = squash(page)
    assert "90–100% 2" in text  # the histogram's table: both agreed
    assert "Hours with answers" in text
    assert "Estimated finish" in text and "3 answers still needed at" in text
    assert "Why it may be slow" not in text  # two volunteers cover the two answers needed
    start = page.index('id="dashboard-title"')
    panel = page[start:page.index("</section>", start)]
    assert "40% of tasks done" in panel  # 2 of 5
    assert 'role="progressbar"' not in panel  # the page's one is the upload job's
    assert f'href="/console/projects/{project.id}/results"' in page
    assert f'href="/console/projects/{project.id}/webhooks"' in page


def test_the_dashboard_says_why_a_project_may_be_slow(console, services, me):
    project = make_project(services, me, items=3, min_answers=3, max_answers=3)
    answer(services, project, ["penguin"])
    with services.db.session() as session:
        session.execute(update(Project).where(Project.id == project.id)
                        .values(state="paused"))
    text = squash(text_of(console.get(f"/console/projects/{project.id}")))
    assert "Why it may be slow" in text
    assert "The project is paused: volunteers cannot get its tasks" in text
    assert "Too few answers per task: a task needs answers from 3 different volunteers" in text


def test_a_project_without_tasks_has_no_estimate_and_empty_charts(console, services, me):
    project = make_project(services, me, items=0)
    page = text_of(console.get(f"/console/projects/{project.id}"))
    assert "No tasks yet: upload items to start." in squash(page)
    assert "No answers in the last 7 days." in page
    assert "No finished tasks yet." in page


# -- the webhooks page ---------------------------------------------------------------


def hook_form(url="https://example.org/hook", secret="a-long-enough-secret",
              events=("job.split", "task.retired", "project.completed"), active=True):
    data = {"url": url, "secret": secret, "events": list(events)}
    if active:
        data["active"] = "on"
    return data


@pytest.mark.parametrize(("form", "field", "message"), [
    (hook_form(url="ftp://example.org/hook"), "url", "must start with http:// or https://"),
    (hook_form(url="https://user:pw@example.org/"), "url", "put no credentials"),
    (hook_form(url=""), "url", "Length must be between 1 and 2000"),
    (hook_form(secret="short"), "secret", "Length must be between 16 and 200"),
    (hook_form(events=()), "events", "Length must be between 1 and 4"),
    (hook_form(events=("job.split", "task.made")), "events", "Must be one of"),
])
def test_webhook_form_errors_are_shown_beside_their_field(console, forms, services, me,
                                                          form, field, message):
    project = make_project(services, me, items=0)
    url = f"/console/projects/{project.id}/webhooks"
    reply = forms.post(console, url, form)
    assert reply.status_code == 422
    page = reply.get_data(as_text=True)
    found = re.search(rf'<p class="error" id="f-{field}-error">([^<]*)</p>', page)
    assert found and message in found.group(1), page[:3000]
    assert 'aria-invalid="true"' in page or field == "events"
    assert "No events yet" not in page  # nothing was set


def test_webhook_set_log_and_redeliver(console, forms, services, me, receiver, work):
    project = make_project(services, me, items=0)
    url = f"/console/projects/{project.id}/webhooks"
    set_reply = forms.post(console, url, hook_form(url=receiver.url, events=("job.split",)))
    assert set_reply.status_code == 302
    page = text_of(console.get(url))
    assert receiver.url in page and "a-long-enough-secret" not in page
    assert "…cret" in page

    receiver.status = 503
    upload(services, me, project, [{"text": "photo"}], split=False)
    work()  # the split records job.split; its delivery gets a 503
    page = text_of(console.get(url))
    text = squash(page)
    assert "failed" in text and "HTTP 503" in text
    with services.db.session() as session:
        [event] = session.query(WebhookEvent).all()
    assert f"Redeliver event {event.id}" in page
    log = text[text.index("Delivery log"):]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d 1 job.split 1 "
                     r"HTTP 503 \d+ ms", log), log

    receiver.status = 200
    again = forms.post(console, f"{url}/events/{event.id}/redeliver", {}, page=url)
    assert again.status_code == 302
    after = text_of(console.get(url))
    assert f"Event {event.id} (job.split) will be sent again" in squash(after)
    work()
    text = squash(text_of(console.get(url)))
    assert "delivered" in text and "HTTP 200" in text
    assert len(receiver.calls) == 2

    # A blank secret keeps the current one; the events chosen are kept.
    changed = forms.post(console, url, hook_form(url=receiver.url, secret="",
                                                 events=("job.split",), active=False))
    assert changed.status_code == 302
    page = text_of(console.get(url))
    assert "paused" in page and 'value="job.split" checked' in page
    from engine.delivery.webhooks import get_webhook
    assert get_webhook(services, me, project.id).secret == "a-long-enough-secret"

    removed = forms.post(console, f"{url}/delete", {}, page=url)
    assert removed.status_code == 302
    assert "Set a webhook" in text_of(console.get(url))


def test_redelivering_an_event_being_delivered_is_refused_politely(console, forms, services,
                                                                   me, receiver, work):
    project = make_project(services, me, items=0)
    url = f"/console/projects/{project.id}/webhooks"
    forms.post(console, url, hook_form(url=receiver.url, events=("job.split",)))
    receiver.status = 503
    upload(services, me, project, [{"text": "photo"}], split=False)
    work()
    with services.db.session() as session:
        [event] = session.query(WebhookEvent).all()
    forms.post(console, f"{url}/events/{event.id}/redeliver", {}, page=url)
    twice = forms.post(console, f"{url}/events/{event.id}/redeliver", {}, page=url)
    assert twice.status_code == 302
    assert "Not sent again: event" in squash(text_of(console.get(url)))


def test_webhook_forms_without_their_csrf_token_are_refused(console, services, me):
    project = make_project(services, me, items=0)
    url = f"/console/projects/{project.id}/webhooks"
    assert console.post(url, data=hook_form()).status_code == 400
    assert console.post(f"{url}/delete").status_code == 400
    assert console.post(f"{url}/events/1/redeliver").status_code == 400
    assert "Set a webhook" in text_of(console.get(url))  # nothing was set
