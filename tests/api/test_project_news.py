"""Project news by email (engine.accounts.news): opt-in per project for volunteers
who kept an email, only where the site sends email; a charity's note reaches
exactly those volunteers, through a worker, each with a link that stops them."""
from __future__ import annotations

import dataclasses
import re
import time

import pytest

from engine.accounts.confirmations import confirmation_token

PASSWORD = "penguins on the ice"


def _use_smtp(services, server) -> None:
    host, port = server.server_address
    services.settings = dataclasses.replace(
        services.settings, smtp_url=f"smtp://{host}:{port}?from=news%40bitesize.example")


def _with_email(client, api, email: str, confirmed: bool = True) -> dict:
    """A volunteer who kept their work under `email` and (unless told not to)
    followed a confirmation link to it: one made here, as the mail would carry
    (test_a_kept_email_is_confirmed_by_the_link_mailed_to_it follows a mailed one)."""
    volunteer = api.volunteer()
    r = client.post("/api/v1/volunteers/me/account", headers=volunteer["headers"],
                    json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.get_data(True)
    if confirmed:
        token = confirmation_token(api.client.application.config["SECRET_KEY"],
                                   volunteer["id"], email, int(time.time()) + 60)
        assert client.post(f"/confirm-email/{token}").status_code == 200
    return volunteer


def _subscribe(client, volunteer, project_id):
    return client.put(f"/api/v1/projects/{project_id}/news-subscription",
                      headers=volunteer["headers"])


def test_without_a_mail_server_nobody_can_opt_in_or_send(client, api, project, charity):
    volunteer = _with_email(client, api, "ada@example.org")
    assert api.error(_subscribe(client, volunteer, project["id"]), 409)["fields"] == {
        "mail": "not configured"}
    r = client.post(f"/api/v1/projects/{project['id']}/news", headers=charity,
                    json={"subject": "New photos", "message": "500 more are up."})
    api.error(r, 409)
    me = client.get("/api/v1/volunteers/me", headers=volunteer["headers"]).json
    assert me["mail"] is False


def test_only_volunteers_with_an_email_may_opt_in(client, api, project, services,
                                                  smtp_server):
    _use_smtp(services, smtp_server)
    anonymous = api.volunteer()
    assert api.error(_subscribe(client, anonymous, project["id"]), 409)["fields"] == {
        "email": "none kept"}
    api.error(_subscribe(client, _with_email(client, api, "ada@example.org"), 999999), 404)


def test_a_note_reaches_the_subscribers_only_and_its_link_stops_them(
        client, api, project, charity, services, smtp_server, work):
    _use_smtp(services, smtp_server)
    ada = _with_email(client, api, "ada@example.org")
    _with_email(client, api, "bob@example.org")  # kept an email, did not opt in
    r = _subscribe(client, ada, project["id"])
    assert r.status_code == 200 and r.json["subscribed"] is True
    assert _subscribe(client, ada, project["id"]).status_code == 200  # again: no change
    sent = client.post(f"/api/v1/projects/{project['id']}/news", headers=charity,
                       json={"subject": "New photos", "message": "500 more are up."})
    assert sent.status_code == 202 and sent.json["recipients"] == 1, sent.get_data(True)
    work()
    [mail] = smtp_server.received
    message = mail["message"]
    assert message["To"] == "ada@example.org"
    assert message["Subject"] == f"{project['name']}: New photos"
    body = message.get_payload(decode=True).decode()
    assert "500 more are up." in body
    path = re.search(r"http://127\.0\.0\.1:5000(/unsubscribe/\S+)", body)[1]
    # the link's page asks first (a mail scanner fetching it stops nothing) ...
    page = client.get(path)
    assert page.status_code == 200 and "Stop the emails" in page.get_data(True)
    me = client.get("/api/v1/volunteers/me", headers=ada["headers"]).json
    assert me["mail"] is True
    # ... and its button stops them
    done = client.post(path)
    assert done.status_code == 200 and "no more news" in done.get_data(True)
    again = client.post(f"/api/v1/projects/{project['id']}/news", headers=charity,
                        json={"subject": "More", "message": "Even more."})
    assert again.json["recipients"] == 0


def test_a_forged_unsubscribe_link_is_refused(client):
    r = client.post("/unsubscribe/1.2.0123456789abcdef0123456789abcdef")
    assert r.status_code == 404


def test_another_charity_cannot_write_to_the_projects_volunteers(client, api, project, auth,
                                                                  services, smtp_server):
    _use_smtp(services, smtp_server)
    other = auth.charity("Seal Trust")
    r = client.post(f"/api/v1/projects/{project['id']}/news", headers=other,
                    json={"subject": "Hello", "message": "Come to us."})
    api.error(r, 404)
    bad = client.post(f"/api/v1/projects/{project['id']}/news", headers=auth.charity(),
                      json={"subject": "", "message": "x"})
    assert "subject" in api.error(bad, 422)["fields"]


def test_deleting_the_account_ends_its_subscriptions(client, api, project, services,
                                                     smtp_server):
    _use_smtp(services, smtp_server)
    ada = _with_email(client, api, "ada@example.org")
    _subscribe(client, ada, project["id"])
    assert client.get("/api/v1/volunteers/me/data", headers=ada["headers"]).json[
        "news_by_email_from_projects"] == [project["id"]]
    client.delete("/api/v1/volunteers/me", headers=ada["headers"],
                  json={"current_password": PASSWORD})
    from engine.accounts.news import subscribed_projects
    assert subscribed_projects(services, ada["id"]) == set()


def test_a_caller_without_a_token_hears_401_before_anything_about_the_body(client, api,
                                                                           project):
    """The body was read first: an anonymous caller with an empty body got 422."""
    r = client.post(f"/api/v1/projects/{project['id']}/news", json={})
    api.error(r, 401)


def _confirm_links(smtp_server) -> list[str]:
    """The confirmation links mailed so far, as paths."""
    found = []
    for mail in smtp_server.received:
        body = mail["message"].get_payload(decode=True).decode()
        found += re.findall(r"http://127\.0\.0\.1:5000(/confirm-email/\S+)", body)
    return found


def test_a_kept_email_is_confirmed_by_the_link_mailed_to_it(client, api, project, services,
                                                            smtp_server, work):
    """Anyone may type anyone's address: no news goes there until a link mailed
    to it is followed (a security review: a volunteer could subscribe someone
    else's address to a project's news)."""
    _use_smtp(services, smtp_server)
    ada = api.volunteer()
    r = client.post("/api/v1/volunteers/me/account", headers=ada["headers"],
                    json={"email": "ada@example.org", "password": PASSWORD})
    assert r.status_code == 201 and r.json["confirmation_sent"] is True, r.json
    assert r.json["account"]["email_confirmed"] is False
    assert api.error(_subscribe(client, ada, project["id"]), 409)["fields"] == {
        "email": "not confirmed"}
    work()
    [mail] = smtp_server.received
    assert mail["message"]["To"] == "ada@example.org"
    [path] = _confirm_links(smtp_server)
    page = client.get(path)  # asks first: a mail scanner fetching it confirms nothing
    assert page.status_code == 200 and "Yes, it is my email" in page.get_data(True)
    me = client.get("/api/v1/volunteers/me", headers=ada["headers"]).json
    assert me["account"]["email_confirmed"] is False
    done = client.post(path)
    assert done.status_code == 200 and "Your email is confirmed" in done.get_data(True)
    assert client.post(path).status_code == 200  # again: no change
    me = client.get("/api/v1/volunteers/me", headers=ada["headers"]).json
    assert me["account"]["email_confirmed"] is True
    assert _subscribe(client, ada, project["id"]).status_code == 200


def test_a_changed_email_is_confirmed_anew_and_gets_no_news_until_then(
        client, api, project, charity, services, smtp_server, work):
    _use_smtp(services, smtp_server)
    ada = _with_email(client, api, "ada@example.org")
    assert _subscribe(client, ada, project["id"]).status_code == 200
    old = confirmation_token(services.settings.secret_key, ada["id"], "ada@example.org",
                             int(time.time()) + 60)
    r = client.post("/api/v1/volunteers/me/account", headers=ada["headers"],
                    json={"email": "eve@example.org", "password": PASSWORD,
                          "current_password": PASSWORD})
    assert r.status_code == 201 and r.json["account"]["email_confirmed"] is False, r.json
    sent = client.post(f"/api/v1/projects/{project['id']}/news", headers=charity,
                       json={"subject": "New photos", "message": "500 more are up."})
    assert sent.json["recipients"] == 0  # not to an address nobody confirmed
    refused = client.post(f"/confirm-email/{old}")  # the old address's link
    assert refused.status_code == 410 and "no longer works" in refused.get_data(True)
    work()
    assert [m["message"]["To"] for m in smtp_server.received] == ["eve@example.org"]
    assert client.post(_confirm_links(smtp_server)[0]).status_code == 200
    again = client.post(f"/api/v1/projects/{project['id']}/news", headers=charity,
                        json={"subject": "More", "message": "Even more."})
    assert again.json["recipients"] == 1


def test_the_link_is_sent_again_on_request_and_refused_when_it_cannot_help(
        client, api, services, smtp_server, work):
    anonymous, kept = api.volunteer(), _with_email(client, api, "ada@example.org",
                                                   confirmed=False)
    ask = "/api/v1/volunteers/me/email-confirmation"
    assert api.error(client.post(ask, headers=kept["headers"]), 409)["fields"] == {
        "mail": "not configured"}
    _use_smtp(services, smtp_server)
    assert api.error(client.post(ask, headers=anonymous["headers"]), 409)["fields"] == {
        "email": "none kept"}
    assert client.post(ask, headers=kept["headers"]).status_code == 202
    work()
    [path] = _confirm_links(smtp_server)
    assert client.post(path).status_code == 200
    assert api.error(client.post(ask, headers=kept["headers"]), 409)["fields"] == {
        "email": "confirmed"}
    api.error(client.post(ask), 401)


def test_an_address_kept_before_the_strict_check_is_never_mailed(client, api, services,
                                                                smtp_server, work):
    """A list of addresses kept before addresses were checked as now: asking for
    the link again says it cannot be mailed (it answered 202 and sent nothing),
    counted against the address as any request naming it."""
    from engine.store.models import VolunteerAccount

    kept = _with_email(client, api, "ada@example.org", confirmed=False)
    with services.db.writing() as session:
        session.get(VolunteerAccount, kept["id"]).email = "ada@example.org,eve@example.org"
    _use_smtp(services, smtp_server)
    ask = client.post("/api/v1/volunteers/me/email-confirmation", headers=kept["headers"])
    assert api.error(ask, 409)["fields"] == {"email": "not one plain address"}
    work()
    assert smtp_server.received == []


@pytest.mark.parametrize("token", [
    "1.2.0123456789abcdef0123456789abcdef",  # expired long ago, and forged
    "1.99999999999.0123456789abcdef0123456789abcdef",  # forged
    "not-a-token", "1.2", "１.2.0123456789abcdef0123456789abcdef",
    # past a database integer (a 500 on PostgreSQL before the bound)
    "2147483648.99999999999.0123456789abcdef0123456789abcdef",
    "9999999999999999999.99999999999.0123456789abcdef0123456789abcdef"])
def test_a_forged_or_expired_confirmation_link_is_refused(client, api, services, token):
    _with_email(client, api, "ada@example.org", confirmed=False)
    r = client.post(f"/confirm-email/{token}")
    assert r.status_code == 410 and "no longer works" in r.get_data(True)


def test_an_expired_link_of_ours_is_refused(client, api, services):
    ada = _with_email(client, api, "ada@example.org", confirmed=False)
    token = confirmation_token(services.settings.secret_key, ada["id"], "ada@example.org",
                               int(time.time()) - 1)
    assert client.post(f"/confirm-email/{token}").status_code == 410
    me = client.get("/api/v1/volunteers/me", headers=ada["headers"]).json
    assert me["account"]["email_confirmed"] is False


def test_an_email_changed_while_the_old_address_link_is_followed_stays_unconfirmed(
        client, api, services, monkeypatch):
    """The link checks the address it was sent to, then marks the account
    confirmed: a change to someone else's address committed in between was
    confirmed by the old address's link (PostgreSQL; a review). The change now
    waits for the confirmation, and then unconfirms the new address."""
    import threading

    from engine.accounts import confirmations
    from engine.accounts.volunteers import Proof, claim
    from engine.identity import Identity
    from engine.tokens import token_hash

    eve = _with_email(client, api, "eve@example.org", confirmed=False)
    link = confirmation_token(services.settings.secret_key, eve["id"], "eve@example.org",
                              int(time.time()) + 60)
    real, changed = confirmations.confirmation_token, threading.Event()

    def change_email():
        claim(services, Identity("volunteer", eve["id"]), "victim@example.org", PASSWORD,
              Proof(PASSWORD, "192.0.2.1", token_hash(eve["token"])))
        changed.set()

    def read_then_wait(*args):  # confirm_email has read the row: the change comes now
        threading.Thread(target=change_email, daemon=True).start()
        changed.wait(1.5)  # it cannot finish while the row is held
        return real(*args)

    monkeypatch.setattr(confirmations, "confirmation_token", read_then_wait)
    assert confirmations.confirm_email(services, link) == "eve@example.org"
    assert changed.wait(10)
    me = client.get("/api/v1/volunteers/me", headers=eve["headers"]).json["account"]
    assert (me["email"], me["email_confirmed"]) == ("victim@example.org", False)
