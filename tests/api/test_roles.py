"""Roles made explicit (README: Roles): charity members run their organisation's
projects, organisation admins also make its quality calls, platform admins make
every owner's and admin's call on every organisation's projects.

An organisation admin of another organisation gets 404 from every owner's and
admin's call on a project, its jobs, tasks, volunteers and webhook events (the
app's url_map is walked, so a new route is checked without being listed here),
and changes nothing; only the public reads of an active project stay open."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from engine.accounts import staff as accounts
from engine.identity import authenticate, create_user
from engine.store.models import Answer, Job, Project, VolunteerStat, Webhook, WebhookEvent
from web.cli import cli

ID_PARTS = ("project_id", "job_id", "task_id", "volunteer_id", "event_id")
# Calls anyone may make on an active project, or only volunteers (who own nothing).
PUBLIC = {("GET", "/api/v1/projects/<int:project_id>")}
VOLUNTEER_ONLY = {"/api/v1/projects/<int:project_id>/tasks/next",
                  "/api/v1/projects/<int:project_id>/news-subscription",
                  "/api/v1/tasks/<int:task_id>/answers"}
# A valid body for the calls that judge one, so that the reply is about the project.
BODIES = {
    ("PATCH", "/api/v1/projects/<int:project_id>"): {"name": "Renamed"},
    ("POST", "/api/v1/projects/<int:project_id>/jobs"): {"items": [{"text": "more"}]},
    ("POST", "/api/v1/tasks/<int:task_id>/resolution"): {"answer": {"label": "seal"}},
    ("POST", "/api/v1/projects/<int:project_id>/news"): {"subject": "New photos",
                                                          "message": "More are up."},
    ("PUT", "/api/v1/projects/<int:project_id>/webhook"): {
        "url": "http://127.0.0.1:9/elsewhere", "secret": "s" * 20},
}
MISSING = 987654


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def platform_admin(services) -> dict[str, str]:
    """A platform admin, staff of an organisation of its own."""
    return bearer(create_user(services, "Bitesize Ops", "platform-admin")[1])


@pytest.fixture
def theirs(api, client, charity, auth, receiver):
    """Penguin Watch's active project: a webhook with a delivered event, a finished job,
    one task contested by two volunteers; and a draft only the organisation sees."""
    project = api.project(charity, min_answers=2, max_answers=2, confidence=0.9)
    pid = project["id"]
    hook = client.put(f"/api/v1/projects/{pid}/webhook", headers=charity,
                      json={"url": receiver.url, "secret": "x" * 20})
    assert hook.status_code == 201, hook.json
    job = api.items(charity, pid, [{"text": "a blurry rock"}])
    alice, bob = api.volunteer(), api.volunteer()
    for who, label in ((alice, "penguin"), (bob, "seal")):
        handout = api.next_task(who["headers"], pid)
        r = api.answer(who["headers"], handout["task"]["id"], handout["lease"]["token"], label)
        assert r.status_code == 201, r.json
    api.work()  # delivers job.split
    events = client.get(f"/api/v1/projects/{pid}/webhook/events", headers=charity).json
    assert events["events"] and events["events"][0]["state"] == "delivered", events
    draft = api.project(charity, state="draft")
    return {"project_id": pid, "job_id": job["id"], "task_id": handout["task"]["id"],
            "volunteer_id": alice["id"], "event_id": events["events"][0]["id"],
            "draft_id": draft["id"]}


def _owner_calls(app):
    """(method, path template, rule) of every /api/v1 call naming a project, job,
    task, volunteer or event, except the public and volunteers' ones."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or not set(rule.arguments) & set(ID_PARTS):
            continue
        if rule.rule in VOLUNTEER_ONLY:
            continue
        paths = [rule.rule]
        choice = re.search(r"<any\(([^)]*)\):(\w+)>", rule.rule)
        if choice:
            paths = [rule.rule.replace(choice.group(0), option.strip())
                     for option in choice.group(1).split(",")]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if (method, rule.rule) not in PUBLIC:
                for path in paths:
                    yield method, path, rule.rule


def _fill(path: str, ids: dict) -> str:
    for part in ID_PARTS:
        path = re.sub(rf"<(?:\w+:)?{part}>", str(ids[part]), path)
    return path


