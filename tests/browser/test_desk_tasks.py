"""The quality desk's contested task page in a real Chromium: an admin settles
from the keyboard (a number key picks an answer, Enter settles, J moves on),
keys stay quiet while typing, and the classify, locate and transcribe views
pass axe-core."""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect
from sqlalchemy import select

from engine.accounts.staff import find_staff
from engine.identity import Identity, create_volunteer
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.store.models import AuditEntry, Task
from engine.volunteering import next_task, submit_answer

pytestmark = pytest.mark.browser
LABELS = ["penguin", "seal", "empty"]


def contested(services, page, task_type, config, answers, items):
    """A project of the signed-in admin whose tasks all end contested: each of
    `answers` is given by its own volunteer to every task. The task ids."""
    me = find_staff(services, page.staff.email).identity
    project = create_project(services, me, {
        "name": f"Contested {task_type}", "task_type": task_type, "config": config,
        "min_answers": len(answers), "max_answers": len(answers), "confidence": 0.95,
        "quality": {"quarantine": False, "trusted_after_minutes": 0}}).project
    run_job(services, create_job(services, me, project.id, items=items).id)
    for given in answers:
        volunteer = Identity("volunteer", create_volunteer(services)[0])
        while (handout := next_task(services, volunteer, project.id)) is not None:
            submit_answer(services, volunteer, handout.task_id, handout.lease, given)
    with services.db.session() as session:
        tasks = session.execute(select(Task.id, Task.state).where(
            Task.project_id == project.id).order_by(Task.id)).all()
    assert {state for _, state in tasks} == {"contested"}, tasks
    return [task for task, _ in tasks]


def picture(services, size, boxes=()) -> str:
    image = Image.new("RGB", size, (205, 215, 225))
    draw = ImageDraw.Draw(image)
    for box in boxes:
        draw.ellipse(box, fill=(30, 30, 40))
    out = io.BytesIO()
    image.save(out, "JPEG")
    return "/media/" + services.media.put(out.getvalue()).name


def settled(services, task_id):
    with services.db.session() as session:
        task = session.get(Task, task_id)
        return task.state, task.gold


def test_an_admin_settles_from_the_keyboard(admin_page, live_server, services, accessible):
    page = admin_page
    first, second, third = contested(
        services, page, "classify", {"question": "What is it?", "labels": LABELS},
        [{"label": "penguin"}, {"label": "seal"}],
        [{"text": f"photo {n}", "id": f"p{n}"} for n in range(3)])
    page.goto(f"{live_server}/console/desk/tasks/{first}")
    expect(page.get_by_role("heading", name=f"Task {first} contested")).to_be_visible()
    expect(page.get_by_role("table", name=re.compile("Label counts"))).to_be_visible()
    expect(page.get_by_role("heading", name="Keyboard shortcuts")).to_be_visible()
    accessible(page)

    # keys do nothing while typing: the note takes "2" and "j" as text
    why = page.get_by_label("Why (optional)")
    why.click()
    page.keyboard.type("2j seen by a ranger")
    expect(why).to_have_value("2j seen by a ranger")
    expect(page.get_by_role("radio", name=re.compile("seal"))).not_to_be_checked()
    assert page.url.endswith(f"/tasks/{first}")

    page.get_by_role("heading", name=f"Task {first} contested").click()  # out of the field
    page.keyboard.press("2")
    expect(page.get_by_role("radio", name=re.compile(r"2\. seal"))).to_be_checked()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/console/desk/tasks/{second}")
    expect(page.get_by_role("status")).to_contain_text(f"Task {first} is settled: seal.")
    assert settled(services, first) == ("settled", "seal")
    with services.db.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.task_id == first)).one()
    assert (entry.action, entry.reason) == ("settle", "2j seen by a ranger")

    page.keyboard.press("j")
    page.wait_for_url(f"{live_server}/console/desk/tasks/{third}")
    page.keyboard.press("k")
    page.wait_for_url(f"{live_server}/console/desk/tasks/{second}")
    page.keyboard.press("Enter")  # nothing picked: nothing happens
    expect(page.get_by_role("link", name="Next contested task")).to_be_visible()
    assert settled(services, second) == ("contested", None)

    # the shortcuts can be turned off (WCAG 2.1.4), and stay off on the next page
    page.get_by_label("Use these single-key shortcuts").uncheck()
    page.get_by_role("heading", name=f"Task {second} contested").click()
    page.keyboard.press("1")
    expect(page.get_by_role("radio", name=re.compile(r"1\. "))).not_to_be_checked()
    page.keyboard.press("j")
    page.reload()
    expect(page.get_by_label("Use these single-key shortcuts")).not_to_be_checked()
    assert page.url.endswith(f"/tasks/{second}")
    page.get_by_label("Use these single-key shortcuts").check()

    # without keys: the visible links, and "Settle" with nothing picked is an error
    expect(page.get_by_role("link", name="Previous contested task")).to_have_count(0)
    page.get_by_role("link", name="Next contested task").click()  # (first is settled)
    page.wait_for_url(f"{live_server}/console/desk/tasks/{third}")
    page.get_by_role("link", name="Previous contested task").click()
    page.wait_for_url(f"{live_server}/console/desk/tasks/{second}")
    page.get_by_role("button", name="Settle").click()
    expect(page.get_by_text("Pick one of the answers given, or type the right one.")) \
        .to_be_visible()
    accessible(page)


def test_the_locate_and_transcribe_views_are_accessible(admin_page, live_server, services,
                                                        accessible):
    page = admin_page
    penguins = [[100, 50, 160, 170], [300, 200, 380, 260]]
    photo = picture(services, (600, 400), penguins)
    [boxed] = contested(services, page, "locate", {"question": "Box every penguin"},
                        [{"boxes": penguins[:1]}, {"boxes": penguins}],
                        [{"image": photo, "id": "colony"}])
    page.goto(f"{live_server}/console/desk/tasks/{boxed}")
    drawing = page.get_by_role("img", name="Every answer's marks on the picture")
    expect(drawing).to_be_visible()
    expect(drawing.locator("rect.mark")).to_have_count(3)
    expect(page.get_by_role("table", name=re.compile("Marks of each answer"))).to_be_visible()
    accessible(page)

    line = picture(services, (400, 40))
    [typed] = contested(services, page, "transcribe", {"split": "none"},
                        [{"text": "Dear Sir I write from the front"},
                         {"text": "Dear Sir, I wrote from the [unclear]"}],
                        [{"image": line, "id": "letter"}])
    page.goto(f"{live_server}/console/desk/tasks/{typed}")
    table = page.get_by_role("table", name="Answers aligned word by word")
    expect(table).to_be_visible()
    expect(table.get_by_role("cell", name=re.compile(r"wrote.*differs"))).to_be_visible()
    accessible(page)

    # a typed answer settles it, and the desk goes on (here to the inbox: none is left)
    page.get_by_label("Or type the right answer").fill("Dear Sir, I write from the front")
    page.get_by_role("button", name="Settle").click()
    page.wait_for_url(re.compile(r".*/console/desk/?$"))
    assert settled(services, typed) == ("settled", "Dear Sir, I write from the front")
