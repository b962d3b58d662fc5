"""A moderation's re-merge (block, quarantine, clear, unblock): a chunk per
transaction, dispatch told task by task instead of a rebuild of the project,
and a re-merge left by a lost process finished by the periodic quality job."""
from __future__ import annotations

import random

import pytest
from sqlalchemy import event, select

from engine import volunteering
from engine.dispatch.dispatcher import keys, seen_key
from engine.dispatch.rebuild import rebuild_project
from engine.quality import consensus, moderation, remerging
from engine.store.models import Answer, AuditEntry, Result, Task, VolunteerStat
from engine.volunteering import next_task, submit_answer

LABELS = ["a", "b"]


@pytest.fixture
def worked(services, make_project, volunteer):
    """A two-label project of 30 tasks (2 to 4 answers, confidence 0.8) that three
    volunteers, then a suspect, then the three again answered: tasks retired
    with the suspect's help, tasks open with the suspect's answer counted (one
    answer of two, or asking for more after a disagreement), others untouched;
    no lease left live."""
    project = make_project(tasks=30, min_answers=2, max_answers=4, confidence=0.8)
    rng = random.Random(5)
    suspect, *others = [volunteer() for _ in range(4)]
    for who, count in [*((o, 6) for o in others), (suspect, 20), *((o, 4) for o in others)]:
        for _ in range(count):
            handout = next_task(services, who, project.id)
            if handout is None:
                break
            label = "a" if who is suspect else rng.choice(LABELS)
            submit_answer(services, who, handout.task_id, handout.lease, {"label": label})
    return project, suspect, [suspect, *others]


def dispatch_view(services, project_id: int, volunteers) -> dict:
    """What the project's dispatch state says, leases aside (none is live here)."""
    r, k = services.redis, keys(project_id)
    state = {int(t): v.decode() for t, v in r.hgetall(k["state"]).items()}
    return {
        "state": state,
        "pool": [int(t) for t in r.zrange(k["pool"], 0, -1)],  # in hand-out order
        "payload": sorted(int(t) for t in r.hkeys(k["payload"])),
        "seen": {v.id: sorted(int(t) for t in r.smembers(seen_key(project_id, v.id))
                              if int(t) in state) for v in volunteers},
        "muted": sorted(int(v) for v in r.smembers(k["muted"])),
        "blocked": sorted(int(v) for v in r.smembers(k["blocked"])),
    }


def no_rebuild(services, monkeypatch) -> list:
    """The projects whose dispatch state was dropped (as a rebuild drops it)."""
    dropped: list[int] = []
    drop = services.dispatcher.drop_project
    monkeypatch.setattr(services.dispatcher, "drop_project",
                        lambda pid: (dropped.append(pid), drop(pid))[1])
    return dropped


@pytest.mark.parametrize("first, then", [("quarantine", "clear"), ("block", "unblock")])
def test_moderation_moves_dispatch_counts_as_a_rebuild_would_without_one(
        services, worked, admin, monkeypatch, first, then):
    """Each moderation used to rebuild the whole project's dispatch state (every
    volunteer's calls wait while it reads SQL: seconds on a big project). Now the
    tasks' counts move by the answers that stopped or started counting, and the
    tasks that reopened are loaded back: the state is the one a rebuild makes."""
    project, suspect, everyone = worked
    dropped = no_rebuild(services, monkeypatch)
    before = dispatch_view(services, project.id, everyone)
    act = {"quarantine": lambda: moderation.quarantine_volunteer(
               services, admin, project.id, suspect.id),
           "block": lambda: moderation.block(services, admin, project.id, suspect.id),
           "clear": lambda: moderation.clear(services, admin, project.id, suspect.id),
           "unblock": lambda: moderation.unblock(services, admin, project.id, suspect.id)}
    for action in (first, then):
        act[action]()
        assert dropped == [], action
        after = dispatch_view(services, project.id, everyone)
        rebuild_project(services, project.id)
        assert after == dispatch_view(services, project.id, everyone), action
        dropped.clear()
        if action == first:  # the suspect's "a" had retired tasks: some reopened
            assert set(after["state"]) > set(before["state"])
            assert (after["muted"] if first == "quarantine" else after["blocked"]) == [
                suspect.id]
    assert after["muted"] == after["blocked"] == []
    with services.db.session() as session:  # and the marks are off
        assert session.get(VolunteerStat, (project.id, suspect.id)).remerging_since is None


