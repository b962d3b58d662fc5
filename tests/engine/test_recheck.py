"""Re-checking retired work: when a volunteer's reliability falls below the
project's threshold, the tasks they helped retire are merged again with their
new weight; those whose result changed or whose confidence fell below the
target reopen (and the webhook hears task.reopened), the others stay retired."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from engine.delivery import webhooks
from engine.delivery.sender import deliver_due
from engine.quality import recheck
from engine.quality.reliability import estimate_project
from engine.store.models import Result, Task, VolunteerStat, WebhookEvent
from engine.volunteering import next_task, submit_answer
from task_types.classify import classify

# rows: the true label; columns: the answer. This volunteer says the opposite.
CONTRARIAN = [[0.1, 0.9], [0.9, 0.1]]


@pytest.fixture
def hooked(services, owner, receiver, make_project):
    """A project (make_project's options) whose webhook points at the receiver."""

    def make(**options):
        project = make_project(**options)
        webhooks.set_webhook(services, owner, project.id, {"url": receiver.url,
                                                           "secret": "s" * 20})
        return project

    return make


def answer_all(services, project, volunteer, label="a"):
    answered = []
    while (handout := next_task(services, volunteer, project.id)) is not None:
        submit_answer(services, volunteer, handout.task_id, handout.lease, {"label": label})
        answered.append(handout.task_id)
    return answered


def set_stat(services, project_id, volunteer_id, reliability, confusion=None):
    """What a quality run would have stored for this volunteer."""
    with services.db.writing() as session:
        stat = session.get(VolunteerStat, (project_id, volunteer_id)) or VolunteerStat(
            project_id=project_id, volunteer_id=volunteer_id, answers=0, gold_answers=0,
            gold_score=0.0, flags=[], blocked=False)
        stat.reliability, stat.confusion = reliability, confusion
        session.add(stat)


def task_and_result(services, task_id):
    with services.db.session() as session:
        task, result = session.get(Task, task_id), session.get(Result, task_id)
        return (task.state, task.need), (result.value, round(result.confidence, 3))


def reopened_events(services):
    with services.db.session() as session:
        return [e.payload for e in session.scalars(
            select(WebhookEvent).where(WebhookEvent.type == "task.reopened"))]


def test_threshold_is_just_above_chance():
    assert recheck.threshold(classify, {"question": "?", "labels": ["a", "b"]}) == \
        pytest.approx(0.6)
    assert recheck.threshold(classify, {"question": "?", "labels": list("abcd")}) == \
        pytest.approx(0.35)


def test_flipped_result_reopens_and_a_new_volunteer_gets_it(services, hooked, volunteer,
                                                             receiver):
    project = hooked(tasks=1, min_answers=1, max_answers=3, confidence=0.8)
    spammer = volunteer()
    [task_id] = answer_all(services, project, spammer)
    assert task_and_result(services, task_id) == (("retired", 1), ("a", 1.0))

    set_stat(services, project.id, spammer.id, 0.1, CONTRARIAN)
    done = recheck.recheck_projects(services, [project.id])[project.id]
    assert done.fallen == [spammer.id] and done.reopened == [task_id]
    # the merge now says "b" with confidence 0.9, above target: it reopens all the same
    assert task_and_result(services, task_id) == (("open", 2), ("b", 0.9))

    [payload] = reopened_events(services)
    [reported] = payload["tasks"]
    assert reported["id"] == task_id and reported["state"] == "open"
    assert reported["reason"] == "result_changed" and reported["need"] == 2
    assert reported["old"] == {"value": "a", "confidence": 1.0}
    assert reported["new"]["value"] == "b"
    assert reported["new"]["confidence"] == pytest.approx(0.9)

    assert next_task(services, spammer, project.id) is None  # already answered it
    newcomer = volunteer()
    handout = next_task(services, newcomer, project.id)
    assert handout is not None and handout.task_id == task_id

    deliver_due(services)
    delivered = [json.loads(c["body"]) for c in receiver.calls]
    reopened = [b for b in delivered if b["event"] == "task.reopened"]
    assert len(reopened) == 1 and reopened[0]["data"]["tasks"][0]["id"] == task_id
    assert reopened[0]["data"]["tasks"][0]["old"]["value"] == "a"

    # checked once: the same estimate on the next run re-checks nothing
    again = recheck.recheck_projects(services, [project.id])[project.id]
    assert again.fallen == [] and again.remerged == 0


def test_low_confidence_reopens_and_a_holding_result_stays(services, hooked, volunteer):
    project = hooked(tasks=2, min_answers=2, max_answers=4, confidence=0.8)
    doubtful, honest, other = volunteer(), volunteer(), volunteer()
    # both tasks retire "a" on a plain majority: the doubtful volunteer with the
    # honest one on one task and with another volunteer (not re-estimated) on the other
    first = next_task(services, doubtful, project.id)
    second = next_task(services, doubtful, project.id)
    for handout in (first, second):
        submit_answer(services, doubtful, handout.task_id, handout.lease, {"label": "a"})
    held, weak = first.task_id, second.task_id
    for v, task_id in ((honest, held), (other, weak)):
        handout = next_task(services, v, project.id)
        while handout.task_id != task_id:
            handout = next_task(services, v, project.id)
        submit_answer(services, v, handout.task_id, handout.lease, {"label": "a"})
    assert task_and_result(services, held)[0] == ("retired", 2)
    assert task_and_result(services, weak)[0] == ("retired", 2)

    set_stat(services, project.id, doubtful.id, 0.55)  # below 0.6
    set_stat(services, project.id, honest.id, 0.97)
    set_stat(services, project.id, other.id, 0.7)
    done = recheck.recheck_projects(services, [project.id])[project.id]
    assert done.fallen == [doubtful.id] and done.remerged == 2 and done.reopened == [weak]

    (state, need), (value, confidence) = task_and_result(services, weak)
    assert (state, need, value) == ("open", 3, "a") and confidence < 0.8
    (state, _), (value, confidence) = task_and_result(services, held)
    assert (state, value) == ("retired", "a") and confidence >= 0.8

    [payload] = reopened_events(services)
    assert [t["id"] for t in payload["tasks"]] == [weak]
    assert payload["tasks"][0]["reason"] == "low_confidence"
    assert payload["tasks"][0]["old"]["confidence"] == 1.0


def test_flipped_result_at_max_answers_is_contested(services, hooked, volunteer):
    project = hooked(tasks=1, min_answers=1, max_answers=1, confidence=0.8)
    spammer = volunteer()
    [task_id] = answer_all(services, project, spammer)
    set_stat(services, project.id, spammer.id, 0.1, CONTRARIAN)
    assert recheck.recheck_projects(services, [project.id])[project.id].reopened == [task_id]
    assert task_and_result(services, task_id)[0][0] == "contested"  # no more answers: review
    [payload] = reopened_events(services)
    assert payload["tasks"][0]["state"] == "contested"
    assert next_task(services, volunteer(), project.id) is None


def test_reliable_volunteers_tasks_are_not_touched(services, hooked, volunteer):
    project = hooked(tasks=1, min_answers=1, max_answers=3, confidence=0.8)
    good = volunteer()
    [task_id] = answer_all(services, project, good)
    set_stat(services, project.id, good.id, 0.65)  # above 0.6
    done = recheck.recheck_projects(services, [project.id])[project.id]
    assert done.fallen == [] and done.remerged == 0
    assert task_and_result(services, task_id)[0] == ("retired", 1)
    assert reopened_events(services) == []


def test_the_quality_job_rechecks_after_estimating(services, hooked, volunteer, work):
    """End to end: a volunteer who gets every gold question wrong retired a task
    on their own answer; the periodic job re-estimates them and reopens it. (Few
    answers: too few for a flag, which would quarantine them instead.)"""
    items = [{"text": "t0"}] + [{"text": f"g{n}", "gold": "b"} for n in range(3)]
    project = hooked(items=items, min_answers=1, max_answers=3, confidence=0.8,
                     gold_start=1.0)
    spammer = volunteer()
    answered = answer_all(services, project, spammer)
    with services.db.session() as session:
        [task_id] = session.scalars(select(Task.id).where(
            Task.project_id == project.id, Task.is_gold.is_(False))).all()
    assert answered[-1] == task_id and len(answered) == 4  # the gold first, all wrong
    assert task_and_result(services, task_id)[0] == ("retired", 1)

    services.queue("high").enqueue("workers.jobs.estimate_quality")
    work()
    with services.db.session() as session:
        stat = session.get(VolunteerStat, (project.id, spammer.id))
    assert stat.reliability < recheck.threshold(classify, project.config)
    (state, need), _ = task_and_result(services, task_id)
    assert (state, need) == ("open", 2)
    assert [t["id"] for p in reopened_events(services) for t in p["tasks"]] == [task_id]
    assert task_id in answer_all(services, project, volunteer(), "b")  # back in dispatch
    assert estimate_project(services, project.id) == 2


def test_blocking_reports_the_tasks_it_reopens(services, hooked, volunteer, owner):
    """A block (or quarantine) that reopens retired tasks tells the webhook too,
    with each task's old and new result; a task it leaves retired is not named."""
    from engine.identity import Identity
    from engine.quality import moderation

    project = hooked(tasks=2, min_answers=2, max_answers=3)
    script, honest = volunteer(), volunteer()
    answer_all(services, project, script, "a")
    answer_all(services, project, honest, "a")  # both tasks retire on two "a"s
    with services.db.session() as session:
        states = {t.id: t.state for t in session.scalars(
            select(Task).where(Task.project_id == project.id))}
    assert set(states.values()) == {"retired"}
    admin = Identity("user", owner.id, owner.organisation_id, "admin")
    assert moderation.block(services, admin, project.id, script.id, reason="a script") == 2
    events = reopened_events(services)
    tasks = [t for e in events for t in e["tasks"]]
    assert sorted(t["id"] for t in tasks) == sorted(states)
    assert all(t["old"]["value"] == "a" and t["state"] == "open" for t in tasks)
