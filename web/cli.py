"""The `bitesize` command: a Flask CLI group over the app factory."""
from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from engine.identity import create_user
from engine.services import Services
from engine.store import migrate
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

    from engine.dispatch.rebuild import rebuild_project
    from engine.store.models import Project

    s = services()
    with s.db.session() as session:
        ids = [project] if project else list(session.scalars(select(Project.id)))
    for project_id in ids:
        count = rebuild_project(s, project_id)
        click.echo(f"project {project_id}: {count} open tasks loaded")


@cli.command("import")
@click.argument("project", type=int)
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--priority", type=click.IntRange(-999, 999), default=0, show_default=True,
              help="Priority of the new tasks (higher first).")
@click.option("--mapping", default=None,
              help='For a CSV: JSON of item field -> column, e.g. \'{"image": "url"}\'.')
@with_appcontext
def import_(project: int, path: Path, priority: int, mapping: str | None) -> None:
    """Import PATH into PROJECT: a folder of images (searched recursively), a .zip,
    a .csv or a .json (items or a IIIF manifest). The job is split here, with a
    progress bar, no worker needed; images already in the project are reported,
    not imported again, so running the same import twice makes nothing twice."""
    from engine.errors import BitesizeError
    from engine.identity import Identity
    from engine.intake.jobs import create_job, get_job, run_job
    from engine.store.models import Project

    s = services()
    with s.db.session() as session:
        owner = session.get(Project, project)
    if owner is None:
        raise click.ClickException(f"project {project} does not exist")
    # The command line runs on the server, so it acts as the project's owner.
    identity = Identity("user", 0, owner.organisation_id, "charity")
    try:
        if path.is_dir():
            job = create_job(s, identity, project, folder=path, priority=priority,
                             mapping=mapping, enqueue=False)
        else:
            with path.open("rb") as upload:
                job = create_job(s, identity, project, upload=upload, filename=path.name,
                                 priority=priority, mapping=mapping, enqueue=False)
    except BitesizeError as exc:
        raise click.ClickException(_with_fields(exc)) from exc
    with click.progressbar(length=1, label=f"job {job.id}", file=sys.stderr) as bar:
        shown = [0.0]

        def progress(done: int, total: int) -> None:
            if done == total or time.monotonic() - shown[0] > 0.1:  # redraw 10 times a second
                shown[0] = time.monotonic()
                bar.length = max(total, 1)
                bar.update(done - bar.pos)

        with contextlib.suppress(BitesizeError):  # the job records it; printed below
            run_job(s, job.id, progress=progress)
    job = get_job(s, identity, job.id)
    click.echo(_job_summary(job))
    if job.state != "done":
        raise SystemExit(1)


def _with_fields(exc) -> str:
    return f"{exc.message} {json.dumps(exc.fields)}" if exc.fields else exc.message


def _job_summary(job, listed: int = 20) -> str:
    problems = sum(1 for problem in job.problems or [] if not problem.get("duplicate"))
    lines = [f"job {job.id} ({job.kind}): {job.state}" + (f": {job.error}" if job.error else ""),
             f"items {job.items_split} of {job.items_total}, tasks {job.tasks_made}, "
             f"duplicates {job.duplicates}, problems {problems}"]
    for problem in (job.problems or [])[:listed]:
        where = next((str(problem[k]) for k in ("path", "line", "canvas", "ref", "item")
                      if k in problem), "")
        prefix = f"line {where}" if "line" in problem else where
        lines.append(f"  {prefix}: {problem['reason']}" if prefix else f"  {problem['reason']}")
    if len(job.problems or []) > listed:
        lines.append(f"  ... the rest: GET /api/v1/jobs/{job.id}")
    return "\n".join(lines)


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
    from engine.errors import InvalidError
    from engine.quality import offline
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
