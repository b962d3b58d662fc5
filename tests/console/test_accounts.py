"""Staff accounts: sign-in, CSRF, links, rate limits, sessions, API tokens."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from engine.accounts import staff as accounts
from engine.errors import ConflictError, GoneError, InvalidError
from engine.identity import authenticate, rotate_user
from engine.store.models import ApiToken, User, utcnow
from tests.console.test_mail import _use_smtp


def test_sign_in_with_the_right_password_opens_the_console(app, staff, forms):
    client = app.test_client()
    assert client.get("/console/").status_code == 302  # to the sign-in page
    forms.sign_in(client, staff)
    page = client.get("/console/")
    assert page.status_code == 200
    assert "Projects of Penguin Watch" in page.get_data(as_text=True)


def test_a_wrong_password_is_refused_without_saying_which_part(app, staff, forms):
    client = app.test_client()
    wrong = forms.post(client, "/console/login", {"email": staff.email, "password": "nope" * 4})
    unknown = forms.post(client, "/console/login", {"email": "who@x.org", "password": "nope" * 4})
    for reply in (wrong, unknown):
        assert reply.status_code == 401
        assert "the email or the password is not right" in reply.get_data(as_text=True)
    assert client.get("/console/").status_code == 302


def test_a_form_posted_without_its_csrf_token_is_refused(app, staff, console):
    bare = app.test_client()
    reply = bare.post("/console/login", data={"email": staff.email, "password": staff.password})
    assert reply.status_code == 400
    assert "form has expired" in reply.get_data(as_text=True)
    assert console.post("/console/tokens", data={"name": "x"}).status_code == 400
    assert console.post("/console/logout").status_code == 400


def test_the_session_cookie_is_httponly_lax_and_only_for_the_console(app, staff, forms):
    client = app.test_client()
    reply = forms.post(client, "/console/login", {"email": staff.email,
                                                 "password": staff.password})
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http here
    https = app.test_client()
    page = https.get("/console/login", base_url="https://localhost").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    secure = https.post("/console/login", base_url="https://localhost",
                        headers={"Referer": "https://localhost/console/login"},
                        data={"email": staff.email, "password": staff.password,
                              "csrf_token": token})
    assert secure.status_code == 302
    assert "Secure" in secure.headers["Set-Cookie"]
    assert "Set-Cookie" not in app.test_client().get("/").headers


def test_failed_sign_ins_are_limited_per_account(app, staff, forms):
    client = app.test_client()
    for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT):
        assert forms.post(client, "/console/login", {"email": staff.email,
                                                     "password": "wrong" * 3}).status_code == 401
    blocked = forms.post(client, "/console/login", {"email": staff.email,
                                                    "password": staff.password})
    assert blocked.status_code == 429
    assert "too many failed sign-ins" in blocked.get_data(as_text=True)
    assert int(blocked.headers["Retry-After"]) > 0  # as the API's 429 says it


def test_failed_sign_ins_are_limited_per_address(services, make_staff):
    for n in range(accounts.MAX_FAILURES_PER_ADDRESS):
        with pytest.raises(InvalidError):
            accounts.sign_in(services, f"someone{n}@x.org", "wrong password", "10.0.0.9")
    other = make_staff(email="bo@penguins.org")
    with pytest.raises(Exception, match="too many failed sign-ins"):
        accounts.sign_in(services, other.email, other.password, "10.0.0.9")
    assert accounts.sign_in(services, other.email, other.password, "10.0.0.10").id == other.id


def test_signing_out_ends_that_session_even_for_a_copy_of_its_cookie(app, staff, forms):
    """A security review copied the session cookie, signed out, and was still
    let in with the copy for up to 7 days. Another session goes on."""
    laptop, phone = app.test_client(), app.test_client()
    forms.sign_in(laptop, staff)
    forms.sign_in(phone, staff)
    copy = laptop.get_cookie("session", path="/console")
    assert forms.post(laptop, "/console/logout", {}, page="/console/team").status_code == 302
    thief = app.test_client()
    thief.set_cookie(copy.key, copy.value, path="/console")
    assert thief.get("/console/").status_code == 302  # to sign in
    assert phone.get("/console/").status_code == 200


def test_sign_out_everywhere_ends_other_sessions(app, staff, forms):
    laptop, phone = app.test_client(), app.test_client()
    forms.sign_in(laptop, staff)
    forms.sign_in(phone, staff)
    assert forms.post(laptop, "/console/logout-everywhere", {},
                      page="/console/team").status_code == 302
    assert phone.get("/console/").status_code == 302
    assert laptop.get("/console/").status_code == 302


def test_an_invitation_link_sets_a_password_once(app, console, forms, services):
    reply = forms.post(console, "/console/team", {"email": "Cy@Penguins.org", "name": "Cy"})
    assert reply.status_code == 200
    link = re.search(r'id="invite-link"[^>]*value="([^"]+)"', reply.get_data(as_text=True))
    path = "/console/set-password/" + link.group(1).rsplit("/", 1)[1]
    fresh = app.test_client()
    # a password manager files the new password under the account's address
    assert ('<input type="email" autocomplete="username" value="cy@penguins.org" readonly '
            'hidden>') in fresh.get(path).get_data(as_text=True)
    short = forms.post(fresh, path, {"password": "short", "confirm": "short"})
    assert short.status_code == 422 and "at least 10 characters" in short.get_data(as_text=True)
    done = forms.post(fresh, path, {"password": "a long enough one", "confirm":
                                    "a long enough one"})
    assert done.status_code == 302
    assert fresh.get("/console/").status_code == 200
    assert fresh.get(path).status_code == 410  # used
    staff = accounts.sign_in(services, "cy@penguins.org", "a long enough one", "1.2.3.4")
    assert staff.organisation == "Penguin Watch"


def test_inviting_someone_of_another_organisation_is_refused(console, forms, make_staff):
    make_staff(org="Seal Count", email="dee@seals.org")
    reply = forms.post(console, "/console/team", {"email": "dee@seals.org"})
    assert reply.status_code == 422
    assert "already has an account" in reply.get_data(as_text=True)


def _made_days_ago(services, email: str, days: int) -> None:
    with services.db.writing() as session:
        session.execute(update(User).where(User.email == email).values(
            created_at=utcnow() - timedelta(days=days)))


def test_an_invitation_never_taken_up_stops_holding_the_address(console, forms, services,
                                                                make_staff):
    """A security review: any charity could make a pending account of any address,
    and no other organisation could then invite that person, ever. An invitation
    holds the address for 7 days from the account's making; then an invitation
    from the organisation the person works for moves the account there, and the
    first inviter's link stops working."""
    make_staff(org="Seal Count", email="lee@seals.org")
    seals = accounts.find_staff(services, "lee@seals.org")
    squatter, first = accounts.invite(services, seals, "dee@penguins.org")
    refused = forms.post(console, "/console/team", {"email": "dee@penguins.org"})
    assert refused.status_code == 422 and "already has an account" in refused.get_data(
        as_text=True)
    accounts.invite(services, seals, "dee@penguins.org")  # inviting again extends nothing
    _made_days_ago(services, "dee@penguins.org", 8)

    reply = forms.post(console, "/console/team", {"email": "dee@penguins.org", "name": "Dee"})
    assert reply.status_code == 200 and 'id="invite-link"' in reply.get_data(as_text=True)
    moved = accounts.find_staff(services, "dee@penguins.org")
    assert moved.id == squatter.id and moved.organisation == "Penguin Watch"
    assert moved.name == "Dee"
    with pytest.raises(GoneError):
        accounts.link_holder(services, first)  # the first inviter's link is over
    # now it is Penguin Watch's invitation that holds the address
    with pytest.raises(ConflictError):
        accounts.invite(services, seals, "dee@penguins.org")


