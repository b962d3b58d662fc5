"""The `bitesize` command: a Flask CLI group over the app factory."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from engine import migrate
from engine.identity import create_user
from engine.services import Services
from web import create_app


def services() -> Services:
    return current_app.extensions["bitesize"]


@click.group(cls=FlaskGroup, create_app=create_app)
def cli() -> None:
    """bitesize: bulk jobs in, microtasks to volunteers, trusted results out."""


@cli.group()
def db() -> None:
    """The SQL database."""


@db.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    s = services()
    migrate.upgrade(s.db, s.settings.instance_path)
    click.echo(f"database at {s.db.engine.url.render_as_string(hide_password=True)} is up to date")


@cli.group()
def users() -> None:
    """Charity members and admins."""


@users.command("create")
@click.option("--role", type=click.Choice(["charity", "admin"]), required=True)
@click.option("--org", "organisation", required=True, help="Organisation name (made if new).")
@click.option("--name", default="", help="The person's name, for the record.")
@with_appcontext
def users_create(role: str, organisation: str, name: str) -> None:
    """Create a user and print their API token (shown only this once)."""
    user_id, token = create_user(services(), organisation, role, name)
    click.echo(token)
    click.echo(f"user {user_id} ({role}) of {organisation!r}; keep the token above safe", err=True)


@cli.group()
def queue() -> None:
    """Dispatch state in Redis."""


@queue.command("rebuild")
@click.argument("project", type=int, required=False)
@with_appcontext
def queue_rebuild(project: int | None) -> None:
    """Recompute dispatch state from SQL, for one project or all."""
    from sqlalchemy import select

    from engine.models import Project
    from engine.rebuild import rebuild_project

    s = services()
    with s.db.session() as session:
        ids = [project] if project else list(session.scalars(select(Project.id)))
    for project_id in ids:
        count = rebuild_project(s, project_id)
        click.echo(f"project {project_id}: {count} open tasks loaded")


@cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@with_appcontext
def worker(burst: bool) -> None:
    """Run a background worker (splitting jobs, results, exports)."""
    from workers.runner import run_worker

    run_worker(services(), burst=burst)


@cli.command("demo")
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@with_appcontext
def demo(port: int, host: str) -> None:
    """Web server + worker + embedded Redis + SQLite + sample projects, in one go."""
    from web.demo import run_demo

    run_demo(services(), host, port)


@cli.command("consensus", with_appcontext=False)
@click.option("--type", "task_type", default="classify", show_default=True,
              help="Task type of the answers (any installed type).")
@click.option("--method", type=click.Choice(["mv", "wmv", "ds", "onecoin", "auto"]),
              default=None, help="For label types (classify): majority vote, weighted vote, "
              "Dawid-Skene, one-coin, or the default blend (auto).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="The project config as a JSON file (other types; their defaults otherwise).")
@click.option("--gold", "gold_path", type=click.Path(exists=True, dir_okay=False),
              help="GOLD.csv (task,answer): known answers, used as gold and to score.")
@click.option("-o", "--output", type=click.File("w", lazy=True), default="-",
              help="RESULTS.csv (task,answer,confidence); stdout by default.")
@click.argument("answers_path", metavar="ANSWERS.csv",
                type=click.Path(exists=True, dir_okay=False))
def consensus(task_type: str, method: str | None, config_path: str | None,
              gold_path: str | None, output, answers_path: str) -> None:
    """Merge an answers CSV (task,worker,answer) into one result per task, with the
    engine's own consensus code; needs no database or Redis.

    The answer cell is a label (classify), the text (transcribe), a number
    (number), tags separated by ";" (tag), or a JSON list of boxes or points
    (locate)."""
    from engine import offline
    from engine.errors import InvalidError
    from task_types import TaskTypeError, TaskTypeRegistry

    try:
        kind = TaskTypeRegistry.from_entry_points().get(task_type)
        config = _offline_config(kind, config_path)
        if kind.labels(config) is not None:
            summary = offline.run(answers_path, output, gold_path, method or "auto")
        elif method is not None:
            raise click.UsageError(f"--method is for label types; {task_type} merges "
                                   "with its own aggregate")
        else:
            summary = offline.run_typed(answers_path, output, kind, config, gold_path)
    except (InvalidError, TaskTypeError) as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"consensus: {summary.line()}", err=True)


def _offline_config(kind, config_path: str | None) -> dict:
    """The --config file checked by the type, or the type's offline defaults."""
    import json

    from marshmallow import ValidationError

    if config_path is None:
        return kind.offline_config()
    try:
        return kind.load_config(json.loads(Path(config_path).read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        detail = exc.messages if isinstance(exc, ValidationError) else exc
        raise click.ClickException(f"{config_path}: not a {kind.name} config: {detail}") from exc


def main() -> None:
    cli(prog_name="bitesize")


if __name__ == "__main__":
    main()
