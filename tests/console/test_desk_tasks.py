"""The quality desk's contested task page: the project's staff open it (another
organisation's task is missing; a charity member settles but gets no links to
the admins' volunteer pages), each task type shows its answers its own way, and
settling (a picked answer or a typed one, with a note for the audit log) moves
on to the next contested task.
"""
from __future__ import annotations

import io
import re

import pytest
from flask import url_for
from PIL import Image
from sqlalchemy import select

from engine.accounts.staff import find_staff
from engine.identity import Identity, create_user, create_volunteer
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.quality.reliability import estimate_project
from engine.store.models import AuditEntry, Task, User
from engine.volunteering import next_task, submit_answer

LABELS = ["penguin", "seal", "empty"]
CLASSIFY = {"question": "What is on the photo?", "labels": LABELS}


@pytest.fixture
def staff(make_staff):
    return make_staff(role="admin")


@pytest.fixture
def me(services, staff):
    return find_staff(services, staff.email).identity


def contested_project(services, who, task_type, config, answers, items=1, **options):
    """A project whose `items` tasks each got `answers` (one volunteer each, in
    order; an answer may be a function of the task's payload), too far apart
    to retire: every task ends contested. Returns (project, task ids, volunteers)."""
    project = create_project(services, who, {
        "name": f"Contested {task_type}", "task_type": task_type, "config": config,
        "min_answers": len(answers), "max_answers": len(answers), "confidence": 0.95,
        "quality": {"quarantine": False, "trusted_after_minutes": 0}, **options}).project
    made = [{"text": f"photo {n}", "id": f"p{n}"} for n in range(items)] \
        if isinstance(items, int) else items
    run_job(services, create_job(services, who, project.id, items=made).id)
    volunteers = []
    for given in answers:
        volunteer = Identity("volunteer", create_volunteer(services)[0])
        volunteers.append(volunteer.id)
        while (handout := next_task(services, volunteer, project.id)) is not None:
            value = given(handout.payload) if callable(given) else given
            submit_answer(services, volunteer, handout.task_id, handout.lease, value)
    with services.db.session() as session:
        tasks = session.execute(select(Task.id, Task.state).where(
            Task.project_id == project.id).order_by(Task.id)).all()
    assert {state for _, state in tasks} == {"contested"}, tasks
    return project, [task for task, _ in tasks], volunteers


def classify_project(services, who, items=1):
    return contested_project(services, who, "classify", CLASSIFY,
                             [{"label": "penguin"}, {"label": "seal"}], items)


def stored_image(services, size=(600, 400)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 210, 220)).save(out, "JPEG")
    return "/media/" + services.media.put(out.getvalue()).name


def text_of(reply, status=200) -> str:
    assert reply.status_code == status, reply.get_data(as_text=True)[:800]
    return reply.get_data(as_text=True)


