"""The volunteer pages in a real headless Chromium, against the real app.

Projects and jobs are made over the JSON API (the Flask test client and the
RQ worker in burst mode, as in tests/test_flow.py); the browser then does
what a volunteer does, and SQL is checked for what it stored.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from engine.projects import publish
from engine.store.models import Answer, Project, Volunteer

from .volunteer_helpers import (
    LABELS,
    TOKEN_KEY,
    answers_of,
    current_task,
    jpeg,
    make_project,
    open_project,
    task_texts,
    text_items,
    upload,
    volunteer_id,
    wait_for_new_task,
)

pytestmark = pytest.mark.browser


# --- the home page -----------------------------------------------------------

def test_home_lists_active_projects_only_and_escapes_names(page, live_server, client,
                                                            auth, services, work):
    penguins = auth.charity("Penguin Watch")
    other = auth.charity("Seal Trust")
    shown = make_project(client, penguins)
    upload(client, penguins, shown["id"], text_items(4), work)
    hostile = make_project(client, other, name="<script>alert(1)</script>")
    upload(client, other, hostile["id"], text_items(1), work)  # the home page lists work
    paused = make_project(client, other, name="Hidden seals")
    with services.db.session() as session:
        project = session.get(Project, paused["id"])
        project.state = "paused"
    publish(services, project)
    # One task of four retired: 25 % done.
    volunteer = auth.volunteer()
    r = client.get(f"/api/v1/projects/{shown['id']}/tasks/next", headers=volunteer)
    client.post(f"/api/v1/tasks/{r.json['task']['id']}/answers", headers=volunteer,
                json={"lease": r.json["lease"]["token"], "answer": {"label": "seal"}})

    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(live_server + "/")

    cards = page.locator(".project-card")
    expect(cards).to_have_count(2)
    expect(page.get_by_text("Hidden seals")).to_have_count(0)
    card = page.locator(f'.project-card[data-project="{shown["id"]}"]')
    expect(card.get_by_role("heading", name="Penguin cams")).to_be_visible()
    bar = card.get_by_role("progressbar")
    expect(bar).to_be_visible()
    expect(bar).to_have_attribute("aria-valuenow", "25")
    bar_width = bar.bounding_box()["width"]
    fill_width = bar.locator("span").bounding_box()["width"]
    assert fill_width == pytest.approx(bar_width / 4, abs=1.5)
    expect(card).to_contain_text("25% done · 4 tasks")
    expect(card.get_by_role("link", name="Start: Penguin cams")).to_have_attribute(
        "href", f"/projects/{shown['id']}")

    evil = page.locator(f'.project-card[data-project="{hostile["id"]}"]')
    expect(evil.get_by_role("heading")).to_have_text("<script>alert(1)</script>")
    expect(evil.locator("script")).to_have_count(0)
    # no inline script runs: the only script without src is the page's words, as data
    expect(page.locator('script:not([src]):not([type="application/json"])')).to_have_count(0)
    page.wait_for_timeout(200)  # a dialog would fire while the page loads
    assert dialogs == []


def test_a_paused_project_has_no_page(page, live_server, client, auth, services):
    project = make_project(client, auth.charity())
    with services.db.session() as session:
        row = session.get(Project, project["id"])
        row.state = "paused"
    publish(services, row)
    response = page.goto(f"{live_server}/projects/{project['id']}")
    assert response.status == 404
    assert page.goto(f"{live_server}/projects/999999").status == 404


def test_home_without_projects_says_so(page, live_server):
    page.goto(live_server + "/")
    expect(page.locator(".empty")).to_contain_text("No projects are open")
    expect(page.locator(".project-card")).to_have_count(0)


# --- the answering page -------------------------------------------------------

def test_start_opens_a_task_without_sign_up(page, live_server, client, auth, services,
                                           work):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(3), work)
    with services.db.session() as session:
        volunteers_before = len(session.scalars(select(Volunteer)).all())

    page.goto(live_server + "/")
    page.get_by_role("link", name="Start").click()
    expect(page).to_have_url(f"{live_server}/projects/{project['id']}")
    expect(page.locator("#task")).to_be_visible()

    expect(page.get_by_role("heading", level=1)).to_have_text("Penguin cams")
    expect(page.locator(".task-question")).to_have_text("What is in the photo?")
    buttons = page.locator(".task-answers button")
    expect(buttons).to_have_count(3)
    for n, label in enumerate(LABELS, start=1):
        button = page.get_by_role("button", name=re.compile(rf"\b{label}$"))
        expect(button).to_be_visible()
        expect(button).to_have_attribute("data-key", str(n))
    texts = task_texts(services, project["id"])
    expect(page.locator("[data-bind-text=text]")).to_have_text(texts[current_task(page)])
    # The unused image slot takes no room (CSS must not override `hidden`).
    assert page.locator("[data-bind-src=image]").evaluate(
        "el => getComputedStyle(el).display") == "none"
    expect(page.locator("#status")).to_be_hidden()
    expect(page.locator("#done")).to_be_hidden()
    expect(page.locator("#answered")).to_have_text("0")
    expect(page.locator("#keys-help")).to_have_text(
        "Keys: 1 penguin · 2 seal · 3 empty · S skip (when not typing in a field)")
    expect(page.locator("#task-announce")).to_have_text("New task ready.")
    expect(page.locator("#task-announce")).to_have_attribute("aria-live", "polite")
    # No form, no password: one anonymous volunteer was made for this browser
    # (the report form waits hidden until asked for).
    expect(page.locator("form:visible, input[type=password]")).to_have_count(0)
    expect(page.locator("input[type=password]")).to_have_count(0)
    volunteer_id(services, page)
    with services.db.session() as session:
        assert len(session.scalars(select(Volunteer)).all()) == volunteers_before + 1


def test_click_and_number_key_answer_and_show_the_next_task(page, live_server, client,
                                                           auth, services, work):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(4), work)
    first = open_project(page, live_server, project["id"])

    page.get_by_role("button", name=re.compile(r"\bpenguin$")).click()
    second = wait_for_new_task(page, first)
    expect(page.locator("#answered")).to_have_text("1")

    page.keyboard.press("2")
    third = wait_for_new_task(page, second)
    expect(page.locator("#answered")).to_have_text("2")
    assert len({first, second, third}) == 3

    me = volunteer_id(services, page)
    given = {a.task_id: a.value for a in answers_of(services, me)}
    assert given == {first: {"label": "penguin"}, second: {"label": LABELS[1]}}


def test_s_skips_and_the_task_goes_back(page, live_server, client, auth, work):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(2), work)
    first = open_project(page, live_server, project["id"])

    page.keyboard.press("s")
    second = wait_for_new_task(page, first)
    assert second != first
    expect(page.locator("#answered")).to_have_text("0")

    # The skipped task is open again: someone else gets it (the browser holds
    # the lease of the other one, which needs a single answer).
    other = auth.volunteer()
    r = client.get(f"/api/v1/projects/{project['id']}/tasks/next", headers=other)
    assert r.status_code == 200 and r.json["task"]["id"] == first

    # ...but not this volunteer again: after answering the second, nothing is left.
    page.keyboard.press("1")
    expect(page.locator("#done")).to_be_visible()


def test_all_done_when_nothing_is_left(page, live_server, client, auth, work):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(1), work)
    open_project(page, live_server, project["id"])

    page.keyboard.press("3")
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#done")).to_contain_text("All done")
    expect(page.locator("#task")).to_be_hidden()
    expect(page.get_by_role("button", name=re.compile("Skip"))).to_be_hidden()
    expect(page.locator("#answered")).to_have_text("1")
    expect(page.locator("#done")).to_be_focused()  # announced, and Tab leads on
    # A number key now does nothing (and breaks nothing).
    page.keyboard.press("1")
    page.keyboard.press("s")
    expect(page.locator("#status")).to_be_hidden()
    page.get_by_role("link", name="Pick another project").click()
    expect(page).to_have_url(live_server + "/")


def test_an_empty_project_is_all_done_at_once(page, live_server, client, auth):
    project = make_project(client, auth.charity())
    page.goto(f"{live_server}/projects/{project['id']}")
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#task")).to_be_hidden()


def test_answering_everything_stores_exactly_what_was_clicked(page, live_server, client,
                                                             auth, services, work):
    charity = auth.charity()
    project = make_project(client, charity, min_answers=2, max_answers=3)
    upload(client, charity, project["id"], text_items(7), work)
    texts = task_texts(services, project["id"])
    task_id = open_project(page, live_server, project["id"])
    calls: list[str] = []  # the API calls made while answering
    page.on("request", lambda r: calls.append(f"{r.method} {r.url}") if "/api/" in r.url
            else None)

    chosen: dict[int, str] = {}
    for step in range(len(texts)):
        assert task_id not in chosen, f"task {task_id} was shown twice"
        n = int(texts[task_id].split()[-1]) % len(LABELS)
        chosen[task_id] = LABELS[n]
        if step % 2:
            page.keyboard.press(str(n + 1))
        else:
            page.get_by_role("button", name=re.compile(rf"\b{LABELS[n]}$")).click()
        expect(page.locator("#answered")).to_have_text(str(step + 1))
        if step + 1 < len(texts):
            task_id = wait_for_new_task(page, task_id)
    expect(page.locator("#done")).to_be_visible()
    # How fast the next task appears is measured in bench/, never asserted here.
    # One round trip a task: each answer's reply handed out the next task.
    task_calls = [c for c in calls if "/tasks/" in c]  # not the thanks' /volunteers/me
    assert len(task_calls) == len(texts), calls
    assert all(c.startswith("POST ") and c.endswith("/answers") for c in task_calls), calls

    rows = answers_of(services, volunteer_id(services, page))
    assert len(rows) == len(texts)
    assert len({a.task_id for a in rows}) == len(rows)  # never two answers to a task
    assert {a.task_id: a.value["label"] for a in rows} == chosen
    assert all(a.project_id == project["id"] and a.counted for a in rows)


def test_hostile_names_labels_and_texts_stay_text(page, live_server, client, auth,
                                                 services, work):
    labels = ["<b>bold</b>", "it's \"quoted\" </button>", "{{ 7*7 }}"]
    charity = auth.charity()
    project = make_project(client, charity, name="<script>alert(1)</script>", labels=labels)
    hostile_text = "<img src=x onerror=alert(2)> & </p>"
    upload(client, charity, project["id"], [{"text": hostile_text}], work)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    open_project(page, live_server, project["id"])
    expect(page).to_have_title("<script>alert(1)</script> · bitesize")
    expect(page.get_by_role("heading", level=1)).to_have_text("<script>alert(1)</script>")
    expect(page.locator("[data-bind-text=text]")).to_have_text(hostile_text)
    expect(page.locator("#task img:not([data-bind-src]), #task b")).to_have_count(0)
    expect(page.locator("[data-bind-src=image]")).to_be_hidden()
    buttons = page.locator(".task-answers button")
    expect(buttons).to_have_count(3)
    for i, label in enumerate(labels):
        expect(buttons.nth(i)).to_contain_text(label)
    page.keyboard.press("2")
    expect(page.locator("#done")).to_be_visible()
    assert dialogs == []
    rows = answers_of(services, volunteer_id(services, page))
    assert [a.value for a in rows] == [{"label": labels[1]}]


def test_a_reload_keeps_the_volunteer(page, live_server, client, auth, services, work):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(3), work)
    first = open_project(page, live_server, project["id"])
    page.keyboard.press("1")
    wait_for_new_task(page, first)
    me = volunteer_id(services, page)

    second = current_task(page)
    page.reload()
    expect(page.locator("#task")).to_be_visible()
    assert current_task(page) == second  # the task on screen, not one more lease
    assert current_task(page) != first  # never an answered task again
    assert volunteer_id(services, page) == me
    page.keyboard.press("1")  # its lease still holds: the answer is taken
    wait_for_new_task(page, second)
    expect(page.locator("#answered")).to_have_text("2")  # the visit's count survives it
    assert {a.task_id for a in answers_of(services, me)} == {first, second}


def test_reloads_do_not_use_up_the_leases(page, live_server, client, auth, services, work):
    """A volunteer holds at most 5 leases of a project; ten reloads of the page
    must not reach that cap (each used to lease one more task)."""
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(8), work)
    first = open_project(page, live_server, project["id"])
    for _ in range(10):
        page.reload()
        expect(page.locator("#task")).to_be_visible()
        assert current_task(page) == first
    expect(page.locator("#status")).to_be_hidden()


def test_a_held_key_answers_only_once(page, live_server, client, auth, services, work):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(3), work)
    first = open_project(page, live_server, project["id"])

    page.keyboard.down("1")
    second = wait_for_new_task(page, first)
    for _ in range(3):  # the keyboard's auto-repeat while the key stays down
        page.keyboard.down("1")
    page.wait_for_timeout(300)
    page.keyboard.up("1")
    assert current_task(page) == second
    expect(page.locator("#answered")).to_have_text("1")
    assert len(answers_of(services, volunteer_id(services, page))) == 1


def test_a_refused_answer_is_reported(page, live_server, client, auth, services, work):
    """If the labels changed under an open page, the volunteer is told the answer
    was not taken (and still gets the next task)."""
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(2), work)
    first = open_project(page, live_server, project["id"])
    page.locator("[data-key='1']").evaluate(
        """el => el.dataset.answer = JSON.stringify({label: "walrus"})""")

    page.keyboard.press("1")
    wait_for_new_task(page, first)
    expect(page.locator("#status")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("not taken")
    expect(page.locator("#answered")).to_have_text("0")
    assert answers_of(services, volunteer_id(services, page)) == []
    page.keyboard.press("2")  # the next answer clears the message
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#status")).to_be_hidden()
    expect(page.locator("#answered")).to_have_text("1")


def test_works_when_storage_is_blocked(page, live_server, client, auth, services, work):
    """Some browsers refuse localStorage (privacy settings): the volunteer can
    still answer, as a volunteer for this page's lifetime."""
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(2), work)
    page.add_init_script("""Object.defineProperty(window, "localStorage", {
        get() { throw new DOMException("blocked", "SecurityError"); }})""")
    first = open_project(page, live_server, project["id"])
    page.keyboard.press("1")
    wait_for_new_task(page, first)
    page.keyboard.press("2")
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#answered")).to_have_text("2")
    with services.db.session() as session:
        rows = session.scalars(select(Answer)).all()
    assert len(rows) == 2 and len({a.volunteer_id for a in rows}) == 1


