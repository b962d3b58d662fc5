"""Keep what you did, optionally (engine.accounts.volunteers): an anonymous volunteer
claims their work with an email and password or a recovery code, signs in on
another device and finds their history there, downloads their data, deletes
the account (their answers stay, unlinked)."""
from __future__ import annotations

import dataclasses

from sqlalchemy import func, select

from engine.accounts.passwords import MAX_FAILURES_PER_ACCOUNT
from engine.store.models import Answer, Volunteer, VolunteerAccount

PASSWORD = "penguins on the ice"


def _me(client, headers: dict):
    return client.get("/api/v1/volunteers/me", headers=headers)


def _headers(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _answered(api, project, volunteer) -> int:
    """The volunteer answers one task of the project; its id."""
    handout = api.next_task(volunteer["headers"], project["id"])
    r = api.answer(volunteer["headers"], handout["task"]["id"], handout["lease"]["token"])
    assert r.status_code == 201, r.get_data(True)
    return handout["task"]["id"]


def _claim(client, volunteer, email="ada@example.org", password=PASSWORD, current=None):
    body = {"email": email, "password": password}
    if current is not None:
        body["current_password"] = current
    return client.post("/api/v1/volunteers/me/account", headers=volunteer["headers"], json=body)


def _sign_in(client, **body):
    return client.post("/api/v1/volunteers/sign-in", json=body)


def test_an_anonymous_volunteer_has_no_account(client, api):
    volunteer = api.volunteer()
    r = _me(client, volunteer["headers"])
    assert r.status_code == 200 and r.json["account"] is None


def test_claimed_work_follows_the_volunteer_to_another_device(client, api, project):
    volunteer = api.volunteer()
    task_id = _answered(api, project, volunteer)
    r = _claim(client, volunteer, email="  Ada@Example.org ")
    assert r.status_code == 201, r.get_data(True)
    assert r.json["account"]["email"] == "ada@example.org"
    assert r.json["account"]["recovery_code"] is False
    # another device: the same volunteer, with a token of its own
    signed = _sign_in(client, email="ada@example.org", password=PASSWORD)
    assert signed.status_code == 201, signed.get_data(True)
    assert signed.json["id"] == volunteer["id"]
    assert signed.json["token"] != volunteer["token"]
    there = _me(client, _headers(signed.json["token"]))
    assert there.status_code == 200
    assert there.json["id"] == volunteer["id"] and there.json["answers"] == 1
    # the first device stays signed in, and both are one volunteer to dispatch:
    # the task answered on the first is not handed again on the second
    assert _me(client, volunteer["headers"]).status_code == 200
    other = api.next_task(_headers(signed.json["token"]), project["id"])
    assert other["task"]["id"] != task_id


def test_a_recovery_code_signs_in_and_a_new_code_replaces_the_old(client, api, services):
    volunteer = api.volunteer()
    first = client.post("/api/v1/volunteers/me/recovery-code", headers=volunteer["headers"])
    assert first.status_code == 201, first.get_data(True)
    code = first.json["recovery_code"]
    assert len(code) == 19 and code.count("-") == 3
    assert first.json["account"] == {**first.json["account"], "email": None,
                                     "recovery_code": True}
    with services.db.session() as session:  # only a hash is kept
        stored = session.get(VolunteerAccount, volunteer["id"])
        assert code.replace("-", "") not in (stored.recovery_hash or "")
    # typed as people type it: lower case, spaces instead of dashes
    signed = _sign_in(client, recovery_code=code.lower().replace("-", " "))
    assert signed.status_code == 201 and signed.json["id"] == volunteer["id"]
    # a token alone cannot replace the code (a stolen device would lock its owner out)
    for proof in ({}, {"current_password": "WRNG-CODE-WRNG-CODE"}):
        refused = client.post("/api/v1/volunteers/me/recovery-code",
                              headers=volunteer["headers"], json=proof or None)
        assert api.error(refused, 422)["fields"] == {
            "current_password": "not right" if proof else "needed"}
    second = client.post("/api/v1/volunteers/me/recovery-code", headers=volunteer["headers"],
                         json={"current_password": code.lower()})
    assert second.status_code == 201, second.get_data(True)
    assert second.json["recovery_code"] != code
    error = api.error(_sign_in(client, recovery_code=code), 422)
    assert "recovery_code" in error["fields"]
    assert _sign_in(client, recovery_code=second.json["recovery_code"]).status_code == 201


def test_wrong_credentials_get_one_message_and_repeated_failures_a_429(client, api):
    volunteer = api.volunteer()
    assert _claim(client, volunteer).status_code == 201
    wrong_password = api.error(_sign_in(client, email="ada@example.org", password="x" * 12),
                               422)
    unknown_email = api.error(_sign_in(client, email="bob@example.org", password=PASSWORD),
                              422)
    assert wrong_password["message"] == unknown_email["message"]
    for _ in range(MAX_FAILURES_PER_ACCOUNT - 1):
        _sign_in(client, email="ada@example.org", password="y" * 12)
    refused = _sign_in(client, email="ada@example.org", password=PASSWORD)
    assert api.error(refused, 429) and int(refused.headers["Retry-After"]) > 0


def test_an_email_keeps_one_volunteers_work(client, api):
    first, second = api.volunteer(), api.volunteer()
    assert _claim(client, first).status_code == 201
    error = api.error(_claim(client, second, email="ADA@example.org"), 409)
    assert error["fields"] == {"email": "already in use"}
    # the owner may change their own password, giving the current one
    assert _claim(client, first, password="a new long password",
                  current=PASSWORD).status_code == 201
    assert _sign_in(client, email="ada@example.org",
                    password="a new long password").status_code == 201


def test_an_address_nobody_confirmed_goes_to_the_next_who_keeps_it(client, api, services,
                                                                   smtp_server, work):
    """Anyone may type anyone's address: kept but never confirmed, it used to
    shut its owner out for good (409). It is held for as long as the first link
    mailed to it works; after that the next volunteer to keep it has it, and the
    first one's old link no longer confirms anything. A confirmed address is
    never taken."""
    import time
    from datetime import timedelta

    from engine.accounts.confirmations import LINK_DAYS, confirmation_token
    from engine.store.models import utcnow
    from tests.api.test_project_news import _use_smtp

    _use_smtp(services, smtp_server)
    squatter, owner, late = api.volunteer(), api.volunteer(), api.volunteer()
    assert _claim(client, squatter).status_code == 201
    work()  # the link is mailed: the address's 7 days start
    with services.db.session() as session:
        assert session.get(VolunteerAccount, squatter["id"]).email_set_at is not None
    assert api.error(_claim(client, owner), 409)["fields"] == {"email": "already in use"}
    old_link = confirmation_token(client.application.config["SECRET_KEY"], squatter["id"],
                                  "ada@example.org", int(time.time()) + 60)
    with services.db.writing() as session:
        row = session.get(VolunteerAccount, squatter["id"])
        row.email_set_at = utcnow() - timedelta(days=LINK_DAYS, minutes=1)
    r = _claim(client, owner, password="the owner's own password")
    assert r.status_code == 201, r.get_data(True)
    assert r.json["account"]["email"] == "ada@example.org"
    assert _me(client, squatter["headers"]).json["account"]["email"] is None
    assert _me(client, squatter["headers"]).status_code == 200  # their work stays theirs
    assert client.post(f"/confirm-email/{old_link}").status_code == 410
    assert _sign_in(client, email="ada@example.org",
                    password="the owner's own password").status_code == 201
    # once confirmed, it stays the owner's however long ago it was kept
    link = confirmation_token(client.application.config["SECRET_KEY"], owner["id"],
                              "ada@example.org", int(time.time()) + 60)
    assert client.post(f"/confirm-email/{link}").status_code == 200
    with services.db.writing() as session:
        session.get(VolunteerAccount, owner["id"]).email_set_at = \
            utcnow() - timedelta(days=LINK_DAYS * 10)
    assert api.error(_claim(client, late), 409)["fields"] == {"email": "already in use"}


def test_changing_a_kept_account_needs_its_password_and_signs_out_other_devices(
        client, api, services):
    volunteer = api.volunteer()
    assert _claim(client, volunteer).status_code == 201
    phone = _sign_in(client, email="ada@example.org", password=PASSWORD).json["token"]
    laptop = _sign_in(client, email="ada@example.org", password=PASSWORD).json["token"]
    assert _me(client, _headers(phone)).status_code == 200  # cached as valid
    # someone holding the laptop's token cannot take the account over
    for current, detail in ((None, "needed"), ("a wrong guess at it", "not right")):
        taken = _claim(client, {"headers": _headers(laptop)}, email="thief@example.org",
                       password="the thief's password", current=current)
        assert api.error(taken, 422)["fields"] == {"current_password": detail}
    tablet = _sign_in(client, email="ada@example.org", password=PASSWORD).json["token"]
    # the owner, on the laptop, changes it: every other device is signed out
    changed = _claim(client, {"headers": _headers(laptop)}, password="a brand new password",
                     current=PASSWORD)
    assert changed.status_code == 201, changed.get_data(True)
    assert changed.json["other_devices_signed_out"] == 3
    for token in (volunteer["token"], phone, tablet):
        api.error(_me(client, _headers(token)), 401)
    assert _me(client, _headers(laptop)).json["id"] == volunteer["id"]
    assert _sign_in(client, email="ada@example.org",
                    password="a brand new password").status_code == 201


def test_wrong_current_passwords_are_limited_per_device_not_per_volunteer(client, api):
    volunteer = api.volunteer()
    assert _claim(client, volunteer).status_code == 201
    thief = {"headers": _headers(_sign_in(client, email="ada@example.org",
                                          password=PASSWORD).json["token"])}
    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        _claim(client, thief, password="the thief's password", current="a guess at it")
    refused = _claim(client, thief, password="the thief's password", current=PASSWORD)
    assert api.error(refused, 429) and int(refused.headers["Retry-After"]) > 0
    # the thief used up their own tries, not the owner's: the owner's change
    # goes through and signs the thief out
    changed = _claim(client, volunteer, password="a brand new password", current=PASSWORD)
    assert changed.status_code == 201, changed.get_data(True)
    api.error(_me(client, thief["headers"]), 401)


def test_a_new_recovery_code_signs_out_the_other_devices(client, api):
    volunteer = api.volunteer()
    code = client.post("/api/v1/volunteers/me/recovery-code",
                       headers=volunteer["headers"]).json["recovery_code"]
    found = _headers(_sign_in(client, recovery_code=code).json["token"])  # a code that leaked
    again = client.post("/api/v1/volunteers/me/recovery-code", headers=volunteer["headers"],
                        json={"current_password": code})
    assert again.status_code == 201 and again.json["other_devices_signed_out"] == 1
    api.error(_me(client, found), 401)
    assert _me(client, volunteer["headers"]).status_code == 200


def test_bad_bodies_name_their_field(client, api):
    volunteer = api.volunteer()
    assert "password" in api.error(_claim(client, volunteer, password="short"), 422)["fields"]
    assert "email" in api.error(_claim(client, volunteer, email="not-an-email"), 422)["fields"]
    assert "email" in api.error(_sign_in(client), 422)["fields"]
    assert "password" in api.error(_sign_in(client, email="ada@example.org"), 422)["fields"]
    both = _sign_in(client, email="ada@example.org", password=PASSWORD, recovery_code="AB")
    assert "recovery_code" in api.error(both, 422)["fields"]
    anonymous = client.post("/api/v1/volunteers/me/account",
                            json={"email": "ada@example.org", "password": PASSWORD})
    api.error(anonymous, 401)


def test_an_email_is_one_plain_address(client, api, services):
    """A list of addresses, or a line break, was kept as "an email": the
    confirmation (and later the project news) went to every address in it, so
    one volunteer confirmed their own and had news mailed to others who never
    confirmed; a line break crashed the mail job. Each is a 422 on the field."""
    volunteer = api.volunteer()
    for bad in ("ada@evil.org,victim@example.org", "ada@evil.org; victim@example.org",
                "ada@example.org\r\nBcc: victim@example.org", "Ada <ada@example.org>",
                '"ada example"@example.org', "ada@example..org", "ada@-example.org"):
        assert api.error(_claim(client, volunteer, email=bad), 422)["fields"] == \
            {"email": "not an email address"}, bad
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(VolunteerAccount)) == 0
    for good in ("o'neil+news@example.co.uk", "jürgen@bücher.example"):
        assert _claim(client, api.volunteer(), email=good).status_code == 201, good


