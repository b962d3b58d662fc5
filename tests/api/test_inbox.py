"""The inbox and the audit log over HTTP (issue 13.6): what waits for a human
across an organisation's projects, newest first and paged, who may see which
kind, and every admin action kept with who, when and why (JSON and CSV)."""
from __future__ import annotations

import csv
import io

from sqlalchemy import update

from engine.identity import create_user
from engine.store.models import Job, Task, WebhookEvent
from tests.api.test_quarantine_api import answer_all, url


def inbox(client, headers, **query):
    r = client.get("/api/v1/inbox", headers=headers, query_string=query)
    assert r.status_code == 200, r.json
    return r.json


def test_the_inbox_lists_each_kind_newest_first(api, client, charity, auth, services):
    project = api.project(charity, min_answers=1, max_answers=1,
                          quality={"quarantine": True, "too_fast_after": 3})
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(8)])
    script = api.volunteer()
    answer_all(api, project, script, 4)  # quarantined at its 3rd answer
    with services.db.writing() as session:  # one of each other kind, as the engine leaves them
        task = session.query(Task).filter_by(project_id=project["id"], state="open").first()
        task.state = "contested"
        session.execute(update(Job).where(Job.project_id == project["id"])
                        .values(state="failed", error="line 3: not a picture"))
    admin = auth.admin()
    found = inbox(client, admin)
    kinds = [item["kind"] for item in found["items"]]
    assert sorted(kinds) == ["job", "task", "volunteer"], found
    assert found["counts"] == {"volunteer": 1, "task": 1, "report": 0, "job": 1, "webhook": 0}
    volunteer = next(i for i in found["items"] if i["kind"] == "volunteer")
    assert volunteer == {**volunteer, "project": project["id"], "volunteer": script["id"],
                         "task": None, "job": None, "state": "quarantined"}
    assert "too_fast" in volunteer["reasons"]
    job = next(i for i in found["items"] if i["kind"] == "job")
    assert job["state"] == "failed" and "not a picture" in job["message"]
    since = [item["since"] for item in found["items"]]
    assert since == sorted(since, reverse=True)
    # paged, filtered by kind and by project
    first, second = inbox(client, admin, limit=2), inbox(client, admin, limit=2, offset=2)
    assert [i["kind"] for i in first["items"] + second["items"]] == kinds
    tasks_only = inbox(client, admin, kind="task")
    assert [i["kind"] for i in tasks_only["items"]] == ["task"] and tasks_only["total"] == 1
    # the other kinds are still counted: the desk's tabs show every count at once
    assert tasks_only["counts"] == found["counts"]
    assert client.get("/api/v1/inbox", headers=admin, query_string={
        "project": project["id"] + 999}).status_code == 404  # no such project
    # a charity member sees the tasks and jobs, not the volunteers (an admin's business)
    assert sorted(i["kind"] for i in inbox(client, charity)["items"]) == ["job", "task"]
    # another organisation's admin sees none of it; a platform admin sees all
    assert inbox(client, auth.admin("Seal Trust"))["items"] == []
    platform = {"Authorization": "Bearer "
                + create_user(services, "Bitesize Ops", "platform-admin")[1]}
    assert inbox(client, platform)["total"] == 3
    # once blocked, the volunteer leaves the inbox
    assert client.post(url(project, script, "block"), headers=admin,
                       json={"reason": "a script"}).status_code == 200
    assert inbox(client, admin)["counts"]["volunteer"] == 0


def test_dead_webhook_events_wait_in_the_inbox(api, client, charity, auth, services):
    project = api.project(charity)
    r = client.put(f"/api/v1/projects/{project['id']}/webhook", headers=charity,
                   json={"url": "https://hooks.example.org/bitesize",
                         "secret": "a-long-enough-shared-secret-0123456789"})
    assert r.status_code in (200, 201), r.json
    api.items(charity, project["id"], [{"text": "photo"}])
    with services.db.writing() as session:
        changed = session.execute(update(WebhookEvent).where(
            WebhookEvent.project_id == project["id"]).values(
            state="dead", last_error="HTTP 500")).rowcount
    assert changed >= 1
    found = inbox(client, auth.admin(), kind="webhook")
    assert found["items"] and found["items"][0]["state"] == "dead"
    assert "HTTP 500" in found["items"][0]["message"]


