"""POST .../answers with `next`: a volunteer's cycle (answer, then the next task) in one call.

The answer is stored exactly as without `next`; the hand-out after it is the
one GET .../tasks/next?count=N would make (lease, SQL handout record, cap),
and a hand-out that cannot be made never costs the answer its 201.
"""
from __future__ import annotations

from sqlalchemy import select

from engine.store.models import Handout

from .test_hot_path import _served, flask_only, hot  # noqa: F401  (fixtures)


def _answer(client, volunteer: dict, handout: dict, label: str = "penguin", **extra):
    return client.post(f"/api/v1/tasks/{handout['task']['id']}/answers",
                       json={"lease": handout["lease"]["token"], "answer": {"label": label},
                             **extra}, headers=volunteer["headers"])


def _handouts(services, volunteer_id: int) -> list[int]:
    with services.db.session() as session:
        return sorted(session.scalars(select(Handout.task_id).where(
            Handout.volunteer_id == volunteer_id)))


def test_the_reply_hands_out_the_next_task_and_its_lease_answers_it(client, hot, api, project,  # noqa: F811, E501
                                                                     services, count_answers):
    volunteer = api.volunteer()
    first = api.next_task(volunteer["headers"], project["id"])
    r, served = _served(hot, client, f"/api/v1/tasks/{first['task']['id']}/answers",
                        method="POST", headers=volunteer["headers"],
                        json={"lease": first["lease"]["token"], "answer": {"label": "seal"},
                              "next": 1})
    assert (r.status_code, served) == (201, 1), r.get_data(True)
    assert r.json["counted"] and r.json["task"] == first["task"]["id"]
    second = r.json["next"]
    assert set(second) == {"task", "lease"}  # as GET .../tasks/next answers, no `queue`
    assert second["task"]["id"] != first["task"]["id"]
    assert second["task"]["type"] == "classify" and second["task"]["payload"]
    # who was shown what is in SQL, as after a GET .../tasks/next
    assert _handouts(services, volunteer["id"]) == sorted(
        [first["task"]["id"], second["task"]["id"]])
    last = _answer(client, volunteer, second, next=1)
    assert last.status_code == 201
    assert last.json["next"] is None and "next_error" not in last.json  # nothing left: a 204
    assert count_answers(services) == 2


def test_without_next_the_reply_is_unchanged(client, api, project):
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    r = _answer(client, volunteer, handout, next=0)
    assert r.status_code == 201 and set(r.json) == {"id", "task", "counted", "created_at"}


def test_next_n_also_leases_a_queue_to_preload(client, api, charity, services):
    project = api.project(charity)
    api.items(charity, project["id"], [{"text": f"photo {n}", "id": str(n)} for n in range(5)])
    volunteer = api.volunteer()
    first = api.next_task(volunteer["headers"], project["id"])
    r = _answer(client, volunteer, first, next=3)
    assert r.status_code == 201
    handed = [r.json["next"], *r.json["next"]["queue"]]
    assert len(handed) == 3
    ids = {h["task"]["id"] for h in handed}
    assert len(ids) == 3 and first["task"]["id"] not in ids
    assert len(_handouts(services, volunteer["id"])) == 4


def test_the_flask_view_gives_the_same_reply(flask_only, api, project):  # noqa: F811
    volunteer = api.volunteer()
    first = api.next_task(volunteer["headers"], project["id"])
    r = _answer(flask_only, volunteer, first, next=1)
    assert r.status_code == 201
    assert set(r.json) == {"id", "task", "counted", "created_at", "next"}
    assert set(r.json["next"]) == {"task", "lease"}
    assert r.json["next"]["task"]["id"] != first["task"]["id"]


def test_a_hand_out_that_cannot_be_made_still_stores_the_answer(client, api, project, charity,
                                                                 services, count_answers):
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    paused = client.post(f"/api/v1/projects/{project['id']}/pause", headers=charity)
    assert paused.status_code == 200, paused.get_data(True)
    r = _answer(client, volunteer, handout, next=1)
    assert r.status_code == 201, r.get_data(True)
    assert r.json["next"] is None
    assert r.json["next_error"]["status"] == 409
    assert r.json["next_error"]["code"] and r.json["next_error"]["message"]
    assert count_answers(services) == 1


