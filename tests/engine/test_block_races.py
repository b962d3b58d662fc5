"""Races of a wide block: an organisation-wide block (or unblock) lists the organisation's
projects in one transaction, commits the OrganisationBlock row, and only then
blocks project by project (_block_in), each under the project's rebuild lock in
its own transaction. Each step looks again: a draft deleted, a project archived
or the wide action undone in between is passed by; a new project's blocked set
is in Redis before the project can be listed."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import lifecycle
from engine.dispatch.dispatcher import keys
from engine.projects import create_project
from engine.quality import moderation
from engine.store.models import Answer, OrganisationBlock, Project, VolunteerStat
from engine.volunteering import next_tasks, submit_answer
from tests.engine.test_lifecycle import CLASSIFY, answer_one


def test_a_draft_deleted_during_an_organisation_block_breaks_nothing(
        services, owner, admin, make_project, volunteer, monkeypatch):
    live = make_project(tasks=1, min_answers=1, max_answers=1)
    who = answer_one(services, volunteer, live.id)
    draft = create_project(services, owner, {**CLASSIFY, "state": "draft"}).project
    later = make_project(tasks=1, min_answers=1, max_answers=1)
    assert live.id < draft.id < later.id
    real, raced = moderation._block_in, []

    def block_in(services_, project_id, volunteer_id, why):
        if not raced:  # another of the charity's staff deletes the draft meanwhile
            lifecycle.delete_draft(services, owner, draft.id)
            raced.append(draft.id)
        return real(services_, project_id, volunteer_id, why)

    monkeypatch.setattr(moderation, "_block_in", block_in)
    try:
        moderation.block(services, admin, live.id, who.id, "organisation", "a script")
    except Exception as exc:  # noqa: BLE001 - what the API would answer 500 to
        failure = exc
    else:
        failure = None
    with services.db.session() as session:
        blocked_later = session.get(VolunteerStat, (later.id, who.id))
        blocked_later = bool(blocked_later and blocked_later.blocked)
    assert (failure, blocked_later) == (None, True), \
        f"organisation block: {failure!r}; later project blocked: {blocked_later}"


def test_a_project_archived_during_an_organisation_block_keeps_its_results(
        services, owner, admin, make_project, volunteer, monkeypatch):
    first = make_project(tasks=1, min_answers=1, max_answers=1)
    second = make_project(tasks=1, min_answers=1, max_answers=1)
    who = answer_one(services, volunteer, first.id)
    handout = next_tasks(services, who, second.id)[0]
    submit_answer(services, who, handout.task_id, handout.lease, {"label": "a"})
    real, raced = moderation._block_in, []

    def block_in(services_, project_id, volunteer_id, why):
        if not raced:  # the charity archives the second project meanwhile
            lifecycle.move(services, owner, second.id, "archive")
            raced.append(second.id)
        return real(services_, project_id, volunteer_id, why)

    monkeypatch.setattr(moderation, "_block_in", block_in)
    moderation.block(services, admin, first.id, who.id, "organisation", "a script")
    with services.db.session() as session:
        assert session.get(Project, second.id).state == "archived"
        stat = session.get(VolunteerStat, (second.id, who.id))
        counted = session.scalar(select(Answer.counted).where(
            Answer.project_id == second.id, Answer.volunteer_id == who.id))
    # archiving is final: blocks at wider scopes pass archived projects by
    assert counted is True, "an archived project's answer stopped counting"
    assert stat is None or not stat.blocked, "an archived project's volunteer was blocked"


def test_a_new_projects_blocked_set_is_in_redis_before_anyone_can_list_it(
        services, owner, admin, make_project, volunteer, monkeypatch):
    """create_project puts the organisation's blocked volunteers in the new
    project's Redis set before its commit. After it, an organisation-scope
    unblock (which lists projects from SQL) removes them; had the set been
    filled after the commit, an unblock landing in between would have been
    undone in Redis (SQL unblocked, the hand-out refusing them)."""
    live = make_project(tasks=1, min_answers=1, max_answers=1)
    who = answer_one(services, volunteer, live.id)
    moderation.block(services, admin, live.id, who.id, "organisation", "a script")
    dispatcher = services.dispatcher
    real_block, seen = dispatcher.block, []

    def block(project_id, volunteer_ids):
        with services.db.session() as session:  # what an unblock could list now
            seen.append(session.get(Project, project_id))
        return real_block(project_id, volunteer_ids)

    monkeypatch.setattr(dispatcher, "block", block)
    new = create_project(services, owner, {**CLASSIFY, "min_answers": 1,
                                           "max_answers": 1}).project
    monkeypatch.setattr(dispatcher, "block", real_block)
    assert seen == [None]  # not yet committed: nobody could list it
    assert services.redis.sismember(keys(new.id)["blocked"], who.id)
    moderation.unblock(services, admin, live.id, who.id, "organisation", "sorry")
    make_project.add_items(new, [{"text": "t1"}])
    with services.db.session() as session:
        assert session.get(VolunteerStat, (new.id, who.id)).blocked is False
    assert not services.redis.sismember(keys(new.id)["blocked"], who.id)
    assert next_tasks(services, who, new.id)


def test_a_project_not_stored_leaves_nothing_in_redis(services, owner, admin, make_project,
                                                      volunteer, monkeypatch):
    """A creation that fails after the blocked set went to Redis drops it: SQLite
    may give the id to the next project, which must not start with it."""
    live = make_project(tasks=1, min_answers=1, max_answers=1)
    who = answer_one(services, volunteer, live.id)
    moderation.block(services, admin, live.id, who.id, "organisation", "a script")
    dispatcher = services.dispatcher
    real_block, ids = dispatcher.block, []

    def block(project_id, volunteer_ids):
        real_block(project_id, volunteer_ids)
        ids.append(project_id)
        raise RuntimeError("the commit did not happen")

    monkeypatch.setattr(dispatcher, "block", block)
    with pytest.raises(RuntimeError):
        create_project(services, owner, {**CLASSIFY, "min_answers": 1, "max_answers": 1})
    assert len(ids) == 1
    assert not services.redis.exists(keys(ids[0])["blocked"])
    with services.db.session() as session:
        assert session.get(Project, ids[0]) is None


def test_an_organisation_unblock_during_an_organisation_block_fans_out(
        services, owner, admin, make_project, volunteer, monkeypatch):
    """Block (org) commits its OrganisationBlock row and its list of projects,
    then blocks them one by one; an org-scope unblock landing in between
    deletes the row and finds nothing blocked yet. Both admins got 200, the
    unblock last, yet the volunteer ends blocked in every project (only at
    'project' scope: no organisation block row any more)."""
    live = make_project(tasks=1, min_answers=1, max_answers=1)
    who = answer_one(services, volunteer, live.id)
    real, raced = moderation._block_in, []

    def block_in(*args):
        if not raced:
            raced.append(moderation.unblock(services, admin, live.id, who.id,
                                            "organisation", "a mistake"))
        return real(*args)

    monkeypatch.setattr(moderation, "_block_in", block_in)
    moderation.block(services, admin, live.id, who.id, "organisation", "a script")
    with services.db.session() as session:
        stat = session.get(VolunteerStat, (live.id, who.id))
        assert session.get(OrganisationBlock, (live.organisation_id, who.id)) is None
    assert stat is None or not stat.blocked, "blocked after an organisation unblock that came last"
    assert not services.redis.sismember(keys(live.id)["blocked"], who.id)
