"""The answering page when its volunteer's session meets the server's limits, in a
real Chromium: a token that stops working (a platform-wide block, a sign-out from
another device, a token the server forgot), the cap on leases held at once, and a
computer whose clock is wrong. What counts is what the page says and what SQL
stores in the end."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from engine.identity import create_user, forget_token, revoked_marker
from engine.store.models import Volunteer
from engine.tokens import token_hash

from .volunteer_helpers import (
    TOKEN_KEY,
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
PASSWORD = "penguins on the ice"


def _api_calls(page) -> list[tuple[str, str]]:
    """(method, path under /api/v1) of every API request the page makes from now on."""
    calls: list[tuple[str, str]] = []
    page.on("request", lambda r: calls.append((r.method, r.url.split("/api/v1", 1)[1]))
            if "/api/v1/" in r.url else None)
    return calls


def _new_volunteer(services, page, old: str) -> int:
    """The volunteer who replaced `old` on the page: the next preloaded task shows
    at once, while the answer that met the 401 (and the sign-up after it) may
    still be under way, so wait for the token to change first."""
    page.wait_for_function(
        f"old => {{ const t = localStorage.getItem({TOKEN_KEY!r}); return t && t !== old; }}",
        arg=old)
    return volunteer_id(services, page)


def _token(page) -> str:
    return page.evaluate(f"localStorage.getItem({TOKEN_KEY!r})")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_volunteer_blocked_platform_wide_is_told_so_and_not_signed_up_again(
        page, live_server, client, auth, services, work, accessible):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(10), work)
    open_project(page, live_server, project["id"])
    me, token = volunteer_id(services, page), _token(page)
    platform = _bearer(create_user(services, "Bitesize Ops", "platform-admin")[1])
    r = client.post(f"/api/v1/projects/{project['id']}/volunteers/{me}/block",
                    json={"scope": "platform", "reason": "spam"}, headers=platform)
    assert r.status_code == 200, r.json
    calls = _api_calls(page)
    page.keyboard.press("1")  # the answer's 401 says "blocked"
    ended = page.get_by_role("alert")
    expect(ended.get_by_text("You can no longer answer tasks here.")).to_be_visible()
    expect(ended).to_be_focused()
    expect(page.locator("#task")).to_be_hidden()
    expect(page.get_by_role("link", name="Sign in again")).to_be_hidden()
    page.wait_for_timeout(1500)  # time for any sign-up or retry it would make
    assert _token(page) == token  # not a new volunteer behind the block
    assert ("POST", "/volunteers") not in calls, calls
    assert len([c for c in calls if c[1].endswith("/answers")]) == 1, calls  # not retried
    assert answers_of(services, me) == []
    accessible(page)


def _a_device_keeping_its_work(page, live_server, client, auth, services, work):
    """A project page on a device whose volunteer kept their work under an
    account (GET /volunteers/me says so after the reload), and a token of the
    same account signed in on their phone: (project, volunteer, the device's
    token, the phone's)."""
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(10), work)
    open_project(page, live_server, project["id"])
    me, token = volunteer_id(services, page), _token(page)
    r = client.post("/api/v1/volunteers/me/account", headers=_bearer(token),
                    json={"email": "ada@example.org", "password": PASSWORD})
    assert r.status_code == 201, r.json
    page.reload()
    expect(page.locator("#total-line")).to_be_visible()
    phone = client.post("/api/v1/volunteers/sign-in",
                        json={"email": "ada@example.org", "password": PASSWORD}).json["token"]
    return project, me, token, phone


def test_a_device_signed_out_elsewhere_asks_to_sign_in_and_keeps_its_answers(
        page, live_server, client, auth, services, work, accessible):
    project, me, token, phone = _a_device_keeping_its_work(page, live_server, client, auth,
                                                           services, work)
    first = current_task(page)
    # the volunteer changes the password on their phone: this device is signed out
    r = client.post("/api/v1/volunteers/me/account", headers=_bearer(phone),
                    json={"email": "ada@example.org", "password": "a brand new password",
                          "current_password": PASSWORD})
    assert r.json["other_devices_signed_out"] == 1, r.json
    calls = _api_calls(page)
    page.keyboard.press("2")
    ended = page.get_by_role("alert")
    expect(ended.get_by_text("You were signed out on this device: sign in again")).to_be_visible()
    expect(page.locator("#task")).to_be_hidden()
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "1")  # kept
    expect(page.locator("#waiting")).to_have_text("1 answer waiting to send")
    assert _token(page) == token and ("POST", "/volunteers") not in calls, calls
    accessible(page)
    page.get_by_role("link", name="Sign in again").click()
    expect(page.locator("#me-status")).to_contain_text("You were signed out on this device")
    sign_in = page.get_by_role("region", name="Sign in on this device")
    sign_in.get_by_label("Email").fill("ada@example.org")
    sign_in.get_by_label("Password").fill("a brand new password")
    sign_in.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#account-status")).to_have_text(
        "Signed in: this device now carries on with your record.")
    page.goto(f"{live_server}/projects/{project['id']}")  # the answer kept goes now
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "0")
    assert volunteer_id(services, page) == me
    assert [(a.task_id, a.value) for a in answers_of(services, me)] == [
        (first, {"label": "seal"})]


