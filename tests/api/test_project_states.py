"""PATCH, publish/pause/complete/archive and DELETE of projects over HTTP."""
from __future__ import annotations

import pytest

from tests.api.conftest import LABELS


@pytest.fixture
def draft(api, charity) -> dict:
    project = api.project(charity, state="draft")
    assert project["state"] == "draft"
    return project


def path(project: dict, tail: str = "") -> str:
    return f"/api/v1/projects/{project['id']}{tail}"


def test_projects_are_still_created_active_by_default(api, charity):
    assert api.project(charity)["state"] == "active"


def test_a_draft_is_hidden_from_everyone_but_its_organisation(api, client, charity,
                                                               other_charity, draft):
    api.error(client.get(path(draft)), 404)
    api.error(client.get(path(draft), headers=other_charity), 404)
    assert client.get(path(draft), headers=charity).json["state"] == "draft"
    assert draft["id"] not in [p["id"] for p in client.get("/api/v1/projects").json["projects"]]


def test_publish_pause_complete_archive(api, client, charity, draft):
    api.items(charity, draft["id"], [{"text": "a seal?"}])
    volunteer = api.volunteer()
    # a draft hands out nothing, and a volunteer hears of it what they would of a
    # project that does not exist (it used to say 409 "not taking answers")
    hidden = api.error(client.get(path(draft, "/tasks/next"), headers=volunteer["headers"]),
                       404)
    missing = api.error(client.get(path({"id": 999_999}, "/tasks/next"),
                                   headers=volunteer["headers"]), 404)
    assert hidden == {**missing, "message": missing["message"].replace(
        "999999", str(draft["id"]))}
    for action, state in (("publish", "active"), ("pause", "paused"), ("publish", "active"),
                          ("complete", "completed"), ("archive", "archived")):
        r = client.post(path(draft, f"/{action}"), headers=charity)
        assert r.status_code == 200, r.json
        assert r.json["state"] == state
        fresh = api.volunteer()["headers"]  # one who has not seen the task yet
        handout = client.get(path(draft, "/tasks/next"), headers=fresh)
        assert handout.status_code == (200 if state == "active" else 409), handout.json
    listed = client.get("/api/v1/projects").json["projects"]
    assert draft["id"] not in [p["id"] for p in listed]


def test_an_answer_to_an_archived_project_is_kept_but_changes_no_result(api, client, charity,
                                                                         services):
    """A security review answered a lease after the project was archived: the
    answer counted and the task retired, so "final" results changed. It is
    stored (it got a 2xx) as surplus; the project's tasks stay as they were,
    through a rebuild too."""
    project = api.project(charity, min_answers=1, max_answers=1)
    api.items(charity, project["id"], [{"text": "a seal?"}, {"text": "a gull?"}])
    volunteer = api.volunteer()
    task = api.next_task(volunteer["headers"], project["id"])
    assert client.post(path(project, "/archive"), headers=charity).status_code == 200
    answered = api.answer(volunteer["headers"], task["task"]["id"], task["lease"]["token"])
    assert answered.status_code == 201 and answered.json["counted"] is False
    services.dispatcher.drop_project(project["id"])  # Redis lost: rebuilt from SQL
    late = api.volunteer()
    api.error(client.get(path(project, "/tasks/next"), headers=late["headers"]), 409)
    tasks = client.get(path(project, "/results?format=json"), headers=charity).json
    assert [row["state"] for row in tasks] == ["open", "open"]


def test_an_illegal_move_is_409_naming_the_state(api, client, charity, draft):
    error = api.error(client.post(path(draft, "/pause"), headers=charity), 409)
    assert "draft" in error["message"]
    assert error["fields"] == {"state": "draft"}
    client.post(path(draft, "/publish"), headers=charity)
    client.post(path(draft, "/archive"), headers=charity)
    error = api.error(client.post(path(draft, "/publish"), headers=charity), 409)
    assert "archived" in error["message"] and "final" in error["message"]


def test_patch_edits_wording_and_settings(api, client, charity, draft):
    r = client.patch(path(draft), headers=charity, json={
        "name": "Seal cams", "description": "Seals need counting", "max_answers": 7,
        "config": {"question": "What animal is it?"}})
    assert r.status_code == 200, r.json
    assert r.json["name"] == "Seal cams" and r.json["max_answers"] == 7
    assert r.json["config"]["question"] == "What animal is it?"
    assert r.json["config"]["labels"] == LABELS  # merged, not replaced
    assert client.get(path(draft), headers=charity).json["description"] == "Seals need counting"


