"""Live results (engine.quality.consensus.update_result) when another writer changes the task
between the merge's read and its write: the write applies only to the task as read."""
from __future__ import annotations

from sqlalchemy import select, update

from engine.quality import consensus
from engine.quality.review import resolve
from engine.store.models import Answer, Result, Task
from engine.volunteering import next_task, submit_answer


def _answer(services, volunteer, project, label="a"):
    handout = next_task(services, volunteer, project.id)
    return submit_answer(services, volunteer, handout.task_id, handout.lease, {"label": label})


def _merging_after(monkeypatch, change):
    """update_result's merge, with `change` made (once) just before it."""
    real = consensus.merge
    changed = []

    def merge(*args):
        if not changed:
            changed.append(change())
        return real(*args)

    monkeypatch.setattr(consensus, "merge", merge)
    return changed


def test_a_settlement_made_meanwhile_is_not_written_over(services, make_project, volunteer,
                                                         owner, monkeypatch):
    project = make_project(tasks=1, min_answers=2, max_answers=2)
    first = _answer(services, volunteer(), project)
    changed = _merging_after(monkeypatch, lambda: resolve(services, owner, first.task_id,
                                                          {"label": "b"}))
    _answer(services, volunteer(), project)  # completes the task: its result is merged
    assert changed
    with services.db.session() as session:
        task, result = session.get(Task, first.task_id), session.get(Result, first.task_id)
        assert (task.state, result.value, result.method) == ("settled", "b", "settled")


def test_an_answer_uncounted_meanwhile_is_merged_out(services, make_project, volunteer,
                                                     monkeypatch):
    project = make_project(tasks=1, min_answers=2, max_answers=3)
    first = _answer(services, volunteer(), project, "b")

    def uncount_first():  # what blocking its volunteer does to the answer and the task
        with services.db.session() as session:
            session.execute(update(Answer).where(Answer.id == first.answer_id)
                            .values(counted=False))
            session.execute(update(Task).where(Task.id == first.task_id).values(need=2))
        return True

    _merging_after(monkeypatch, uncount_first)
    _answer(services, volunteer(), project, "a")
    with services.db.session() as session:
        task, result = session.get(Task, first.task_id), session.get(Result, first.task_id)
        counted = session.scalars(select(Answer.value).where(
            Answer.task_id == first.task_id, Answer.counted.is_(True))).all()
    assert counted == [{"label": "a"}]
    assert (task.state, task.need) == ("open", 2)  # one counted answer: one more wanted
    assert (result.answers, result.value) == (1, "a")
