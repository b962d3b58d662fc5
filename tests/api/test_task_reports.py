"""Volunteers report a task that is wrong (engine.quality.reports): the charity's inbox
hears of it, enough reports take the task out of circulation, staff settle it or
dismiss the reports."""
from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from engine.store.models import AuditEntry, Task, TaskReport, Volunteer, utcnow


def _report(client, volunteer: dict, handout: dict, reason: str = "offensive", **extra):
    return client.post(f"/api/v1/leases/{handout['lease']['token']}/report",
                       json={"reason": reason, **extra}, headers=volunteer["headers"])


def _next(client, volunteer: dict, project_id: int):
    return client.get(f"/api/v1/projects/{project_id}/tasks/next", headers=volunteer["headers"])


def _state(services, task_id: int) -> str:
    with services.db.session() as session:
        return session.get(Task, task_id).state


def _inbox(client, headers, kind="report") -> list[dict]:
    r = client.get(f"/api/v1/inbox?kind={kind}", headers=headers)
    assert r.status_code == 200, r.get_data(True)
    return r.json["items"]


def test_a_report_reaches_the_inbox_and_gives_the_lease_back(client, api, project, charity,
                                                             services):
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    task_id = handout["task"]["id"]
    r = _report(client, volunteer, handout, "blank", note="all grey")
    assert r.status_code == 201 and r.json == {"reported": True, "withdrawn": False}
    with services.db.session() as session:
        (row,) = session.scalars(select(TaskReport))
        assert (row.task_id, row.volunteer_id, row.reason, row.note) == (
            task_id, volunteer["id"], "blank", "all grey")
    # the lease is given back as with a skip: an answer to it is refused ...
    refused = api.answer(volunteer["headers"], task_id, handout["lease"]["token"])
    assert refused.status_code == 410
    # ... and this volunteer is never offered the task again; others still are
    other = _next(client, volunteer, project["id"])
    assert other.status_code == 200 and other.json["task"]["id"] != task_id
    assert _state(services, task_id) == "open"
    (item,) = _inbox(client, charity)
    assert (item["task"], item["state"], item["reasons"]) == (task_id, "open", ["reported"])
    assert "reported by 1 volunteer" in item["message"]


def _reported_twice(client, api, project, reason: str = "offensive") -> tuple[int, dict]:
    """Two volunteers report the same task (the first one each is handed)."""
    handouts = []
    for _ in range(2):
        volunteer = api.volunteer()
        handout = api.next_task(volunteer["headers"], project["id"])
        if handouts and handout["task"]["id"] != handouts[0]["task"]["id"]:
            handout = api.next_task(volunteer["headers"], project["id"])
        assert not handouts or handout["task"]["id"] == handouts[0]["task"]["id"]
        handouts.append(handout)
        last = _report(client, volunteer, handout, reason)
        assert last.status_code == 201, last.get_data(True)
    return handouts[0]["task"]["id"], last.json