def _snapshot(services, project_id: int):
    with services.db.session() as session:
        project = session.get(Project, project_id)
        count = lambda model: session.scalar(  # noqa: E731
            select(func.count()).select_from(model).where(model.project_id == project_id))
        return (project.name, project.state, project.config, count(Job),
                count(Webhook), count(WebhookEvent),
                session.scalar(select(func.count()).select_from(Answer).where(
                    Answer.project_id == project_id, Answer.counted.is_(True))),
                sorted(session.scalars(select(VolunteerStat.blocked).where(
                    VolunteerStat.project_id == project_id))),
                [(e.state, e.attempts) for e in session.scalars(
                    select(WebhookEvent).where(WebhookEvent.project_id == project_id))])


@pytest.mark.parametrize("role", ["admin", "charity"])
def test_an_organisation_admin_gets_404_from_every_call_on_another_organisations_project(
        app, client, api, theirs, services, role):
    outsider = bearer(create_user(services, "Seal Trust", role)[1])
    api.project(outsider)  # it runs a project of its own
    before = _snapshot(services, theirs["project_id"])
    missing = {part: MISSING for part in ID_PARTS}
    checked = []
    for method, path, rule in _owner_calls(app):
        body = BODIES.get((method, rule))
        reply = client.open(_fill(path, theirs), method=method, headers=outsider, json=body)
        assert "does not exist" in api.error(reply, 404)["message"], (method, path)
        # No half-visible state: with any body, another organisation's project answers
        # exactly as a missing one does (a body error is judged before the project).
        for junk in ({}, {"answer": 1, "url": 5}):
            theirs_reply = client.open(_fill(path, theirs), method=method, headers=outsider,
                                       json=junk)
            missing_reply = client.open(_fill(path, missing), method=method,
                                        headers=outsider, json=junk)
            assert theirs_reply.status_code == missing_reply.status_code, (method, path, junk)
        checked.append(f"{method} {path}")
    assert len(checked) >= 20, checked
    assert any("/review" in c for c in checked) and any("/block" in c for c in checked)
    assert any("/resolution" in c for c in checked) and any("/rerun" in c for c in checked)
    assert _snapshot(services, theirs["project_id"]) == before

    # Public reads stay as they are: the active project, but not the draft.
    shown = client.get(f"/api/v1/projects/{theirs['project_id']}", headers=outsider)
    assert shown.status_code == 200 and "lease_seconds" not in shown.json
    api.error(client.get(f"/api/v1/projects/{theirs['draft_id']}", headers=outsider), 404)
    listed = {p["id"] for p in client.get("/api/v1/projects", headers=outsider).json["projects"]}
    assert theirs["project_id"] in listed and theirs["draft_id"] not in listed


def test_an_organisation_admin_runs_the_quality_of_its_own_projects(client, auth, api, theirs):
    admin, pid = auth.admin("Penguin Watch"), theirs["project_id"]
    queue = client.get(f"/api/v1/projects/{pid}/review", headers=admin)
    assert queue.status_code == 200 and queue.json["total"] == 1
    block = client.post(f"/api/v1/projects/{pid}/volunteers/{theirs['volunteer_id']}/block",
                        headers=admin)
    assert block.status_code == 200, block.json
    assert client.delete(f"/api/v1/projects/{pid}/volunteers/{theirs['volunteer_id']}/block",
                         headers=admin).status_code == 200