def squash(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def url(task_id: int) -> str:
    return f"/console/desk/tasks/{task_id}"


def inbox_url(client) -> str:
    with client.application.test_request_context():
        return url_for("console.desk")


def state_of(services, task_id):
    with services.db.session() as session:
        task = session.get(Task, task_id)
        return task.state, task.gold


# -- who may open it ----------------------------------------------------------------


def test_another_organisations_task_is_missing_and_its_project_unnamed(console, services,
                                                                        forms):
    user_id, _ = create_user(services, "Seal Society", "admin")
    with services.db.session() as session:
        org = session.get(User, user_id).organisation_id
    other = Identity("user", user_id, org, "admin")
    project, [task], _ = classify_project(services, other)
    page = text_of(console.get(url(task)), 404)
    assert f"task {task} does not exist" in page
    assert project.name not in page and "Seal Society" not in page
    posted = forms.post(console, url(task), {"choice": "seal"}, page="/console/")
    assert posted.status_code == 404 and project.name not in posted.get_data(as_text=True)
    assert state_of(services, task) == ("contested", None)
    assert console.get(url(task + 1000)).status_code == 404


def test_a_charity_member_settles_but_sees_no_volunteer_pages(app, services, me, make_staff,
                                                              forms):
    """Settling is for the project's owners, as the API's resolution call; the
    desk's volunteer pages (block, clear) are for admins, so no link to them."""
    _, [task], _ = classify_project(services, me)
    member = make_staff(email="bo@penguins.org", role="charity")
    client = app.test_client()
    forms.sign_in(client, member)
    page = client.get(url(task))
    assert page.status_code == 200
    assert "/console/desk/projects/" not in page.get_data(as_text=True)
    settled = forms.post(client, url(task), {"choice": "seal"}, page=url(task))
    assert settled.status_code == 302
    assert state_of(services, task) == ("settled", "seal")


# -- each type's view -----------------------------------------------------------------


def test_a_classify_task_shows_label_counts_and_each_answers_volunteer(console, services, me):
    project, [task], (ana, bo, _) = contested_project(
        services, me, "classify", CLASSIFY,
        [{"label": "seal"}, {"label": "penguin"}, {"label": "seal"}])
    estimate_project(services, project.id)
    page = text_of(console.get(url(task)))
    text = squash(page)
    assert f"Task {task} contested" in text
    assert "What is on the photo?" in text and "photo 0" in text  # the task's text
    assert "of item p0" in text  # the item's id, from its row (volunteers never get it)
    assert "Label counts" in text
    counts = re.search(r"penguin 1 1 (\d+)% seal 2 2 (\d+)% empty 0 0", text)
    # the merge's support as shares, whatever the method (a weighted vote's is
    # a sum of weights, a model's a probability)
    assert counts and 98 <= int(counts[1]) + int(counts[2]) <= 101
    assert int(counts[2]) > int(counts[1])
    for volunteer in (ana, bo):
        link = (f'<a href="/console/desk/projects/{project.id}/volunteers/{volunteer}">'
                f"Volunteer {volunteer}</a>")
        assert link in page
    assert re.search(rf"Volunteer {ana} \d+% yes Answer 1: seal", text)  # reliability shown
    assert re.search(rf"Volunteer {bo} \d+% yes Answer 2: penguin", text)
    # the distinct answers to settle on, most given first, keyed 1 and 2
    radios = re.findall(r'<input type="radio" name="choice" id="choice-(\d)" value="([^"]*)" '
                        r'data-key="(\d)"', page)
    assert radios == [("1", "seal", "1"), ("2", "penguin", "2")]
    assert '<option value="empty">empty</option>' in page  # any label may be settled on
    assert "Keyboard shortcuts" in text and "J : next contested task" in text
    assert re.search(r'<script src="/static/console/desk_task.js[^"]*" defer></script>', page)
    assert "<script>" not in page and " style=" not in page


def test_a_tag_task_counts_each_tag(console, services, me):
    config = {"question": "What can you see?", "tags": ["Deer", "Fox", "Badger"]}
    _, [task], _ = contested_project(services, me, "tag", config,
                                     [{"tags": ["Deer"]}, {"tags": ["Deer", "Fox"]}])
    text = squash(text_of(console.get(url(task))))
    assert "Tag counts" in text
    assert "Deer 2 of 2 2 100% Fox 1 of 2 1 50%" in text
    assert "Badger" not in text.split("Tag counts")[1].split("Who answered what")[0]
    assert "1. Deer (1 answer)" in text and "2. Deer; Fox (1 answer)" in text


def test_a_number_task_lists_the_numbers_with_their_spread(console, services, me):
    config = {"question": "How many birds?", "unit": "birds", "integer": True, "min": 0}
    _, [task], _ = contested_project(services, me, "number", config,
                                     [{"value": 20}, {"value": 10}])
    text = squash(text_of(console.get(url(task))))
    assert "Numbers given, lowest first: 10 , 20 birds." in text
    assert "Lowest 10 birds Highest 20 birds Spread (highest − lowest) 10 birds" in text
    assert "Median 15 birds" in text
    assert "1. 20 birds (1 answer)" in text and "2. 10 birds (1 answer)" in text


def test_a_locate_task_draws_every_answers_boxes_on_the_picture(console, services, me):
    image = stored_image(services)
    one, two = [100, 50, 160, 170], [300, 200, 380, 260]
    _, [task], _ = contested_project(services, me, "locate", {"question": "Box every penguin"},
                                     [{"boxes": [one]}, {"boxes": [one, two]}],
                                     items=[{"image": image, "id": "colony"}])
    page = text_of(console.get(url(task)))
    drawing = re.search(r'<svg class="overlay answers-overlay".*?</svg>', page, re.S).group(0)
    assert 'role="img"' in drawing and 'viewBox="0 0 600 400"' in drawing
    assert f'<image href="{image}"' in drawing
    assert len(re.findall(r'<rect class="mark box"', drawing)) == 3
    assert "<title>Answer 1, box 1</title>" in drawing
    assert "<title>Answer 2, box 2</title>" in drawing
    assert 'class="answer-mark answer-1"' in drawing and 'class="answer-mark answer-2"' in drawing
    assert "3 marks of 2 answers" in drawing  # the <desc>
    text = squash(page)
    assert "Answer 1 1 100 50 160 170 Answer 2 1 100 50 160 170 Answer 2 2 300 200 380 260" \
        in text
    assert "1. 1 box (1 answer)" in text and "2. 2 boxes (1 answer)" in text


def test_a_transcribe_task_aligns_the_answers_word_by_word(console, services, me):
    image = stored_image(services, (400, 40))
    texts = ["Dear Sir I write from the front", "Dear Sir, I wrote from the [unclear]",
             "Dear Sir I write from front"]
    _, [task], (ana, bo, cy) = contested_project(
        services, me, "transcribe", {"split": "none"}, [{"text": t} for t in texts],
        items=[{"image": image, "id": "letter"}])
    page = text_of(console.get(url(task)))
    table = re.search(r'<table class="data alignment".*?</table>', page, re.S).group(0)
    rows = re.findall(r"<tr>\s*<th scope=\"row\">(.*?)</tr>", table, re.S)
    assert len(rows) == 4  # three answers and the "most answers" row
    assert len(re.findall(r'<th scope="col" class="num">Word \d+</th>', table)) == 7
    first = squash(rows[0])
    assert first.startswith(f"Volunteer {ana} (answer 1) Dear Sir I write from the front 0")
    second = squash(rows[1])
    assert "wrote ≠ (differs)" in second and "[unclear] ≠ (differs)" in second
    assert second.endswith(" 2")  # two words differ from most answers
    third = squash(rows[2])
    assert "– no word ≠ (differs)" in third  # "the" is missing
    assert squash(rows[3]).startswith("Most answers Dear Sir I write from the front")
    assert '<img class="item-picture" src="' + image in page  # the line volunteers saw


# -- settling ------------------------------------------------------------------------------


def test_settling_on_a_picked_answer_logs_the_note_and_moves_on(console, services, me, forms):
    project, (first, second, third), _ = classify_project(services, me, items=3)
    reply = forms.post(console, url(second), {"choice": "seal", "note": "Flippers visible"})
    assert reply.status_code == 302
    assert reply.headers["Location"] == url(third)  # the next in the queue
    assert state_of(services, second) == ("settled", "seal")
    with services.db.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.task_id == second)).one()
    assert (entry.action, entry.reason, entry.user_id) == ("settle", "Flippers visible", me.id)
    assert entry.detail["value"] == "seal" and entry.project_id == project.id
    landed = squash(text_of(console.get(reply.headers["Location"])))
    assert f"Task {second} is settled: seal." in landed

    # the last of the queue goes back to the one skipped before, then to the inbox
    reply = forms.post(console, url(third), {"choice": "penguin"})
    assert reply.headers["Location"] == url(first)
    reply = forms.post(console, url(first), {"choice": "penguin", "answer": "empty"})
    assert reply.status_code == 302 and reply.headers["Location"] == inbox_url(console)
    assert state_of(services, first) == ("settled", "empty")  # the typed one wins