def test_an_account_taken_up_above_a_charity_member_or_with_a_token_is_never_moved(
        console, forms, services, make_staff):
    """Someone set its password; an admin the command line made; a pending charity
    account the command line gave a token (a review: a script of Seal Count's
    would have acted in Penguin Watch once moved)."""
    make_staff(org="Seal Count", email="dee@seals.org")  # has a password
    accounts.create_staff(services, "Seal Count", "boss@seals.org", "admin")  # pending
    bot = accounts.create_staff(services, "Seal Count", "bot@seals.org", "charity")
    token = rotate_user(services, bot)
    for email in ("dee@seals.org", "boss@seals.org", "bot@seals.org"):
        _made_days_ago(services, email, 30)
        reply = forms.post(console, "/console/team", {"email": email})
        assert reply.status_code == 422, email
        assert accounts.find_staff(services, email).organisation == "Seal Count"
    assert authenticate(services, token).organisation_id == accounts.find_staff(
        services, "bot@seals.org").organisation_id


def test_a_token_that_expired_keeps_no_address(console, forms, services):
    """Only a token that still works holds a never-used account back."""
    bot = accounts.create_staff(services, "Seal Count", "bot@seals.org", "charity")
    with services.db.writing() as session:
        org = session.get(User, bot).organisation_id
        session.add(ApiToken(organisation_id=org, user_id=bot, name="old script",
                             token_hash="0" * 64, expires_at=utcnow() - timedelta(days=1)))
    _made_days_ago(services, "bot@seals.org", 30)
    reply = forms.post(console, "/console/team", {"email": "bot@seals.org"})
    assert reply.status_code == 200
    assert accounts.find_staff(services, "bot@seals.org").organisation == "Penguin Watch"


