"""Trust is earned (issue 14, point 2): over HTTP, a crowd of fresh sign-ups
cannot retire tasks on their own answers, however many they are; an
established volunteer (by age or by gold) can; held tasks retire once their
volunteers have earned trust."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from engine.quality.held import release_held
from engine.quality.reliability import estimate_changed
from engine.store.models import Result, Task, Volunteer, utcnow

TRUSTING = {"quarantine": False}  # answers here take no time; trust keeps its defaults


def _age(services, volunteer_ids, hours: float = 2) -> None:
    with services.db.writing() as session:
        session.execute(update(Volunteer).where(Volunteer.id.in_(volunteer_ids))
                        .values(created_at=utcnow() - timedelta(hours=hours)))


def _answer_all(api, volunteer, project_id, label) -> int:
    """Answer every task the volunteer is handed; how many."""
    answered = 0
    while True:
        r = api.client.get(f"/api/v1/projects/{project_id}/tasks/next",
                           headers=volunteer["headers"])
        if r.status_code == 204:
            return answered
        assert r.status_code == 200, r.get_data(True)
        task = r.json["task"]
        assert api.answer(volunteer["headers"], task["id"], r.json["lease"]["token"],
                          label).status_code == 201
        answered += 1


def _tasks(services, project_id) -> list[tuple[str, str | None, int]]:
    """(state, result label, need) per task, in id order."""
    with services.db.session() as session:
        rows = session.execute(
            select(Task.state, Result.value, Task.need)
            .outerjoin(Result, Result.task_id == Task.id)
            .where(Task.project_id == project_id, Task.is_gold.is_(False))
            .order_by(Task.id)).all()
    return [tuple(row) for row in rows]


@pytest.fixture
def penguins(api, charity) -> int:
    """The attack's scene: 8 photos, min 3 and max 5 answers, confidence 0.8."""
    project = api.project(charity, min_answers=3, max_answers=5, confidence=0.8,
                          quality=TRUSTING)
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(8)])
    return project["id"]


def test_ten_fresh_volunteers_cannot_retire_a_wrong_answer(api, services, penguins):
    """The review's attack: one honest "penguin" on 8 tasks, then 10 fresh
    volunteers answering "seal" made every result "seal" at 0.8, retired. Now
    no task retires on newcomers alone: every task is held or contested, even
    after the quality job has run."""
    honest = api.volunteer()
    assert _answer_all(api, honest, penguins, "penguin") == 8
    fakes = [api.volunteer() for _ in range(10)]
    assert sum(_answer_all(api, fake, penguins, "seal") for fake in fakes) == 8 * 4
    estimate_changed(services)
    release_held(services)
    tasks = _tasks(services, penguins)
    assert len(tasks) == 8
    assert not [t for t in tasks if t[0] == "retired"], tasks
    for state, label, need in tasks:
        assert state in ("open", "contested")
        if state == "open":  # held: confident, out of the pool, waiting for trust
            assert (label, need) == ("seal", 5)
    assert api.client.get(f"/api/v1/projects/{penguins}/tasks/next",
                          headers=api.volunteer()["headers"]).status_code == 204


def test_an_established_volunteer_lets_a_task_retire(api, charity, services):
    """A volunteer whose account is older than trusted_after_minutes (30) supports
    the result: the task retires at its third answer, as it always did."""
    project = api.project(charity, min_answers=3, max_answers=5, confidence=0.8,
                          quality=TRUSTING)
    api.items(charity, project["id"], [{"text": "photo"}])
    veteran, first, second = api.volunteer(), api.volunteer(), api.volunteer()
    _age(services, [veteran["id"]])
    for volunteer in (first, second, veteran):
        assert _answer_all(api, volunteer, project["id"], "penguin") == 1
    assert _tasks(services, project["id"]) == [("retired", "penguin", 3)]


def test_held_tasks_retire_once_their_volunteers_are_established(api, services, penguins):
    """Newcomers who agree fill a task to max_answers and it is held; once they are
    older than trusted_after_minutes the quality job's sweep retires it."""
    crowd = [api.volunteer() for _ in range(5)]
    for volunteer in crowd:
        _answer_all(api, volunteer, penguins, "penguin")
    assert {t[0] for t in _tasks(services, penguins)} == {"open"}
    assert release_held(services) == {penguins: 0}  # still newcomers: still held
    _age(services, [v["id"] for v in crowd])
    assert release_held(services) == {penguins: 8}
    assert set(_tasks(services, penguins)) == {("retired", "penguin", 5)}


def test_gold_establishes_a_newcomer_without_waiting(api, charity, services):
    """A volunteer who got 3 gold tasks right is established at once: tasks they
    support retire without waiting for their account to age."""
    project = api.project(charity, min_answers=2, max_answers=4, confidence=0.7,
                          quality=TRUSTING, gold_start=1.0, gold_floor=0.0, gold_ramp=3)
    pid = project["id"]
    api.items(charity, pid, [{"text": f"gold {n}", "gold": "penguin"} for n in range(3)]
              + [{"text": f"photo {n}"} for n in range(4)])
    expert, newcomer = api.volunteer(), api.volunteer()
    assert _answer_all(api, expert, pid, "penguin") == 7  # 3 gold, then the 4 photos
    _answer_all(api, newcomer, pid, "penguin")
    assert set(_tasks(services, pid)) == {("retired", "penguin", 2)}


def test_gold_that_establishes_a_volunteer_releases_their_held_tasks_soon(
        api, charity, services, work):
    """Five newcomers agree on 4 photos: held. One of them then gets 3 gold tasks
    right; the answer that establishes them queues a release, and the worker
    retires the held tasks without waiting for the periodic quality job."""
    project = api.project(charity, min_answers=3, max_answers=5, confidence=0.8,
                          quality=TRUSTING, gold_start=1.0, gold_floor=1.0)
    pid = project["id"]
    api.items(charity, pid, [{"text": f"photo {n}"} for n in range(4)])
    crowd = [api.volunteer() for _ in range(5)]
    for volunteer in crowd:
        assert _answer_all(api, volunteer, pid, "penguin") == 4
    assert _tasks(services, pid) == [("open", "penguin", 5)] * 4
    assert api.client.get(f"/api/v1/projects/{pid}", headers=charity).json[
        "progress"]["held"] == 4
    api.items(charity, pid, [{"text": f"gold {n}", "gold": "penguin"} for n in range(3)])
    assert _answer_all(api, crowd[0], pid, "penguin") == 3  # answers 5-7: each checked
    work()
    assert _tasks(services, pid) == [("retired", "penguin", 5)] * 4
    assert api.client.get(f"/api/v1/projects/{pid}", headers=charity).json[
        "progress"]["held"] == 0


def test_trust_can_be_turned_off_for_a_charitys_own_test_run(api, charity, services):
    """trusted_after_minutes 0: everyone is established, as before the issue."""
    project = api.project(charity, min_answers=2, max_answers=3, confidence=0.6,
                          quality={"quarantine": False, "trusted_after_minutes": 0})
    api.items(charity, project["id"], [{"text": "photo"}])
    for volunteer in (api.volunteer(), api.volunteer()):
        _answer_all(api, volunteer, project["id"], "seal")
    assert _tasks(services, project["id"]) == [("retired", "seal", 2)]
    shown = api.client.get(f"/api/v1/projects/{project['id']}", headers=charity).json
    assert shown["quality"]["trusted_after_minutes"] == 0
    assert shown["quality"]["trusted_after_gold"] == 3
