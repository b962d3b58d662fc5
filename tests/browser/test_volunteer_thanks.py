"""Seeing that it helped: the answering page's thanks, counts, progress and stopping
points, and the volunteer's own page with its certificate, in a real Chromium."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .volunteer_helpers import (
    make_project,
    open_project,
    text_items,
    upload,
    wait_for_new_task,
)

pytestmark = pytest.mark.browser


def _answer(page, times: int, key: str = "1") -> None:
    for _ in range(times):
        shown = int(page.locator("#task").get_attribute("data-task"))
        page.keyboard.press(key)
        if page.locator("#done").is_hidden():
            try:
                wait_for_new_task(page, shown)
            except AssertionError:
                expect(page.locator("#done")).to_be_visible()


def test_each_answer_is_thanked_and_counted_and_the_total_survives_a_reload(
        page, live_server, client, auth, work):
    charity = auth.charity()
    project = make_project(client, charity, description="Counting penguins for science")
    upload(client, charity, project["id"], text_items(8), work)
    open_project(page, live_server, project["id"])
    expect(page.locator(".project-why")).to_have_text("Counting penguins for science")
    expect(page.locator("#project-progress")).to_have_text("0 of 8 tasks done")
    _answer(page, 2)
    expect(page.locator("#saved")).to_have_text("Saved, thank you!")
    expect(page.locator("#saved")).to_have_attribute("aria-live", "polite")  # announced
    expect(page.locator("#answered")).to_have_text("2")
    expect(page.locator("#answered-total")).to_have_text("2")
    page.reload()
    expect(page.locator("#task")).to_be_visible()
    expect(page.locator("#answered")).to_have_text("2")  # this visit, in this tab
    expect(page.locator("#answered-total")).to_have_text("2")  # from the server
    page.goto(live_server + f"/projects/{project['id']}")
    expect(page.locator("#answered-total")).to_have_text("2")


def test_an_answer_saved_while_the_total_is_read_is_counted_once(page, live_server, client,
                                                                 auth, work):
    """The race CI once met: the page reads the volunteer's total while an answer
    is on its way, the server has stored the answer before it reads the count,
    and the count's reply arrives before the answer's. Counted from that reading
    plus the answer's own reply, one answer showed as two in all."""
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(4), work)
    held: dict = {}

    def total(route):
        if held.get("done"):
            route.continue_()
        else:
            held["total"] = route  # answered once an answer is stored

    def answer(route):
        reply = route.fetch()  # the answer is stored now
        waiting = held.pop("total", None)
        if waiting is not None:  # the total's reply first, counting that answer
            waiting.fulfill(response=waiting.fetch())
            held["done"] = True
        route.fulfill(response=reply)

    page.route("**/api/v1/volunteers/me", total)
    page.route("**/api/v1/tasks/*/answers", answer)
    open_project(page, live_server, project["id"])
    _answer(page, 1)
    expect(page.locator("#answered")).to_have_text("1")
    assert held.get("done")  # the race was run
    expect(page.locator("#answered-total")).to_have_text("1")


def test_a_total_whose_reply_comes_after_an_answers_is_read_again(page, live_server,
                                                                 client, auth, work):
    """The other order, which CI met next: the total is asked for before an answer
    is sent, the answer is stored and its reply handled, and only then does the
    total's reply come, counting that answer. The page threw that reading away
    but, with no answer left on its way, nothing read it again: 0 in all."""
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(4), work)
    held: dict = {}

    def total(route):
        if "total" in held:
            route.continue_()  # the reading taken again
        else:
            held["total"] = route

    page.route("**/api/v1/volunteers/me", total)
    open_project(page, live_server, project["id"])
    for _ in range(100):
        if "total" in held:
            break
        page.wait_for_timeout(50)
    assert "total" in held  # the first reading is held
    _answer(page, 1)
    expect(page.locator("#answered")).to_have_text("1")  # the answer's reply is handled
    waiting = held["total"]
    waiting.fulfill(response=waiting.fetch())  # counts the answer
    expect(page.locator("#answered-total")).to_have_text("1")
    _answer(page, 1)
    expect(page.locator("#answered-total")).to_have_text("2")


def test_a_stopping_point_says_what_the_answers_did(page, live_server, client, auth, work):
    charity = auth.charity()
    project = make_project(client, charity)  # one answer finishes a task
    upload(client, charity, project["id"], text_items(7), work)
    open_project(page, live_server, project["id"])
    milestone = page.locator("#milestone")
    _answer(page, 4)
    expect(milestone).to_be_hidden()
    _answer(page, 1)
    expect(milestone).to_be_visible()
    expect(milestone).to_have_attribute("role", "status")
    expect(page.locator("#milestone-text")).to_contain_text("That is 5 tasks this visit")
    expect(page.locator("#milestone-text")).to_contain_text("helped finish 5 tasks")
    expect(page.locator("#project-progress")).to_have_text("5 of 7 tasks done")
    page.get_by_role("button", name="Keep going").click()
    expect(milestone).to_be_hidden()
    expect(page.get_by_role("button", name=re.compile("penguin"))).to_be_focused()


def test_the_volunteers_page_lists_what_they_did_and_prints_a_certificate(
        page, live_server, client, auth, work, accessible):
    charity = auth.charity()
    project = make_project(client, charity, name="Seal counts")
    upload(client, charity, project["id"], text_items(3), work)
    open_project(page, live_server, project["id"])
    _answer(page, 3)
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "0")
    page.get_by_role("link", name="Your volunteering").click()
    expect(page.get_by_role("heading", name="Your volunteering", exact=True)).to_be_visible()
    expect(page.locator("#me-summary")).to_contain_text("You have answered 3 tasks for 1 project")
    row = page.get_by_role("row", name=re.compile("Seal counts"))
    expect(row).to_contain_text("3")
    page.get_by_label("Name on the certificate").fill("Ada Lovelace")
    expect(page.locator("#cert-name")).to_have_text("Ada Lovelace")
    expect(page.locator("#cert-answers")).to_have_text("3")
    accessible(page)
    page.set_viewport_size({"width": 375, "height": 740})
    accessible(page)
    page.emulate_media(media="print")  # the print stylesheet: the certificate alone
    expect(page.locator("#certificate")).to_be_visible()
    expect(page.locator("#me-projects")).to_be_hidden()
    expect(page.locator("header.top")).to_be_hidden()


