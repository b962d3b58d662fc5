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


def test_a_device_signed_out_elsewhere_asks_to_sign_in_and_keeps_its_answers(
        page, live_server, client, auth, services, work, accessible):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(10), work)
    open_project(page, live_server, project["id"])
    me, token = volunteer_id(services, page), _token(page)
    r = client.post("/api/v1/volunteers/me/account", headers=_bearer(token),
                    json={"email": "ada@example.org", "password": PASSWORD})
    assert r.status_code == 201, r.json
    page.reload()  # this device now keeps an account's work (GET /volunteers/me says so)
    expect(page.locator("#total-line")).to_be_visible()
    first = current_task(page)
    # the volunteer changes the password on their phone: this device is signed out
    phone = client.post("/api/v1/volunteers/sign-in",
                        json={"email": "ada@example.org", "password": PASSWORD}).json["token"]
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
    fresh = volunteer_id(services, page)
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
