"""A second organisation sees none of the first one's projects in the console:
every console URL naming another organisation's project (or its job, item,
webhook event) answers 404, whatever the method, and changes nothing."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from engine.store.models import Item, Job, Project

ID_PARTS = ("project_id", "job_id", "item_id", "event_id", "task_id")


@pytest.fixture
def their_project(client, auth, work, services):
    """Penguin Watch's project, with a finished job and its items."""
    charity = auth.charity("Penguin Watch")
    made = client.post("/api/v1/projects", headers=charity, json={
        "name": "Theirs", "task_type": "classify",
        "config": {"question": "Which?", "labels": ["a", "b"]}})
    project_id = made.json["id"]
    job = client.post(f"/api/v1/projects/{project_id}/jobs", headers=charity,
                      json={"items": [{"text": "one"}, {"text": "two"}]})
    work()
    with services.db.session() as session:
        item_id = session.scalar(select(func.min(Item.id)).where(Item.project_id == project_id))
    return {"project_id": project_id, "job_id": job.json["id"], "item_id": item_id}


def _console_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/console") and set(rule.arguments) & set(ID_PARTS):
            yield rule


def _snapshot(services, project_id: int):
    with services.db.session() as session:
        project = session.get(Project, project_id)
        jobs = session.scalar(select(func.count()).select_from(Job)
                              .where(Job.project_id == project_id))
        return (project.name, project.state, project.config, jobs)


@pytest.mark.parametrize("role", ["charity", "admin"])  # an organisation admin too
def test_every_console_url_of_another_organisations_project_is_404(
        app, their_project, make_staff, forms, services, role):
    outsider = make_staff(org="Seal Count", email="dee@seals.org", role=role)
    client = app.test_client()
    forms.sign_in(client, outsider)
    token = forms.token(client, "/console/")
    before = _snapshot(services, their_project["project_id"])
    ids = {**their_project, "event_id": 1, "task_id": 1}
    checked = []
    for rule in _console_rules(app):
        path = rule.rule
        for part in rule.arguments:
            path = re.sub(rf"<(?:\w+:)?{part}>", str(ids.get(part, 1)), path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            reply = client.open(path, method=method, data={"csrf_token": token})
            assert reply.status_code == 404, f"{method} {path}: {reply.status_code}"
            checked.append(f"{method} {rule.rule}")
    assert len(checked) >= 10, checked  # the console's project pages are all covered
    assert _snapshot(services, their_project["project_id"]) == before
