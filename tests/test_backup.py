"""`bitesize backup` and `bitesize restore` (issue 17.5): a site's database and
files into a folder while it runs, and back into another instance, which then
serves the same projects, answers and pictures; Redis is rebuilt from it."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine.services import Services
from engine.store.models import Answer, Project, Task
from web import create_app
from web.cli import cli

from .api.imports_helpers import jpeg
from .test_flow import make_project, upload_items


def counts(services) -> tuple[int, int, int]:
    with services.db.session() as session:
        return tuple(session.scalar(select(func.count()).select_from(model))
                     for model in (Project, Task, Answer))


def run(settings, *args):
    env = {"BITESIZE_INSTANCE_PATH": str(settings.instance_path),
           "BITESIZE_DATABASE_URL": settings.database_url,
           "BITESIZE_REDIS_URL": settings.redis_url, "BITESIZE_SECRET_KEY": ""}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def site(client, auth, work, services):
    """A project with tasks, a stored picture and two answers."""
    charity = auth.charity()
    project = make_project(client, charity, min_answers=3)
    stored = services.media.put(jpeg("green"), "photo.jpg")
    upload_items(client, charity, project["id"], [{"text": f"photo {n}"} for n in range(3)],
                 work)
    for _ in range(2):
        volunteer = auth.volunteer()
        r = client.get(f"/api/v1/projects/{project['id']}/tasks/next", headers=volunteer)
        client.post(f"/api/v1/tasks/{r.json['task']['id']}/answers", headers=volunteer,
                    json={"lease": r.json["lease"]["token"], "answer": {"label": "seal"}})
    return project["id"], stored.name


def test_a_backup_restores_into_a_new_instance(settings, registry, services, site, tmp_path):
    if settings.sqlite_path is None:
        pytest.skip("the SQLite path; the PostgreSQL one is the next test")
    project_id, picture = site
    before = counts(services)
    made = run(settings, "backup", str(tmp_path / "backups"))
    assert made.exit_code == 0, made.output
    folder = next((tmp_path / "backups").iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["database"] == "sqlite" and manifest["revision"]
    assert (folder / "media" / picture).exists() and (folder / "secret_key").exists()
    assert folder.stat().st_mode & 0o777 == 0o700

    fresh = replace(settings, instance_path=tmp_path / "restored",
                    database_url=f"sqlite:///{tmp_path / 'restored.db'}").resolved()
    done = run(fresh, "restore", str(folder))
    assert done.exit_code == 0, done.output
    restored = Services(fresh, registry)
    try:
        assert counts(restored) == before
        assert (fresh.instance_path / "media" / picture).exists()
        assert (fresh.instance_path / "secret_key").read_text() == \
            (settings.instance_path / "secret_key").read_text()
        # the restored site hands out the tasks the answers left open
        web = create_app({"SERVICES": restored, "TESTING": True}).test_client()
        volunteer = {"Authorization": "Bearer " + _new_volunteer(restored)}
        r = web.get(f"/api/v1/projects/{project_id}/tasks/next", headers=volunteer)
        assert r.status_code == 200, r.json
        # a second restore over a database with projects needs --force
        again = run(fresh, "restore", str(folder))
        assert again.exit_code != 0 and "--force" in again.output
        assert run(fresh, "restore", "--force", str(folder)).exit_code == 0
    finally:
        restored.close()


def test_a_postgresql_backup_goes_through_pg_dump(settings, services, site, tmp_path, app):
    if settings.sqlite_path is not None:
        pytest.skip("PostgreSQL only (CI's second run)")
    runner = app.test_cli_runner()  # the test's own app: its connections are closed after
    before = counts(services)
    made = runner.invoke(cli, ["backup", str(tmp_path / "backups")])
    assert made.exit_code == 0, made.output
    folder = next((tmp_path / "backups").iterdir())
    assert (folder / "database.dump").stat().st_size > 0
    with services.db.engine.begin() as conn:  # lose an answer, then get it back
        conn.execute(Answer.__table__.delete().where(Answer.id == select(func.max(
            Answer.id)).scalar_subquery()))
    assert counts(services)[2] == before[2] - 1
    services.db.dispose()
    done = runner.invoke(cli, ["restore", "--force", str(folder)])
    assert done.exit_code == 0, done.output
    assert counts(services) == before


def test_restore_refuses_what_is_not_a_backup(settings, tmp_path):
    (tmp_path / "junk").mkdir()
    result = run(settings, "restore", str(tmp_path / "junk"))
    assert result.exit_code != 0 and "not a bitesize backup" in result.output


def _new_volunteer(services) -> str:
    from engine.identity import create_volunteer

    return create_volunteer(services)[1]
