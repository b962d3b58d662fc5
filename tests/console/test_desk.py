"""The quality desk's inbox and audit log pages (issue 13.5): an admin sees what
waits across the organisation's projects, filtered and paged, each row linking
where it is dealt with; the audit log shows who did what and why and downloads
as CSV; charity members see no volunteers and no audit log; another
organisation's admin sees none of it."""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import update

from engine.accounts.staff import find_staff
from engine.quality import moderation
from engine.store.models import Job, Task
from tests.api.conftest import Api
from tests.api.test_quarantine_api import answer_all


@pytest.fixture
def api(client, auth, work) -> Api:
    """The API tests' helpers, to set the scene over HTTP."""
    return Api(client, auth, work)


def _scene(api, auth, services):
    """A Penguin Watch project: a script quarantined by the flags, a contested
    task, a failed upload."""
    charity = auth.charity("Penguin Watch")
    project = api.project(charity, min_answers=1, max_answers=1,
                          quality={"quarantine": True, "too_fast_after": 3})
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(6)])
    script = api.volunteer()
    answer_all(api, project, script, 3)
    with services.db.writing() as session:
        task = session.query(Task).filter_by(project_id=project["id"], state="open").first()
        task.state = "contested"
        session.execute(update(Job).where(Job.project_id == project["id"])
                        .values(state="failed", error="=cmd|' /C calc'!A0"))
    return project, script, task.id


def _signed_in(app, make_staff, forms, **who):
    client = app.test_client()
    forms.sign_in(client, make_staff(**who))
    return client


def test_the_inbox_lists_what_waits_with_links(app, api, auth, services, make_staff, forms):
    project, script, task_id = _scene(api, auth, services)
    admin = _signed_in(app, make_staff, forms, email="ada@penguins.org", role="admin")
    page = admin.get("/console/desk").get_data(as_text=True)
    assert "Quality desk" in page
    assert f"Volunteer {script['id']} quarantined" in page
    assert f'/console/desk/projects/{project["id"]}/volunteers/{script["id"]}' in page
    assert f"Task {task_id} contested" in page and f"/console/desk/tasks/{task_id}" in page
    assert "Upload" in page and "failed" in page
    assert "answers too fast" in page  # the flag in words
    assert "=cmd|&#39; /C calc&#39;!A0" in page  # the job's error, escaped
    assert "Everything (3)" in page and "Quarantined volunteers (1)" in page
    only = admin.get("/console/desk?kind=task").get_data(as_text=True)
    assert f"Task {task_id} contested" in only and "quarantined</a>" not in only
    # the tabs keep their counts whichever is chosen (other tabs read 0 before)
    assert "Everything (3)" in only and "Quarantined volunteers (1)" in only
    assert admin.get("/console/desk?kind=spam").status_code in (400, 422)
    # a charity member: no volunteers; another organisation's admin: nothing
    member = _signed_in(app, make_staff, forms, email="cy@penguins.org")
    seen = member.get("/console/desk").get_data(as_text=True)
    assert f"Task {task_id} contested" in seen and "quarantined</a>" not in seen
    stranger = _signed_in(app, make_staff, forms, org="Seal Trust", email="x@seals.org",
                          role="admin")
    assert "Nothing waits for you" in stranger.get("/console/desk").get_data(as_text=True)


def test_the_audit_log_page_and_its_csv(app, api, auth, services, make_staff, forms):
    project, script, _ = _scene(api, auth, services)
    admin_login = make_staff(email="ada@penguins.org", role="admin")
    client = app.test_client()
    forms.sign_in(client, admin_login)
    who = find_staff(services, admin_login.email).identity
    moderation.block(services, who, project["id"], script["id"], "organisation",
                     "=1+1 answers 'penguin' to everything")
    page = client.get("/console/desk/audit").get_data(as_text=True)
    assert "Blocked volunteer" in page and "every project of the organisation" in page
    assert "ada@penguins.org" in page and "bitesize" in page
    assert "=1+1 answers &#39;penguin&#39; to everything" in page
    reply = client.get("/console/desk/audit.csv")
    assert reply.status_code == 200 and reply.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(reply.get_data(as_text=True).lstrip("\ufeff"))))
    assert [r["action"] for r in rows] == ["block", "quarantine"]
    assert rows[0]["reason"].startswith("'=1+1") and rows[0]["who"] == "ada@penguins.org"
    # the engine's quarantine: its flags in words on the page (the CSV keeps the codes)
    from web.console.desk import REASONS
    flags = rows[1]["reason"].split(", ")
    assert flags and all(flag in REASONS for flag in flags), rows[1]
    assert f"<td>{', '.join(REASONS[flag] for flag in flags)}</td>" in page
    assert f"<td>{rows[1]['reason']}</td>" not in page
    member = _signed_in(app, make_staff, forms, email="cy@penguins.org")
    assert member.get("/console/desk/audit").status_code == 403
    assert member.get("/console/desk/audit.csv").status_code == 403
    stranger = _signed_in(app, make_staff, forms, org="Seal Trust", email="x@seals.org",
                          role="admin")
    assert stranger.get(f"/console/desk/audit?project={project['id']}").status_code == 404
    for path in ("/console/desk", "/console/desk/audit", "/console/desk/audit.csv"):
        # past a database integer: a 4xx naming the field, not an OverflowError's 500
        reply = stranger.get(f"{path}?project=99999999999999999999")
        assert 400 <= reply.status_code < 500, (path, reply.status_code)


def test_the_project_page_says_how_many_tasks_are_held_for_trust(app, api, auth, services,
                                                                 make_staff, forms):
    """Fresh volunteers who agree fill tasks to max_answers and hold them: the
    project page's quality panel says how many and why, with the project's own
    trust settings."""
    charity = auth.charity("Penguin Watch")
    project = api.project(charity, min_answers=2, max_answers=2, confidence=0.5,
                          quality={"quarantine": False, "trusted_after_gold": 4})
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(3)])
    for volunteer in (api.volunteer(), api.volunteer()):
        answer_all(api, project, volunteer, 3)
    admin = _signed_in(app, make_staff, forms, email="ada@penguins.org", role="admin")
    page = " ".join(admin.get(f"/console/projects/{project['id']}").get_data(
        as_text=True).split())
    assert "3 tasks held: confident, but only volunteers without a track record" in page
    assert "(4 gold answers right, or 30 minutes since they joined without a flag)" in page


def test_a_deleted_drafts_entries_stay_on_the_audit_page(app, api, auth, services, make_staff,
                                                         forms):
    """An organisation-wide block wrote an entry in a draft; the draft is
    deleted: the page still lists the entry, naming the draft (no link: it is
    gone, and a link to it would not build), and says who deleted it."""
    from engine import lifecycle
    from engine.identity import Identity

    project, script, _ = _scene(api, auth, services)
    charity = auth.charity("Penguin Watch")
    draft = api.project(charity, name="Seal cams", state="draft")
    admin_login = make_staff(email="ada@penguins.org", role="admin")
    client = app.test_client()
    forms.sign_in(client, admin_login)
    who = find_staff(services, admin_login.email).identity
    moderation.block(services, who, project["id"], script["id"], "organisation", "a script")
    lifecycle.delete_draft(services, Identity("user", who.id, who.organisation_id, "admin"),
                           draft["id"])
    reply = client.get("/console/desk/audit")
    page = reply.get_data(as_text=True)
    assert reply.status_code == 200
    assert "Deleted a draft" in page and page.count("Seal cams (deleted)") == 2
    assert f'/console/projects/{draft["id"]}"' not in page
