"""Volunteers' reports on the quality desk: the inbox row, the task page's list of
reports, and dismissing them, which puts the task back in circulation."""
from __future__ import annotations

import pytest

from engine.store.models import Task
from tests.api.conftest import Api


@pytest.fixture
def api(client, auth, work) -> Api:
    return Api(client, auth, work)


def test_a_reported_task_is_listed_shown_and_its_reports_dismissed(app, api, auth, client,
                                                                    services, make_staff,
                                                                    forms):
    charity = auth.charity("Penguin Watch")
    project = api.project(charity)
    api.items(charity, project["id"], [{"text": "photo 1"}])
    for note in ("a cat?", "<b>rude</b>"):
        volunteer = api.volunteer()
        handout = api.next_task(volunteer["headers"], project["id"])
        r = client.post(f"/api/v1/leases/{handout['lease']['token']}/report",
                        json={"reason": "offensive", "note": note},
                        headers=volunteer["headers"])
        assert r.status_code == 201
    task_id = handout["task"]["id"]
    staff = app.test_client()
    forms.sign_in(staff, make_staff())
    panel = staff.get(f"/console/projects/{project['id']}").get_data(as_text=True)
    assert "1 task reported by volunteers" in panel
    inbox = staff.get("/console/desk").get_data(as_text=True)
    assert f"Task {task_id} reported" in inbox and "Reported tasks (1)" in inbox
    assert "reported by 2 volunteers: out of circulation" in inbox
    page = staff.get(f"/console/desk/tasks/{task_id}").get_data(as_text=True)
    assert "Reported by volunteers" in page and "It is offensive or upsetting" in page
    assert "“a cat?”" in page and "&lt;b&gt;rude&lt;/b&gt;" in page  # escaped
    assert "out of circulation until you settle it" in page
    done = forms.post(staff, f"/console/desk/tasks/{task_id}/reports/dismiss", {},
                      page=f"/console/desk/tasks/{task_id}")
    assert done.status_code == 302
    after = staff.get(f"/console/desk/tasks/{task_id}").get_data(as_text=True)
    assert "Dismissed 2 reports" in after and "Reported by volunteers" not in after
    with services.db.session() as session:
        assert session.get(Task, task_id).state == "open"
    assert "Nothing waits for you" in staff.get("/console/desk").get_data(as_text=True)
