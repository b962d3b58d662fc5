"""A moderation's re-merge (block, quarantine, clear, unblock): a chunk per
transaction, dispatch told task by task instead of a rebuild of the project,
and a re-merge left by a lost process finished by the periodic quality job."""
from __future__ import annotations

import random

import pytest
from sqlalchemy import event, select

from engine.dispatch.dispatcher import keys, seen_key
from engine.dispatch.rebuild import rebuild_project
from engine.quality import consensus, moderation
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
    assert moderation.finish_remerges(services) == 0  # not stale yet: maybe still running
    assert moderation.finish_remerges(services, stale_seconds=-1) == 1
    assert results() == [None] * 40  # nothing counts: every task re-merged, reopened
    with services.db.session() as session:
        assert session.get(VolunteerStat, (project.id, lost.id)).remerging_since is None
    assert len(services.redis.zrange(keys(project.id)["pool"], 0, -1)) == 40
    assert moderation.finish_remerges(services, stale_seconds=-1) == 0
