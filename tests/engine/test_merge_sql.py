"""The live merge's SQL (engine.quality.merge_sql): one read for the task and its
counted answers, and the write that applies only to the task as read. On
PostgreSQL the write is one statement, on SQLite a short transaction: the same
three outcomes on both, checked here on whichever database the suite runs."""
from __future__ import annotations

from sqlalchemy import select, update

from engine.quality import consensus, merge_sql
from engine.store.models import Answer, Result, Task, Webhook, utcnow
from engine.store.prepared import transaction
from engine.volunteering import next_task, submit_answer
from task_types import Aggregate


def _answer(services, volunteer, project, label="a"):
    handout = next_task(services, volunteer, project.id)
    return submit_answer(services, volunteer, handout.task_id, handout.lease, {"label": label})


def _read(services, task_id):
    with transaction(services.db) as cursor:
        found = merge_sql.statements(services.db).read.execute(cursor, {"task_id": task_id})
    return consensus._task_and_answers(found)


def _retiring(task_id, project_id, need, answers):
    """A write that retires the task with the value "b" (the tests' answers say "a",
    so a result of "b" can only come from this write)."""
    merged = consensus.Merged(Aggregate("b", 0.9, {"b": 0.9}), "posterior")
    outcome = consensus._Outcome("retired", need, utcnow(), None)
    return consensus._Write(task_id, project_id, need, answers, merged, outcome)


def _state(services, task_id):
    with services.db.session() as session:
        result = session.get(Result, task_id)
        return session.get(Task, task_id).state, result.value if result else None


def test_the_read_gives_the_task_with_no_answers_then_each_counted_one_oldest_first(
        services, make_project, volunteer):
    project = make_project(tasks=1, min_answers=4, max_answers=4)
    with services.db.session() as session:
        task_id = session.scalars(select(Task.id).where(Task.project_id == project.id)).one()
    task, rows = _read(services, task_id)
    assert (task.state, task.need, task.task_type, rows) == ("open", 4, "classify", [])

    first, *_ = (_answer(services, volunteer(), project, label) for label in "aba")
    with services.db.session() as session:  # an answer that stopped counting is left out
        session.execute(update(Answer).where(Answer.id == first.answer_id).values(counted=False))
    task, rows = _read(services, task_id)
    assert [row[0] for row in rows] == [{"label": "b"}, {"label": "a"}]
    assert len(rows[0]) == len(merge_sql.MERGED_COLUMNS)


def test_the_write_applies_to_the_task_as_read(services, make_project, volunteer):
    project = make_project(tasks=1, min_answers=3, max_answers=3)
    answered = _answer(services, volunteer(), project)
    write = _retiring(answered.task_id, project.id, need=3, answers=1)
    assert write.fast(services, merge_sql.statements(services.db)) == consensus._WRITTEN
    assert _state(services, answered.task_id) == ("retired", "b")


def test_the_write_changes_nothing_when_the_task_changed_since_it_was_read(
        services, make_project, volunteer):
    project = make_project(tasks=1, min_answers=3, max_answers=3)
    answered = _answer(services, volunteer(), project)
    sql = merge_sql.statements(services.db)
    # read with one counted answer; a second came in since
    stale = _retiring(answered.task_id, project.id, need=3, answers=0)
    assert stale.fast(services, sql) == consensus._CHANGED
    assert _state(services, answered.task_id) == ("open", None)
    # read at another need than the task has now
    assert _retiring(answered.task_id, project.id, need=4, answers=1).fast(
        services, sql) == consensus._CHANGED
    assert _state(services, answered.task_id) == ("open", None)


def test_a_finished_task_of_a_project_with_a_webhook_is_left_to_the_outbox(
        services, make_project, volunteer):
    project = make_project(tasks=1, min_answers=3, max_answers=3)
    answered = _answer(services, volunteer(), project)
    with services.db.session() as session:
        session.add(Webhook(project_id=project.id, url="https://example.org/hook",
                            secret="s" * 32, events=["task.retired"]))
    write = _retiring(answered.task_id, project.id, need=3, answers=1)
    assert write.fast(services, merge_sql.statements(services.db)) == consensus._HOOKED
    assert _state(services, answered.task_id) == ("open", None)  # nothing written
    # the outbox's path writes it and records the event
    assert write.with_outbox(services, merge_sql.statements(services.db)) == consensus._RECORDED
    assert _state(services, answered.task_id) == ("retired", "b")
    # an outcome that does not finish the task is written on the fast path
    more = consensus._Write(answered.task_id, project.id, 3, 1, write.merged,
                            consensus._Outcome("open", 4, None, 4))
    with services.db.session() as session:
        session.execute(update(Task).where(Task.id == answered.task_id)
                        .values(state="open", retired_at=None))
    assert more.fast(services, merge_sql.statements(services.db)) == consensus._WRITTEN
    with services.db.session() as session:
        assert session.get(Task, answered.task_id).need == 4