def test_a_token_the_server_forgot_starts_afresh_and_says_which_answers_were_lost(
        page, live_server, client, auth, services, work, accessible):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(10), work)
    page.route("**/answers", lambda route: route.abort())  # the answer waits in the outbox
    first = open_project(page, live_server, project["id"])
    me, token = volunteer_id(services, page), _token(page)
    page.keyboard.press("1")
    wait_for_new_task(page, first)
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "1")
    with services.db.writing() as session:  # as after a restore without this volunteer
        session.get(Volunteer, me).token_hash = revoked_marker()
    forget_token(services, token_hash(token))
    page.unroute("**/answers")
    page.evaluate("window.dispatchEvent(new Event('online'))")  # send it now
    expect(page.get_by_role("alert")).to_have_text(
        "1 answer could not be kept: this device's session had ended before it was sent.",
        use_inner_text=True)  # the only one of its notes shown
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "0")
    expect(page.locator("#task")).to_be_visible()  # a new volunteer's task
    fresh = _new_volunteer(services, page, token)
    assert fresh != me
    assert answers_of(services, me) == [] and answers_of(services, fresh) == []
    accessible(page)


def test_a_tab_over_the_lease_cap_says_why_and_asks_again(page, live_server, client, auth,
                                                           work, accessible):
    charity = auth.charity()
    project = make_project(client, charity, lease_seconds=5)
    upload(client, charity, project["id"], text_items(20), work)
    url = f"{live_server}/projects/{project['id']}"
    open_project(page, live_server, project["id"])  # on screen and 2 preloaded: 3 leases
    second = page.context.new_page()
    second.goto(url)
    expect(second.locator("#task")).to_be_visible()  # the 2 left under the cap of 5
    third = page.context.new_page()
    third.goto(url)
    expect(third.locator("#status")).to_have_text(re.compile(
        r"^You have tasks open in another tab or window: trying again in [1-5] s$"))
    accessible(third)
    page.close()
    second.close()  # their leases end within 5 s, nobody extends them
    expect(third.locator("#task")).to_be_visible(timeout=20_000)
    expect(third.locator("#status")).to_be_hidden()


def test_a_fast_clock_neither_drops_nor_keeps_extending_its_leases(page, live_server, client,
                                                                   auth, work):
    charity = auth.charity()
    project = make_project(client, charity, lease_seconds=60)
    upload(client, charity, project["id"], text_items(20), work)
    page.add_init_script("(() => { const real = Date.now;"
                         " Date.now = () => real.call(Date) + 90000; })();")  # 90 s fast
    first = open_project(page, live_server, project["id"])
    calls = _api_calls(page)
    for _ in range(3):  # someone at work (a key that answers nothing) for 6 s of 60
        page.keyboard.press("Shift")
        page.wait_for_timeout(2000)
    assert [c for c in calls if c[1].endswith("/extend")] == []  # far from its end
    page.reload()  # the tasks it holds are shown again, not leased anew
    expect(page.locator("#task")).to_be_visible()
    assert current_task(page) == first
    assert [c for c in calls if "/tasks/next" in c[1]] == []


def _forget(services, me: int, token: str) -> None:
    """The server no longer knows the volunteer's token (as after a restore without it)."""
    with services.db.writing() as session:
        session.get(Volunteer, me).token_hash = revoked_marker()
    forget_token(services, token_hash(token))


