"""Rebuild a project's dispatch state in Redis from SQL, the system of record.

Runs on `bitesize queue rebuild`, and by itself when the hot path finds a
project's state missing (Redis restarted empty, flushed, or failed over). A
Redis lock makes concurrent finders wait for one rebuild instead of racing.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Text, cast, false, func, select, true

from engine.dispatch.dispatcher import REBUILT_GRACE_MS, OpenTask, keys
from engine.projects import is_final, project_missing, publish
from engine.services import Services
from engine.store.db import custom_plans
from engine.store.models import Answer, Handout, Project, Task, VolunteerStat, aware, utcnow

LOCK_MS = 120_000
# Checkouts and submits that reached Redis just before it was wiped are still
# committing their SQL rows; a rebuild that waits this long reads them too.
IN_FLIGHT_GRACE_SECONDS = 0.25
LOAD_CHUNK = 500  # task ids per IN (...) when a few tasks are loaded back


def rebuild_project(services: Services, project_id: int, wait_seconds: float = 30) -> int:
    """Recompute all dispatch state of a project; returns the open tasks loaded.

    Holds the same lock as ensure_state, so that a hot path call that finds the
    state missing mid-rebuild (a block or a quarantine rebuilds a live project)
    waits for this rebuild instead of starting a second one beside it. Its meta
    goes first, so that calls wait for the rebuild, and the rebuild waits for
    the answers already counted in Redis to commit, then reads SQL."""
    with rebuild_lock(services, project_id, wait_seconds):
        if services.redis.delete(keys(project_id)["meta"]):
            time.sleep(IN_FLIGHT_GRACE_SECONDS)
        return _rebuild(services, project_id)


@contextmanager
def rebuild_lock(services: Services, project_id: int,
                 wait_seconds: float = 30) -> Iterator[None]:
    """The project's rebuild lock, waited for. A rebuild reads SQL, then rewrites
    Redis: a block or quarantine that set its mute in Redis between the two
    would be erased, and the volunteer's next answers counted. So moderation
    holds this lock while it mutes and commits (engine.quality.moderation). A
    stuck lock (a crashed holder) is not waited on past ``wait_seconds``."""
    lock = _lock_key(project_id)
    deadline = time.monotonic() + wait_seconds
    while not (held := services.redis.set(lock, "1", nx=True, px=LOCK_MS)):
        if time.monotonic() > deadline:
            break  # go ahead without it
        time.sleep(0.02)
    try:
        yield
    finally:
        if held:
            services.redis.delete(lock)


def take_out(services: Services, project_id: int, task_id: int) -> None:
    """Take a task an admin or the volunteers' reports closed out of the pool,
    under the project's rebuild lock: a rebuild that read SQL before the close
    committed would write the task back, and hand it out again. (A live merge's
    close, on the volunteer's request, is covered by the rebuild's in-flight
    grace instead of this lock.)"""
    with rebuild_lock(services, project_id):
        services.dispatcher.settle(project_id, task_id, None)


def _lock_key(project_id: int) -> str:
    # Outside the project's key prefix (a rebuild drops those), same cluster slot.
    return f"bs:rebuilding:{{p:{project_id}}}"


def _rebuild(services: Services, project_id: int) -> int:
    """Read the project from SQL in one transaction (one snapshot) and stream it
    into Redis as it is read: Redis stores one batch while the next is read."""
    dispatcher = services.dispatcher
    with services.db.session() as session:
        project = session.get(Project, project_id)
        if project is None:
            raise project_missing(project_id)
        blocked, quarantined = _moderated(session, project_id)
        dispatcher.drop_project(project_id)
        loaded = _load(services, session, project, (), set(blocked) | set(quarantined))
    dispatcher.block(project_id, blocked)
    dispatcher.mute(project_id, quarantined)
    # Meta last: its presence means "state is complete". Of the row as it is
    # now, not as the load's snapshot read it: a change committed during the
    # load is waiting on this lock to publish (republish), and must not find
    # its own publish written over by an older row.
    project = _current(services, project_id)
    if project is None:  # a draft deleted meanwhile: nothing of it stays in Redis
        dispatcher.drop_project(project_id)
        raise project_missing(project_id)
    publish(services, project)
    return loaded


def republish(services: Services, project_id: int) -> None:
    """Publish a project's settings after a change to its row has committed.

    Under the rebuild lock, reading the row again there: two changes, or a
    change and a rebuild that read the row before it, then publish in the
    order they hold the lock, each the row as it is then, so the last publish
    is never an older row's (a stale answer schema, stale kept quality
    thresholds, or a paused project handing out tasks). Only over state Redis
    still has (a wiped project is left to its rebuild). An archived project's
    tasks leave Redis: its results are final, a late answer is surplus."""
    with rebuild_lock(services, project_id):
        project = _current(services, project_id)
        if project is None:
            return
        if is_final(project):
            services.dispatcher.drop_project(project_id)
            publish(services, project)  # the meta alone is its whole state
        else:
            publish(services, project, present_only=True)


def _current(services: Services, project_id: int) -> Project | None:
    """The project's row as committed now (a session of its own: a snapshot
    older than this call would miss what it must not miss)."""
    with services.db.session() as session:
        return session.get(Project, project_id)


def load_tasks(services: Services, project_id: int, task_ids: list[int]) -> int:
    """Put these tasks back into a project's dispatch state from SQL, those of
    them that are open and have no state there: a re-merge reopened them, and
    Redis keeps nothing of a closed task. The project is not rebuilt (a
    rebuild holds every volunteer's calls while it reads SQL); nothing is
    done when it has no state at all (its rebuild will read SQL). Returns how
    many tasks were put. The caller holds the project's rebuild lock, so that
    no rebuild loads them too."""
    absent = services.dispatcher.stateless(project_id, sorted(set(task_ids)))
    if not absent:
        return 0
    loaded = 0
    with services.db.session() as session:
        custom_plans(session)
        project = session.get(Project, project_id)
        moderated = set().union(*_moderated(session, project_id))
        for start in range(0, len(absent), LOAD_CHUNK):
            loaded += _load(services, session, project,
                            (Task.id.in_(absent[start:start + LOAD_CHUNK]),), moderated)
    return loaded


def _moderated(session, project_id: int) -> tuple[list[int], list[int]]:
    """The volunteers blocked in the project, and those quarantined there."""
    blocked = session.scalars(select(VolunteerStat.volunteer_id).where(
        VolunteerStat.project_id == project_id, VolunteerStat.blocked.is_(True))).all()
    quarantined = session.scalars(select(VolunteerStat.volunteer_id).where(
        VolunteerStat.project_id == project_id,
        VolunteerStat.quarantined_at.is_not(None))).all()
    return list(blocked), list(quarantined)


def _load(services: Services, session, project: Project, which: tuple,
          muted: set[int]) -> int:
    """Stream the project's open tasks (``which``: more conditions on them), their
    stored answers and hand-outs into Redis; returns how many tasks were put."""
    rows = session.connection()  # Core rows for the big reads: no ORM per row
    # An archived project's results are final: no task of it is loaded, so an
    # answer to a lease handed out before the archive is kept, as surplus.
    open_task = (Task.project_id == project.id, Task.state == "open",
                 false() if is_final(project) else true(), *which)
    skipped, late = _still_skipped(rows, project.id, which)
    # An answer stored while its volunteer was being blocked or quarantined
    # (after the recount, before this read) may still say counted: it must
    # not count here, so that its submit finds it surplus and marks it so.
    # One sent with a lease given back (``late``) is its submit's to withdraw.
    answered = [(task, volunteer, counted and volunteer not in muted)
                for task, volunteer, counted in rows.execute(
                    select(Answer.task_id, Answer.volunteer_id, Answer.counted)
                    .join(Task, Task.id == Answer.task_id).where(*open_task))
                if (task, volunteer) not in late]
    handed = rows.execute(
        select(Handout.task_id, Handout.volunteer_id)
        .join(Task, Task.id == Handout.task_id).where(*open_task)).all()
    return services.dispatcher.add_tasks(
        project.id, _open_tasks(rows, open_task, muted, late), answered, handed,
        project.strategy, skipped=skipped)


def _still_skipped(connection, project_id: int, which: tuple
                   ) -> tuple[list[tuple[int, int]], dict[tuple[int, int], bool]]:
    """The hand-outs given back (a skip, a report) whose token may still be sent
    with an answer, of any task of the project (``which``: more conditions on
    them): a closed one's too, so that an answer to it is refused, not stored.
    Read through the small index of released hand-outs.

    One answered before the skip is left out: that answer got its 2xx, and its
    retried submit must be recognised, not withdrawn. One answered after it
    (an answer committed, its submit not yet run) stays skipped, and is also
    returned with whether that answer says counted: its submit will find the
    lease skipped and withdraw it, so the rebuild must not count it."""
    since = utcnow() - timedelta(milliseconds=REBUILT_GRACE_MS)
    found = connection.execute(
        select(Handout.task_id, Handout.volunteer_id, Handout.released_at,
               Answer.created_at, Answer.counted)
        .join(Task, Task.id == Handout.task_id)
        .outerjoin(Answer, (Answer.task_id == Handout.task_id)
                   & (Answer.volunteer_id == Handout.volunteer_id))
        .where(Handout.project_id == project_id, Handout.released_at > since, *which)).all()
    skipped, late = [], {}
    for task, volunteer, released, answered_at, counted in found:
        if answered_at is None or aware(answered_at) >= aware(released):
            skipped.append((task, volunteer))
        if answered_at is not None and aware(answered_at) >= aware(released):
            late[(task, volunteer)] = bool(counted)
    return skipped, late


def _open_tasks(connection, open_task: tuple, muted: set[int],
                late: dict[tuple[int, int], bool]) -> Iterator[OpenTask]:
    """The open tasks (``open_task``: their conditions) with their counted answers,
    leaving out blocked or quarantined volunteers' (``muted``) and those sent
    with a lease given back (``late``: counted or not), as they are read.

    Each task's count is a correlated subquery of the one read, an index probe
    per task (the answers' unique (task, volunteer) index): a count of all the
    open tasks' answers first, into a dict, cost a million-task rebuild about
    1.5 s more on SQLite, before the first task could go to Redis."""
    counted = select(func.count()).where(Answer.task_id == Task.id, Answer.counted.is_(True))
    if muted:
        counted = counted.where(Answer.volunteer_id.not_in(sorted(muted)))
    withdrawn = Counter(task for (task, volunteer), was_counted in late.items()
                        if was_counted and volunteer not in muted)
    rows = connection.execution_options(yield_per=5000).execute(
        # the payload as its JSON text: Redis stores it so
        select(Task.id, Task.need, cast(Task.payload, Text), Task.priority, Task.is_gold,
               counted.correlate(Task).scalar_subquery())
        .where(*open_task).order_by(Task.id))
    if not withdrawn:
        for tid, need, payload, priority, is_gold, done in rows:
            yield OpenTask(tid, need, done, payload, priority, is_gold)
        return
    for tid, need, payload, priority, is_gold, done in rows:
        yield OpenTask(tid, need, max(done - withdrawn[tid], 0), payload, priority, is_gold)


def ensure_state(services: Services, project_id: int, wait_seconds: float = 30) -> None:
    """Rebuild a project's missing state once, however many processes notice.

    Those who find the lock taken wait for it, then look again: the holder may
    not have been a rebuild (a republish, which leaves a lost project's state
    to its rebuild, or a moderation), and then the state is still missing and
    one of them rebuilds it."""
    lock = _lock_key(project_id)
    meta = keys(project_id)["meta"]
    deadline = time.monotonic() + wait_seconds
    while True:
        if services.redis.set(lock, "1", nx=True, px=LOCK_MS):
            try:
                if not services.redis.exists(meta):
                    time.sleep(IN_FLIGHT_GRACE_SECONDS)
                    _rebuild(services, project_id)
            finally:
                services.redis.delete(lock)
            return
        while time.monotonic() < deadline and services.redis.exists(lock):
            time.sleep(0.02)
        if time.monotonic() >= deadline or services.redis.exists(meta):
            return
