"""Keep what you did (issue 16.4), in Chromium: a volunteer answers anonymously,
keeps that work on /me with an email and password or a recovery code, signs in
on another device (a second browser context) and finds the same record there,
downloads their data, and deletes the account."""
from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import expect

from .volunteer_helpers import (
    TOKEN_KEY,
    make_project,
    open_project,
    text_items,
    upload,
    volunteer_id,
    wait_for_new_task,
)

PASSWORD = "penguins on the ice"


def _answer_two(page, live_server, client, auth, work) -> None:
    charity = auth.charity()
    project = make_project(client, charity, name="Seal counts")
    upload(client, charity, project["id"], text_items(4), work)
    first = open_project(page, live_server, project["id"])
    page.get_by_role("button", name="seal").click()
    second = wait_for_new_task(page, first)
    page.get_by_role("button", name="seal").click()
    wait_for_new_task(page, second)
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "0")


def _another_device(page):
    """A fresh browser context: nothing in its storage, as on another device."""
    other = page.context.browser.new_context()
    return other, other.new_page()


def test_work_kept_with_an_email_follows_the_volunteer_to_another_device(
        page, live_server, client, auth, work, services, accessible):
    _answer_two(page, live_server, client, auth, work)
    me = volunteer_id(services, page)
    page.goto(live_server + "/me")
    expect(page.locator("#me-summary")).to_contain_text("You have answered 2 tasks")
    keep = page.get_by_role("region", name="Keep your work")
    expect(keep).to_be_visible()
    accessible(page)
    # a password too short is refused beside its field
    keep.get_by_label("Email").fill("ada@example.org")
    keep.get_by_label("Password", exact=True).fill("short")
    keep.get_by_role("button", name="Keep my work").click()
    password = keep.get_by_label("Password", exact=True)
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#claim-password-error")).to_be_visible()
    expect(password).to_have_attribute("aria-describedby",
                                       "claim-password-hint claim-password-error")
    password.fill(PASSWORD)
    keep.get_by_role("button", name="Keep my work").click()
    expect(page.locator("#account-status")).to_have_text("Your work is kept under ada@example.org.")
    expect(password).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#keep-status")).to_contain_text("kept under ada@example.org")

    context, elsewhere = _another_device(page)
    try:
        elsewhere.goto(live_server + "/me")
        expect(elsewhere.locator("#me-status")).to_contain_text("Nothing answered on this device")
        sign_in = elsewhere.get_by_role("region", name="Sign in on this device")
        sign_in.get_by_label("Email").fill("ada@example.org")
        sign_in.get_by_label("Password").fill("not the password")
        sign_in.get_by_role("button", name="Sign in", exact=True).click()
        expect(elsewhere.locator("#sign-in-password-error")).to_contain_text("not right")
        sign_in.get_by_label("Password").fill(PASSWORD)
        sign_in.get_by_role("button", name="Sign in", exact=True).click()
        expect(elsewhere.locator("#me-summary")).to_contain_text("You have answered 2 tasks")
        token = elsewhere.evaluate(f"localStorage.getItem({TOKEN_KEY!r})")
        assert token and token != page.evaluate(f"localStorage.getItem({TOKEN_KEY!r})")
        r = client.get("/api/v1/volunteers/me", headers={"Authorization": f"Bearer {token}"})
        assert r.json["id"] == me
        accessible(elsewhere)
        elsewhere.set_viewport_size({"width": 375, "height": 740})
        accessible(elsewhere)
    finally:
        context.close()


