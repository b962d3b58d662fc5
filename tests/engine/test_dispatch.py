"""Dispatch correctness on a real Redis: leases, retries, skips, expiry, wipes."""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select, update

from engine.errors import ConflictError
from engine.projects import publish
from engine.store.models import Answer, Handout, Project, Task
from engine.volunteering import next_task, skip_task, submit_answer


@pytest.fixture
def setup_project(make_project):
    return make_project


def counted_per_task(services, project_id):
    with services.db.session() as session:
        rows = session.execute(select(Answer.task_id, func.count()).where(
            Answer.project_id == project_id, Answer.counted.is_(True)).group_by(Answer.task_id))
        return dict(rows.all())


def test_a_task_goes_to_at_most_need_volunteers_at_a_time(services, setup_project, volunteer):
    project = setup_project(tasks=1, min_answers=2, max_answers=2)
    first, second, third = (volunteer() for _ in range(3))
    assert next_task(services, first, project.id) is not None
    assert next_task(services, second, project.id) is not None
    assert next_task(services, third, project.id) is None  # both slots leased


def test_never_the_same_task_twice(services, setup_project, volunteer):
    project = setup_project(tasks=3)
    v = volunteer()
    seen = []
    while (handout := next_task(services, v, project.id)) is not None:
        seen.append(handout.task_id)
        submit_answer(services, v, handout.task_id, handout.lease, {"label": "a"})
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 3


def test_breadth_first_order(services, setup_project, volunteer):
    project = setup_project(tasks=3)
    handouts = [next_task(services, volunteer(), project.id) for _ in range(3)]
    assert len({h.task_id for h in handouts}) == 3  # each task leased once before any twice


def test_retried_submit_is_idempotent(services, setup_project, volunteer):
    project = setup_project(tasks=1)
    v = volunteer()
    h = next_task(services, v, project.id)
    first = submit_answer(services, v, h.task_id, h.lease, {"label": "a"})
    again = submit_answer(services, v, h.task_id, h.lease, {"label": "a"})
    assert again.answer_id == first.answer_id and again.counted
    assert counted_per_task(services, project.id) == {h.task_id: 1}


def test_second_answer_with_another_lease_conflicts(services, setup_project, volunteer):
    from engine.dispatch import leases

    project = setup_project(tasks=1)
    v = volunteer()
    h = next_task(services, v, project.id)
    submit_answer(services, v, h.task_id, h.lease, {"label": "a"})
    another = leases.LeaseClaim(project.id, h.task_id, v.id,
                                leases.verify(services.settings.secret_key, h.lease).expires_ms + 1)
    forged = leases.issue(services.settings.secret_key, another)
    with pytest.raises(ConflictError):
        submit_answer(services, v, h.task_id, forged, {"label": "b"})


def test_expired_lease_returns_task_and_late_answer_is_kept(services, setup_project, volunteer):
    project = setup_project(tasks=1, min_answers=1, max_answers=1)
    _set_lease_seconds(services, project.id, 1)
    slow, quick = volunteer(), volunteer()
    late = next_task(services, slow, project.id)
    assert next_task(services, quick, project.id) is None
    time.sleep(1.1)
    fresh = next_task(services, quick, project.id)
    assert fresh is not None and fresh.task_id == late.task_id
    assert submit_answer(services, quick, fresh.task_id, fresh.lease, {"label": "a"}).counted
    receipt = submit_answer(services, slow, late.task_id, late.lease, {"label": "b"})
    assert receipt.counted is False  # the task no longer needed it; still stored
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Answer)) == 2


def test_late_answer_counts_when_still_needed(services, setup_project, volunteer):
    project = setup_project(tasks=1, min_answers=2, max_answers=2)
    _set_lease_seconds(services, project.id, 1)
    v = volunteer()
    h = next_task(services, v, project.id)
    time.sleep(1.1)
    assert submit_answer(services, v, h.task_id, h.lease, {"label": "a"}).counted


def test_skip_gives_the_task_back_but_not_to_the_skipper(services, setup_project, volunteer):
    project = setup_project(tasks=1, min_answers=1, max_answers=1)
    skipper, other = volunteer(), volunteer()
    h = next_task(services, skipper, project.id)
    assert next_task(services, other, project.id) is None
    assert skip_task(services, skipper, h.lease) is True
    assert next_task(services, skipper, project.id) is None
    assert next_task(services, other, project.id).task_id == h.task_id