def test_bad_inbox_queries_are_clear_errors(client, auth):
    admin = auth.admin()
    for query in ({"kind": "spam"}, {"limit": 0}, {"offset": -1}, {"offset": 10_001},
                  {"project": "x"}):
        r = client.get("/api/v1/inbox", headers=admin, query_string=query)
        assert r.status_code == 422, (query, r.json)
        assert set(r.json["error"]["fields"]) == set(query) - {"x"}
    assert client.get("/api/v1/inbox").status_code == 401


def test_the_audit_log_keeps_who_what_when_and_why(api, client, charity, auth, services):
    project = api.project(charity, min_answers=1, max_answers=1,
                          quality={"quarantine": True, "too_fast_after": 3})
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(6)])
    script = api.volunteer()
    answer_all(api, project, script, 3)
    admin = auth.admin()
    r = client.post(url(project, script, "clear"), headers=admin,
                    json={"reason": "=HYPERLINK(\"http://evil\") our own test script"})
    assert r.status_code == 200, r.json
    r = client.post(url(project, script, "block"), headers=admin,
                    json={"scope": "organisation", "reason": "spam"})
    assert r.status_code == 200, r.json
    r = client.delete(url(project, script, "block"), headers=admin,
                      json={"scope": "organisation", "reason": "appealed"})
    assert r.status_code == 200 and r.json["scope"] == "organisation", r.json
    log = client.get("/api/v1/audit", headers=admin)
    assert log.status_code == 200, log.json
    entries = log.json["entries"]
    assert [e["action"] for e in entries] == ["unblock", "block", "clear", "quarantine"]
    assert entries[-1]["who"] == "bitesize" and "too_fast" in entries[-1]["reason"]
    assert entries[1]["scope"] == "organisation" and entries[1]["reason"] == "spam"
    assert entries[0]["who"] != "bitesize" and entries[0]["reason"] == "appealed"
    assert all(e["project"] == project["id"] and e["volunteer"] == script["id"]
               for e in entries)
    # CSV: the same rows, formula-like text escaped for spreadsheets
    r = client.get("/api/v1/audit", headers=admin, query_string={"format": "csv"})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert [row["action"] for row in rows] == ["unblock", "block", "clear", "quarantine"]
    assert rows[2]["reason"].startswith("'=HYPERLINK")
    # only admins read it, and only their organisation's
    assert client.get("/api/v1/audit", headers=charity).status_code == 403
    assert client.get("/api/v1/audit", headers=auth.admin("Seal Trust")).json["entries"] == []
    r = client.get("/api/v1/audit", headers=auth.admin("Seal Trust"),
                   query_string={"project": project["id"]})
    assert r.status_code == 404


def test_openapi_lists_the_inbox_and_the_audit_log(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    inbox_op = paths.get("/api/v1/inbox") or paths["/inbox"]
    audit_op = paths.get("/api/v1/audit") or paths["/audit"]
    assert inbox_op["get"]["x-roles"] == ["charity", "admin", "platform-admin"]
    assert audit_op["get"]["x-roles"] == ["admin", "platform-admin"]
    assert "quarantined" in inbox_op["get"]["summary"]


def test_another_organisations_project_is_missing_from_the_inbox(api, client, charity,
                                                                   other_charity):
    """As the audit log (and every owner-only call) answers: 404, not an empty
    200 that tells the project exists; a project unknown to anyone alike."""
    project = api.project(charity)
    for headers, status in ((charity, 200), (other_charity, 404)):
        r = client.get("/api/v1/inbox", headers=headers, query_string={"project": project["id"]})
        assert r.status_code == status, r.json
    assert client.get("/api/v1/inbox", headers=charity,
                      query_string={"project": 999_999}).status_code == 404
