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
