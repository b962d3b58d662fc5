"""Three blocks hold a volunteer in a project: its own, its organisation's, the
platform's. A platform unblock ends the platform's alone: a charity's own
blocks, made for reasons of its own, stand (it once lifted them all, and ended
every organisation's block too). An organisation's unblock ends its projects'
own blocks with its own, as documented: its admins decide for all of them."""
from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select

from engine.errors import ConflictError
from engine.quality import moderation
from engine.store import migrate
from engine.store.models import VolunteerStat
from engine.volunteering import next_task
from tests.engine.test_final_results import answered, platform_admin


def gets_tasks(services, volunteer, project) -> bool:
    return next_task(services, volunteer, project.id) is not None


def test_a_platform_unblock_leaves_a_projects_own_block(services, make_project, volunteer,
                                                        admin):
    mine, other = make_project(tasks=3), make_project(tasks=3)
    v = volunteer()
    answered(services, mine, v)
    answered(services, other, v)
    moderation.block(services, admin, mine.id, v.id, "project", "spam here")
    ops = platform_admin(services)
    moderation.block(services, ops, other.id, v.id, "platform", "a script")
    moderation.unblock(services, ops, other.id, v.id, "platform", "a mistake")
    assert gets_tasks(services, v, other)
    assert not gets_tasks(services, v, mine)
    services.redis.flushdb()  # the rebuild reads it back from SQL
    assert not gets_tasks(services, v, mine) and gets_tasks(services, v, other)
    moderation.unblock(services, admin, mine.id, v.id, "project")
    assert gets_tasks(services, v, mine)


def test_a_platform_unblock_leaves_an_organisations_block(services, make_project, volunteer,
                                                         admin):
    first = make_project(tasks=2)
    v = volunteer()
    answered(services, first, v)
    moderation.block(services, admin, first.id, v.id, "organisation")
    ops = platform_admin(services)
    moderation.block(services, ops, first.id, v.id, "platform")
    moderation.unblock(services, ops, first.id, v.id, "platform")
    assert not gets_tasks(services, v, first)
    assert not gets_tasks(services, v, make_project(tasks=2))  # and the projects made later
    moderation.unblock(services, admin, first.id, v.id, "organisation")
    assert gets_tasks(services, v, first) and gets_tasks(services, v, make_project(tasks=2))


def test_an_organisation_unblock_ends_its_projects_own_blocks_too(services, make_project,
                                                                  volunteer, admin):
    first, second = make_project(tasks=2), make_project(tasks=2)
    v = volunteer()
    answered(services, first, v)
    answered(services, second, v)
    moderation.block(services, admin, second.id, v.id, "project")
    moderation.block(services, admin, first.id, v.id, "organisation")
    moderation.unblock(services, admin, first.id, v.id, "organisation")
    assert gets_tasks(services, v, first) and gets_tasks(services, v, second)


def test_a_platform_unblock_of_someone_not_blocked_platform_wide_is_refused(
        services, make_project, volunteer, admin):
    """It would end nothing: an admin who asks for it is told so, not shown a
    silent success with the volunteer still blocked."""
    project = make_project(tasks=2)
    v = volunteer()
    answered(services, project, v)
    moderation.block(services, admin, project.id, v.id, "organisation")
    with pytest.raises(ConflictError) as refused:
        moderation.unblock(services, platform_admin(services), project.id, v.id, "platform")
    assert refused.value.fields == {"scope": "not blocked platform-wide"}


def test_the_migration_takes_old_blocks_as_the_projects_own_where_nothing_wider_made_them(
        services, make_project, volunteer, admin):
    """0024 cannot know who blocked a row before it: a row no organisation or
    platform block explains was the project's own."""
    own, organisation_wide, platform_wide = volunteer(), volunteer(), volunteer()
    project = make_project(tasks=4)
    for v in (own, organisation_wide, platform_wide):
        answered(services, project, v)
    moderation.block(services, admin, project.id, own.id, "project")
    moderation.block(services, admin, project.id, organisation_wide.id, "organisation")
    moderation.block(services, platform_admin(services), project.id, platform_wide.id,
                     "platform")
    before = _blocked_here(services, project.id)
    assert before == {own.id: True, organisation_wide.id: False, platform_wide.id: False}
    config = migrate.alembic_config(services.db)
    try:
        with services.db.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0023")
    finally:
        migrate.upgrade(services.db, services.settings.instance_path)
    assert _blocked_here(services, project.id) == before


def _blocked_here(services, project_id: int) -> dict[int, bool]:
    with services.db.session() as session:
        return dict(session.execute(select(VolunteerStat.volunteer_id,
                                           VolunteerStat.blocked_here).where(
            VolunteerStat.project_id == project_id, VolunteerStat.blocked.is_(True))).all())


def test_a_platform_unblock_that_leaves_a_charitys_block_says_so_in_the_audit_log(
        services, make_project, volunteer, admin):
    """It ends the platform's block and brings the volunteer's tokens back: that
    is kept in the project's audit log, with the block that still stands."""
    from engine.store.models import AuditEntry

    project = make_project(tasks=2)
    v = volunteer()
    answered(services, project, v)
    moderation.block(services, admin, project.id, v.id, "project")
    ops = platform_admin(services)
    moderation.block(services, ops, project.id, v.id, "platform")
    moderation.unblock(services, ops, project.id, v.id, "platform", "appeal upheld")
    with services.db.session() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "unblock"))
        assert [(e.reason, e.detail["still_blocked"]) for e in entries] == [
            ("appeal upheld", "project")]
    assert moderation.still_blocked(services, project.id, v.id)


def test_the_block_that_stands_is_the_one_its_row_names(services, make_project, volunteer,
                                                        admin):
    """Who blocked them here, and since when, is the charity's block once the
    platform's has ended, not the platform admin's."""
    project = make_project(tasks=2)
    v = volunteer()
    answered(services, project, v)
    moderation.block(services, admin, project.id, v.id, "project")
    with services.db.session() as session:
        own = session.get(VolunteerStat, (project.id, v.id))
        made = (own.blocked_by, own.blocked_at)
    ops = platform_admin(services)
    moderation.block(services, ops, project.id, v.id, "platform")
    moderation.unblock(services, ops, project.id, v.id, "platform")
    with services.db.session() as session:
        stat = session.get(VolunteerStat, (project.id, v.id))
        assert (stat.blocked_by, stat.blocked_at) == made == (admin.id, made[1])


def test_an_organisation_unblock_passed_by_a_platform_block_still_ends_the_projects_own(
        services, make_project, volunteer, admin, monkeypatch):
    """A platform block landing after an organisation unblock listed its
    projects keeps them blocked, but the project's own block, which that unblock
    ended, must not outlive the platform's."""
    project = make_project(tasks=2)
    v = volunteer()
    answered(services, project, v)
    moderation.block(services, admin, project.id, v.id, "project")
    moderation.block(services, admin, project.id, v.id, "organisation")
    ops = platform_admin(services)
    real, raced = moderation._unblock_in, []

    def unblock_in(*args):
        if not raced:
            raced.append(moderation.block(services, ops, project.id, v.id, "platform"))
        return real(*args)

    monkeypatch.setattr(moderation, "_unblock_in", unblock_in)
    moderation.unblock(services, admin, project.id, v.id, "organisation")
    monkeypatch.setattr(moderation, "_unblock_in", real)
    assert moderation.still_blocked(services, project.id, v.id)  # the platform's
    moderation.unblock(services, ops, project.id, v.id, "platform")
    assert gets_tasks(services, v, project)