def test_a_platform_admin_runs_every_organisations_projects(
        client, api, theirs, platform_admin, services):
    pid, task, vid = theirs["project_id"], theirs["task_id"], theirs["volunteer_id"]
    headers = platform_admin
    queue = client.get(f"/api/v1/projects/{pid}/review", headers=headers)
    assert queue.status_code == 200 and [t["id"] for t in queue.json["tasks"]] == [task]
    stats = client.get(f"/api/v1/projects/{pid}/volunteers", headers=headers)
    assert stats.status_code == 200 and "volunteers" in stats.json
    settled = client.post(f"/api/v1/tasks/{task}/resolution", headers=headers,
                          json={"answer": {"label": "seal"}})
    assert settled.status_code == 200, settled.json
    assert settled.json["state"] == "settled"
    block = client.post(f"/api/v1/projects/{pid}/volunteers/{vid}/block", headers=headers)
    assert block.status_code == 200 and block.json["blocked"] is True, block.json
    with services.db.session() as session:
        assert session.get(VolunteerStat, (pid, vid)).blocked
    unblock = client.delete(f"/api/v1/projects/{pid}/volunteers/{vid}/block", headers=headers)
    assert unblock.status_code == 200 and unblock.json["blocked"] is False

    results = client.get(f"/api/v1/projects/{pid}/results?format=json", headers=headers)
    assert results.status_code == 200
    assert [(r["state"], r["value"]) for r in results.json] == [("settled", "seal")]
    answers = client.get(f"/api/v1/projects/{pid}/answers?format=csv", headers=headers)
    assert answers.status_code == 200 and answers.get_data(as_text=True).count("\n") == 3
    assert client.get(f"/api/v1/jobs/{theirs['job_id']}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/projects/{pid}/webhook", headers=headers).status_code == 200
    redeliver = client.post(
        f"/api/v1/projects/{pid}/webhook/events/{theirs['event_id']}/redeliver",
        headers=headers)
    assert redeliver.status_code == 202, redeliver.json

    # Owner calls too, and drafts: every state of every organisation's projects.
    draft = theirs["draft_id"]
    shown = client.get(f"/api/v1/projects/{draft}", headers=headers)
    assert shown.status_code == 200 and "lease_seconds" in shown.json
    listed = {p["id"] for p in client.get("/api/v1/projects", headers=headers).json["projects"]}
    assert {pid, draft} <= listed
    renamed = client.patch(f"/api/v1/projects/{draft}", headers=headers, json={"name": "Ops"})
    assert renamed.status_code == 200 and renamed.json["name"] == "Ops"
    assert client.post(f"/api/v1/projects/{draft}/publish", headers=headers).status_code == 200

    # A project it makes belongs to its own organisation.
    made = api.project(headers)
    with services.db.session() as session:
        assert session.get(Project, made["id"]).organisation_id != session.get(
            Project, pid).organisation_id


def test_a_charity_member_keeps_what_it_had_and_no_more(client, api, charity, theirs):
    pid, vid = theirs["project_id"], theirs["volunteer_id"]
    # The quality reads and settling it always had ("owner" in the README's table)...
    assert client.get(f"/api/v1/projects/{pid}/review", headers=charity).status_code == 200
    assert client.get(f"/api/v1/projects/{pid}/volunteers", headers=charity).status_code == 200
    # ...but blocking stays an admin's: 403 in its own project, 404 in another's.
    for method in ("POST", "DELETE"):
        r = client.open(f"/api/v1/projects/{pid}/volunteers/{vid}/block", method=method,
                        headers=charity)
        assert "admin" in api.error(r, 403)["message"]
    stranger = api.auth.charity("Seal Trust")
    api.error(client.post(f"/api/v1/projects/{pid}/volunteers/{vid}/block",
                          headers=stranger), 404)
    api.error(client.get(f"/api/v1/projects/{pid}/review", headers=stranger), 404)


def test_openapi_says_which_roles_may_call(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    block = paths["/projects/{project_id}/volunteers/{volunteer_id}/block"]["post"]
    assert block["x-roles"] == ["admin", "platform-admin"]
    assert "platform-admin" in block["description"] and "403" in block["responses"]
    review = paths["/projects/{project_id}/review"]["get"]
    assert review["x-roles"] == ["charity", "admin", "platform-admin"]
    assert "404" in review["responses"]
    for ops in paths.values():
        for op in ops.values():
            assert op["x-roles"] and op["description"].startswith("Who: "), op


def test_users_create_makes_a_platform_admin(runner, services):
    made = runner.invoke(cli, args=["users", "create", "--role", "platform-admin", "--org",
                                    "Bitesize Ops"])
    assert made.exit_code == 0, made.output
    assert "(platform-admin) of 'Bitesize Ops'" in made.stderr
    identity = authenticate(services, made.stdout.strip())
    assert identity.role == "platform-admin" and identity.is_platform_admin
    assert identity.manages(identity.organisation_id + 1)

    console = runner.invoke(cli, args=["users", "create", "--role", "platform-admin", "--org",
                                       "Bitesize Ops", "--email", "ops@bitesize.example"])
    assert console.exit_code == 0, console.output
    assert accounts.find_staff(services, "ops@bitesize.example").role == "platform-admin"
    listed = runner.invoke(cli, args=["users", "list"])
    assert listed.output.count("platform-admin") == 2

    wrong = runner.invoke(cli, args=["users", "create", "--role", "root", "--org", "X"])
    assert wrong.exit_code == 2 and "platform-admin" in wrong.output