def test_a_moderation_s_re_merge_commits_a_chunk_at_a_time(
        services, make_project, volunteer, monkeypatch):
    """One transaction for a prolific volunteer's re-merge held SQLite's write
    lock for seconds (10,000 answers: 6 s) with every other writer waiting."""
    monkeypatch.setattr(consensus, "CHUNK", 10)
    project = make_project(tasks=60, min_answers=1, max_answers=1)
    prolific = volunteer()
    while (handout := next_task(services, prolific, project.id)) is not None:
        submit_answer(services, prolific, handout.task_id, handout.lease, {"label": "a"})
    commits = []
    listener = (services.db.engine, "commit", lambda _conn: commits.append(1))
    event.listen(*listener)
    try:
        assert moderation.quarantine(services, project.id, prolific.id, ["manual"])
    finally:
        event.remove(*listener)
    # the recount, six chunks of ten tasks, the mark taken off
    assert len(commits) >= 8, len(commits)
    with services.db.session() as session:
        assert set(session.scalars(select(Task.state).where(
            Task.project_id == project.id))) == {"open"}
        entry = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "quarantine")).one()
    assert entry.detail["tasks_remerged"] == entry.detail["tasks_reopened"] == 60
    assert len(services.redis.zrange(keys(project.id)["pool"], 0, -1)) == 60


def test_a_re_merge_left_by_a_lost_process_is_finished_by_the_quality_job(
        services, make_project, volunteer, monkeypatch):
    """The process doing a re-merge may die between chunks: the volunteer's
    answers no longer count, but some tasks keep results merged with them. The
    mark left in SQL lets the periodic job finish it and rebuild dispatch."""
    monkeypatch.setattr(consensus, "CHUNK", 10)
    project = make_project(tasks=40, min_answers=1, max_answers=1)
    lost = volunteer()
    while (handout := next_task(services, lost, project.id)) is not None:
        submit_answer(services, lost, handout.task_id, handout.lease, {"label": "a"})
    remerge = consensus.remerge
    calls = []

    def dies_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise SystemExit("the worker was killed")
        return remerge(*args, **kwargs)

    monkeypatch.setattr(consensus, "remerge", dies_on_the_third)
    with pytest.raises(SystemExit):
        moderation.quarantine(services, project.id, lost.id, ["manual"])
    monkeypatch.setattr(consensus, "remerge", remerge)

    def results() -> list:
        with services.db.session() as session:
            return list(session.scalars(select(Result.value).where(
                Result.project_id == project.id).order_by(Result.task_id)))

    assert results().count("a") == 20  # two chunks of ten re-merged, two left
    with services.db.session() as session:
        assert not any(session.scalars(select(Answer.counted).where(
            Answer.volunteer_id == lost.id)))
    assert remerging.finish_remerges(services) == 0  # not stale yet: maybe still running
    assert remerging.finish_remerges(services, stale_seconds=-1) == 1
    assert results() == [None] * 40  # nothing counts: every task re-merged, reopened
    with services.db.session() as session:
        assert session.get(VolunteerStat, (project.id, lost.id)).remerging_since is None
    assert len(services.redis.zrange(keys(project.id)["pool"], 0, -1)) == 40
    assert remerging.finish_remerges(services, stale_seconds=-1) == 0


def task_state(services, project_id: int, task_id: int) -> tuple[int, ...] | None:
    """(need, done, live, priority) of a task in Redis, None without state."""
    raw = services.redis.hget(keys(project_id)["state"], task_id)
    return None if raw is None else tuple(int(x) for x in raw.decode().split(":"))