def test_a_volunteer_downloads_everything_kept_about_them(client, api, project):
    volunteer = api.volunteer()
    task_id = _answered(api, project, volunteer)
    _claim(client, volunteer)
    r = client.get("/api/v1/volunteers/me/data", headers=volunteer["headers"])
    assert r.status_code == 200
    assert r.headers["Content-Disposition"].startswith("attachment;")
    data = r.json
    assert data["volunteer"]["id"] == volunteer["id"]
    assert data["account"]["email"] == "ada@example.org"
    assert "password" not in str(data)
    (answer,) = data["answers"]
    assert (answer["task"], answer["answer"], answer["project_name"]) == (
        task_id, {"label": "penguin"}, project["name"])


def test_deleting_the_account_ends_every_token_and_keeps_the_answers(client, api, project,
                                                                      services):
    volunteer = api.volunteer()
    _answered(api, project, volunteer)
    _claim(client, volunteer)
    device = _sign_in(client, email="ada@example.org", password=PASSWORD).json["token"]
    r = client.delete("/api/v1/volunteers/me", headers=_headers(device),
                      json={"current_password": PASSWORD})
    assert r.status_code == 200 and r.json == {"deleted": True}
    for token in (volunteer["token"], device):
        api.error(_me(client, _headers(token)), 401)
    api.error(_sign_in(client, email="ada@example.org", password=PASSWORD), 422)
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Answer).where(
            Answer.volunteer_id == volunteer["id"])) == 1
        assert session.get(VolunteerAccount, volunteer["id"]) is None
        assert session.get(Volunteer, volunteer["id"]).name is None
    # the email is free for someone else now
    assert _claim(client, api.volunteer()).status_code == 201


