"""The quality desk's volunteer page and newcomers' spot-check in a real
Chromium, driven by accessible names and checked with axe-core: an admin
reads a quarantined volunteer's flags and blocks them in every project of
the organisation with a reason; on the newcomers' page, "Looks right" takes a
volunteer off the list."""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from engine.accounts.staff import find_staff
from engine.identity import Identity, create_volunteer
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.quality import moderation
from engine.store.models import AuditEntry
from engine.volunteering import next_task, submit_answer

pytestmark = pytest.mark.browser


@pytest.fixture
def crowd(services, admin_page):
    """Three texts and a photo; three volunteers answer all four; the first is
    quarantined by the flags (too fast, the same answer)."""
    me = find_staff(services, admin_page.staff.email).identity
    out = io.BytesIO()
    Image.new("RGB", (60, 40), (30, 90, 160)).save(out, "PNG")
    photo = "/media/" + services.media.put(out.getvalue()).name
    project = create_project(services, me, {
        "name": "Penguin cams", "task_type": "classify",
        "config": {"question": "Penguin?", "labels": ["yes", "no"]},
        "min_answers": 3, "max_answers": 3, "confidence": 0.5,
        "quality": {"quarantine": False, "trusted_after_minutes": 0}}).project
    items = [{"text": f"Photo note {n}"} for n in range(3)] + [{"image": photo, "id": "cam-7"}]
    run_job(services, create_job(services, me, project.id, items=items).id)
    people = []
    for _ in range(3):
        who = Identity("volunteer", create_volunteer(services)[0])
        while (handout := next_task(services, who, project.id)) is not None:
            submit_answer(services, who, handout.task_id, handout.lease, {"label": "yes"})
        people.append(who.id)
    moderation.quarantine(services, project.id, people[0], ["too_fast", "same_answer"])
    return {"project": project, "people": people}


def test_an_admin_reads_the_flags_and_blocks_in_every_project(admin_page, live_server,
                                                              crowd, services, accessible):
    page = admin_page
    subject = crowd["people"][0]
    page.goto(f"{live_server}/console/desk/projects/{crowd['project'].id}"
              f"/volunteers/{subject}")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Volunteer {subject} in Penguin cams")
    expect(page.locator("#volunteer-state")).to_contain_text("quarantined since")
    expect(page.locator("#volunteer-flags")).to_have_text(
        "gives the same answer, answers too fast")
    expect(page.get_by_role("img", name="Answers per day")).to_be_visible()
    page.get_by_text("Answers per day as a table").click()
    expect(page.get_by_role("table", name=re.compile("Days with answers"))).to_be_visible()
    accessible(page)

    block = page.get_by_role("form", name="Block", exact=True)
    block.get_by_label("Every project of Penguin Watch").check()
    block.get_by_label("Reason").fill("a script answering yes to everything")
    block.get_by_role("button", name="Block").click()
    expect(page.get_by_role("status")).to_have_text(re.compile(
        rf"Volunteer {subject} blocked in every project of Penguin Watch; "
        r"(no task|\d+ tasks?) reopened for more answers"))
    expect(page.locator("#volunteer-state")).to_contain_text("blocked in this project")
    expect(page.get_by_role("form", name="Unblock")).to_be_visible()
    with services.db.session() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "block"))
    assert (entry.scope, entry.reason) == ("organisation", "a script answering yes to everything")
    accessible(page)


def test_looks_right_takes_a_newcomer_off_the_list(admin_page, live_server, crowd,
                                                   accessible):
    page = admin_page
    _subject, first, second = crowd["people"]
    page.goto(f"{live_server}/console/projects/{crowd['project'].id}/newcomers")
    expect(page.get_by_role("heading", name="Newcomers to Penguin cams")).to_be_visible()
    newcomer = page.get_by_role("region", name=f"Volunteer {first}", exact=True)
    expect(newcomer.get_by_role("img", name=re.compile("item cam-7"))).to_be_visible()
    expect(newcomer.get_by_role("cell", name="agrees")).to_have_count(4)
    accessible(page)

    newcomer.get_by_label("Note (optional)").fill("clear answers")
    newcomer.get_by_role("button", name="Looks right").click()
    expect(page.get_by_role("status")).to_have_text(
        f"Volunteer {first} spot-checked: their first answers look right")
    expect(page.get_by_role("region", name=f"Volunteer {first}", exact=True)).to_have_count(0)
    expect(page.get_by_role("region", name=f"Volunteer {second}", exact=True)).to_be_visible()
    accessible(page)