def test_a_recovery_code_signs_in_without_an_email(page, live_server, client, auth, work):
    _answer_two(page, live_server, client, auth, work)
    page.goto(live_server + "/me")
    page.get_by_role("button", name="Make a recovery code").click()
    code = page.locator("#recovery-code")
    expect(code).to_have_text(re.compile(r"^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$"))
    expect(page.locator("#keep-status")).to_contain_text("kept with a recovery code")
    written_down = code.inner_text()
    context, elsewhere = _another_device(page)
    try:
        elsewhere.goto(live_server + "/me")
        elsewhere.get_by_label("Recovery code", exact=True).fill(written_down.lower())
        elsewhere.get_by_role("button", name="Sign in with the code").click()
        expect(elsewhere.locator("#me-summary")).to_contain_text("You have answered 2 tasks")
    finally:
        context.close()


def test_changing_kept_work_asks_for_the_current_password_and_signs_out_elsewhere(
        page, live_server, client, auth, work, accessible):
    _answer_two(page, live_server, client, auth, work)
    page.goto(live_server + "/me")
    keep = page.get_by_role("region", name="Keep your work")
    current = keep.get_by_label("Current password or recovery code")
    expect(current).to_be_hidden()  # nothing kept yet: nothing to prove
    keep.get_by_label("Email").fill("ada@example.org")
    keep.get_by_label("Password", exact=True).fill(PASSWORD)
    keep.get_by_role("button", name="Keep my work").click()
    expect(current).to_be_visible()
    phone = client.post("/api/v1/volunteers/sign-in",
                        json={"email": "ada@example.org", "password": PASSWORD}).json["token"]
    # a change without the current password is refused beside that field
    keep.get_by_label("Email").fill("ada@example.org")
    keep.get_by_label("Password", exact=True).fill("a brand new password")
    keep.get_by_role("button", name="Change the email or password").click()
    expect(current).to_have_attribute("aria-invalid", "true")
    expect(current).to_be_focused()
    expect(page.locator("#current-password-error")).to_have_text(
        "Type your current password or recovery code to change how your work is kept.")
    accessible(page)
    current.fill(PASSWORD)
    keep.get_by_role("button", name="Change the email or password").click()
    expect(page.locator("#account-status")).to_have_text(
        "Your work is kept under ada@example.org. Your other devices were signed out.")
    expect(current).not_to_have_attribute("aria-invalid", "true")
    assert client.get("/api/v1/volunteers/me",
                      headers={"Authorization": f"Bearer {phone}"}).status_code == 401
    # a new recovery code needs the (new) password too
    keep.get_by_role("button", name="Make a recovery code").click()
    expect(page.locator("#current-password-error")).to_be_visible()
    expect(page.locator("#code-shown")).to_be_hidden()
    current.fill("a brand new password")
    keep.get_by_role("button", name="Make a recovery code").click()
    expect(page.locator("#recovery-code")).to_have_text(
        re.compile(r"^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$"))
    expect(page.locator("#current-password-error")).to_have_count(0)


