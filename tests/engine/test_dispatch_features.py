"""Dispatch features: strategies, priority, preloading, lease extension, gold mixing."""
from __future__ import annotations

import random
import time

import pytest
from sqlalchemy import select, update

from engine.errors import GoneError
from engine.projects import publish
from engine.store.models import Project, Task
from engine.volunteering import (
    extend_lease,
    next_task,
    next_tasks,
    skip_task,
    submit_answer,
)


def handed_order(services, project, volunteer, count):
    """Task ids in the order fresh volunteers get them."""
    return [next_task(services, volunteer(), project.id).task_id for _ in range(count)]


def task_ids(services, project):
    with services.db.session() as session:
        return list(session.scalars(select(Task.id).where(Task.project_id == project.id)
                                    .order_by(Task.id)))


@pytest.mark.parametrize("strategy", ["fifo", "breadth"])
def test_upload_order_first(services, make_project, volunteer, strategy):
    project = make_project(tasks=4, min_answers=2, max_answers=2, strategy=strategy)
    ids = task_ids(services, project)
    order = handed_order(services, project, volunteer, 8)
    if strategy == "fifo":
        assert order == [ids[0], ids[0], ids[1], ids[1], ids[2], ids[2], ids[3], ids[3]]
    else:
        assert order == ids + ids  # every task once before any twice


def test_depth_finishes_started_tasks_first(services, make_project, volunteer):
    project = make_project(tasks=3, min_answers=3, max_answers=3, strategy="depth")
    ids = task_ids(services, project)
    assert handed_order(services, project, volunteer, 4) == [ids[0]] * 3 + [ids[1]]


def test_random_is_a_fixed_shuffle_not_upload_order(services, make_project, volunteer):
    project = make_project(tasks=12, min_answers=1, max_answers=1, strategy="random")
    ids = task_ids(services, project)
    order = handed_order(services, project, volunteer, 12)
    assert sorted(order) == ids and order != ids


def test_priority_jumps_the_queue(services, make_project, volunteer):
    project = make_project(tasks=3, min_answers=1, max_answers=1)
    urgent = make_project.add_items(project, [{"text": "urgent"}], priority=5)
    with services.db.session() as session:
        urgent_task = session.scalar(select(Task.id).where(Task.project_id == project.id)
                                     .order_by(Task.id.desc()))
    assert urgent.priority == 5
    assert next_task(services, volunteer(), project.id).task_id == urgent_task


def test_preloading_leases_several_distinct_tasks(services, make_project, volunteer):
    project = make_project(tasks=4, min_answers=1, max_answers=1)
    v = volunteer()
    handouts = next_tasks(services, v, project.id, count=3)
    assert len({h.task_id for h in handouts}) == 3
    assert len(next_tasks(services, v, project.id, count=5)) == 1  # only one left
    assert next_tasks(services, volunteer(), project.id, count=5) == []


def test_extending_keeps_a_lease_alive(services, make_project, volunteer):
    project = make_project(tasks=1, min_answers=1, max_answers=1)
    _lease_seconds(services, project, 1)
    v = volunteer()
    handout = next_task(services, v, project.id)
    time.sleep(0.6)
    extended = extend_lease(services, v, handout.lease)
    assert extended > handout.expires_at
    time.sleep(0.6)  # past the first expiry, within the extension
    assert next_task(services, volunteer(), project.id) is None
    time.sleep(0.6)
    with pytest.raises(GoneError):
        extend_lease(services, v, handout.lease)


def test_gold_is_mixed_in_at_a_falling_rate_and_never_counts(services, make_project, volunteer):
    items = [{"text": f"t{n}"} for n in range(200)] + [
        {"text": f"g{n}", "gold": "a"} for n in range(60)]
    project = make_project(items=items, min_answers=1, max_answers=1,
                           gold_start=0.5, gold_floor=0.1, gold_ramp=20)
    with services.db.session() as session:
        gold = set(session.scalars(select(Task.id).where(Task.is_gold.is_(True))))
    random.seed(1234)  # the dispatcher's draws: a fixed sequence, no flaky bounds
    v = volunteer()
    early, late = [], []
    for n in range(100):
        handout = next_task(services, v, project.id)
        (early if n < 20 else late).append(handout.task_id in gold)
        receipt = submit_answer(services, v, handout.task_id, handout.lease, {"label": "a"})
        assert receipt.counted
    assert 4 <= sum(early) <= 17  # ~50% of the first 20
    assert sum(late[40:]) <= 20  # ~10% once experienced
    with services.db.session() as session:
        states = set(session.scalars(select(Task.state).where(Task.id.in_(gold))))
    assert states == {"open"}  # gold never retires and never counts toward redundancy


def test_experience_for_the_gold_rate_survives_a_redis_wipe(services, make_project, volunteer):
    """Experience is what the volunteer was shown (their seen set), which a rebuild
    restores from the handouts: a wipe does not send them back to the gold ramp."""
    items = [{"text": f"t{n}"} for n in range(20)] + [
        {"text": f"g{n}", "gold": "a"} for n in range(20)]
    project = make_project(items=items, min_answers=3, max_answers=3,
                           gold_start=1.0, gold_floor=0.0, gold_ramp=3)
    with services.db.session() as session:
        gold = set(session.scalars(select(Task.id).where(Task.is_gold.is_(True))))
    v = volunteer()
    shown = [_shown_and_skipped(services, v, project.id) in gold for _ in range(8)]
    assert shown[:3] == [True] * 3 and shown[6:] == [False] * 2  # the rate fell to 0
    services.redis.flushdb()
    assert next_task(services, v, project.id).task_id not in gold  # still 0, not back to 1


def _shown_and_skipped(services, v, project_id) -> int:
    """A task shown to the volunteer and given back (they may hold only
    Settings.max_leases leases at once); it still counts as experience."""
    handout = next_task(services, v, project_id)
    assert skip_task(services, v, handout.lease)
    return handout.task_id


def _lease_seconds(services, project, seconds):
    with services.db.session() as session:
        session.execute(update(Project).where(Project.id == project.id)
                        .values(lease_seconds=seconds))
        fresh = session.get(Project, project.id)
    publish(services, fresh)
