"""Every volunteer page, on a desktop and on a phone: axe-core finds no violation (of
any impact) and nothing scrolls sideways. The answering page of each
built-in type, with its tutorial, field guide and report form open, the home
page, the volunteer's own page and a missing page."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.intake import samples

from .test_task_type_pages import make, upload_images, upload_items

pytestmark = pytest.mark.browser
SCREENS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 740}}
GUIDES = {"tutorial": ["# Welcome\nYou sort **camera trap** photos.", "Seals have ear holes."],
          "field_guide": "## Seal or sea lion\nSea lions have **ear flaps**."}


@pytest.fixture
def projects(client, auth, work) -> dict[str, int]:
    """One project of each built-in type, with something to answer; classify has guides."""
    charity = auth.charity()
    made = {}
    made["classify"] = make(client, charity, "classify",
                            {"question": "What is it?", "labels": ["seal", "rock", "empty"]},
                            **GUIDES)["id"]
    upload_items(client, charity, made["classify"], [{"text": "a grey seal"}], work)
    made["tag"] = make(client, charity, "tag", {"question": "What is there?",
                                                "tags": ["fox", "deer"], "free_tags": True})["id"]
    upload_items(client, charity, made["tag"], [{"text": "a field"}], work)
    made["number"] = make(client, charity, "number", {"question": "How many dots?",
                                                      "unit": "dots", "integer": True})["id"]
    upload_images(client, charity, made["number"], {"a.jpg": samples.dots_image(4, 1)}, work)
    made["locate"] = make(client, charity, "locate", {"question": "Box every penguin",
                                                      "tile_size": 512})["id"]
    upload_images(client, charity, made["locate"], {"a.jpg": samples.dots_image(6, 2)}, work)
    made["transcribe"] = make(client, charity, "transcribe", {"instructions": "Type it."})["id"]
    upload_images(client, charity, made["transcribe"],
                  {"letter.jpg": samples.letter_page(samples.LETTER[:2])}, work)
    return made


def _fits(page, what: str, screen: str) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"{what} scrolls sideways by {overflow}px on a {screen}"


@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_every_volunteer_page_passes_axe_and_fits_the_screen(page, live_server, projects,
                                                             accessible, screen):
    page.set_viewport_size(SCREENS[screen])
    page.goto(live_server + "/")
    accessible(page)
    _fits(page, "the home page", screen)
    for task_type, project_id in projects.items():
        page.goto(f"{live_server}/projects/{project_id}")
        if task_type == "classify":  # its tutorial comes first
            expect(page.locator("#tutorial")).to_be_visible()
            accessible(page)
            _fits(page, "the tutorial", screen)
            page.get_by_role("button", name="Skip tutorial").click()
        expect(page.locator("#task")).to_be_visible()
        expect(page.locator("#task")).to_have_attribute("aria-busy", "false")
        accessible(page)
        _fits(page, f"the {task_type} page", screen)
        if task_type == "classify":
            page.locator("#field-guide summary").click()
            page.get_by_role("button", name="Something wrong with this task?").click()
            accessible(page)
            _fits(page, "the open guide and report form", screen)
            page.get_by_role("button", name="seal").click()
            expect(page.locator("#answered")).to_have_text("1")
    page.goto(live_server + "/me")
    expect(page.locator("#me-record")).to_be_visible()
    accessible(page)
    _fits(page, "the volunteer's page", screen)
    reply = page.goto(live_server + "/projects/999999")
    assert reply.status == 404
    accessible(page)
    _fits(page, "a missing page", screen)
