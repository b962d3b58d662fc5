"""`bitesize import` and `bitesize queue`: work in, and dispatch state rebuilt."""
from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import click
from sqlalchemy import select

from engine.errors import BitesizeError
from engine.intake.jobs import create_job, get_job, run_job
from engine.store.models import Project
from web.cli.base import cli, services, with_database
from web.cli.projects import PROJECT_ID, acting_for, existing_project


@cli.group(cls=click.Group)
def queue() -> None:
    """Dispatch state in Redis."""


@queue.command("rebuild")
@click.argument("project_id", metavar="[PROJECT_ID]", type=int, required=False)
@with_database
def queue_rebuild(project_id: int | None) -> None:
    """Recompute dispatch state from SQL, for project PROJECT_ID (its number in
    `bitesize projects list`) or, without it, for every project."""
    from engine.dispatch.rebuild import rebuild_project

    s = services()
    if project_id is not None:
        ids = [existing_project(project_id).id]
    else:
        with s.db.session() as session:
            ids = list(session.scalars(select(Project.id).order_by(Project.id)))
    for pid in ids:
        count = rebuild_project(s, pid)
        click.echo(f"project {pid}: {count} open tasks loaded")


@cli.command("import", with_appcontext=False)
@PROJECT_ID
@click.argument("path", metavar="PATH", type=click.Path(path_type=Path))
@click.option("--priority", type=click.IntRange(-999, 999), default=0, show_default=True,
              help="Priority of the new tasks (higher first).")
@click.option("--mapping", default=None, metavar="JSON",
              help='For a CSV: JSON of item field -> column, e.g. \'{"image": "url"}\'.')
@with_database
def import_(project_id: int, path: Path, priority: int, mapping: str | None) -> None:
    """Import PATH into project PROJECT_ID (its number in `bitesize projects
    list`). PATH is a folder of images (searched recursively), a .zip, a .csv
    or a .json (items or a IIIF manifest). The job is split here, with a
    progress bar, no worker needed; images already in the project are reported,
    not imported again, so running the same import twice makes nothing twice."""
    if not path.exists():
        raise click.ClickException(f"no such file or folder: {path}")
    s = services()
    identity = acting_for(existing_project(project_id).organisation_id)
    if path.is_dir():
        job = create_job(s, identity, project_id, folder=path, priority=priority,
                         mapping=mapping, enqueue=False)
    else:
        with path.open("rb") as upload:
            job = create_job(s, identity, project_id, upload=upload, filename=path.name,
                             priority=priority, mapping=mapping, enqueue=False)
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
    click.echo(job_summary(job))
    if job.state != "done":
        raise SystemExit(1)


def job_summary(job, listed: int = 20) -> str:
    problems = job.problems_count - job.duplicates  # each duplicate is a problem listed too
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