def test_a_claim_between_a_re_invitation_and_its_link_leaves_no_link_for_the_old_inviter(
        console, forms, services, make_staff):
    """A review: invite read the account, another organisation's claim moved it,
    then the link was made, and the old inviter's link opened an account of the
    claiming organisation. The link is made with a last look at the account."""
    make_staff(org="Seal Count", email="lee@seals.org")
    seals = accounts.find_staff(services, "lee@seals.org")
    accounts.invite(services, seals, "dee@penguins.org")
    _made_days_ago(services, "dee@penguins.org", 8)
    read_before = accounts.find_staff(services, "dee@penguins.org")  # invite's first look
    reply = forms.post(console, "/console/team", {"email": "dee@penguins.org"})  # the claim
    link = re.search(r'id="invite-link"[^>]*value="([^"]+)"', reply.get_data(as_text=True))
    with pytest.raises(ConflictError):
        accounts._invitation_link(services, read_before, seals.organisation_id)
    ours = accounts.link_holder(services, link.group(1).rsplit("/", 1)[1])
    assert ours.organisation == "Penguin Watch"  # the claimer's link still works


def test_only_a_pending_charity_account_is_invited_again(console, forms, services):
    """A security review re-invited a pending platform admin of its organisation
    from the Team page, which showed the new link: the charity member set the
    password and was a platform admin. Such an account's link comes from the
    command line only; a pending charity colleague still gets a fresh one."""
    boss = accounts.create_staff(services, "Penguin Watch", "boss@penguins.org",
                                 "platform-admin")
    first = accounts.issue_link(services, boss, "invite")
    reply = forms.post(console, "/console/team", {"email": "boss@penguins.org"})
    assert reply.status_code == 422
    assert "only the command line" in reply.get_data(as_text=True)
    assert accounts.link_holder(services, first).id == boss  # its own link still works
    accounts.create_staff(services, "Penguin Watch", "cy@penguins.org", "charity")
    again = forms.post(console, "/console/team", {"email": "cy@penguins.org"})
    assert again.status_code == 200 and 'id="invite-link"' in again.get_data(as_text=True)


def test_an_expired_or_unknown_link_is_refused(services, staff):
    with pytest.raises(Exception, match="not valid"):
        accounts.link_holder(services, "made-up")
    token = accounts.issue_link(services, staff.id, "reset")
    newer = accounts.issue_link(services, staff.id, "reset")
    with pytest.raises(GoneError):
        accounts.link_holder(services, token)  # a newer link replaced it
    assert accounts.link_holder(services, newer).id == staff.id


def test_forgot_password_reads_the_same_for_known_and_unknown_emails(app, staff, forms,
                                                                     services, smtp_server):
    _use_smtp(services, smtp_server)
    client = app.test_client()
    known = forms.post(client, "/console/forgot", {"email": staff.email})
    unknown = forms.post(client, "/console/forgot", {"email": "nobody@x.org"})
    assert known.status_code == unknown.status_code == 200
    assert "If an account has that email address" in known.get_data(as_text=True)
    assert known.get_data(as_text=True) == unknown.get_data(as_text=True)


def test_forgot_password_refuses_a_non_address_beside_the_field(app, forms, services,
                                                                smtp_server):
    _use_smtp(services, smtp_server)
    client = app.test_client()
    for typed in ("not-an-email", "ada@localhost"):
        page = forms.post(client, "/console/forgot", {"email": typed})
        text = page.get_data(as_text=True)
        assert page.status_code == 422
        assert "This is not an email address." in text and 'aria-invalid="true"' in text
    assert services.queue("high").count == 0  # nothing queued for the worker


