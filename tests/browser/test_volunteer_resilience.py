"""The answering page on a bad connection: never the wrong picture, never a lost answer.

A real headless Chromium against the real app. Slow pictures are held back
by the test (page.route) until it lets them through; failing and offline
answers come from page.route and the browser context's offline mode; what
counts is what SQL stores in the end.
"""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from engine.intake import samples

from .test_task_type_pages import upload_images
from .volunteer_helpers import (
    LABELS,
    answers_of,
    current_task,
    make_project,
    open_project,
    text_items,
    upload,
    volunteer_id,
    wait_for_new_task,
)

pytestmark = pytest.mark.browser


def _settled(page) -> None:
    """Every answer the page took has been stored by the server."""
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "0", timeout=15_000)


def _images_project(client, auth, work, n: int = 3) -> dict:
    charity = auth.charity()
    project = make_project(client, charity)
    upload_images(client, charity, project["id"],
                  {f"{i}.jpg": samples.dots_image(i + 2, i) for i in range(n)}, work)
    return project


def test_a_picture_still_loading_cannot_be_answered(page, live_server, client, auth, services,
                                                    work):
    project = _images_project(client, auth, work)
    held = []
    page.route("**/media/**", lambda route: held.append(route))  # pictures wait
    page.goto(f"{live_server}/projects/{project['id']}")
    expect(page.locator("#task")).to_have_attribute("aria-busy", "true")
    first_label = page.get_by_role("button", name=LABELS[0])
    expect(first_label).to_be_disabled()  # disabled, not merely covered
    expect(page.locator("#status")).to_contain_text("Loading the picture")
    page.keyboard.press("1")
    first_label.click(force=True)  # a click lands on a disabled control: nothing
    page.wait_for_timeout(300)
    assert page.locator("#volunteer").get_attribute("data-outbox") == "0"
    # the picture of the task after it was asked for too: preloaded, not shown
    assert len(held) >= 2, [r.request.url for r in held]
    page.unroute("**/media/**")  # lets the held pictures through
    expect(first_label).to_be_enabled()
    expect(page.locator("#task")).to_have_attribute("aria-busy", "false")
    shown = current_task(page)
    page.keyboard.press("1")
    wait_for_new_task(page, shown)
    _settled(page)
    rows = answers_of(services, volunteer_id(services, page))
    assert [(a.task_id, a.value) for a in rows] == [(shown, {"label": LABELS[0]})]


def test_an_answer_that_fails_to_send_is_kept_across_a_reload_and_sent(
        page, live_server, client, auth, services, work):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(4), work)
    tries = []

    def refuse(route):
        tries.append(route.request.url)
        route.fulfill(status=500, content_type="application/json",
                      body='{"error": {"code": "internal", "message": "boom", "fields": {}}}')

    page.route("**/answers", refuse)
    first = open_project(page, live_server, project["id"])
    page.keyboard.press("2")
    second = wait_for_new_task(page, first)  # the volunteer goes on meanwhile
    waiting = page.locator("#waiting")
    expect(waiting).to_have_text("1 answer waiting to send")
    expect(waiting).to_be_visible()
    assert answers_of(services, volunteer_id(services, page)) == []
    page.reload()  # the answer is kept in the browser, not in the page
    expect(page.locator("#task")).to_be_visible()
    assert current_task(page) == second  # and the task on screen is still this one
    expect(waiting).to_have_text("1 answer waiting to send")
    assert len(tries) >= 2  # it was tried again, with back-off
    page.unroute("**/answers")
    _settled(page)
    expect(waiting).to_be_hidden()
    rows = answers_of(services, volunteer_id(services, page))
    assert [(a.task_id, a.value) for a in rows] == [(first, {"label": LABELS[1]})]
    expect(page.locator("#answered")).to_have_text("1")


def test_offline_the_volunteer_goes_on_with_preloaded_tasks(page, live_server, client, auth,
                                                            services, work):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(5), work)
    first = open_project(page, live_server, project["id"])
    page.context.set_offline(True)
    page.keyboard.press("1")
    second = wait_for_new_task(page, first)
    page.keyboard.press("3")
    third = wait_for_new_task(page, second)
    expect(page.locator("#waiting")).to_have_text("2 answers waiting to send")
    page.context.set_offline(False)
    _settled(page)
    rows = answers_of(services, volunteer_id(services, page))
    assert [(a.task_id, a.value["label"]) for a in rows] == [(first, LABELS[0]),
                                                             (second, LABELS[2])]
    assert all(a.counted for a in rows)
    assert current_task(page) == third


