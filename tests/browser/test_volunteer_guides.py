"""Learn by doing: the charity's tutorial before a volunteer's first task, and the
field guide on every task, in a real Chromium."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .volunteer_helpers import current_task, make_project, open_project, text_items, upload

pytestmark = pytest.mark.browser


def _guided(client, auth, work) -> dict:
    charity = auth.charity()
    project = make_project(client, charity, tutorial=[
        "# Welcome\nYou will sort **camera trap** photos.",
        "Seals have ear holes, not ears. <script>alert(1)</script>"],
        field_guide="## Seal or sea lion\nSea lions have **ear flaps**.")
    upload(client, charity, project["id"], text_items(3), work)
    return project


def test_the_tutorial_comes_first_once_and_can_be_seen_again(page, live_server, client, auth,
                                                            work, accessible):
    project = _guided(client, auth, work)
    page.goto(f"{live_server}/projects/{project['id']}")
    tutorial = page.get_by_role("region", name="How it works")
    expect(tutorial).to_be_visible()
    expect(page.locator("#task")).to_be_hidden()  # no task (no lease) until they start
    expect(page.locator("#tutorial-step")).to_have_text("Step 1 of 2")
    expect(tutorial.get_by_role("heading", name="Welcome")).to_be_visible()
    accessible(page)
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#tutorial-step")).to_have_text("Step 2 of 2")
    expect(tutorial).to_contain_text("<script>alert(1)</script>")  # text, not a script
    expect(page.get_by_role("button", name="Next")).to_be_hidden()
    page.get_by_role("button", name="Start").click()
    expect(tutorial).to_be_hidden()
    expect(page.locator("#task")).to_be_visible()
    page.reload()  # seen on this device: straight to the task
    expect(page.locator("#task")).to_be_visible()
    expect(tutorial).to_be_hidden()
    page.get_by_role("button", name="See the tutorial again").click()
    expect(tutorial).to_be_visible()
    page.get_by_role("button", name="Skip tutorial").click()
    expect(page.locator("#task")).to_be_visible()
    expect(page.get_by_role("button", name="See the tutorial again")).to_be_focused()


def test_the_tutorial_can_be_skipped_and_the_field_guide_is_on_every_task(
        page, live_server, client, auth, work, accessible):
    project = _guided(client, auth, work)
    page.goto(f"{live_server}/projects/{project['id']}")
    page.get_by_role("button", name="Skip tutorial").click()
    expect(page.locator("#task")).to_be_visible()
    first = current_task(page)
    guide = page.locator("#field-guide")
    expect(guide.locator("summary")).to_have_text("Field guide")
    expect(guide.get_by_role("heading", name="Seal or sea lion")).to_be_hidden()
    guide.locator("summary").click()
    expect(guide.get_by_role("heading", name="Seal or sea lion")).to_be_visible()
    expect(guide.locator("strong")).to_have_text("ear flaps")
    accessible(page)
    page.keyboard.press("1")
    expect(page.locator("#task")).not_to_have_attribute("data-task", str(first))
    expect(guide).to_be_visible()  # on the next task too


def test_a_project_without_guides_shows_neither(page, live_server, client, auth, work):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(1), work)
    open_project(page, live_server, project["id"])
    expect(page.locator("#tutorial")).to_have_count(0)
    expect(page.locator("#field-guide")).to_have_count(0)


def test_keys_pressed_while_the_tutorial_is_read_again_leave_the_hidden_task(
        page, live_server, client, auth, work):
    """S and the number keys act on a task on screen only: one hidden behind the
    tutorial is neither skipped (never shown again) nor answered unseen."""
    project = _guided(client, auth, work)
    page.goto(f"{live_server}/projects/{project['id']}")
    page.get_by_role("button", name="Skip tutorial").click()
    expect(page.locator("#task")).to_be_visible()
    first = current_task(page)
    leases = []
    page.on("request", lambda r: leases.append(r.url) if "/leases/" in r.url
            or r.url.endswith("/answers") else None)
    page.get_by_role("button", name="See the tutorial again").click()
    expect(page.get_by_role("region", name="How it works")).to_be_visible()
    for key in ("s", "S", "1"):
        page.keyboard.press(key)
    page.wait_for_timeout(500)
    assert leases == []
    page.get_by_role("button", name="Skip tutorial").click()
    expect(page.locator("#task")).to_be_visible()
    assert current_task(page) == first
    assert page.locator("#volunteer").get_attribute("data-outbox") == "0"
