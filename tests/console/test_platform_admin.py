"""A platform admin in the console: every organisation's projects in the list,
each labelled with its organisation, and every one of them opens and runs.
Charity members and organisation admins still see only their own."""
from __future__ import annotations

import pytest

from engine.store.models import Project

PROJECT = {"task_type": "classify", "config": {"question": "Which?", "labels": ["a", "b"]}}


@pytest.fixture
def two_organisations(client, auth, work):
    """Penguin Watch's active project with a finished job, and Seal Count's draft."""
    penguins, seals = auth.charity("Penguin Watch"), auth.charity("Seal Count")
    active = client.post("/api/v1/projects", headers=penguins,
                         json={"name": "Penguin cams", **PROJECT}).json["id"]
    client.post(f"/api/v1/projects/{active}/jobs", headers=penguins,
                json={"items": [{"text": "one"}, {"text": "two"}]})
    work()
    draft = client.post("/api/v1/projects", headers=seals,
                        json={"name": "Seal census", "state": "draft", **PROJECT}).json["id"]
    return {"active": active, "draft": draft}


def test_the_projects_list_shows_a_platform_admin_every_organisation(
        app, make_staff, forms, two_organisations):
    ops = make_staff(org="Bitesize Ops", email="ops@bitesize.example", role="platform-admin")
    client = app.test_client()
    forms.sign_in(client, ops)
    page = client.get("/console/").get_data(as_text=True)
    assert "Projects of every organisation" in page
    assert '<th scope="col">Organisation</th>' in page
    for name, org in (("Penguin cams", "Penguin Watch"), ("Seal census", "Seal Count")):
        row = page[page.index(name):]
        row = row[:row.index("</tr>")]
        assert f'<td class="organisation">{org}</td>' in row, row


def test_a_platform_admin_opens_and_runs_another_organisations_project(
        app, make_staff, forms, two_organisations, services):
    ops = make_staff(org="Bitesize Ops", email="ops@bitesize.example", role="platform-admin")
    client = app.test_client()
    forms.sign_in(client, ops)
    active, draft = two_organisations["active"], two_organisations["draft"]
    page = client.get(f"/console/projects/{active}")
    assert page.status_code == 200
    assert "A project of Penguin Watch." in page.get_data(as_text=True)
    for path in (f"/console/projects/{active}/results", f"/console/projects/{active}/webhooks",
                 f"/console/projects/{active}/jobs.json", f"/console/projects/{draft}/edit",
                 f"/console/projects/{active}/download/results"):
        assert client.get(path).status_code == 200, path
    paused = forms.post(client, f"/console/projects/{active}/pause", {},
                        page=f"/console/projects/{active}")
    assert paused.status_code == 302, paused.get_data(as_text=True)
    with services.db.session() as session:
        assert session.get(Project, active).state == "paused"


@pytest.mark.parametrize("role", ["charity", "admin"])
def test_staff_of_one_organisation_see_only_its_projects(
        app, make_staff, forms, two_organisations, role):
    seals = make_staff(org="Seal Count", email="dee@seals.org", role=role)
    client = app.test_client()
    forms.sign_in(client, seals)
    page = client.get("/console/").get_data(as_text=True)
    assert "Projects of Seal Count" in page and "Seal census" in page
    assert "Penguin cams" not in page and "Organisation</th>" not in page
    assert client.get(f"/console/projects/{two_organisations['active']}").status_code == 404
