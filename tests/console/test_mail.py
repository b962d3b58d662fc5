"""Invitations and password resets go out by email when SMTP is configured."""
from __future__ import annotations

import dataclasses
import re

from engine.accounts.mail import send_mail


def _use_smtp(services, server, query: str = "?from=console%40penguins.org") -> None:
    host, port = server.server_address
    services.settings = dataclasses.replace(services.settings,
                                            smtp_url=f"smtp://{host}:{port}{query}")


def test_an_invitation_is_emailed_with_its_link_and_only_there(app, console, forms, services,
                                                                smtp_server):
    """Where mail is configured, the link goes to the mailbox alone: shown to the
    inviter, it let a charity make an account of anyone's address."""
    _use_smtp(services, smtp_server)
    page = forms.post(console, "/console/team", {"email": "cy@penguins.org"})
    text = page.get_data(as_text=True)
    assert "the link was e-mailed to them" in text
    assert 'id="invite-link"' not in text and "/console/set-password/" not in text
    [sent] = smtp_server.received
    message = sent["message"]
    assert message["To"] == "cy@penguins.org"
    assert message["From"] == "console@penguins.org"
    assert "Join Penguin Watch" in message["Subject"]
    body = message.get_payload(decode=True).decode()
    path = re.search(r"http://127\.0\.0\.1:5000(/console/set-password/\S+)", body).group(1)
    fresh = app.test_client()
    done = forms.post(fresh, path, {"password": "a long enough one",
                                    "confirm": "a long enough one"})
    assert done.status_code == 302 and fresh.get("/console/").status_code == 200


def test_an_emailed_link_ignores_the_requests_host_header(app, staff, forms, services,
                                                          smtp_server, work):
    _use_smtp(services, smtp_server)
    client = app.test_client()
    page = client.get("/console/forgot", base_url="http://evil.example").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    reply = client.post("/console/forgot", base_url="http://evil.example",
                        data={"email": staff.email, "csrf_token": token})
    assert reply.status_code == 200
    work()
    [sent] = smtp_server.received
    body = sent["message"].get_payload(decode=True).decode()
    assert "evil.example" not in body and "http://127.0.0.1:5000/console/" in body


def test_forgot_password_emails_a_reset_link_that_works(app, staff, forms, services,
                                                         smtp_server, work):
    _use_smtp(services, smtp_server)
    client = app.test_client()
    forms.post(client, "/console/forgot", {"email": staff.email})
    # the request only queued it: it took no longer than for an unknown address
    # (a stopwatch told which addresses have accounts when it sent the mail itself)
    assert smtp_server.received == []
    forms.post(client, "/console/forgot", {"email": "nobody@penguins.org"})
    work()
    [sent] = smtp_server.received
    assert sent["message"]["To"] == staff.email
    body = sent["message"].get_payload(decode=True).decode()
    path = re.search(r"https?://[^/]+(/console/set-password/\S+)", body).group(1)
    reply = forms.post(client, path, {"password": "a brand new password",
                                      "confirm": "a brand new password"})
    assert reply.status_code == 302
    assert client.get("/console/").status_code == 200


def test_an_unreachable_mail_server_says_so_and_shows_no_link(console, forms, services,
                                                               free_port):
    services.settings = dataclasses.replace(services.settings,
                                            smtp_url=f"smtp://127.0.0.1:{free_port()}")
    page = forms.post(console, "/console/team", {"email": "cy@penguins.org"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "could not be e-mailed" in text and "Invite them again" in text
    assert 'id="invite-link"' not in text
    again = forms.post(console, "/console/team", {"email": "cy@penguins.org"})
    assert again.status_code == 200  # a pending colleague is invited again


def test_without_smtp_nothing_is_sent_and_it_says_why(services):
    assert "BITESIZE_SMTP_URL" in send_mail(services.settings, "a@b.org", "s", "b")


def test_a_list_of_addresses_or_a_broken_subject_is_not_sent_on(services, smtp_server):
    """Addresses kept before they were checked as now may hold a list: nothing
    goes to it. A line break in a subject (a project's name in news) is sent as
    one line, not refused by the mail library in the middle of a job."""
    _use_smtp(services, smtp_server)
    assert send_mail(services.settings, "me@evil.org,you@example.org", "s", "b") == \
        "not one plain email address"
    assert smtp_server.received == []
    assert send_mail(services.settings, "you@example.org", "Seals\r\nBcc: x@evil.org: news",
                     "b") is None
    [sent] = smtp_server.received
    assert [line.lower() for line in sent["to"]] == ["rcpt to:<you@example.org>"]
    assert sent["message"]["Subject"] == "Seals Bcc: x@evil.org: news"
    assert sent["message"]["Bcc"] is None
