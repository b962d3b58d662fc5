"""Fair hand-out (issue 14, point 3): at most Settings.max_leases live leases per
volunteer in a project, at most Settings.max_extends extends per lease, and a
skipped lease cannot be answered.

Everything runs on the real Redis scripts and SQL; lease expiry is waited for
(a one-second lease), never asserted as a duration.
"""
from __future__ import annotations

import dataclasses
import time

import pytest
from sqlalchemy import func, select, update

from engine.dispatch import leases
from engine.dispatch.answer_rows import insert_answer
from engine.dispatch.dispatcher import (
    ExtendLimitError,
    LeaseLimitError,
    LeaseSkippedError,
    keys,
)
from engine.dispatch.rebuild import rebuild_project
from engine.errors import ConflictError, GoneError, TooManyRequestsError
from engine.projects import publish
from engine.store.models import Answer, Project
from engine.volunteering import (
    extend_lease,
    next_task,
    next_tasks,
    skip_task,
    submit_answer,
)


def _answers(services, task_id=None) -> int:
    query = select(func.count()).select_from(Answer)
    if task_id is not None:
        query = query.where(Answer.task_id == task_id)
    with services.db.session() as session:
        return session.scalar(query)


def _held(services, project_id: int, volunteer_id: int) -> int:
    return services.redis.zcard(f"{keys(project_id)['prefix']}held:{volunteer_id}")


def _lease_seconds(services, project, seconds: int) -> None:
    with services.db.session() as session:
        session.execute(update(Project).where(Project.id == project.id)
                        .values(lease_seconds=seconds))
        fresh = session.get(Project, project.id)
    publish(services, fresh)


def _settings(services, **changes) -> None:
    services.settings = dataclasses.replace(services.settings, **changes)


# --- the cap on live leases --------------------------------------------------------------

def test_three_hoarders_no_longer_lease_a_whole_project(services, make_project, volunteer):
    """The attack of the issue: 3 volunteers asking for 5 tasks at a time leased all
    20 tasks and an honest volunteer got nothing. Now each holds at most 5."""
    project = make_project(tasks=20, min_answers=1, max_answers=1)
    hoarders = [volunteer() for _ in range(3)]
    for hoarder in hoarders:
        assert len(next_tasks(services, hoarder, project.id, count=5)) == 5
        for _ in range(3):  # asking again, and again, gets them no more
            with pytest.raises(LeaseLimitError):
                next_tasks(services, hoarder, project.id, count=5)
    assert next_task(services, volunteer(), project.id) is not None


def test_the_cap_is_a_429_with_the_time_until_the_oldest_lease_expires(
        services, make_project, volunteer):
    project = make_project(tasks=10)
    v = volunteer()
    first = next_task(services, v, project.id)
    next_tasks(services, v, project.id, count=4)
    with pytest.raises(TooManyRequestsError) as refused:
        next_task(services, v, project.id)
    assert refused.value.code == "too_many_leases"
    assert refused.value.message == "too many tasks held: answer or skip one first"
    left = (first.expires_at.timestamp() - time.time())
    assert 1 <= refused.value.retry_after <= left + 1


def test_a_preload_is_cut_to_the_places_left(services, make_project, volunteer):
    project = make_project(tasks=10)
    v = volunteer()
    assert len(next_tasks(services, v, project.id, count=3)) == 3
    assert len(next_tasks(services, v, project.id, count=5)) == 2
    assert _held(services, project.id, v.id) == 5


def test_answering_or_skipping_frees_a_place(services, make_project, volunteer):
    project = make_project(tasks=10)
    v = volunteer()
    held = next_tasks(services, v, project.id, count=5)
    submit_answer(services, v, held[0].task_id, held[0].lease, {"label": "a"})
    assert len(next_tasks(services, v, project.id, count=5)) == 1
    assert skip_task(services, v, held[1].lease)
    assert next_task(services, v, project.id) is not None
    with pytest.raises(LeaseLimitError):
        next_task(services, v, project.id)


def test_expired_leases_stop_counting(services, make_project, volunteer):
    project = make_project(tasks=12)
    _lease_seconds(services, project, 1)
    v = volunteer()
    assert len(next_tasks(services, v, project.id, count=5)) == 5
    with pytest.raises(LeaseLimitError):
        next_task(services, v, project.id)
    time.sleep(1.2)
    assert len(next_tasks(services, v, project.id, count=5)) == 5


def test_the_cap_is_per_project(services, make_project, volunteer):
    one, other = make_project(tasks=6), make_project(tasks=6)
    v = volunteer()
    next_tasks(services, v, one.id, count=5)
    assert len(next_tasks(services, v, other.id, count=5)) == 5


def test_the_cap_follows_the_setting(services, make_project, volunteer):
    project = make_project(tasks=10)
    _settings(services, max_leases=2)
    v = volunteer()
    assert len(next_tasks(services, v, project.id, count=5)) == 2
    with pytest.raises(LeaseLimitError):
        next_task(services, v, project.id)