@pytest.mark.parametrize(("body", "field"), [
    ({"name": ""}, "name"),
    ({"min_answers": 0}, "min_answers"),
    ({"max_answers": 1, "min_answers": 2}, "max_answers"),
    ({"config": {"labels": ["only one"]}}, "config"),
    ({"task_type": "tag"}, "task_type"),
    ({"state": "active"}, "state"),
    ({"strategy": "sideways"}, "strategy"),
])
def test_patch_refuses_invalid_values_by_field(api, client, charity, draft, body, field):
    error = api.error(client.patch(path(draft), headers=charity, json=body), 422)
    assert field in error["fields"]


def test_patch_refuses_removing_a_label_once_answered(api, client, charity, project):
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    assert api.answer(volunteer["headers"], handout["task"]["id"],
                      handout["lease"]["token"]).status_code == 201
    error = api.error(client.patch(path(project), headers=charity,
                                   json={"config": {"labels": ["penguin", "seal"]}}), 422)
    assert "'empty'" in error["message"]
    assert "labels" in error["fields"]["config"]
    grown = client.patch(path(project), headers=charity,
                         json={"config": {"labels": [*LABELS, "bird"]}})
    assert grown.status_code == 200 and grown.json["config"]["labels"] == [*LABELS, "bird"]


def test_delete_removes_a_draft_only(api, client, charity, draft, project):
    api.items(charity, draft["id"], [{"text": "a seal?"}])
    error = api.error(client.delete(path(project), headers=charity), 409)
    assert "only a draft" in error["message"]
    r = client.delete(path(draft), headers=charity)
    assert r.status_code == 204 and r.get_data() == b""
    api.error(client.get(path(draft), headers=charity), 404)
    api.error(client.delete(path(draft), headers=charity), 404)


@pytest.mark.parametrize(("method", "tail", "body"), [
    ("PATCH", "", {"name": "mine now"}), ("POST", "/publish", None), ("POST", "/pause", None),
    ("POST", "/complete", None), ("POST", "/archive", None), ("DELETE", "", None)])
def test_another_organisation_gets_404_and_changes_nothing(api, client, call, charity,
                                                           other_charity, draft, method,
                                                           tail, body):
    api.error(call(client, method, path(draft, tail), other_charity, body), 404)
    after = client.get(path(draft), headers=charity).json
    assert (after["state"], after["name"]) == ("draft", draft["name"])


@pytest.mark.parametrize(("method", "tail"), [("PATCH", ""), ("POST", "/publish"),
                                              ("DELETE", "")])
def test_volunteers_and_strangers_cannot_change_projects(api, client, call, auth, draft,
                                                         method, tail):
    api.error(call(client, method, path(draft, tail), None, {}), 401)
    api.error(call(client, method, path(draft, tail), auth.volunteer(), {}), 403)


def test_patch_needs_a_json_object(api, client, charity, draft):
    api.error(client.patch(path(draft), headers=charity, data="name=x",
                           content_type="application/x-www-form-urlencoded"), 400)
    api.error(client.patch(path(draft), headers=charity, json=["name"]), 422)


def test_openapi_lists_the_state_calls(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"patch", "delete", "get"} <= set(paths["/projects/{project_id}"])
    for action in ("publish", "pause", "complete", "archive"):
        assert "post" in paths[f"/projects/{{project_id}}/{action}"]
    patch = paths["/projects/{project_id}"]["patch"]
    assert "config" in patch["requestBody"]["content"]["application/json"]["schema"][
        "properties"]
    assert "state" in paths["/projects"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]


def test_a_draft_that_sent_news_is_deleted(api, client, charity, draft, services,
                                           smtp_server):
    """News is a draft's too (a charity may write before publishing): its rows
    went undeleted and the project's delete failed on their foreign key (500)."""
    import dataclasses

    from sqlalchemy import func, select

    from engine.store.models import ProjectNews

    host, port = smtp_server.server_address
    services.settings = dataclasses.replace(services.settings,
                                            smtp_url=f"smtp://{host}:{port}")
    r = client.post(path(draft, "/news"), headers=charity,
                    json={"subject": "Soon", "message": "Seals are coming."})
    assert r.status_code == 202, r.get_data(True)
    assert client.delete(path(draft), headers=charity).status_code == 204
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ProjectNews)) == 0
    api.error(client.get(path(draft), headers=charity), 404)