def test_a_retried_answer_with_next_is_stored_once(client, api, project, services,
                                                    count_answers):
    volunteer = api.volunteer()
    first = api.next_task(volunteer["headers"], project["id"])
    once = _answer(client, volunteer, first, next=1)
    again = _answer(client, volunteer, first, next=1)
    assert once.status_code == again.status_code == 201
    assert once.json["id"] == again.json["id"]
    assert count_answers(services) == 1
    # the first reply's task is still this volunteer's to answer; the retry found no other
    assert again.json["next"] is None
    assert _answer(client, volunteer, once.json["next"]).status_code == 201


def test_next_out_of_range_is_a_422_naming_it_and_nothing_is_stored(client, api, project,
                                                                     services, count_answers):
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    for bad in (6, -1, "two", 1.5, None):
        error = api.error(_answer(client, volunteer, handout, next=bad), 422)
        assert "next" in error["fields"], error
    assert count_answers(services) == 0


def _script_calls(services) -> int:
    """Scripts Redis ran since the last CONFIG RESETSTAT (EVALSHA and EVAL)."""
    stats = services.redis.info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_eval"))


def test_the_answer_and_the_next_hand_out_are_one_redis_script_call(client, api, project,
                                                                     services):
    # The one-call cycle's point: the submit and the next checkout share one round trip.
    volunteer = api.volunteer()
    first = api.next_task(volunteer["headers"], project["id"])
    services.redis.config_resetstat()
    r = _answer(client, volunteer, first, next=1)
    assert r.status_code == 201 and r.json["next"], r.get_data(True)
    assert _script_calls(services) == 1  # first answer of two needed: no merge, no settle


def test_an_answer_to_a_skipped_lease_with_next_is_refused_and_leases_nothing(
        client, api, project, services, count_answers):
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    skipped = client.delete(f"/api/v1/leases/{handout['lease']['token']}",
                            headers=volunteer["headers"])
    assert skipped.status_code == 200, skipped.get_data(True)
    r = _answer(client, volunteer, handout, next=1)
    assert api.error(r, 410)["code"] == "lease_skipped"
    assert count_answers(services) == 0
    # the other task is still there for them: the refused call leased nothing
    assert _handouts(services, volunteer["id"]) == [handout["task"]["id"]]
    other = api.next_task(volunteer["headers"], project["id"])
    assert other["task"]["id"] != handout["task"]["id"]


def test_the_next_hand_out_fills_only_the_place_the_answer_freed_under_the_cap(
        client, api, charity, services, count_answers):
    project = api.project(charity)
    api.items(charity, project["id"], [{"text": f"photo {n}", "id": str(n)} for n in range(9)])
    volunteer = api.volunteer()
    first = api.next_task(volunteer["headers"], project["id"])
    cap = services.settings.max_leases
    held = client.get(f"/api/v1/projects/{project['id']}/tasks/next?count={cap - 1}",
                      headers=volunteer["headers"])
    assert held.status_code == 200
    r = _answer(client, volunteer, first, next=2)  # one place free after this answer
    assert r.status_code == 201 and r.json["next"]["queue"] == [], r.get_data(True)
    assert count_answers(services) == 1
    assert len(_handouts(services, volunteer["id"])) == cap + 1


def test_an_answer_with_next_after_redis_was_wiped_rebuilds_and_hands_out(
        client, api, project, services, count_answers):
    volunteer = api.volunteer()
    first = api.next_task(volunteer["headers"], project["id"])
    services.redis.flushdb()  # Redis restarted empty between the two calls
    r = _answer(client, volunteer, first, next=1)
    assert r.status_code == 201 and r.json["counted"], r.get_data(True)
    # the rebuild kept the answered task from them; the other one is handed out
    assert r.json["next"]["task"]["id"] != first["task"]["id"]
    assert count_answers(services) == 1
    assert _answer(client, volunteer, r.json["next"]).status_code == 201