def test_a_volunteer_downloads_their_data_and_deletes_the_account(
        page, live_server, client, auth, work, services, accessible):
    _answer_two(page, live_server, client, auth, work)
    token = page.evaluate(f"localStorage.getItem({TOKEN_KEY!r})")
    page.goto(live_server + "/me")
    data = page.get_by_role("region", name="Your data")
    with page.expect_download() as download:
        data.get_by_role("button", name="Download my data").click()
    saved = json.loads(Path(download.value.path()).read_text())
    assert len(saved["answers"]) == 2 and saved["answers"][0]["answer"] == {"label": "seal"}
    # deleting asks for the box to be ticked first, beside it
    data.get_by_role("button", name="Delete my account").click()
    expect(page.locator("#delete-confirm-error")).to_be_visible()
    accessible(page)
    data.get_by_label("I understand that this cannot be undone").check()
    data.get_by_role("button", name="Delete my account").click()
    expect(page.locator("#account-status")).to_contain_text("Your account is deleted")
    assert page.evaluate(f"localStorage.getItem({TOKEN_KEY!r})") is None
    assert client.get("/api/v1/volunteers/me",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401
    expect(page.get_by_role("region", name="Keep your work")).to_be_hidden()


def test_deleting_kept_work_asks_for_its_password_beside_the_field(
        page, live_server, client, auth, work, accessible):
    """A token alone (a shared browser) cannot delete a kept account."""
    _answer_two(page, live_server, client, auth, work)
    token = page.evaluate(f"localStorage.getItem({TOKEN_KEY!r})")
    page.goto(live_server + "/me")
    data = page.get_by_role("region", name="Your data")
    proof = data.get_by_label("Your password or recovery code")
    expect(proof).to_be_hidden()  # anonymous: the token is all there is
    keep = page.get_by_role("region", name="Keep your work")
    keep.get_by_label("Email").fill("ada@example.org")
    keep.get_by_label("Password", exact=True).fill(PASSWORD)
    keep.get_by_role("button", name="Keep my work").click()
    expect(proof).to_be_visible()
    data.get_by_label("I understand that this cannot be undone").check()
    data.get_by_role("button", name="Delete my account").click()
    expect(page.locator("#delete-current-error")).to_have_text(
        "Type your password or recovery code to delete your account.")
    expect(proof).to_be_focused()
    accessible(page)
    proof.fill("not my password")
    data.get_by_role("button", name="Delete my account").click()
    expect(page.locator("#delete-current-error")).to_have_text(
        "This is not your current password or recovery code.")
    assert client.get("/api/v1/volunteers/me",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 200
    proof.fill(PASSWORD)
    proof.press("Enter")  # as the button does
    expect(page.locator("#account-status")).to_contain_text("Your account is deleted")
    assert client.get("/api/v1/volunteers/me",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_volunteer_with_an_email_asks_a_project_for_its_news(
        page, live_server, client, auth, work, services, smtp_server, accessible):
    import dataclasses

    from engine.accounts.news import subscribed_projects

    host, port = smtp_server.server_address
    services.settings = dataclasses.replace(services.settings,
                                            smtp_url=f"smtp://{host}:{port}")
    _answer_two(page, live_server, client, auth, work)
    me = volunteer_id(services, page)
    page.goto(live_server + "/me")
    expect(page.locator("#me-summary")).to_contain_text("You have answered 2 tasks")
    news = page.get_by_role("columnheader", name="News by email")
    expect(news).to_be_hidden()  # no email kept yet: nothing to send news to
    keep = page.get_by_role("region", name="Keep your work")
    keep.get_by_label("Email").fill("ada@example.org")
    keep.get_by_label("Password", exact=True).fill(PASSWORD)
    keep.get_by_role("button", name="Keep my work").click()
    expect(page.locator("#account-status")).to_contain_text("We sent a link to confirm it")
    expect(news).to_be_hidden()  # news goes only to a confirmed address
    again = keep.get_by_role("button", name="Send the link again")
    again.click()
    expect(page.locator("#account-status")).to_have_text(
        "A new link is on its way: it works for a week.")
    work()
    links = [re.search(r"http://127\.0\.0\.1:5000(/confirm-email/\S+)",
                       m["message"].get_payload(decode=True).decode())[1]
             for m in smtp_server.received]
    assert len(links) == 2  # one when the email was kept, one asked for again
    page.goto(live_server + links[-1])
    page.get_by_role("button", name="Yes, it is my email").click()
    expect(page.get_by_role("status")).to_contain_text("Your email is confirmed")
    accessible(page)
    page.get_by_role("link", name="Your volunteering").last.click()
    expect(news).to_be_visible()
    expect(again).to_be_hidden()
    box = page.get_by_role("checkbox", name="Email me news of Seal counts")
    box.check()
    expect(page.locator("#account-status")).to_have_text(
        "You will get news of Seal counts by email.")
    (project_id,) = subscribed_projects(services, me)
    accessible(page)
    box.uncheck()
    expect(page.locator("#account-status")).to_have_text("No more news of Seal counts by email.")
    assert subscribed_projects(services, me) == set() and project_id