def _account(client, email: str) -> dict:
    """Another volunteer, whose work is kept under `email`."""
    other = client.post("/api/v1/volunteers").json
    r = client.post("/api/v1/volunteers/me/account", headers=_bearer(other["token"]),
                    json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.json
    return other


def _sign_in(page, email: str) -> None:
    sign_in = page.get_by_role("region", name="Sign in on this device")
    sign_in.get_by_label("Email").fill(email)
    sign_in.get_by_label("Password").fill(PASSWORD)
    sign_in.get_by_role("button", name="Sign in", exact=True).click()


def _answer_unsent(page) -> int:
    """Answers the task on screen while answers cannot reach the server: it waits
    in the outbox. Returns the task answered."""
    page.route("**/answers", lambda route: route.abort())
    first = current_task(page)
    page.keyboard.press("1")
    wait_for_new_task(page, first)
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "1")
    page.unroute("**/answers")
    return first


LOST_ONE = "1 answer could not be kept: this device's session had ended before it was sent."


def _two_tabs_then_a_new_volunteer(page, live_server, client, auth, services, work,
                                   tab_b_script: str | None = None):
    """Tabs A and B on one project as one volunteer, whose token the server then
    forgets: tab A's next answer gets a 401 and starts a new volunteer.
    Returns (old volunteer, new volunteer, tab B, the task tab B shows)."""
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(12), work)
    open_project(page, live_server, project["id"])
    me, token = volunteer_id(services, page), _token(page)
    tab_b = page.context.new_page()
    if tab_b_script:
        tab_b.add_init_script(tab_b_script)
    b_task = open_project(tab_b, live_server, project["id"])
    _forget(services, me, token)
    first_a = current_task(page)
    page.keyboard.press("1")  # tab A: 401, a new volunteer starts
    wait_for_new_task(page, first_a)
    return me, _new_volunteer(services, page, token), tab_b, b_task


def test_another_tab_notices_the_new_volunteer_and_answers_as_them(
        page, live_server, client, auth, services, work, accessible):
    """Tab A met a token the server forgot and started a new volunteer: tab B,
    which held the old volunteer's tasks, lets them go and goes on as the new
    one, where it answered them with the new token, to be refused unseen (410)."""
    me, fresh, tab_b, b_task = _two_tabs_then_a_new_volunteer(
        page, live_server, client, auth, services, work)
    assert fresh != me
    calls = _api_calls(tab_b)
    second_b = wait_for_new_task(tab_b, b_task)  # the new volunteer's task
    tab_b.keyboard.press("2")
    wait_for_new_task(tab_b, second_b)
    expect(tab_b.locator("#volunteer")).to_have_attribute("data-outbox", "0")
    assert second_b in [a.task_id for a in answers_of(services, fresh)]
    assert ("POST", "/volunteers") not in calls  # one new volunteer for the device
    expect(tab_b.locator("#session-ended")).to_be_hidden()  # it held no answer to lose
    accessible(tab_b)


def test_an_answer_to_a_task_held_for_another_volunteer_is_not_sent_and_is_said_lost(
        page, live_server, client, auth, services, work, accessible):
    """Where tab B has not heard of the new volunteer yet (no storage event), the
    answer to the old volunteer's task is not sent with the new one's token: it
    is dropped and counted in the page's "could not be kept" note."""
    _, fresh, tab_b, b_task = _two_tabs_then_a_new_volunteer(
        page, live_server, client, auth, services, work,
        tab_b_script="window.addEventListener('storage',"
                     " function (ev) { ev.stopImmediatePropagation(); }, true);")
    calls = _api_calls(tab_b)
    tab_b.keyboard.press("2")  # the old volunteer's task
    expect(tab_b.get_by_role("alert")).to_have_text(LOST_ONE, use_inner_text=True)
    expect(tab_b.locator("#volunteer")).to_have_attribute("data-outbox", "0")
    assert [c for c in calls if c[1].endswith("/answers")] == []  # never sent as the new one
    assert b_task not in [a.task_id for a in answers_of(services, fresh)]
    accessible(tab_b)


def test_a_new_volunteer_drops_and_counts_every_projects_waiting_answers(
        page, live_server, client, auth, services, work):
    """A token the server forgot: the answers waiting in another project's outbox
    were the old volunteer's too, and are counted with this project's."""
    charity = auth.charity()
    other = make_project(client, charity, name="Seal cams")
    upload(client, charity, other["id"], text_items(5), work)
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(5), work)
    open_project(page, live_server, other["id"])
    _answer_unsent(page)
    page.route("**/answers", lambda route: route.abort())
    open_project(page, live_server, project["id"])
    page.unroute("**/answers")
    _answer_unsent(page)
    me, token = volunteer_id(services, page), _token(page)
    _forget(services, me, token)
    page.evaluate("window.dispatchEvent(new Event('online'))")  # send it now
    expect(page.get_by_role("alert")).to_have_text(
        "2 answers could not be kept: this device's session had ended before they were sent.",
        use_inner_text=True)
    assert page.evaluate(f"localStorage.getItem('bitesize.outbox.{other['id']}')") is None