def test_a_kept_account_is_deleted_only_with_its_password_or_recovery_code(client, api):
    """A token alone (left in a shared browser, taken from localStorage) could
    delete a kept account and the volunteer's whole record with it."""
    kept, anonymous = api.volunteer(), api.volunteer()
    _claim(client, kept)

    def delete(volunteer, current=None):
        body = None if current is None else {"current_password": current}
        return client.delete("/api/v1/volunteers/me", headers=volunteer["headers"], json=body)

    assert api.error(delete(kept), 422)["fields"] == {"current_password": "needed"}
    assert api.error(delete(kept, "not the password"), 422)["fields"] == {
        "current_password": "not right"}
    assert _me(client, kept["headers"]).status_code == 200  # still there
    code = client.post("/api/v1/volunteers/me/recovery-code", headers=kept["headers"],
                       json={"current_password": PASSWORD}).json["recovery_code"]
    assert delete(kept, code.lower()).json == {"deleted": True}  # typed as people type it
    api.error(_me(client, kept["headers"]), 401)
    assert delete(anonymous).json == {"deleted": True}  # nothing kept: the token is all


def test_on_a_site_that_sends_no_email_a_kept_address_never_lapses(client, api, services):
    """Nobody can confirm an address where no link is mailed: after 7 days
    anyone who typed a volunteer's address took it, and the volunteer could no
    longer sign in with their own email and password."""
    from datetime import timedelta

    from engine.store.models import utcnow

    assert not services.settings.smtp_url  # the demo's and the tests' default
    ada, mallory = api.volunteer(), api.volunteer()
    assert _claim(client, ada).json["confirmation_sent"] is False
    with services.db.writing() as session:  # a month later; as schema 0023 left old rows
        row = session.get(VolunteerAccount, ada["id"])
        row.email_set_at = row.created_at = utcnow() - timedelta(days=30)
    taken = _claim(client, mallory, password="mallory's own password")
    assert api.error(taken, 409)["fields"] == {"email": "already in use"}
    r = _sign_in(client, email="ada@example.org", password=PASSWORD)
    assert r.status_code == 201 and r.json["id"] == ada["id"]


