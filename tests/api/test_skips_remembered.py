"""A skipped or reported lease stays unanswerable: after Redis is wiped and
rebuilt from SQL, and for as long as its token is taken at all.

An audit of the volunteer's hot path: a skip was only a Redis marker that
lasted a day, so after a rebuild (or the marker's expiry) an answer sent with
the skipped lease got 201 and counted, on a task the volunteer had reported
as blank or offensive. The hand-out row now records the release, and a token
is answerable until a day after its lease's end, no longer.
"""
from __future__ import annotations

import time

from sqlalchemy import func, select

from engine.dispatch import leases
from engine.dispatch.dispatcher import GRACE_MS, keys
from engine.dispatch.rebuild import rebuild_project
from engine.store.models import Answer, Handout


def _answers(services) -> int:
    with services.db.session() as session:
        return session.scalar(select(func.count()).select_from(Answer))


def _skip(client, volunteer, handed):
    r = client.delete(f"/api/v1/leases/{handed['lease']['token']}",
                      headers=volunteer["headers"])
    assert r.status_code == 200, r.get_data(True)


def _report(client, volunteer, handed):
    r = client.post(f"/api/v1/leases/{handed['lease']['token']}/report",
                    headers=volunteer["headers"], json={"reason": "blank"})
    assert r.status_code == 201, r.get_data(True)


def test_a_skip_outlives_a_wiped_redis(api, project, services, client):
    volunteer = api.volunteer()
    handed = api.next_task(volunteer["headers"], project["id"])
    _skip(client, volunteer, handed)
    services.redis.flushdb()  # a restart without persistence: the next call rebuilds
    r = api.answer(volunteer["headers"], handed["task"]["id"], handed["lease"]["token"])
    assert r.status_code == 410 and r.json["error"]["fields"] == {"lease": "skipped"}
    assert _answers(services) == 0
    # and the task is still never offered to them again
    for _ in range(4):
        again = client.get(f"/api/v1/projects/{project['id']}/tasks/next",
                           headers=volunteer["headers"])
        assert again.status_code in (200, 204)
        if again.status_code == 204:
            break
        assert again.json["task"]["id"] != handed["task"]["id"]


def test_a_report_outlives_a_rebuild(api, project, services, client):
    volunteer = api.volunteer()
    handed = api.next_task(volunteer["headers"], project["id"])
    _report(client, volunteer, handed)
    rebuild_project(services, project["id"])
    r = api.answer(volunteer["headers"], handed["task"]["id"], handed["lease"]["token"])
    assert r.status_code == 410 and r.json["error"]["fields"] == {"lease": "skipped"}
    assert _answers(services) == 0


def test_an_answer_that_won_before_the_skip_is_kept_through_a_rebuild(api, project,
                                                                      services, client):
    """A skip landing after the answer's 201 (a second tab) records the release,
    but the rebuild must not mark that lease skipped: the answer's retried
    submit would then be withdrawn, and an answer that got a 2xx lost."""
    volunteer = api.volunteer()
    handed = api.next_task(volunteer["headers"], project["id"])
    first = api.answer(volunteer["headers"], handed["task"]["id"], handed["lease"]["token"])
    assert first.status_code == 201
    _skip(client, volunteer, handed)
    rebuild_project(services, project["id"])
    retry = api.answer(volunteer["headers"], handed["task"]["id"], handed["lease"]["token"])
    assert retry.status_code == 201 and retry.json["id"] == first.json["id"]
    changed = api.answer(volunteer["headers"], handed["task"]["id"], handed["lease"]["token"],
                         label="seal")  # not a retry: refused, as on time
    assert changed.status_code == 409
    assert changed.json["error"]["fields"] == {
        "answer": "differs from the one already sent with this lease"}
    assert _answers(services) == 1


def test_a_skip_is_remembered_as_long_as_its_token_is_taken(api, project, services,
                                                            client):
    volunteer = api.volunteer()
    handed = api.next_task(volunteer["headers"], project["id"])
    _skip(client, volunteer, handed)
    marker = keys(project["id"])["prefix"] + f"lease:{handed['task']['id']}:{volunteer['id']}"
    expires_ms = leases.verify(services.settings.secret_key,
                               handed["lease"]["token"]).expires_ms
    taken_until = expires_ms + GRACE_MS
    assert services.redis.pttl(marker) >= taken_until - time.time() * 1000 - 1000
    with services.db.session() as session:
        [released] = session.scalars(select(Handout.released_at)).all()
    assert released is not None