def test_two_reports_take_a_task_out_of_circulation_until_dismissed(
        client, api, project, charity, services):
    task_id, filed = _reported_twice(client, api, project)
    assert filed["withdrawn"] is True
    assert _state(services, task_id) == "contested"
    # out of circulation: a new volunteer gets the other task, then nothing
    newcomer = api.volunteer()
    handed = [_next(client, newcomer, project["id"]) for _ in range(2)]
    assert [h.status_code for h in handed] == [200, 204]
    assert handed[0].json["task"]["id"] != task_id
    (item,) = _inbox(client, charity)
    assert item["state"] == "withdrawn" and "out of circulation" in item["message"]
    assert "reported by 2 volunteers" in item["message"]
    assert _inbox(client, charity, "task") == []  # listed once, as reported
    # the desk's <time datetime>: with its UTC offset on SQLite too
    from engine.identity import authenticate
    from engine.quality.review import task_under_review
    desk = task_under_review(services, authenticate(services, charity["Authorization"][7:]),
                             task_id)
    filed_at = [r["created_at"] for r in desk["task"]["reports"]]
    assert len(filed_at) == 2 and all(at.endswith("+00:00") for at in filed_at), filed_at
    # staff find it fine: it goes back to volunteers
    r = client.post(f"/api/v1/tasks/{task_id}/reports/dismiss",
                    json={"reason": "a normal photo"}, headers=charity)
    assert r.status_code == 200, r.get_data(True)
    assert r.json == {"task": task_id, "dismissed": 2, "state": "open"}
    assert _inbox(client, charity) == []
    fresh = api.volunteer()  # may have it again: it went back into the pool
    again = [_next(client, fresh, project["id"]) for _ in range(2)]
    assert task_id in [r.json["task"]["id"] for r in again if r.status_code == 200]
    with services.db.session() as session:
        entry = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "dismiss_reports")).one()
        assert (entry.task_id, entry.reason) == (task_id, "a normal photo")
    second = client.post(f"/api/v1/tasks/{task_id}/reports/dismiss", json={},
                         headers=charity)
    assert api.error(second, 409)["fields"] == {"task": "no report"}


def test_a_withdrawn_task_stays_out_when_a_block_or_quarantine_merges_it_again(
        client, api, project, charity, auth, services):
    """A re-merge (here a quarantine of a volunteer who answered it) handed a
    task that reports had taken out of circulation back to volunteers, or
    retired it, while its reports stayed open: it stays contested until staff
    settle it or dismiss the reports."""
    answerer = api.volunteer()
    for _ in range(2):  # both tasks
        handed = api.next_task(answerer["headers"], project["id"])
        assert api.answer(answerer["headers"], handed["task"]["id"],
                          handed["lease"]["token"]).status_code == 201
    task_id, filed = _reported_twice(client, api, project)
    assert filed["withdrawn"] is True and _state(services, task_id) == "contested"
    admin = auth.admin()
    r = client.post(f"/api/v1/projects/{project['id']}/volunteers/{answerer['id']}/quarantine",
                    json={"reason": "checking"}, headers=admin)
    assert r.status_code == 200 and r.json["quarantined"] is True, r.json
    assert _state(services, task_id) == "contested"
    newcomer = api.volunteer()
    handed = [_next(client, newcomer, project["id"]) for _ in range(2)]
    assert task_id not in [h.json["task"]["id"] for h in handed if h.status_code == 200]
    (item,) = _inbox(client, charity)
    assert item["task"] == task_id and item["state"] == "withdrawn"
    r = client.post(f"/api/v1/tasks/{task_id}/reports/dismiss", json={}, headers=charity)
    assert r.status_code == 200 and r.json["state"] == "open"  # staff put it back


def test_a_task_the_crowd_contested_after_one_report_is_not_called_withdrawn(
        client, api, charity, services):
    """One report (of the two that withdraw a task) on a task the crowd then
    could not settle: the inbox lists it under reports, as contested, not as
    taken out of circulation by its reports (consensus.withdrawn_by_reports)."""
    project = api.project(charity, min_answers=2, max_answers=3, confidence=0.99)
    api.items(charity, project["id"], [{"text": "photo 1", "id": "a"}])
    for label in ("penguin", "seal"):
        volunteer = api.volunteer()
        handed = api.next_task(volunteer["headers"], project["id"])
        assert api.answer(volunteer["headers"], handed["task"]["id"], handed["lease"]["token"],
                          label).status_code == 201
    task_id = handed["task"]["id"]
    reporter = api.volunteer()
    handed = api.next_task(reporter["headers"], project["id"])
    assert handed["task"]["id"] == task_id  # a third answer is wanted
    assert _report(client, reporter, handed).json == {"reported": True, "withdrawn": False}
    last = api.volunteer()
    handed = api.next_task(last["headers"], project["id"])
    assert api.answer(last["headers"], task_id, handed["lease"]["token"],
                      "empty").status_code == 201
    assert _state(services, task_id) == "contested"
    (item,) = _inbox(client, charity)
    assert (item["task"], item["state"]) == (task_id, "contested"), item
    assert item["message"] == "reported by 1 volunteer"