def test_without_email_the_forgot_page_says_who_can_give_a_link_and_sends_nothing(
        app, staff, forms, services):
    """It said a link "is on its way" on a site that sends no e-mail, and to ask
    for an invitation that the Team page refuses to an account that exists (a
    charity console audit)."""
    client = app.test_client()
    page = client.get("/console/forgot").get_data(as_text=True)
    text = " ".join(page.split())
    assert "This site does not send e-mail yet, so no link can reach you this way." in text
    assert "<code>bitesize users restore</code>" in text
    assert 'name="email"' not in page and "on its way" not in page
    reply = forms.post(client, "/console/forgot", {"email": staff.email}, page="/console/login")
    assert reply.status_code == 200 and "on its way" not in reply.get_data(as_text=True)
    assert services.queue("high").count == 0


def test_api_tokens_are_shown_once_and_revoked_at_once(app, console, forms):
    made = forms.post(console, "/console/tokens", {"name": "nightly export"})
    assert made.status_code == 201
    token = re.search(r'id="new-token"[^>]*value="([^"]+)"', made.get_data(as_text=True)).group(1)
    headers = {"Authorization": f"Bearer {token}"}
    api = app.test_client()
    created = api.post("/api/v1/projects", headers=headers, json={
        "name": "By token", "task_type": "classify",
        "config": {"question": "Which?", "labels": ["a", "b"]}})
    assert created.status_code == 201
    assert token not in console.get("/console/tokens").get_data(as_text=True)
    token_id = re.search(r'/console/tokens/(\d+)/revoke', console.get(
        "/console/tokens").get_data(as_text=True)).group(1)
    assert forms.post(console, f"/console/tokens/{token_id}/revoke", {},
                      page="/console/tokens").status_code == 302
    assert api.get("/api/v1/projects", headers=headers).status_code == 401


def test_only_its_maker_or_an_admin_revokes_a_token(app, forms, make_staff, services):
    """A security review revoked an admin's token (and stopped the scripts it
    ran) from a charity member's session."""
    from engine.accounts import api_tokens

    admin_login = make_staff(email="ada@penguins.org", role="admin")
    member_login = make_staff(email="cy@penguins.org")
    admin = accounts.find_staff(services, admin_login.email)
    token_id, token = api_tokens.create_api_token(services, admin.identity, "nightly export")
    member = app.test_client()
    forms.sign_in(member, member_login)
    page = member.get("/console/tokens").get_data(as_text=True)
    assert "nightly export" in page and f"/console/tokens/{token_id}/revoke" not in page
    refused = forms.post(member, f"/console/tokens/{token_id}/revoke", {},
                         page="/console/tokens")
    assert refused.status_code == 403
    headers = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/projects", headers=headers).status_code == 200
    boss = app.test_client()
    forms.sign_in(boss, admin_login)
    assert forms.post(boss, f"/console/tokens/{token_id}/revoke", {},
                      page="/console/tokens").status_code == 302
    assert app.test_client().get("/api/v1/projects", headers=headers).status_code == 401


def test_a_nameless_token_is_refused_beside_its_field(console, forms):
    reply = forms.post(console, "/console/tokens", {"name": ""})
    assert reply.status_code == 422
    assert 'aria-invalid="true"' in reply.get_data(as_text=True)


def test_console_pages_have_branded_error_pages(console, app):
    missing = console.get("/console/projects/9999")
    assert missing.status_code == 404
    assert "Back to the console" in missing.get_data(as_text=True)
    assert "text/html" in app.test_client().get("/nowhere").content_type
    assert app.test_client().get("/api/v1/nowhere").is_json


def test_an_unexpected_error_is_a_branded_500_and_the_console_keeps_serving(
        console, monkeypatch):
    import web.console.tokens

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(web.console.tokens, "list_api_tokens", broken)
    reply = console.get("/console/tokens")
    text = reply.get_data(as_text=True)
    assert reply.status_code == 500 and "text/html" in reply.content_type
    assert "Something went wrong on our side" in text and "Back to the console" in text
    assert "a bug" not in text  # no internals shown
    monkeypatch.undo()
    assert console.get("/console/tokens").status_code == 200