def test_settling_on_a_typed_answer(console, services, me, forms):
    config = {"question": "How many birds?", "unit": "birds", "integer": True, "min": 0}
    _, [task], _ = contested_project(services, me, "number", config,
                                     [{"value": 20}, {"value": 10}])
    reply = forms.post(console, url(task), {"answer": " 13 ", "note": ""})
    assert reply.status_code == 302
    assert state_of(services, task) == ("settled", 13)
    with services.db.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.task_id == task)).one()
    assert entry.action == "settle" and entry.reason == "" and entry.detail["value"] == 13


def test_settling_on_no_tag_at_all(console, services, me, forms):
    config = {"question": "What can you see?", "tags": ["Deer", "Fox"]}
    _, [task], _ = contested_project(services, me, "tag", config,
                                     [{"tags": []}, {"tags": ["Fox"]}, {"tags": ["Deer"]}])
    page = text_of(console.get(url(task)))
    assert re.search(r'value="" data-key="\d"', page)  # "none of these" is an answer
    assert "No tag fits (none of these)" in page
    reply = forms.post(console, url(task), {"choice": ""})
    assert reply.status_code == 302 and state_of(services, task) == ("settled", [])


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"answer": "lots"}, "f-answer", "This cannot be read as an answer: not a number"),
    ({"answer": "-3"}, "f-answer", "Must be at least 0."),
    ({"answer": "2.5"}, "f-answer", "Must be a whole number."),
    ({"note": "why not"}, "choice", "Pick one of the answers given, or type the right one."),
    ({"choice": "20", "note": "x" * 2001}, "f-note", "Longer than maximum length 2000."),
])
def test_a_bad_answer_is_shown_beside_its_field(console, services, me, forms, form, field,
                                                message):
    config = {"question": "How many birds?", "integer": True, "min": 0}
    _, [task], _ = contested_project(services, me, "number", config,
                                     [{"value": 20}, {"value": 10}])
    page = text_of(forms.post(console, url(task), form), 400)
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    assert error and message in error.group(1)
    if field == "choice":
        assert len(re.findall(r'type="radio"[^>]*aria-describedby="choice-error"', page)) == 2
    else:
        control = re.search(rf'<(?:input|textarea|select) id="{field}"[^>]*>', page).group(0)
        assert 'aria-invalid="true"' in control
        assert f'aria-describedby="{field}-hint {field}-error"' in control
    assert 'value="' + form.get("answer", "") in page or "textarea" in page  # kept as typed
    assert state_of(services, task) == ("contested", None)
    with services.db.session() as session:
        assert session.scalars(select(AuditEntry)).all() == []


