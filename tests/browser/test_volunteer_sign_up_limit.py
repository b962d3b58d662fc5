"""A school class behind one address meets the sign-up limit: the volunteer
page waits as the 429's Retry-After says and tries again, instead of showing
"could not start a session (429)"."""
from __future__ import annotations

import urllib.request
from dataclasses import replace

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from engine.services import Services
from engine.store.models import Volunteer
from tests.browser.test_volunteer_page import make_project, text_items, upload
from web import create_app

pytestmark = pytest.mark.browser


@pytest.fixture
def app(settings, registry, services):
    """The test app with rate limits on: one sign-up a second per address."""
    limited = Services(replace(settings, rate_limits=1, limit_volunteers="1/second"),
                       registry)
    yield create_app({"SERVICES": limited, "TESTING": True})
    limited.close()


def test_the_page_waits_out_the_sign_up_limit(page, live_server, client, auth, services,
                                             work):
    charity = auth.charity()
    project = make_project(client, charity)
    upload(client, charity, project["id"], text_items(2), work)
    # a classmate on the same address signed up a moment ago: the page's own
    # sign-up is refused once (429, Retry-After: 1), then taken
    request = urllib.request.Request(f"{live_server}/api/v1/volunteers", method="POST")
    with urllib.request.urlopen(request) as reply:
        assert reply.status == 201
    page.goto(f"{live_server}/projects/{project['id']}")
    expect(page.locator("#task")).to_be_visible()
    expect(page.locator("#status")).to_be_hidden()
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Volunteer)) == 2
