"""The volunteer pages in French (issue 16.6), in Chromium: chosen by the browser's
language or by the switch, the page's own words and its scripts' messages alike,
`<html lang>` following, and axe-core clean at both sizes."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .volunteer_helpers import (
    answers_of,
    make_project,
    open_project,
    text_items,
    upload,
    volunteer_id,
    wait_for_new_task,
)


@pytest.fixture
def french_page(browser):
    context = browser.new_context(locale="fr-FR")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_a_french_browser_answers_in_french(french_page, live_server, client, auth, work,
                                            services, accessible):
    page = french_page
    charity = auth.charity()
    project = make_project(client, charity, name="Seals", translations={
        "fr": {"name": "Phoques", "question": "Qu’y a-t-il sur la photo ?",
               "labels": {"seal": "phoque"}}})
    upload(client, charity, project["id"], text_items(3), work)
    page.goto(live_server + "/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", name="Phoques")).to_be_visible()
    expect(page.get_by_role("heading", name="Donnez quelques minutes")).to_be_visible()
    accessible(page)
    first = open_project(page, live_server, project["id"])
    # the script's words: the keys legend, and the thanks after an answer
    expect(page.locator("#keys-help")).to_contain_text("S passer (hors saisie dans un champ)")
    expect(page.get_by_role("button", name="Un problème avec cette tâche ?")).to_be_visible()
    expect(page.get_by_role("heading", name="Qu’y a-t-il sur la photo ?")).to_be_visible()
    page.get_by_role("button", name="phoque").click()  # the charity's word for "seal"
    wait_for_new_task(page, first)
    expect(page.locator("#saved")).to_have_text("Enregistré, merci !")
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "0")
    (answer,) = answers_of(services, volunteer_id(services, page))
    assert answer.value == {"label": "seal"}  # the answer keeps the project's label
    accessible(page)
    page.set_viewport_size({"width": 375, "height": 740})
    accessible(page)
    page.goto(live_server + "/me")
    expect(page.get_by_role("heading", name="Votre bénévolat", exact=True)).to_be_visible()
    expect(page.locator("#me-summary")).to_contain_text("Vous avez répondu à 1 tâche")
    accessible(page)


def test_the_language_switch_changes_the_page_and_is_remembered(page, live_server, accessible):
    page.goto(live_server + "/me")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    switch = page.get_by_role("navigation", name="Language")
    switch.get_by_role("link", name="Français").click()
    expect(page).to_have_url(live_server + "/me")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", name="Votre bénévolat", exact=True)).to_be_visible()
    expect(page.locator("#me-status")).to_contain_text("Aucune réponse sur cet appareil")
    accessible(page)
    page.goto(live_server + "/")  # remembered on the next page
    expect(page.get_by_role("navigation", name="Langue").get_by_role(
        "link", name="Français")).to_have_attribute("aria-current", "true")
    page.get_by_role("navigation", name="Langue").get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Give a few minutes")).to_be_visible()


def test_french_pages_group_the_servers_figures_as_the_script_does(french_page, live_server,
                                                                    client, auth, work,
                                                                    accessible):
    """The progress figures the server writes (home card, project line) are grouped
    by the page's language, the way the script's number() writes the ones it
    updates: "1,200" reads as one point two in French."""
    page = french_page
    charity = auth.charity()
    project = make_project(client, charity, name="Seals")
    upload(client, charity, project["id"], text_items(1200), work)
    page.goto(live_server + "/")
    grouped = page.evaluate("window.bitesizeI18n.number(1200)")
    assert grouped != "1,200" and "200" in grouped  # French: 1 200 (a narrow space)
    card = page.locator(f'.project-card[data-project="{project["id"]}"]')
    expect(card).to_contain_text(f"{grouped} tâches")
    open_project(page, live_server, project["id"])
    expect(page.locator("#project-progress")).to_contain_text(f"sur {grouped}")
    accessible(page)
