"""Every console page, on a laptop and on a tablet: axe-core finds no serious
or critical violation, nothing scrolls sideways, and every control can take
keyboard focus (no positive tabindex reorders it, nothing clickable is a
plain div or span)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.accounts.staff import find_staff
from engine.identity import Identity, create_volunteer
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.store.models import Item, Task
from engine.volunteering import next_task, submit_answer

pytestmark = pytest.mark.browser
SCREENS = {"laptop": {"width": 1280, "height": 800}, "tablet": {"width": 768, "height": 1024},
           "phone": {"width": 390, "height": 844}}


@pytest.fixture
def answered(services, console_page):
    """A classify project with two items, both answered by two volunteers."""
    me = find_staff(services, console_page.staff.email).identity
    project = create_project(services, me, {
        "name": "Seal cams", "task_type": "classify", "min_answers": 2, "max_answers": 3,
        "confidence": 0.5, "description": "Seals count.",
        "config": {"question": "What is it?", "labels": ["seal", "rock"],
                   "instructions": "Look for **whiskers**."}}).project
    run_job(services, create_job(services, me, project.id,
                                 items=[{"text": "a grey seal"}, {"text": "a rock"}]).id)
    for _ in range(2):
        volunteer = Identity("volunteer", create_volunteer(services)[0])
        while (handout := next_task(services, volunteer, project.id)) is not None:
            submit_answer(services, volunteer, handout.task_id, handout.lease,
                          {"label": "seal"})
    with services.db.session() as session:
        item_id = session.scalar(select(Item.id).where(Item.project_id == project.id))
    return project.id, item_id


def pages(project_id: int, item_id: int) -> dict[str, int]:
    """Console paths and the status each should answer."""
    p = f"/console/projects/{project_id}"
    return {"/console/": 200, "/console/projects/new": 200, p: 200, f"{p}/edit": 200,
            f"{p}/preview": 200, f"{p}/results": 200, f"{p}/results?state=retired": 200,
            f"{p}/items/{item_id}": 200, f"{p}/webhooks": 200, f"{p}/archive": 200,
            f"{p}/news": 200,
            "/console/team": 200, "/console/tokens": 200, "/console/forgot": 200,
            "/console/set-password/not-a-link": 410, "/console/projects/999999": 404}


KEYBOARD_PROBLEMS = """() => {
  const problems = [];
  for (const el of document.querySelectorAll('[tabindex]')) {
    if (el.tabIndex > 0) problems.push('positive tabindex on ' + el.outerHTML.slice(0, 80));
  }
  for (const el of document.querySelectorAll('[onclick], div[role=button], span[role=button]')) {
    if (el.tabIndex < 0) problems.push('not focusable: ' + el.outerHTML.slice(0, 80));
  }
  return problems;
}"""


@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_every_console_page_passes_axe_and_fits_the_screen(console_page, live_server,
                                                           answered, accessible, screen):
    page = console_page
    page.set_viewport_size(SCREENS[screen])
    for path, status in pages(*answered).items():
        reply = page.goto(live_server + path)
        assert reply.status == status, (path, reply.status)
        accessible(page)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{path} scrolls sideways by {overflow}px on a {screen}"
        assert page.evaluate(KEYBOARD_PROBLEMS) == [], path


@pytest.fixture
def desk_scene(services, admin_page):
    """A classify project of the admin's organisation: two volunteers disagree
    on both items, so both tasks are contested."""
    me = find_staff(services, admin_page.staff.email).identity
    project = create_project(services, me, {
        "name": "Seal cams", "task_type": "classify", "min_answers": 2, "max_answers": 2,
        "confidence": 0.99, "quality": {"quarantine": False, "trusted_after_minutes": 0},
        "config": {"question": "What is it?", "labels": ["seal", "rock"]}}).project
    run_job(services, create_job(services, me, project.id,
                                 items=[{"text": "a grey seal"}, {"text": "a rock"}]).id)
    volunteers = []
    for label in ("seal", "rock"):
        volunteer = Identity("volunteer", create_volunteer(services)[0])
        volunteers.append(volunteer.id)
        while (handout := next_task(services, volunteer, project.id)) is not None:
            submit_answer(services, volunteer, handout.task_id, handout.lease, {"label": label})
    with services.db.session() as session:
        task_id = session.scalar(select(Task.id).where(Task.project_id == project.id,
                                                       Task.state == "contested"))
    return project.id, volunteers[0], task_id


@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_every_quality_desk_page_passes_axe_and_fits_the_screen(admin_page, live_server,
                                                                desk_scene, accessible, screen):
    page = admin_page
    page.set_viewport_size(SCREENS[screen])
    project_id, volunteer_id, task_id = desk_scene
    p = f"/console/projects/{project_id}"
    for path in ("/console/desk", "/console/desk?kind=task", "/console/desk/audit",
                 f"/console/desk/tasks/{task_id}",
                 f"/console/desk/projects/{project_id}/volunteers/{volunteer_id}",
                 f"{p}/quality", f"{p}/newcomers", p):
        reply = page.goto(live_server + path)
        assert reply.status == 200, (path, reply.status)
        accessible(page)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{path} scrolls sideways by {overflow}px on a {screen}"
        assert page.evaluate(KEYBOARD_PROBLEMS) == [], path


@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_the_project_list_keeps_long_names_readable_and_state_badges_whole(
        services, console_page, live_server, screen):
    """On a phone the list scrolled the page sideways and broke names one letter
    per line; long names split the state badges ("act/ive") even on a laptop
    (a charity console audit)."""
    me = find_staff(services, console_page.staff.email).identity
    for name in ("Seal cams", "Transcription des registres paroissiaux de Saint-Étienne-"
                              "de-Montluc, 1792-1815, deuxième partie"):
        create_project(services, me, {"name": name, "task_type": "classify",
                                      "min_answers": 2, "max_answers": 3, "confidence": 0.8,
                                      "config": {"question": "What is it?",
                                                 "labels": ["seal", "rock"]}})
    page = console_page
    page.set_viewport_size(SCREENS[screen])
    page.goto(live_server + "/console/")
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the list scrolls the page sideways by {overflow}px"
    badges = page.locator(".projects-table .state")
    assert badges.count() == 2
    for n in range(2):
        assert badges.nth(n).evaluate("el => el.getClientRects().length") == 1
    name = page.get_by_role("link", name="Seal cams")
    assert name.evaluate("el => el.getClientRects().length") == 1  # not a letter a line