def test_a_need_lowered_below_what_is_counted_merges_the_task(
        services, make_project, volunteer, admin, monkeypatch):
    """A block lowers a task's need (3 -> 2 in SQL); before the re-merge's settle
    reaches Redis, another answer is counted there against the old need, so it
    starts no merge. Setting the lower need then leaves the task holding it,
    out of the pool: it must be merged now, or it stays open and unoffered."""
    project = make_project(tasks=1, min_answers=2, max_answers=4, confidence=0.9)
    a, blocked, b = volunteer(), volunteer(), volunteer()
    for who, label in ((a, "a"), (blocked, "b")):
        handout = next_task(services, who, project.id)
        submit_answer(services, who, handout.task_id, handout.lease, {"label": label})
    held = next_task(services, b, project.id)
    assert task_state(services, project.id, held.task_id)[:3] == (3, 2, 1)
    sync = consensus.sync_dispatch

    def answered_in_between(*args):
        submit_answer(services, b, held.task_id, held.lease, {"label": "a"})
        return sync(*args)

    monkeypatch.setattr(consensus, "sync_dispatch", answered_in_between)
    moderation.block(services, admin, project.id, blocked.id)
    with services.db.session() as session:
        task = session.get(Task, held.task_id)
        assert (task.state, session.get(Result, task.id).value) == ("retired", "a")
    assert task_state(services, project.id, held.task_id) is None


def test_an_answer_redis_never_counted_is_not_taken_off_its_count(
        services, make_project, volunteer, admin, monkeypatch):
    """The answer's row is stored counted; the block's Redis step lands before
    its submit, which then finds the volunteer blocked (surplus). The recount
    reads the row as counted: taking it off Redis's count too would have the
    task hand out one answer more than it needs."""
    project = make_project(tasks=1, min_answers=3, max_answers=3)
    a, blocked = volunteer(), volunteer()
    first = next_task(services, a, project.id)
    submit_answer(services, a, first.task_id, first.lease, {"label": "a"})
    late = next_task(services, blocked, project.id)
    submitted = volunteering._submitted

    def block_lands_meanwhile(*args):
        services.dispatcher.block(project.id, [blocked.id])  # the block's first step
        out = submitted(*args)  # the submit: surplus
        moderation.block(services, admin, project.id, blocked.id)
        return out

    monkeypatch.setattr(volunteering, "_submitted", block_lands_meanwhile)
    submit_answer(services, blocked, late.task_id, late.lease, {"label": "b"})
    after = task_state(services, project.id, late.task_id)
    rebuild_project(services, project.id)
    assert after == task_state(services, project.id, late.task_id) == (3, 1, 0, 0)


def test_a_lost_re_merge_keeps_its_mark_until_dispatch_is_rebuilt(
        services, make_project, volunteer, monkeypatch):
    """Finishing a lost re-merge rebuilds the project's dispatch (the lost process
    may have moved counts it never merged): if the rebuild fails, the mark stays
    for the next run."""
    monkeypatch.setattr(consensus, "CHUNK", 10)
    project = make_project(tasks=30, min_answers=1, max_answers=1)
    lost = volunteer()
    while (handout := next_task(services, lost, project.id)) is not None:
        submit_answer(services, lost, handout.task_id, handout.lease, {"label": "a"})
    monkeypatch.setattr(consensus, "remerge", dies_on_call(consensus.remerge, 2))
    with pytest.raises(SystemExit):
        moderation.quarantine(services, project.id, lost.id, ["manual"])
    monkeypatch.undo()

    def marked() -> bool:
        with services.db.session() as session:
            return session.get(VolunteerStat, (project.id, lost.id)).remerging_since is not None

    def redis_times_out(*_args):
        raise ConnectionError("Redis timed out")

    monkeypatch.setattr(remerging, "rebuild_project", redis_times_out)
    assert remerging.finish_remerges(services, stale_seconds=-1) == 0 and marked()
    monkeypatch.undo()
    assert remerging.finish_remerges(services, stale_seconds=-1) == 1 and not marked()