def test_redis_wipe_is_rebuilt_without_loss_or_doubling(services, setup_project, volunteer):
    project = setup_project(tasks=4, min_answers=2, max_answers=2)
    vols = [volunteer() for _ in range(3)]
    h = next_task(services, vols[0], project.id)
    submit_answer(services, vols[0], h.task_id, h.lease, {"label": "a"})
    pending = next_task(services, vols[1], project.id)
    services.redis.flushdb()  # Redis restarted empty mid-run
    # a retry of the first submit must not count twice; the pending lease still answers
    submit_answer(services, vols[0], h.task_id, h.lease, {"label": "a"})
    submit_answer(services, vols[1], pending.task_id, pending.lease, {"label": "a"})
    for v in vols:
        while (handout := next_task(services, v, project.id)) is not None:
            submit_answer(services, v, handout.task_id, handout.lease, {"label": "a"})
    counts = counted_per_task(services, project.id)
    assert sorted(counts.values()) == [2, 2, 2, 2]
    with services.db.session() as session:
        states = Counter(session.scalars(select(Task.state).where(Task.project_id == project.id)))
    assert states == {"retired": 4}


def test_paused_project_hands_out_nothing(services, setup_project, volunteer):
    project = setup_project(tasks=1)
    with services.db.session() as session:
        session.execute(update(Project).where(Project.id == project.id).values(state="paused"))
        paused = session.get(Project, project.id)
    publish(services, paused)
    with pytest.raises(ConflictError):
        next_task(services, volunteer(), project.id)


def test_concurrent_volunteers_get_exactly_the_needed_answers(services, setup_project, volunteer):
    project = setup_project(tasks=20, min_answers=3, max_answers=3)
    vols = [volunteer() for _ in range(12)]
    seen: dict[int, list[int]] = {v.id: [] for v in vols}
    errors = []

    def run(v):
        try:
            while (handout := next_task(services, v, project.id)) is not None:
                seen[v.id].append(handout.task_id)
                submit_answer(services, v, handout.task_id, handout.lease, {"label": "b"})
        except Exception as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(v,)) for v in vols]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(len(tasks) == len(set(tasks)) for tasks in seen.values())
    assert sorted(counted_per_task(services, project.id).values()) == [3] * 20


def _set_lease_seconds(services, project_id, seconds):
    with services.db.session() as session:
        session.execute(update(Project).where(Project.id == project_id)
                        .values(lease_seconds=seconds))
        project = session.get(Project, project_id)
    publish(services, project)


def test_tasks_shown_stay_away_from_that_volunteer_after_a_wipe(services, setup_project,
                                                                volunteer):
    project = setup_project(tasks=2, min_answers=2, max_answers=2)
    v = volunteer()
    skipped = next_task(services, v, project.id)
    skip_task(services, v, skipped.lease)
    abandoned = next_task(services, v, project.id)
    services.redis.flushdb()
    assert next_task(services, v, project.id) is None  # both were shown once already
    other = volunteer()
    shown = {next_task(services, other, project.id).task_id for _ in range(2)}
    assert shown == {skipped.task_id, abandoned.task_id}  # others still get them
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Handout)) == 4


@pytest.mark.parametrize("seen", [3, 4, 5, 20, 84, 300])
def test_a_volunteer_who_saw_the_best_tasks_gets_the_best_unseen_one(services, setup_project,
                                                                    volunteer, seen):
    """Checkout looks past the tasks at the top of the pool that this volunteer has
    seen, in batches (4, 16, 64, 256 ...): the first unseen one is handed out,
    whichever batch it falls in, and from the top of the next batch too."""
    from engine.dispatch.dispatcher import seen_key
    project = setup_project(tasks=seen + 3, strategy="fifo")
    with services.db.session() as session:
        ids = session.scalars(select(Task.id).where(Task.project_id == project.id)
                              .order_by(Task.id)).all()
    v = volunteer()
    services.redis.sadd(seen_key(project.id, v.id), *ids[:seen])
    handout = next_task(services, v, project.id)
    assert handout is not None and handout.task_id == ids[seen]


def test_a_volunteer_who_saw_more_than_the_scan_limit_is_told_nothing_is_left(
        services, setup_project, volunteer, monkeypatch):
    """How deep a checkout looks is bounded (SCAN_LIMIT): it never scans a whole pool
    for a volunteer who saw its top, and never hands out a task they saw."""
    from engine.dispatch import dispatcher
    project = setup_project(tasks=30, strategy="fifo")
    with services.db.session() as session:
        ids = session.scalars(select(Task.id).where(Task.project_id == project.id)
                              .order_by(Task.id)).all()
    v = volunteer()
    services.redis.sadd(dispatcher.seen_key(project.id, v.id), *ids[:25])
    monkeypatch.setattr(dispatcher, "SCAN_LIMIT", 20)
    assert next_task(services, v, project.id) is None
    monkeypatch.setattr(dispatcher, "SCAN_LIMIT", 26)
    assert next_task(services, v, project.id).task_id == ids[25]