def test_a_token_a_day_past_its_lease_is_refused(api, project, services, client):
    """Redis remembers how a lease ended for a day; an older token would be taken
    as a first, late answer (a skipped one included), so it is refused."""
    volunteer = api.volunteer()
    handed = api.next_task(volunteer["headers"], project["id"])
    claim = leases.verify(services.settings.secret_key, handed["lease"]["token"])
    old = leases.issue(services.settings.secret_key, leases.LeaseClaim(
        claim.project_id, claim.task_id, claim.volunteer_id,
        int(time.time() * 1000) - GRACE_MS - 60_000))
    r = api.answer(volunteer["headers"], handed["task"]["id"], old)
    assert r.status_code == 410
    assert r.json["error"]["fields"] == {"lease": "ended too long ago"}
    assert _answers(services) == 0
    late = leases.issue(services.settings.secret_key, leases.LeaseClaim(
        claim.project_id, claim.task_id, claim.volunteer_id,
        int(time.time() * 1000) - GRACE_MS + 60_000))  # within the day: a late answer
    assert api.answer(volunteer["headers"], handed["task"]["id"], late).status_code == 201


def test_a_rebuild_right_after_the_skip_reached_redis_still_knows_it(
        api, project, services, client, monkeypatch):
    """A review: the skip was released in Redis first and written to SQL after,
    so a rebuild reading SQL in between (the write waiting on a busy database)
    dropped Redis's marker and read no release. SQL is now written first."""
    volunteer = api.volunteer()
    handed = api.next_task(volunteer["headers"], project["id"])
    release = services.dispatcher.release

    def rebuilt_after(*args, **kwargs):
        released = release(*args, **kwargs)
        rebuild_project(services, project["id"])
        return released

    monkeypatch.setattr(services.dispatcher, "release", rebuilt_after)
    _skip(client, volunteer, handed)
    r = api.answer(volunteer["headers"], handed["task"]["id"], handed["lease"]["token"])
    assert r.status_code == 410 and _answers(services) == 0


def test_how_an_answered_lease_ended_is_remembered_as_long_as_its_token(api, project,
                                                                        services):
    """A review: the "done" marker lasted a day from the submit, the token a day
    from its lease's end, so a retry in between was taken as a first answer and
    counted twice in Redis."""
    volunteer = api.volunteer()
    handed = api.next_task(volunteer["headers"], project["id"])
    assert api.answer(volunteer["headers"], handed["task"]["id"],
                      handed["lease"]["token"]).status_code == 201
    marker = keys(project["id"])["prefix"] + f"lease:{handed['task']['id']}:{volunteer['id']}"
    expires_ms = leases.verify(services.settings.secret_key,
                               handed["lease"]["token"]).expires_ms
    assert services.redis.get(marker) == b"done"
    assert services.redis.pttl(marker) >= expires_ms + GRACE_MS - time.time() * 1000 - 1000


def test_a_skip_on_a_task_closed_since_outlives_a_wipe(api, project, services, client,
                                                      charity):
    """A review: a rebuild read only open tasks' hand-outs, so after a wipe the
    skipped lease of a task settled meanwhile was answered (201, uncounted)."""
    volunteer = api.volunteer()
    handed = api.next_task(volunteer["headers"], project["id"])
    _skip(client, volunteer, handed)
    settled = client.post(f"/api/v1/tasks/{handed['task']['id']}/resolution", headers=charity,
                          json={"answer": {"label": "penguin"}, "note": "checked"})
    assert settled.status_code in (200, 201), settled.get_data(True)
    services.redis.flushdb()
    r = api.answer(volunteer["headers"], handed["task"]["id"], handed["lease"]["token"])
    assert r.status_code == 410 and _answers(services) == 0


def test_a_retry_of_a_stored_answer_a_day_late_gets_its_first_reply(api, project, services,
                                                                   monkeypatch):
    from types import SimpleNamespace

    from engine import volunteering

    volunteer = api.volunteer()
    handed = api.next_task(volunteer["headers"], project["id"])
    claim = leases.verify(services.settings.secret_key, handed["lease"]["token"])
    first = api.answer(volunteer["headers"], handed["task"]["id"], handed["lease"]["token"])
    assert first.status_code == 201
    late = (claim.expires_ms + GRACE_MS + 60_000) / 1000  # a day and a minute after its end
    monkeypatch.setattr(volunteering, "time", SimpleNamespace(time=lambda: late))
    retry = api.answer(volunteer["headers"], handed["task"]["id"], handed["lease"]["token"])
    assert retry.status_code == 201 and retry.json["id"] == first.json["id"]
    changed = api.answer(volunteer["headers"], handed["task"]["id"], handed["lease"]["token"],
                         label="seal")  # not a retry: refused, as on time
    assert changed.status_code == 409
    assert changed.json["error"]["fields"] == {
        "answer": "differs from the one already sent with this lease"}
    assert _answers(services) == 1