def test_a_block_during_a_quarantine_s_re_merge_takes_it_over(
        services, make_project, volunteer, admin, monkeypatch):
    """An admin blocks a volunteer while their quarantine's chunks still run: the
    block finds nothing more to stop counting, but must not take the mark
    away: when the quarantine's process then dies, the block has merged
    every task they answered again."""
    monkeypatch.setattr(consensus, "CHUNK", 10)
    project = make_project(tasks=30, min_answers=1, max_answers=1)
    who = volunteer()
    while (handout := next_task(services, who, project.id)) is not None:
        submit_answer(services, who, handout.task_id, handout.lease, {"label": "a"})
    sync, calls = consensus.sync_dispatch, []

    def block_then_die(*args):
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit("the quarantining process was killed")
        sync(*args)
        with monkeypatch.context() as another_process:  # whose syncs go through
            another_process.setattr(consensus, "sync_dispatch", sync)
            moderation.block(services, admin, project.id, who.id)

    monkeypatch.setattr(consensus, "sync_dispatch", block_then_die)
    with pytest.raises(SystemExit):
        moderation.quarantine(services, project.id, who.id, ["manual"])
    monkeypatch.undo()
    with services.db.session() as session:
        values = list(session.scalars(select(Result.value).where(
            Result.project_id == project.id)))
    assert values == [None] * 30  # nothing of theirs counts in any result


def dies_on_call(function, n: int):
    """``function``, except that its ``n``th call kills the process."""
    calls = []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise SystemExit("the worker was killed")
        return function(*args, **kwargs)

    return dying


def answered_while_redis_is_away(services, monkeypatch, project, first, away):
    """``first`` answers the project's task, then ``away`` answers it while Redis
    cannot be reached: stored, kept for the replay. Returns away's handout."""
    import redis

    handout = next_task(services, first, project.id)
    submit_answer(services, first, handout.task_id, handout.lease, {"label": "a"})
    late = next_task(services, away, project.id)

    def redis_away(*_args):
        raise redis.exceptions.ConnectionError("Redis is away")

    monkeypatch.setattr(volunteering, "_submitted", redis_away)
    receipt = submit_answer(services, away, late.task_id, late.lease, {"label": "b"})
    assert receipt.handout_error is not None
    monkeypatch.undo()
    return late


def test_an_answer_stored_while_redis_was_away_is_not_taken_off_its_count(
        services, make_project, volunteer, monkeypatch):
    """An answer stored while Redis was out of reach waits for its replay, and
    Redis never counted it; its lease meanwhile expired. Quarantining its
    volunteer before the replay must not take it off the task's count."""
    project = make_project(tasks=1, min_answers=3, max_answers=3)
    a, away, c = volunteer(), volunteer(), volunteer()
    late = answered_while_redis_is_away(services, monkeypatch, project, a, away)
    services.redis.zadd(keys(project.id)["leases"], {f"{late.task_id}:{away.id}": 0})
    assert next_task(services, c, project.id).task_id == late.task_id  # expired lease reaped
    moderation.quarantine(services, project.id, away.id, ["manual"])
    after = task_state(services, project.id, late.task_id)
    rebuild_project(services, project.id)
    assert after[:2] == task_state(services, project.id, late.task_id)[:2] == (3, 1)


# Found by a review of the first mends: each failed before its fix.

def test_a_surplus_lease_mark_outlives_a_clear_and_the_next_block_keeps_the_count(
        services, make_project, volunteer, admin):
    """A quarantined volunteer's answer is surplus in Redis (its lease key says
    'surplus' for 24 h). A clear counts it again (+1 in Redis). A block the
    same day must take it off again; recount.lua reads the stale 'surplus'
    key and passes over it, so Redis counts an answer SQL no longer counts."""
    project = make_project(tasks=1, min_answers=3, max_answers=3)
    a, suspect = volunteer(), volunteer()
    first = next_task(services, a, project.id)
    submit_answer(services, a, first.task_id, first.lease, {"label": "a"})
    late = next_task(services, suspect, project.id)
    moderation.quarantine_volunteer(services, admin, project.id, suspect.id)
    submit_answer(services, suspect, late.task_id, late.lease, {"label": "b"})  # surplus
    moderation.clear(services, admin, project.id, suspect.id)
    assert task_state(services, project.id, late.task_id) == (3, 2, 0, 0)  # right so far
    moderation.block(services, admin, project.id, suspect.id)
    after = task_state(services, project.id, late.task_id)
    rebuild_project(services, project.id)
    assert after == task_state(services, project.id, late.task_id) == (3, 1, 0, 0)