def test_settling_a_reported_task_resolves_its_reports(client, api, project, charity,
                                                        services):
    task_id, _ = _reported_twice(client, api, project, "unreadable")
    assert _state(services, task_id) == "contested"
    r = client.post(f"/api/v1/tasks/{task_id}/resolution",
                    json={"answer": {"label": "empty"}, "note": "blank frame"}, headers=charity)
    assert r.status_code == 200, r.get_data(True)
    assert _inbox(client, charity) == []
    with services.db.session() as session:
        assert all(r.resolved_at for r in session.scalars(select(TaskReport)))


def test_a_project_may_never_withdraw_by_reports(client, api, charity, services):
    project = api.project(charity, quality={"quarantine": False, "trusted_after_minutes": 0,
                                            "reports_to_withdraw": 0})
    api.items(charity, project["id"], [{"text": "photo 1", "id": "a"}])
    for _ in range(3):
        volunteer = api.volunteer()
        handout = api.next_task(volunteer["headers"], project["id"])
        assert _report(client, volunteer, handout).json["withdrawn"] is False
    assert _state(services, handout["task"]["id"]) == "open"


def test_bad_reports_are_refused_with_the_field(client, api, project, services):
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    assert "reason" in api.error(_report(client, volunteer, handout, "boring"), 422)["fields"]
    assert "note" in api.error(_report(client, volunteer, handout, note="x" * 301),
                               422)["fields"]
    assert "reason" in api.error(client.post(
        f"/api/v1/leases/{handout['lease']['token']}/report", json={},
        headers=volunteer["headers"]), 422)["fields"]
    someone = api.volunteer()  # another volunteer's lease is not theirs to report with
    assert api.error(_report(client, someone, handout), 410)
    assert api.error(client.post("/api/v1/leases/forged/report", json={"reason": "blank"},
                                 headers=volunteer["headers"]), 410)
    with services.db.session() as session:
        assert session.scalars(select(TaskReport)).all() == []


def test_another_charity_cannot_dismiss(client, api, project, auth, services):
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    assert _report(client, volunteer, handout).status_code == 201
    stranger = auth.charity("Other Trust")
    r = client.post(f"/api/v1/tasks/{handout['task']['id']}/reports/dismiss", json={},
                    headers=stranger)
    assert api.error(r, 404)


def _age(services, volunteer_id: int, minutes: int) -> None:
    """Make a volunteer's account older, as if they signed up `minutes` ago."""
    with services.db.writing() as session:
        volunteer = session.get(Volunteer, volunteer_id)
        volunteer.created_at = utcnow() - timedelta(minutes=minutes)


def test_fresh_sign_ups_alone_cannot_withdraw_a_task(client, api, charity, services):
    # Two scripted sign-ups agreeing to hide a task: the charity hears of it,
    # the task stays in circulation until established volunteers report it too.
    project = api.project(charity, quality={"quarantine": False, "trusted_after_minutes": 30})
    api.items(charity, project["id"], [{"text": "photo 1", "id": "a"}])
    task_id, last = _reported_twice(client, api, project)
    assert last == {"reported": True, "withdrawn": False}
    assert _state(services, task_id) == "open"
    (item,) = _inbox(client, charity)
    assert "reported by 2 volunteers" in item["message"]
    # two volunteers with half an hour behind them do take it out
    for _ in range(2):
        volunteer = api.volunteer()
        _age(services, volunteer["id"], 31)
        handout = api.next_task(volunteer["headers"], project["id"])
        assert handout["task"]["id"] == task_id
        last = _report(client, volunteer, handout).json
    assert last == {"reported": True, "withdrawn": True}
    assert _state(services, task_id) == "contested"