def test_a_classify_label_outside_the_project_is_refused(console, services, me, forms):
    _, [task], _ = classify_project(services, me)
    page = text_of(forms.post(console, url(task), {"choice": "walrus"}), 400)
    error = re.search(r'<p class="error" id="choice-error">([^<]*)</p>', page).group(1)
    assert error == "Must be one of: penguin, seal, empty."
    assert state_of(services, task) == ("contested", None)


def test_a_task_no_longer_contested_shows_where_it_stands(console, services, me, forms):
    _, [task], _ = classify_project(services, me)
    assert forms.post(console, url(task), {"choice": "seal"}).status_code == 302
    page = text_of(console.get(url(task)))
    text = squash(page)
    assert f"Task {task} settled" in text
    assert "This task is settled" in text and "Result: seal , confidence 100%." in text
    assert 'name="choice"' not in page and "Settle this task" not in text
    assert "Enter : settle" not in text
    again = forms.post(console, url(task), {"choice": "penguin"}, page="/console/")
    assert again.status_code == 302 and again.headers["Location"] == url(task)
    assert "is settled now: there is nothing to settle" in squash(text_of(console.get(url(task))))
    assert state_of(services, task) == ("settled", "seal")


def test_a_task_withdrawn_by_reports_says_so_not_that_the_crowd_could_not_settle_it(
        console, services, me):
    from engine.volunteering import report_task

    _, [crowd_task], _ = classify_project(services, me)
    assert "The crowd could not settle it" in squash(text_of(console.get(url(crowd_task))))
    project = create_project(services, me, {
        "name": "Reported", "task_type": "classify", "config": CLASSIFY,
        "min_answers": 2, "max_answers": 3, "confidence": 0.95,
        "quality": {"quarantine": False, "trusted_after_minutes": 0}}).project
    run_job(services, create_job(services, me, project.id, items=[{"text": "photo"}]).id)
    for _ in range(2):  # two volunteers report it: out of circulation
        volunteer = Identity("volunteer", create_volunteer(services)[0])
        handout = next_task(services, volunteer, project.id)
        report_task(services, volunteer, handout.lease, "blank")
    assert state_of(services, handout.task_id)[0] == "contested"
    text = squash(text_of(console.get(url(handout.task_id))))
    assert "Volunteers reported it as wrong, which took it out of circulation until you " \
        "settle it or dismiss their reports." in text
    assert "The crowd could not settle it" not in text


def test_one_report_on_a_task_the_crowd_contested_does_not_call_it_out_of_circulation(
        console, services, me):
    """One report, short of the two that withdraw a task; then the crowd fails to
    settle it: the page says the crowd could not, and shows the report as such."""
    from engine.volunteering import report_task

    project = create_project(services, me, {
        "name": "Reported once", "task_type": "classify", "config": CLASSIFY,
        "min_answers": 2, "max_answers": 3, "confidence": 0.99,
        "quality": {"quarantine": False, "trusted_after_minutes": 0}}).project
    run_job(services, create_job(services, me, project.id, items=[{"text": "photo"}]).id)

    def volunteer_and_task():
        volunteer = Identity("volunteer", create_volunteer(services)[0])
        return volunteer, next_task(services, volunteer, project.id)

    for label in ("penguin", "seal"):
        volunteer, handout = volunteer_and_task()
        submit_answer(services, volunteer, handout.task_id, handout.lease, {"label": label})
    reporter, handout = volunteer_and_task()
    report_task(services, reporter, handout.lease, "blank")
    volunteer, handout = volunteer_and_task()
    submit_answer(services, volunteer, handout.task_id, handout.lease, {"label": "empty"})
    assert state_of(services, handout.task_id)[0] == "contested"
    text = squash(text_of(console.get(url(handout.task_id))))
    assert "The crowd could not settle it" in text
    assert "1 volunteer said something is wrong with this task." in text
    assert "out of circulation" not in text


def test_previous_and_next_links_step_through_the_projects_queue(console, services, me):
    _, (first, second, third), _ = classify_project(services, me, items=3)
    _, [elsewhere], _ = classify_project(services, me)  # another project's queue
    middle = text_of(console.get(url(second)))
    assert f'<a rel="prev" href="{url(first)}">Previous contested task</a>' in middle
    assert f'<a rel="next" href="{url(third)}">Next contested task</a>' in middle
    last = text_of(console.get(url(third)))
    assert 'rel="next"' not in last and url(elsewhere) not in last
    assert 'rel="prev"' not in text_of(console.get(url(first)))
