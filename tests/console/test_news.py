"""A project's news in the console (web.console.news): a charity writes to the
volunteers who asked for the project's news by email."""
from __future__ import annotations

import dataclasses
import time

import pytest

from engine.accounts import news
from engine.accounts.confirmations import confirm_email, confirmation_token
from engine.accounts.staff import find_staff
from engine.accounts.volunteers import Proof, claim
from engine.identity import Identity, authenticate, create_volunteer
from engine.tokens import token_hash

from .test_dashboard import make_project


@pytest.fixture
def me(services, staff):
    return find_staff(services, staff.email).identity


def _use_smtp(services, server) -> None:
    host, port = server.server_address
    services.settings = dataclasses.replace(services.settings,
                                            smtp_url=f"smtp://{host}:{port}")


def _subscriber(services, project_id: int, email: str) -> None:
    volunteer_id, token = create_volunteer(services)
    who = Identity("volunteer", volunteer_id)
    claim(services, who, email, "penguins on the ice",
          Proof(None, "192.0.2.1", token_hash(token)))
    confirm_email(services, confirmation_token(services.settings.secret_key, volunteer_id,
                                               email, int(time.time()) + 60))
    news.subscribe(services, who, project_id)


def test_without_a_mail_server_the_page_says_so(console, services, me):
    project = make_project(services, me, items=0)
    page = console.get(f"/console/projects/{project.id}/news").get_data(as_text=True)
    assert "This site sends no email" in page and "Send the news" not in page


def test_a_note_goes_to_the_subscribers_and_is_listed(console, forms, services, me,
                                                      smtp_server, work):
    _use_smtp(services, smtp_server)
    project = make_project(services, me, items=0)
    _subscriber(services, project.id, "ada@example.org")
    url = f"/console/projects/{project.id}/news"
    page = console.get(url).get_data(as_text=True)
    assert "1 volunteer asked for this project" in page
    refused = forms.post(console, url, {"subject": "", "message": "More photos."})
    assert refused.status_code == 422
    assert 'id="f-subject-error"' in refused.get_data(as_text=True)
    sent = forms.post(console, url, {"subject": "New photos", "message": "500 more are up."})
    assert sent.status_code == 302
    work()
    [mail] = smtp_server.received
    assert mail["message"]["To"] == "ada@example.org"
    listed = console.get(url).get_data(as_text=True)
    assert "Your note is on its way to 1 volunteer." in listed
    assert "New photos" in listed and "sending…" not in listed


def test_another_organisations_project_looks_missing(console, services, auth):
    outsider = authenticate(services, auth.charity("Seal Trust")["Authorization"].split()[1])
    theirs = make_project(services, outsider, items=0)
    assert console.get(f"/console/projects/{theirs.id}/news").status_code == 404
