"""What the answer path keeps of a project's quality settings, per process, by
the project's version (engine.quality.project_settings), and the periodic
refresh of versions Redis holds in an older form (engine.projects.refresh_versions)."""
from __future__ import annotations

import pytest
from sqlalchemy import event, update

from engine.dispatch.dispatcher import keys
from engine.projects import _config_only_version, config_version, refresh_versions
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
    """A version written before it hashed type and thresholds (an upgrade, or
    a process of the old code in a rolling one) never matches the row: every
    call reads SQL, correctly, until the quality job gives it the new one."""
    project = make_project()
    _older_version(services, project)
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


def _older_version(services, project) -> str:
    older = _config_only_version(project.config)
    services.redis.hset(keys(project.id)["meta"], "version", older)
    services.dispatcher._versions.clear()  # as another process would see it
    return older


def test_a_refresh_writes_the_version_alone(services, make_project):
    """A pause published by a process of the old code (its older version, and
    active 0) while the refresh read SQL's row, still active: the refresh must
    not bring the row's other fields back, only the version."""
    project = make_project()
    _older_version(services, project)
    services.redis.hset(keys(project.id)["meta"], "active", "0")
    assert refresh_versions(services) == 1
    meta = services.dispatcher.meta(project.id)
    assert meta.version == config_version(project) and meta.active is False


def test_a_version_that_is_not_the_rows_older_hash_is_left(services, make_project):
    """Another version (a change published ahead of SQL's row as this read it,
    or one on its way): not this refresh's to replace."""
    project = make_project()
    services.redis.hset(keys(project.id)["meta"], "version", "published-since")
    assert refresh_versions(services) == 0
    assert _redis_version(services, project.id) == "published-since"


def test_the_version_is_replaced_only_while_it_is_the_one_read(services, make_project):
    project = make_project()
    current = _redis_version(services, project.id)
    assert services.dispatcher.replace_version(project.id, "what-was-read", "x") is False
    assert _redis_version(services, project.id) == current
    assert services.dispatcher.replace_version(project.id, current, "x") is True
    assert _redis_version(services, project.id) == "x"


def test_a_project_without_meta_is_left_to_its_rebuild(services, make_project):
    project = make_project()
    services.redis.delete(keys(project.id)["meta"])
    assert refresh_versions(services) == 0
    assert not services.redis.exists(keys(project.id)["meta"])


def test_thresholds_changed_by_old_code_meanwhile_put_the_older_version_back(
        services, make_project, monkeypatch):
    """A process of the old code commits new thresholds after the refresh read
    the row; its publish writes the same older version, so the compare cannot
    see it. The refresh reads the row again and puts the older version back:
    no process keeps the old thresholds under the new version."""
    project = make_project(quality={"quarantine": True})
    older = _older_version(services, project)
    replace_version = services.dispatcher.replace_version

    def old_code_commits_first(project_id, read, version):
        if read == older:  # the refresh's own compare-and-set
            with services.db.writing() as session:
                session.execute(update(Project).where(Project.id == project_id)
                                .values(quality={"quarantine": False}))
        return replace_version(project_id, read, version)

    monkeypatch.setattr(services.dispatcher, "replace_version", old_code_commits_first)
    assert refresh_versions(services) == 0
    assert _redis_version(services, project.id) == older
    settings = quality_settings(services, project.id)
    assert settings.limits["quarantine"] is False