def test_a_confirmation_the_mail_server_refused_is_sent_again(client, api, services,
                                                               smtp_server, work, free_port):
    """A link not mailed never starts the address's week, so a send that failed
    (the mail server down) left an address held until its holder asked again.
    The job now fails and is tried again; once it goes out, the week starts."""
    from rq.job import Job as RQJob

    from engine.accounts.confirmations import SEND_RETRY
    from tests.api.test_project_news import _use_smtp

    down = free_port()  # nothing listens there: the mail server is down
    services.settings = dataclasses.replace(services.settings,
                                            smtp_url=f"smtp://127.0.0.1:{down}")
    volunteer = api.volunteer()
    assert _claim(client, volunteer).json["confirmation_sent"] is True
    work()
    [job_id] = services.queue("high").scheduled_job_registry.get_job_ids()
    job = RQJob.fetch(job_id, connection=services.queue_redis)
    assert job.retries_left == SEND_RETRY.max - 1
    with services.db.session() as session:
        assert session.get(VolunteerAccount, volunteer["id"]).email_set_at is None
    _use_smtp(services, smtp_server)  # back up: the retry comes due
    services.queue("high").scheduled_job_registry.remove(job)
    services.queue("high").enqueue_job(job)
    work()
    [mail] = smtp_server.received
    assert mail["message"]["To"] == "ada@example.org"
    with services.db.session() as session:
        assert session.get(VolunteerAccount, volunteer["id"]).email_set_at is not None
