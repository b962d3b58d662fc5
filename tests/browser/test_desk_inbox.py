"""The quality desk's inbox and audit log in a real Chromium, driven by
accessible names and checked with axe-core: an admin follows "Quality desk"
from the console's menu, sees the quarantined script and the contested task,
filters by kind, and opens the audit log with its CSV download."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from engine.accounts.staff import find_staff
from engine.identity import Identity, create_volunteer
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.quality import audit
from engine.volunteering import next_task, skip_task, submit_answer

pytestmark = pytest.mark.browser


@pytest.fixture
def scripted(services, admin_page):
    """A project whose flags quarantined a script at its 3rd answer; one task
    contested by two volunteers who disagree."""
    me = find_staff(services, admin_page.staff.email).identity
    project = create_project(services, me, {
        "name": "Seal cams", "task_type": "classify",
        "config": {"question": "What is it?", "labels": ["seal", "penguin"]},
        "min_answers": 2, "max_answers": 2, "confidence": 0.99,
        "quality": {"quarantine": True, "too_fast_after": 3}}).project
    run_job(services, create_job(services, me, project.id,
                                 items=[{"text": f"photo {n}"} for n in range(6)]).id)
    script = Identity("volunteer", create_volunteer(services)[0])
    for _ in range(3):
        handout = next_task(services, script, project.id)
        submit_answer(services, script, handout.task_id, handout.lease, {"label": "seal"})
    first, second = (Identity("volunteer", create_volunteer(services)[0]) for _ in range(2))
    handout = next_task(services, first, project.id)
    submit_answer(services, first, handout.task_id, handout.lease, {"label": "seal"})
    while (other := next_task(services, second, project.id)) is not None:
        if other.task_id == handout.task_id:
            submit_answer(services, second, other.task_id, other.lease, {"label": "penguin"})
            break
        skip_task(services, second, other.lease)  # holds at most 5 leases at once
    return {"project": project, "script": script.id, "task": handout.task_id}


def test_an_admin_finds_what_waits_and_the_audit_log(admin_page, live_server, scripted,
                                                     accessible):
    page = admin_page
    page.get_by_role("navigation", name="Console").get_by_role(
        "link", name="Quality desk").click()
    expect(page.get_by_role("heading", name="Quality desk", level=1)).to_be_visible()
    quarantined = page.get_by_role("link", name=f"Volunteer {scripted['script']} quarantined")
    expect(quarantined).to_be_visible()
    expect(page.get_by_role("row").filter(has=quarantined)).to_contain_text("answers too fast")
    expect(page.get_by_role("link", name=f"Task {scripted['task']} contested")).to_be_visible()
    accessible(page)
    page.get_by_role("link", name="Contested tasks (1)").click()
    expect(page.get_by_role("link", name="Contested tasks (1)")).to_have_attribute(
        "aria-current", "page")
    expect(page.get_by_role("link", name=f"Volunteer {scripted['script']} quarantined")) \
        .to_have_count(0)
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    row = page.get_by_role("row").filter(has_text=f"Quarantined volunteer {scripted['script']}")
    expect(row).to_contain_text("bitesize")
    expect(row).to_contain_text("answers too fast")  # the flag in words; the CSV has the code
    accessible(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the audit log as CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == ",".join(audit.COLUMNS)
    assert ",quarantine," in text