def test_a_volunteer_with_nothing_yet_is_told_where_to_start(page, live_server, accessible):
    page.goto(live_server + "/me")
    expect(page.locator("#me-status")).to_contain_text("Nothing answered on this device yet")
    expect(page.locator("#me-record")).to_be_hidden()
    accessible(page)


def test_a_volunteer_reports_a_wrong_task_and_goes_on(page, live_server, client, auth,
                                                      services, work, accessible):
    from sqlalchemy import select

    from engine.store.models import TaskReport

    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(3), work)
    first = open_project(page, live_server, project["id"])
    opener = page.get_by_role("button", name="Something wrong with this task?")
    opener.click()
    expect(opener).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")  # closes it, focus back on its button
    expect(page.locator("#report")).to_be_hidden()
    expect(opener).to_be_focused()
    expect(opener).to_have_attribute("aria-expanded", "false")
    opener.click()
    accessible(page)
    page.get_by_role("button", name="Send the report").click()
    expect(page.locator("#status")).to_have_text("Choose what is wrong first.")
    page.get_by_label("It is offensive or upsetting").check()
    page.get_by_label("Anything to add (optional)").fill("not a penguin")
    page.get_by_role("button", name="Send the report").click()
    wait_for_new_task(page, first)
    expect(page.locator("#saved")).to_contain_text("the charity will look at it")
    expect(page.locator("#report")).to_be_hidden()
    with services.db.session() as session:
        (row,) = session.scalars(select(TaskReport))
        assert (row.task_id, row.reason, row.note) == (first, "offensive", "not a penguin")
    # the charity's inbox lists it
    inbox = client.get("/api/v1/inbox?kind=report", headers=charity).json["items"]
    assert [i["task"] for i in inbox] == [first]


def test_a_practice_task_tells_the_charitys_answer(page, live_server, client, auth, work,
                                                   accessible):
    charity = auth.charity()
    project = make_project(client, charity, gold_start=1.0, gold_floor=1.0)
    upload(client, charity, project["id"],
           [{"text": f"gold {n}", "gold": "seal"} for n in range(2)] + text_items(1), work)
    first = open_project(page, live_server, project["id"])
    page.keyboard.press("1")  # penguin, where the charity says seal
    second = wait_for_new_task(page, first)
    feedback = page.locator("#feedback")
    expect(feedback).to_be_visible()
    expect(feedback).to_have_attribute("role", "status")
    expect(feedback).to_contain_text("Not quite")
    expect(feedback).to_contain_text("the charity's answer is “seal”")
    accessible(page)
    page.keyboard.press("2")  # seal: right
    wait_for_new_task(page, second)
    expect(feedback).to_contain_text("Right")
    page.keyboard.press("1")  # a real task: nothing said, and the last word goes away
    expect(page.locator("#answered")).to_have_text("3")
    expect(feedback).to_be_hidden()


def test_time_given_is_a_stopping_point_too(page, live_server, client, auth, work):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(4), work)
    open_project(page, live_server, project["id"])
    _answer(page, 1)
    expect(page.locator("#answered")).to_have_text("1")
    expect(page.locator("#milestone")).to_be_hidden()
    # this visit began eleven minutes ago
    page.evaluate(f"sessionStorage.setItem('bitesize.visit.{project['id']}.start', "
                  "String(Date.now() - 11 * 60 * 1000))")
    _answer(page, 1)
    expect(page.locator("#milestone")).to_be_visible()
    expect(page.locator("#milestone-text")).to_contain_text(
        "You have given 10 minutes this visit, 2 tasks")
    page.get_by_role("button", name="Keep going").click()
    _answer(page, 1)  # the same mark is said once
    expect(page.locator("#answered")).to_have_text("3")
    expect(page.locator("#milestone")).to_be_hidden()


def test_a_project_finished_here_says_so_on_the_list_instead_of_start(
        page, live_server, client, auth, work, accessible):
    charity = auth.charity()
    # two answers a task: after this volunteer's, the project still has work, for others
    project = make_project(client, charity, name="Seal counts", min_answers=2, max_answers=2)
    upload(client, charity, project["id"], text_items(1), work)
    open_project(page, live_server, project["id"])
    expect(page.locator("#keys-help")).to_contain_text("Keys:")
    page.get_by_role("button", name="seal").click()
    expect(page.locator("#done")).to_be_visible()
    # no task left: the keys it answered with and "New task ready." go too
    expect(page.locator("#keys-help")).to_be_hidden()
    expect(page.locator("#task-announce")).to_have_text("")
    page.goto(live_server + "/")
    card = page.locator(f'.project-card[data-project="{project["id"]}"]')
    expect(card).to_contain_text("Done for now: there is nothing left for you here.")
    again = card.get_by_role("link", name="Look again: Seal counts")
    expect(again).to_be_visible()
    accessible(page)
    # more work later: looking again finds it, and the list offers Start again
    upload(client, charity, project["id"], text_items(1), work)
    again.click()
    expect(page.locator("#task")).to_be_visible()
    page.goto(live_server + "/")
    expect(card.get_by_role("link", name="Start: Seal counts")).to_be_visible()
