"""The console's account pages in a real browser, found by accessible names."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_sign_in_page_and_projects_list_pass_axe(page, live_server, make_staff, accessible):
    staff = make_staff()
    page.goto(live_server + "/console/")  # not signed in: sent to sign in
    expect(page).to_have_url(re.compile(r"/console/login"))
    accessible(page)
    page.get_by_label("Email").fill(staff.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    accessible(page)
    page.get_by_label("Password").fill(staff.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Projects of Penguin Watch")).to_be_visible()
    expect(page.get_by_role("link", name="New project")).to_be_visible()
    accessible(page)


def test_invite_then_set_password_then_sign_in(console_page, live_server, browser, accessible):
    console_page.get_by_role("link", name="Team").click()
    accessible(console_page)
    console_page.get_by_label("Colleague's email").fill("cy@penguins.org")
    console_page.get_by_role("button", name="Invite").click()
    link = console_page.get_by_label("Invitation link").input_value()
    accessible(console_page)
    other = browser.new_context().new_page()  # the colleague, on their own computer
    try:
        other.goto(link)
        expect(other.get_by_role("heading", name="Set your password")).to_be_visible()
        accessible(other)
        other.get_by_label("New password").fill("penguins all the way")
        other.get_by_label("Repeat the password").fill("penguins all the way")
        other.get_by_role("button", name="Set password").click()
        expect(other.get_by_role("heading", name="Projects of Penguin Watch")).to_be_visible()
        other.get_by_role("button", name="Sign out").click()
        expect(other).to_have_url(re.compile(r"/console/login"))
        other.get_by_label("Email").fill("cy@penguins.org")
        other.get_by_label("Password").fill("penguins all the way")
        other.get_by_role("button", name="Sign in").click()
        expect(other.get_by_role("heading", name="Projects of Penguin Watch")).to_be_visible()
    finally:
        other.context.close()


def test_api_token_page_shows_a_token_once(console_page, accessible):
    console_page.get_by_role("link", name="API tokens").click()
    console_page.get_by_label("Token name").fill("export script")
    console_page.get_by_role("button", name="Make token").click()
    token = console_page.get_by_label("New token").input_value()
    assert token.startswith("bsu_")
    accessible(console_page)
    console_page.get_by_role("button", name="Revoke export script").click()
    expect(console_page.get_by_role("cell", name=re.compile("^revoked"))).to_be_visible()
    expect(console_page.get_by_label("New token")).to_have_count(0)


def test_error_pages_are_branded_and_lead_back(console_page, live_server, accessible):
    console_page.goto(live_server + "/console/projects/424242")
    expect(console_page.get_by_role("heading", name="Page not found")).to_be_visible()
    accessible(console_page)
    console_page.get_by_role("link", name="Back to the console").click()
    expect(console_page.get_by_role("heading", name="Projects of Penguin Watch")).to_be_visible()