def test_a_rebuild_starts_the_counts_again_from_what_it_knows(services, make_project,
                                                               volunteer):
    """Live leases live in Redis only: a wipe loses them (their tasks go back to the
    pool) and the counts with them, consistently, so nobody stays locked out."""
    project = make_project(tasks=12)
    v = volunteer()
    held = next_tasks(services, v, project.id, count=5)
    services.redis.flushdb()
    again = next_tasks(services, v, project.id, count=5)
    assert len(again) == 5 and not {h.task_id for h in held} & {h.task_id for h in again}
    assert _held(services, project.id, v.id) == 5
    with pytest.raises(LeaseLimitError):
        next_task(services, v, project.id)
    rebuild_project(services, project.id)  # as `bitesize queue rebuild`
    assert _held(services, project.id, v.id) == 0
    # the old leases' answers still count: tokens are signed
    receipt = submit_answer(services, v, held[0].task_id, held[0].lease, {"label": "a"})
    assert receipt.counted


# --- extends -----------------------------------------------------------------------------

def test_a_lease_is_extended_at_most_max_extends_times(services, make_project, volunteer):
    project = make_project(tasks=2)
    v = volunteer()
    handout = next_task(services, v, project.id)
    for _ in range(4):
        assert extend_lease(services, v, handout.lease) >= handout.expires_at
    with pytest.raises(ConflictError) as refused:
        extend_lease(services, v, handout.lease)
    assert isinstance(refused.value, ExtendLimitError)
    assert "4 times" in refused.value.message
    # still live and answerable within its last term
    assert submit_answer(services, v, handout.task_id, handout.lease, {"label": "a"}).counted


def test_extends_follow_the_setting_and_count_per_lease(services, make_project, volunteer):
    project = make_project(tasks=3)
    _settings(services, max_extends=1)
    v = volunteer()
    one, two = next_tasks(services, v, project.id, count=2)
    extend_lease(services, v, one.lease)
    with pytest.raises(ExtendLimitError):
        extend_lease(services, v, one.lease)
    extend_lease(services, v, two.lease)  # another lease has its own count


def test_an_extend_moves_the_expiry_the_cap_counts_by(services, make_project, volunteer):
    """The cap's Retry-After and its count read the volunteer's own expiries: an
    extend must move theirs with the lease's."""
    project = make_project(tasks=4)
    v = volunteer()
    handout = next_task(services, v, project.id)
    extended = extend_lease(services, v, handout.lease)
    held = services.redis.zscore(f"{keys(project.id)['prefix']}held:{v.id}", handout.task_id)
    assert held == extended.timestamp() * 1000


# --- skipped leases ----------------------------------------------------------------------

def test_a_skipped_lease_cannot_be_answered(services, make_project, volunteer):
    project = make_project(tasks=1, min_answers=1, max_answers=1)
    v = volunteer()
    handout = next_task(services, v, project.id)
    assert skip_task(services, v, handout.lease)
    with pytest.raises(GoneError) as refused:
        submit_answer(services, v, handout.task_id, handout.lease, {"label": "a"})
    assert isinstance(refused.value, LeaseSkippedError)
    assert refused.value.message == "this task was skipped"
    assert _answers(services) == 0
    # the task went back: another volunteer gets it and their answer counts
    other = volunteer()
    again = next_task(services, other, project.id)
    assert again.task_id == handout.task_id
    assert submit_answer(services, other, again.task_id, again.lease, {"label": "b"}).counted


def test_a_skip_between_the_insert_and_redis_withdraws_the_answer(services, make_project,
                                                                   volunteer):
    """The answer row is committed before Redis closes the lease: a skip that lands
    in between (or a first attempt that stopped there) leaves a row that the
    submit must take back, so nothing of a skipped lease stays in SQL."""
    project = make_project(tasks=1, min_answers=1, max_answers=1)
    v = volunteer()
    handout = next_task(services, v, project.id)
    claim = leases.verify(services.settings.secret_key, handout.lease)
    insert_answer(services.db, claim, handout.lease, {"label": "a"})
    assert _answers(services) == 1
    assert skip_task(services, v, handout.lease)
    with pytest.raises(LeaseSkippedError):
        submit_answer(services, v, handout.task_id, handout.lease, {"label": "a"})
    assert _answers(services) == 0


def test_skipping_an_expired_lease_still_refuses_its_answer(services, make_project, volunteer):
    project = make_project(tasks=2)
    _lease_seconds(services, project, 1)
    v = volunteer()
    handout = next_task(services, v, project.id)
    time.sleep(1.2)
    next_task(services, volunteer(), project.id)  # reaps the expired lease
    assert skip_task(services, v, handout.lease) is False  # nothing live went back
    with pytest.raises(LeaseSkippedError):
        submit_answer(services, v, handout.task_id, handout.lease, {"label": "a"})
    assert _answers(services) == 0


def test_a_skip_after_the_answer_changes_nothing(services, make_project, volunteer):
    project = make_project(tasks=1, min_answers=1, max_answers=1)
    v = volunteer()
    handout = next_task(services, v, project.id)
    first = submit_answer(services, v, handout.task_id, handout.lease, {"label": "a"})
    assert skip_task(services, v, handout.lease) is False
    retry = submit_answer(services, v, handout.task_id, handout.lease, {"label": "a"})
    assert (retry.answer_id, retry.counted) == (first.answer_id, True)
    assert _answers(services) == 1