def test_a_blocked_volunteers_report_does_not_count_toward_withdrawal(client, api, charity,
                                                                      services):
    project = api.project(charity, quality={"quarantine": False, "trusted_after_minutes": 0})
    api.items(charity, project["id"], [{"text": "photo 1", "id": "a"}])
    first, second = api.volunteer(), api.volunteer()
    handout = api.next_task(first["headers"], project["id"])
    assert _report(client, first, handout).status_code == 201
    with services.db.writing() as session:
        session.get(Volunteer, first["id"]).blocked = True
    handout = api.next_task(second["headers"], project["id"])
    assert _report(client, second, handout).json == {"reported": True, "withdrawn": False}
    assert _state(services, handout["task"]["id"]) == "open"


def test_a_volunteer_blocked_here_files_nothing_and_is_told_nothing(client, api, project,
                                                                    charity, auth, services):
    """A blocked volunteer keeps their tokens; a report with one is answered as
    any other (the block is not revealed) but reaches neither SQL nor the inbox."""
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    r = client.post(f"/api/v1/projects/{project['id']}/volunteers/{volunteer['id']}/block",
                    headers=auth.admin(), json={"reason": "vandal"})
    assert r.status_code == 200, r.json
    r = _report(client, volunteer, handout, "offensive", note="spam spam")
    assert r.status_code == 201 and r.json == {"reported": True, "withdrawn": False}
    with services.db.session() as session:
        assert session.scalars(select(TaskReport)).all() == []
    assert _inbox(client, charity) == []


def test_a_lease_long_over_cannot_report(client, api, project, services):
    """Old tokens are not a store of reports to file whenever: a token whose
    lease ended over a day ago is refused (410, with the field); one that ended
    within the day (a slow reader) still reports."""
    from engine.dispatch import leases
    from engine.volunteering import REPORT_WITHIN_SECONDS

    volunteer = api.volunteer()
    handouts = [api.next_task(volunteer["headers"], project["id"]) for _ in range(2)]
    now_ms = int(time.time() * 1000)

    def issued(handout: dict, ended_seconds_ago: int) -> dict:
        """The same lease as if it had been issued that long ago (our own signature)."""
        claim = leases.LeaseClaim(project["id"], handout["task"]["id"], volunteer["id"],
                                  now_ms - ended_seconds_ago * 1000)
        return {**handout, "lease": {"token": leases.issue(services.settings.secret_key,
                                                           claim)}}

    r = _report(client, volunteer, issued(handouts[0], REPORT_WITHIN_SECONDS + 60))
    assert r.status_code == 410, r.json
    assert r.json["error"]["fields"] == {"lease": "ended too long ago"}
    r = _report(client, volunteer, issued(handouts[1], REPORT_WITHIN_SECONDS - 600))
    assert r.status_code == 201, r.json
    with services.db.session() as session:
        assert [row.task_id for row in session.scalars(select(TaskReport))] == [
            handouts[1]["task"]["id"]]


def test_an_archived_projects_tasks_take_no_reports(client, api, project, charity, services):
    """Archiving is final: reports on leases handed out before the archive (they
    may come for a day) would take a task out of circulation for good, since
    staff can no longer dismiss them there. They are refused (409, the state)."""
    handouts = []
    for _ in range(2):
        volunteer = api.volunteer()
        handout = api.next_task(volunteer["headers"], project["id"])
        if handouts and handout["task"]["id"] != handouts[0][1]["task"]["id"]:
            handout = api.next_task(volunteer["headers"], project["id"])
        handouts.append((volunteer, handout))
    task_id = handouts[0][1]["task"]["id"]
    assert handouts[1][1]["task"]["id"] == task_id
    r = client.post(f"/api/v1/projects/{project['id']}/archive", headers=charity)
    assert r.status_code == 200, r.get_data(True)
    for volunteer, handout in handouts:
        assert api.error(_report(client, volunteer, handout), 409)["fields"] == \
            {"state": "archived"}
    assert _state(services, task_id) == "open"
    with services.db.session() as session:
        assert session.scalars(select(TaskReport)).all() == []
    assert _inbox(client, charity) == []
