"""Fixtures for the charity console through Flask's test client.

`staff` is a staff member who has set a password (tests/conftest.py's
`make_staff`); `console` is a test client signed in as them through the real
sign-in form. `forms` reads a page's CSRF token as a browser would have it
and posts forms with it: `forms.post(client, url, data, page=None)`.
"""
from __future__ import annotations

import re

import pytest

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Forms:
    def token(self, client, url: str) -> str:
        page = client.get(url)
        found = _TOKEN.search(page.get_data(as_text=True))
        assert found, f"no CSRF token on {url} ({page.status_code})"
        return found.group(1)

    def post(self, client, url: str, data: dict, page: str | None = None, **kwargs):
        """POST a console form with the CSRF token of the page it lives on."""
        return client.post(url, data={**data, "csrf_token": self.token(client, page or url)},
                           **kwargs)

    def sign_in(self, client, login) -> None:
        reply = self.post(client, "/console/login",
                          {"email": login.email, "password": login.password})
        assert reply.status_code == 302, reply.get_data(as_text=True)


@pytest.fixture
def forms() -> Forms:
    return Forms()


@pytest.fixture
def staff(make_staff):
    return make_staff()


@pytest.fixture
def console(app, staff, forms):
    """A test client signed in as `staff`."""
    client = app.test_client()
    forms.sign_in(client, staff)
    return client


@pytest.fixture
def draft_of(services, staff):
    """A draft classify project of the signed-in staff member's organisation."""
    from engine.accounts import staff as accounts
    from engine.projects import create_project

    def make(**config):
        who = accounts.find_staff(services, staff.email).identity
        return create_project(services, who, {
            "name": "Owl cams", "description": "Owls need you", "task_type": "classify",
            "min_answers": 1, "max_answers": 2, "confidence": 0.5, "state": "draft",
            "config": {"question": "Owl?", "labels": ["Owl", "No owl"], **config}}).project

    make.identity = lambda: accounts.find_staff(services, staff.email).identity
    return make