def test_a_forgotten_token_starts_a_new_volunteer(page, live_server, client, auth,
                                                  services, work):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(2), work)
    page.goto(live_server + "/")
    page.evaluate(f"localStorage.setItem({TOKEN_KEY!r}, 'bsv_not-a-token-we-know')")

    first = open_project(page, live_server, project["id"])
    page.keyboard.press("1")
    wait_for_new_task(page, first)
    expect(page.locator("#answered")).to_have_text("1")
    assert page.evaluate(f"localStorage.getItem({TOKEN_KEY!r})") != "bsv_not-a-token-we-know"
    assert len(answers_of(services, volunteer_id(services, page))) == 1


# --- images and phones --------------------------------------------------------

def test_image_task_loads_the_stored_image(page, live_server, client, auth, services,
                                           work):
    stored = services.media.put(jpeg(320, 240, (200, 60, 40)), "red.jpg")
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], [{"image": f"/media/{stored.name}"}], work)
    open_project(page, live_server, project["id"])

    img = page.locator("#task img")
    expect(img).to_be_visible()
    expect(img).to_have_attribute("src", f"/media/{stored.name}")
    # expect() polls from Playwright's side; wait_for_function would eval() in the
    # page, which the page's CSP refuses once the first check is not already true.
    expect(img).to_have_js_property("complete", True)
    assert img.evaluate("el => [el.naturalWidth, el.naturalHeight]") == [320, 240]
    expect(page.locator("[data-bind-text=text]")).to_be_hidden()

    page.set_viewport_size({"width": 1024, "height": 768})
    page.screenshot(path="/tmp/bitesize-page.png", full_page=True)


