"""What the answer path keeps of a project's quality settings, per process, by
the project's version (engine.quality.project_settings), and the periodic
refresh of versions Redis holds in an older form (engine.projects.refresh_versions)."""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import event

from engine.dispatch.dispatcher import keys
from engine.projects import config_version, publish, refresh_versions
from engine.quality import project_settings
from engine.quality.project_settings import quality_settings
from engine.store.models import Project


@pytest.fixture(autouse=True)
def nothing_kept():
    """What this process kept is shared by every test's database: a project of
    another test with the same id and version left its (equal) settings."""
    project_settings._kept.clear()


def _reads(services) -> list[str]:
    """The statements SQLAlchemy runs on this database from now on."""
    statements = []
    event.listen(services.db.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    return statements


def _redis_version(services, project_id) -> str:
    return services.redis.hget(keys(project_id)["meta"], "version").decode()


def test_settings_are_kept_while_the_version_holds(services, make_project):
    project = make_project(quality={"quarantine": True, "gold_feedback": 3})
    first = quality_settings(services, project.id)
    assert first.limits["gold_feedback"] == 3 and first.task_type == "classify"
    reads = _reads(services)
    assert quality_settings(services, project.id) is first
    assert reads == []


def test_an_older_version_in_redis_is_read_from_sql_until_refreshed(services, make_project):
    """A version written before it hashed the thresholds (an upgrade, or a
    process of the old code in a rolling one) never matches the row: every
    call reads SQL, correctly, until the quality job publishes it again."""
    project = make_project()
    legacy = "0123456789ab"
    services.redis.hset(keys(project.id)["meta"], "version", legacy)
    services.dispatcher._versions.clear()  # as another process would see it
    reads = _reads(services)
    quality_settings(services, project.id)
    quality_settings(services, project.id)
    assert len([r for r in reads if "FROM project" in r]) == 2  # nothing kept

    assert refresh_versions(services) == 1
    assert _redis_version(services, project.id) == config_version(project)
    assert refresh_versions(services) == 0  # nothing left to refresh
    reads.clear()
    quality_settings(services, project.id)
    quality_settings(services, project.id)
    assert len([r for r in reads if "FROM project" in r]) == 1  # then kept


def test_a_refresh_never_overwrites_a_publish_that_came_in_between(services, make_project):
    """The refresh writes only while Redis still has the version it read: a
    newer publish (another process saved the project meanwhile) stands."""
    project = make_project()
    newer = replace(services.dispatcher.meta(project.id), version="published-since")
    services.dispatcher.set_meta(newer)
    with services.db.session() as session:
        row = session.get(Project, project.id)
    assert publish(services, row, replacing="what-the-refresh-read") is False
    assert _redis_version(services, project.id) == "published-since"
    assert publish(services, row, replacing="published-since") is True
    assert _redis_version(services, project.id) == config_version(row)


def test_a_project_without_meta_is_left_to_its_rebuild(services, make_project):
    project = make_project()
    services.redis.delete(keys(project.id)["meta"])
    assert refresh_versions(services) == 0
    assert not services.redis.exists(keys(project.id)["meta"])
