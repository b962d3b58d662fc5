"""Where the site asks new volunteers for proof of work (BITESIZE_SIGNUP_WORK),
the volunteer page solves the challenge by itself (static/signup_work.js, its
own SHA-256 checked here by the server) and the volunteer starts as usual."""
from __future__ import annotations

import re
from dataclasses import replace

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from engine.services import Services
from engine.store.models import Volunteer
from tests.browser.test_volunteer_page import make_project, text_items, upload
from web import create_app

pytestmark = pytest.mark.browser


@pytest.fixture
def app(settings, registry, services):
    asking = Services(replace(settings, signup_work=12), registry)
    yield create_app({"SERVICES": asking, "TESTING": True})
    asking.close()


def test_the_page_does_the_sign_up_work(page, live_server, client, auth, services, work,
                                        accessible):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(2), work)
    calls = []
    page.on("request", lambda request: calls.append((request.method, request.url)))
    page.goto(f"{live_server}/projects/{project['id']}")
    expect(page.locator("#task")).to_be_visible()
    expect(page.locator("#status")).to_be_hidden()
    sign_ups = [url for method, url in calls if url.endswith("/api/v1/volunteers")]
    assert len(sign_ups) == 2  # refused without the work, then taken with it
    assert any(url.endswith("/api/v1/volunteers/challenge") for _, url in calls)
    page.get_by_role("button", name=re.compile(r"\bpenguin$")).click()
    expect(page.locator("#answered")).to_have_text("1")
    with services.db.session() as session:
        assert len(session.scalars(select(Volunteer.id)).all()) == 1
    accessible(page)