def test_media_route_refuses_odd_names(client):
    assert client.get("/media/..%2Fsecret_key").status_code == 404
    assert client.get("/media/" + "0" * 64 + ".jpg").status_code == 404


@pytest.mark.parametrize("kind", ["text", "image"])
def test_phone_viewport_shows_the_labels_without_scrolling_sideways(
        browser, live_server, client, auth, services, work, kind):
    labels = ["Red deer", "Roe deer", "Fox", "Badger", "Nothing at all"]
    charity = auth.charity()
    project = make_project(client, charity, labels=labels)
    if kind == "image":
        stored = services.media.put(jpeg(1200, 1600, (40, 90, 60)), "tall.jpg")
        items = [{"image": f"/media/{stored.name}"}]
    else:  # a long line, and a long word (a URL) that must wrap too
        items = [{"text": "A long transcript line " * 4 + "https://example.org/" + "x" * 200}]
    upload(client, charity, project["id"], items, work)

    context = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    try:
        page = context.new_page()
        page.set_default_timeout(5_000)
        open_project(page, live_server, project["id"])
        if kind == "image":
            expect(page.locator("#task img")).to_have_js_property("naturalWidth", 1200)
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"
        buttons = page.locator(".task-answers button")
        expect(buttons).to_have_count(len(labels))
        for i in range(len(labels)):
            button = buttons.nth(i)
            expect(button).to_be_visible()
            box = button.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375, (labels[i], box)
            assert box["height"] >= 44, f"{labels[i]} is too small to tap: {box}"
        # Every answer is within reach without scrolling at all.
        for i in range(len(labels)):
            expect(buttons.nth(i)).to_be_in_viewport(ratio=1)
        buttons.nth(3).tap()
        expect(page.locator("#done")).to_be_visible()
        me = volunteer_id(services, page)
        assert [a.value for a in answers_of(services, me)] == [{"label": "Badger"}]
    finally:
        context.close()