def test_a_lease_about_to_end_is_extended_while_the_volunteer_works(page, live_server, client,
                                                                    auth, services, work):
    charity = auth.charity()
    project = make_project(client, charity, lease_seconds=9)
    upload(client, charity, project["id"], text_items(2), work)
    first = open_project(page, live_server, project["id"])
    held = "JSON.parse(sessionStorage.getItem('bitesize.held.' + %d)).current.lease.expires_at"
    began = page.evaluate(held % project["id"])
    for _ in range(7):  # 14 s of someone at work (a key that answers nothing)
        page.keyboard.press("Shift")
        page.wait_for_timeout(2000)
    later = page.evaluate(held % project["id"])
    assert later > began  # ISO 8601 in UTC: later sorts after
    page.keyboard.press("1")  # past the first lease's end: still a live lease, counted
    wait_for_new_task(page, first)
    _settled(page)
    (row,) = answers_of(services, volunteer_id(services, page))
    assert row.task_id == first and row.counted


def test_an_idle_page_lets_its_lease_end(page, live_server, client, auth, work):
    charity = auth.charity()
    project = make_project(client, charity, lease_seconds=6)
    upload(client, charity, project["id"], text_items(2), work)
    open_project(page, live_server, project["id"])
    held = "JSON.parse(sessionStorage.getItem('bitesize.held.' + %d)).current.lease.expires_at"
    began = page.evaluate(held % project["id"])
    time.sleep(7)  # nobody at the keyboard
    assert page.evaluate(held % project["id"]) == began


def test_on_a_throttled_connection_every_answer_is_for_a_picture_on_screen(
        page, live_server, client, auth, services, work):
    """Keys pressed as fast as a bored volunteer presses them, over a slow network:
    each stored answer is for a task whose picture had loaded when the key went down."""
    project = _images_project(client, auth, work, n=6)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 150, "downloadThroughput": 40_000,
        "uploadThroughput": 40_000})
    # what was on screen at each key press, seen from the page itself
    page.add_init_script("""
      window.presses = [];
      document.addEventListener("keydown", function () {
        const box = document.getElementById("task");
        const imgs = Array.from(box.querySelectorAll("img[data-bind-src]:not([hidden])"));
        const loaded = imgs.every(function (i) { return i.complete && i.naturalWidth > 0; });
        window.presses.push({task: box.dataset.task, busy: box.getAttribute("aria-busy"),
                             loaded: loaded});
      }, true);
    """)
    page.goto(f"{live_server}/projects/{project['id']}")
    expect(page.locator("#task")).to_be_visible()
    for _ in range(30):
        page.keyboard.press("1")
        page.wait_for_timeout(120)
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    _settled(page)
    presses = page.evaluate("window.presses")
    shown = {int(p["task"]) for p in presses if p["loaded"] and p["busy"] == "false"}
    rows = answers_of(services, volunteer_id(services, page))
    assert rows, presses  # some answers went through
    assert {a.task_id for a in rows} <= shown, (presses, [a.task_id for a in rows])
    assert any(p["busy"] == "true" for p in presses)  # some presses met a loading picture


def test_while_redis_is_away_the_page_says_back_in_a_moment_and_asks_again(
        page, live_server, client, auth, work):
    """The API's 503 while Redis is out of reach (tests/test_redis_outage.py shows
    the server's side) is told in the page's words, and the page asks again
    after Retry-After by itself."""
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(2), work)
    asked = []

    def resting(route):
        asked.append(route.request.url)
        route.fulfill(status=503, content_type="application/json", headers={"Retry-After": "1"},
                      body='{"error": {"code": "unavailable", "message": "resting", "fields": {}}}')

    page.route("**/tasks/next*", resting)
    page.goto(f"{live_server}/projects/{project['id']}")
    expect(page.locator("#status")).to_have_text(
        "Tasks are resting for a moment: back in a moment.")
    page.unroute("**/tasks/next*")  # Redis is back
    expect(page.locator("#task")).to_be_visible(timeout=5_000)
    expect(page.locator("#status")).to_be_hidden()
    assert asked