def test_me_forgets_an_anonymous_token_the_server_forgot_and_another_account_signs_in(
        page, live_server, client, auth, services, work, accessible):
    """An anonymous token never kept under an account is not "signed out": nobody
    can sign back in as it. /me forgets it and says which answers are lost, so
    that the answers are not sent later as whoever signs in, to be refused unseen."""
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(10), work)
    bob = _account(client, "bob@example.org")
    open_project(page, live_server, project["id"])
    _answer_unsent(page)
    me, token = volunteer_id(services, page), _token(page)
    _forget(services, me, token)
    page.goto(f"{live_server}/me")
    expect(page.locator("#me-status")).to_have_text(
        LOST_ONE + " Nothing answered on this device yet: pick a project to start.")
    assert _token(page) is None
    accessible(page)
    _sign_in(page, "bob@example.org")
    expect(page.locator("#account-status")).to_have_text(
        "Signed in: this device now carries on with your record.")
    calls = _api_calls(page)
    open_project(page, live_server, project["id"])
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "0")
    assert volunteer_id(services, page) == bob["id"]
    assert [c for c in calls if c[1].endswith("/answers")] == []


def test_a_device_whose_account_was_deleted_elsewhere_carries_on_without_signing_in(
        page, live_server, client, auth, services, work, accessible):
    """Signed out for good (the account deleted on another device; or a password
    forgotten): the page links to /me, which starts afresh on this device."""
    project, me, _, phone = _a_device_keeping_its_work(page, live_server, client, auth,
                                                       services, work)
    r = client.delete("/api/v1/volunteers/me", headers=_bearer(phone),
                      json={"current_password": PASSWORD})
    assert r.status_code == 200, r.json
    page.reload()
    ended = page.get_by_role("alert")
    expect(ended.get_by_text("You were signed out on this device: sign in again")).to_be_visible()
    accessible(page)
    ended.get_by_role("link", name="Carry on without signing in").click()
    expect(page.locator("#me-status")).to_contain_text("You were signed out on this device")
    accessible(page)
    page.get_by_role("button", name="Carry on without signing in").click()
    expect(page.locator("#account-status")).to_have_text(
        "You carry on as a new volunteer: pick a project to start.")
    expect(page.get_by_role("button", name="Carry on without signing in")).to_be_hidden()
    assert _token(page) is None
    open_project(page, live_server, project["id"])
    assert volunteer_id(services, page) != me


def test_a_blocked_device_with_answers_waiting_lets_another_account_sign_in(
        page, live_server, client, auth, services, work, accessible):
    """A blocked volunteer's answers are never sent: they are not said to be
    waiting, and hold no sign-in back; another account signing in drops them,
    saying so, rather than sending them as itself to be refused unseen."""
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(10), work)
    bob = _account(client, "bob@example.org")
    open_project(page, live_server, project["id"])
    me = volunteer_id(services, page)
    _answer_unsent(page)
    page.route("**/answers", lambda route: route.abort())  # kept unsent until blocked
    platform = _bearer(create_user(services, "Ops", "platform-admin")[1])
    assert client.post(f"/api/v1/projects/{project['id']}/volunteers/{me}/block",
                       json={"scope": "platform"}, headers=platform).status_code == 200
    page.unroute("**/answers")
    page.reload()
    ended = page.get_by_role("alert")
    expect(ended.get_by_text("You can no longer answer tasks here.")).to_be_visible()
    # not invited back behind the block
    expect(ended.get_by_role("link", name="Carry on without signing in")).to_have_count(0)
    expect(page.locator("#waiting")).to_be_hidden()
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "1")
    accessible(page)
    page.goto(f"{live_server}/me")
    expect(page.get_by_role("button", name="Carry on without signing in")).to_be_hidden()
    _sign_in(page, "bob@example.org")
    expect(page.locator("#account-status")).to_have_text(
        "Signed in: this device now carries on with your record. 1 answer waiting on this"
        " device was another volunteer's: it was dropped.")
    calls = _api_calls(page)
    open_project(page, live_server, project["id"])
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "0")
    assert volunteer_id(services, page) == bob["id"]
    assert [c for c in calls if c[1].endswith("/answers")] == []
