"""GET /volunteers/me: what a volunteer's answers did (engine.contributions)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from engine.delivery.contributions import TASK_SECONDS_CAP
from engine.store.models import Handout, utcnow


def _answer_all(api, volunteer: dict, project_id: int, label: str = "penguin") -> list[int]:
    done = []
    while True:
        r = api.client.get(f"/api/v1/projects/{project_id}/tasks/next",
                           headers=volunteer["headers"])
        if r.status_code == 204:
            return done
        assert api.answer(volunteer["headers"], r.json["task"]["id"], r.json["lease"]["token"],
                          label).status_code == 201
        done.append(r.json["task"]["id"])


def test_a_new_volunteer_has_an_empty_record(client, api):
    volunteer = api.volunteer()
    r = client.get("/api/v1/volunteers/me", headers=volunteer["headers"])
    assert r.status_code == 200
    assert r.json == {"id": volunteer["id"], "account": None, "mail": False, "answers": 0,
                      "seconds": 0, "first_at": None, "last_at": None, "projects": []}


def test_the_record_counts_answers_and_the_tasks_they_helped_finish(client, api, project):
    first, second = api.volunteer(), api.volunteer()
    assert len(_answer_all(api, first, project["id"])) == 2
    mine = client.get("/api/v1/volunteers/me", headers=first["headers"]).json
    # min_answers 2: nothing is final on one volunteer's answers
    assert mine["answers"] == 2 and mine["first_at"] and mine["last_at"]
    assert mine["projects"] == [{"id": project["id"], "name": "Penguin cams", "answers": 2,
                                 "finished": 0, "seconds": mine["projects"][0]["seconds"],
                                 "news": False}]
    _answer_all(api, second, project["id"])  # agreeing: both tasks retire
    mine = client.get("/api/v1/volunteers/me", headers=first["headers"]).json
    assert mine["projects"][0]["finished"] == 2
    theirs = client.get("/api/v1/volunteers/me", headers=second["headers"]).json
    assert theirs["answers"] == 2 and theirs["projects"][0]["finished"] == 2


def test_time_given_runs_from_hand_out_to_answer_at_most_ten_minutes_a_task(
        client, api, project, services):
    volunteer = api.volunteer()
    first = api.next_task(volunteer["headers"], project["id"])
    second = api.next_task(volunteer["headers"], project["id"])
    with services.db.session() as session:  # one taken 90 s ago, one left open an hour
        for handout, ago in ((first, 90), (second, 3600)):
            session.execute(update(Handout).where(
                Handout.task_id == handout["task"]["id"],
                Handout.volunteer_id == volunteer["id"]).values(
                created_at=utcnow() - timedelta(seconds=ago)))
    for handout in (first, second):
        assert api.answer(volunteer["headers"], handout["task"]["id"],
                          handout["lease"]["token"]).status_code == 201
    seconds = client.get("/api/v1/volunteers/me", headers=volunteer["headers"]).json["seconds"]
    assert 90 <= seconds - TASK_SECONDS_CAP <= 95


def test_only_a_volunteer_has_a_record(client, api, charity):
    assert api.error(client.get("/api/v1/volunteers/me"), 401)
    assert api.error(client.get("/api/v1/volunteers/me", headers=charity), 403)