def test_a_rebuild_during_a_quarantine_leaves_surplus_marks_a_later_block_trips_on(
        services, make_project, volunteer, admin):
    """Same, via a rebuild while quarantined (Redis restart, finish_remerges,
    intake): mark.lua writes 'surplus' for each of the volunteer's answers."""
    project = make_project(tasks=1, min_answers=3, max_answers=3)
    a, suspect = volunteer(), volunteer()
    for who in (a, suspect):
        h = next_task(services, who, project.id)
        submit_answer(services, who, h.task_id, h.lease, {"label": "a"})
    task_id = h.task_id
    moderation.quarantine_volunteer(services, admin, project.id, suspect.id)
    rebuild_project(services, project.id)
    moderation.clear(services, admin, project.id, suspect.id)
    moderation.block(services, admin, project.id, suspect.id)
    after = task_state(services, project.id, task_id)
    rebuild_project(services, project.id)
    assert after == task_state(services, project.id, task_id)


def test_a_takeover_drops_the_rebuild_a_lost_recount_needed(
        services, make_project, volunteer, admin, monkeypatch):
    """A quarantine commits its recount and mark, then its Redis step fails (a
    timeout) or its process dies before it: Redis still counts the answers.
    finish_remerges would rebuild the project for that; but a block within ten
    minutes takes the mark over, merges again and takes the mark off, with no
    rebuild: the stale count stays until something else rebuilds."""
    project = make_project(tasks=1, min_answers=3, max_answers=3)
    a, suspect = volunteer(), volunteer()
    for who in (a, suspect):
        h = next_task(services, who, project.id)
        submit_answer(services, who, h.task_id, h.lease, {"label": "a"})

    def redis_times_out(*_args):
        raise ConnectionError("Redis timed out")

    monkeypatch.setattr(services.dispatcher, "recount", redis_times_out)
    with pytest.raises(ConnectionError):
        moderation.quarantine(services, project.id, suspect.id, ["manual"])
    monkeypatch.undo()
    moderation.block(services, admin, project.id, suspect.id)
    assert remerging.finish_remerges(services, stale_seconds=-1) == 0  # no mark left
    after = task_state(services, project.id, h.task_id)
    rebuild_project(services, project.id)
    assert after == task_state(services, project.id, h.task_id) == (3, 1, 0, 0)


def test_a_held_task_is_not_merged_again_by_sync_dispatch(
        services, make_project, volunteer, admin, monkeypatch):
    """settle.lua's 2 ('already holding its need') is also what every held task
    (open, need == its counted answers, out of the pool) returns: sync_dispatch
    then runs update_result on it, one more read and write transaction per held
    task of a re-merge, for nothing (the merge decides HOLD again)."""
    project = make_project(tasks=1, min_answers=2, max_answers=2, confidence=0.6,
                           quality={"quarantine": False, "trusted_after_minutes": 10_000})
    a, suspect = volunteer(), volunteer()
    for who in (a, suspect):
        h = next_task(services, who, project.id)
        submit_answer(services, who, h.task_id, h.lease, {"label": "a"})
    assert task_state(services, project.id, h.task_id)[:2] == (2, 2)  # held
    moderation.quarantine_volunteer(services, admin, project.id, suspect.id)
    calls = []
    update = consensus.update_result
    monkeypatch.setattr(consensus, "update_result",
                        lambda *args: (calls.append(args[2]), update(*args))[1])
    moderation.clear(services, admin, project.id, suspect.id)
    assert task_state(services, project.id, h.task_id)[:2] == (2, 2)  # held again
    assert calls == []


def test_a_clear_before_the_replay_counts_a_pending_answer_twice(
        services, make_project, volunteer, admin, monkeypatch):
    """begin() leaves pending submits out of a block's or quarantine's deltas
    only (step -1). A clear (or unblock) before the replay adds +1 for an answer
    Redis never counted; the replay then counts it again."""
    project = make_project(tasks=1, min_answers=3, max_answers=3)
    a, away = volunteer(), volunteer()
    late = answered_while_redis_is_away(services, monkeypatch, project, a, away)
    moderation.quarantine_volunteer(services, admin, project.id, away.id)
    moderation.clear(services, admin, project.id, away.id)
    volunteering.replay_pending(services)
    after = task_state(services, project.id, late.task_id)
    rebuild_project(services, project.id)
    assert after[:2] == task_state(services, project.id, late.task_id)[:2] == (3, 2)
