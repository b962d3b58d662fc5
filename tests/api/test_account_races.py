"""Volunteer accounts under requests at the same moment (found by an audit;
the row races show on PostgreSQL, where SQLite's writer lock serialises them):
a double click on "recovery code", two tabs keeping the work, a flood of
wrong passwords, a sign-in while a platform block commits."""
from __future__ import annotations

import threading
import time

import pytest

from engine.accounts import volunteers as accounts
from engine.accounts.passwords import MAX_FAILURES_PER_ACCOUNT
from engine.errors import InvalidError, TooManyRequestsError
from engine.identity import _local_cache, create_user
from engine.quality import moderation

PASSWORD = "penguins on the ice"


def _at_once(calls: list) -> None:
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


def test_a_double_click_on_recovery_code_is_not_a_500(app, api, monkeypatch):
    """Both requests found no account row and added one; the second failed on
    the key (500). The row is now made by an insert that passes over one made
    meanwhile."""
    volunteer, replies = api.volunteer(), []  # anonymous: no account row yet
    real = accounts._check_proof

    def slow(*args, **kwargs):  # the two requests overlap after reading the row
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(accounts, "_check_proof", slow)

    def click():
        replies.append(app.test_client().post("/api/v1/volunteers/me/recovery-code",
                                              headers=volunteer["headers"]).status_code)

    _at_once([click, click])
    assert sorted(replies)[-1] < 500 and 201 in replies, replies


def test_two_tabs_keeping_the_work_at_once_are_not_told_it_is_someone_elses(app, api):
    volunteer, bodies = api.volunteer(), []

    def claim(email):
        return lambda: bodies.append(app.test_client().post(
            "/api/v1/volunteers/me/account", headers=volunteer["headers"],
            json={"email": email, "password": PASSWORD}).get_data(True))

    _at_once([claim("a1@example.org"), claim("a2@example.org")])
    assert not any("already in use" in body for body in bodies), bodies


def test_wrong_passwords_at_once_get_no_more_guesses_than_the_allowance(api, client,
                                                                        services):
    """Each attempt was counted after its password was checked, so attempts in
    flight together all saw room: 30 at once got 30 guesses, not 10."""
    volunteer = api.volunteer()
    assert client.post("/api/v1/volunteers/me/account", headers=volunteer["headers"],
                       json={"email": "ada@example.org", "password": PASSWORD}
                       ).status_code == 201
    checked, barrier = [], threading.Barrier(30)

    def guess(n):
        def call():
            barrier.wait()
            try:
                accounts.sign_in(services, "203.0.113.7", "ada@example.org", f"guess {n}")
            except InvalidError:
                checked.append(n)  # a password was checked
            except TooManyRequestsError:
                pass
        return call

    _at_once([guess(n) for n in range(30)])
    assert 0 < len(checked) <= MAX_FAILURES_PER_ACCOUNT
    with pytest.raises(TooManyRequestsError):  # the window is full, as after 10 in turn
        accounts.sign_in(services, "203.0.113.8", "ada@example.org", PASSWORD)


def test_a_sign_in_while_a_platform_block_commits_gets_no_working_token(
        app, client, api, project, services, monkeypatch):
    """The sign-in read the volunteer unblocked, the block ended the tokens it
    found, and the new device's token worked for a day (PostgreSQL). The
    sign-in reads the block shared now: it waits for the block, then is refused."""
    v = api.volunteer()
    handout = api.next_task(v["headers"], project["id"])
    assert api.answer(v["headers"], handout["task"]["id"],
                      handout["lease"]["token"]).status_code == 201
    assert client.post("/api/v1/volunteers/me/account", headers=v["headers"],
                       json={"email": "v@example.org", "password": PASSWORD}).status_code == 201
    platform = {"Authorization": "Bearer "
                + create_user(services, "Bitesize Ops", "platform-admin")[1]}
    device, real = {}, moderation._not_final

    def meanwhile(session, project_ids):  # inside the block's transaction
        def sign_in():
            other = app.test_client()
            r = other.post("/api/v1/volunteers/sign-in",
                           json={"email": "v@example.org", "password": PASSWORD})
            if r.status_code == 201:
                device["headers"] = {"Authorization": "Bearer " + r.json["token"]}
                device["me"] = other.get("/api/v1/volunteers/me",
                                         headers=device["headers"]).status_code

        signing_in = threading.Thread(target=sign_in)
        signing_in.start()
        signing_in.join(1)  # PostgreSQL: it waits for the block's row
        return real(session, project_ids)

    monkeypatch.setattr(moderation, "_not_final", meanwhile)
    r = client.post(f"/api/v1/projects/{project['id']}/volunteers/{v['id']}/block",
                    headers=platform, json={"scope": "platform"})
    assert r.status_code == 200, r.get_data(True)
    time.sleep(1.5)  # the waiting sign-in finishes
    _local_cache(services).clear()  # as another process would see it
    if "headers" in device:  # SQLite: it came first, and the block ended its token
        assert client.get("/api/v1/volunteers/me", headers=device["headers"]).status_code \
            == 401


def test_a_sign_in_that_fails_on_the_server_is_not_counted_as_a_guess(api, client, services,
                                                                      monkeypatch):
    """An attempt is counted before its password is checked; one that ended in
    a server error (not wrong credentials) gives its count back. Given back
    after its window expired, it left a -1 that never expired: one more guess
    in every window after."""
    from engine.accounts.passwords import attempt_succeeded, reserve_attempt

    volunteer = api.volunteer()
    assert client.post("/api/v1/volunteers/me/account", headers=volunteer["headers"],
                       json={"email": "ada@example.org", "password": PASSWORD}
                       ).status_code == 201

    def broken(*_args):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(accounts, "_new_device", broken)
    with pytest.raises(RuntimeError):
        accounts.sign_in(services, "203.0.113.9", "ada@example.org", PASSWORD)
    assert services.redis.get("bs:vsignin:address:203.0.113.9") in (None, b"0")
    keys = ["bs:test:window"]
    reserve_attempt(services, keys)
    services.redis.delete(*keys)  # the window ends while the attempt is checked
    attempt_succeeded(services, keys)
    assert services.redis.exists(*keys) == 0
