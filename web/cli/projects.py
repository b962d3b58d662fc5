"""`bitesize projects`: list, create, show and export projects from the shell.

The command line runs on the server, so it acts for the organisation that
owns each project (the same Identity the import command uses)."""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import click
from marshmallow import ValidationError
from sqlalchemy import select

from engine.delivery import exports
from engine.identity import Identity, find_organisation
from engine.projects import create_project, every_project, project_view
from engine.quality import consensus
from engine.store.models import Organisation, Project
from web.api.schemas import ProjectCreate
from web.cli.accounts import table
from web.cli.base import cli, services, with_database

PROJECT_ID = click.argument("project_id", metavar="PROJECT_ID", type=int)


def acting_for(organisation_id: int) -> Identity:
    """The server's operator, acting as the organisation that owns a project."""
    return Identity("user", 0, organisation_id, "charity")


def existing_project(project_id: int) -> Project:
    with services().db.session() as session:
        project = session.get(Project, project_id)
    if project is None:
        raise click.ClickException(f"project {project_id} does not exist "
                                   "(`bitesize projects list` shows them all)")
    return project


@cli.group(cls=click.Group)
def projects() -> None:
    """Charities' projects: list, create, show, export, remerge."""


@projects.command("list")
@click.option("--org", "organisation", default=None, metavar="NAME",
              help="Only this organisation's projects.")
@with_database
def projects_list(organisation: str | None) -> None:
    """Every project: id, organisation, name, task type, state and progress."""
    wanted = find_organisation(services(), organisation) if organisation else None
    views = every_project(services(), wanted)
    names = _organisation_names()
    click.echo(table(
        ["id", "organisation", "name", "type", "state", "tasks", "done", "contested"],
        [[v.project.id, names[v.project.organisation_id], v.project.name, v.project.task_type,
          v.project.state, v.progress["tasks"], f"{v.progress['done_percent']}%",
          v.progress["contested"]] for v in views]))


def _organisation_names() -> dict[int, str]:
    with services().db.session() as session:
        return dict(session.execute(select(Organisation.id, Organisation.name)).all())


@projects.command("create")
@click.option("--org", "organisation", required=True, metavar="NAME",
              help="The organisation that owns it (see `bitesize users list`).")
@click.option("--name", required=True, help="The project's name, as volunteers see it.")
@click.option("--type", "task_type", required=True, metavar="TYPE",
              help="Task type: classify, tag, transcribe, locate, number or another installed.")
@click.option("--config", "config_path", required=True, metavar="CONFIG.json",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The task type's config as a JSON file, e.g. "
                   '{"question": "What is it?", "labels": ["penguin", "seal"]}.')
@click.option("--description", default="", help="What the project is for.")
@click.option("--min-answers", type=int, default=3, show_default=True,
              help="Answers every task gets before it may retire.")
@click.option("--max-answers", type=int, default=5, show_default=True,
              help="Answers after which an unsure task goes to review.")
@click.option("--confidence", type=float, default=0.8, show_default=True,
              help="Confidence (0..1) at which a task retires.")
@with_database
def projects_create(organisation: str, name: str, task_type: str, config_path: Path,
                    description: str, min_answers: int, max_answers: int,
                    confidence: float) -> None:
    """Create a project for an organisation and print its id."""
    config = read_json(config_path)
    try:
        data = ProjectCreate().load({
            "name": name, "description": description, "task_type": task_type,
            "config": config, "min_answers": min_answers, "max_answers": max_answers,
            "confidence": confidence})
    except ValidationError as exc:
        raise click.ClickException(f"not a valid project: {json.dumps(exc.messages)}") from exc
    org_id = find_organisation(services(), organisation)
    view = create_project(services(), acting_for(org_id), data)
    click.echo(view.project.id)
    click.echo(f"project {view.project.id} ({task_type}) of {organisation!r} made; "
               f"import into it with `bitesize import {view.project.id} PATH`", err=True)


def read_json(path: Path):
    if not path.is_file():
        raise click.ClickException(f"no such file: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path} is not JSON: {exc}") from exc


@projects.command("remerge")
@PROJECT_ID
@with_database
def projects_remerge(project_id: int) -> None:
    """Merge every task of project PROJECT_ID again from its counted answers
    (after an upgrade, or after answers' `counted` were changed by hand), then
    rebuild its dispatch state; prints how many tasks changed state."""
    existing_project(project_id)
    remerged = consensus.remerge_project(services(), project_id)
    moved = Counter(f"{c.before} -> {c.after}" for c in remerged.changes if c.before != c.after)
    click.echo(f"project {project_id}: {len(remerged.changes)} tasks merged again"
               + "".join(f"; {n} {move}" for move, n in sorted(moved.items())))
    if remerged.stopped:
        raise click.ClickException(f"project {project_id} was archived meanwhile: the tasks "
                                   "after those were left as they were (its results are final)")


@projects.command("show")
@PROJECT_ID
@with_database
def projects_show(project_id: int) -> None:
    """Everything about project PROJECT_ID (its number in `bitesize projects
    list`): settings, config and progress, as JSON."""
    from web.api import serialize

    project = existing_project(project_id)
    shown = serialize.project(project_view(services(), project), owner=True)
    shown["organisation"] = _organisation_names()[project.organisation_id]
    click.echo(json.dumps(shown, indent=2, ensure_ascii=False))


@projects.command("export")
@PROJECT_ID
@click.option("--results", "what", flag_value="results",
              help="Write the merged results (one row per task, or per item with "
                   "--level item) instead of the answers.")
@click.option("--answers", "what", flag_value="answers", default=True,
              help="Write every answer as task,worker,answer,...: the file "
                   "`bitesize consensus` reads (the default).")
@click.option("--format", "fmt", type=click.Choice(sorted(exports.FORMATS)), default="csv",
              show_default=True)
@click.option("--level", type=click.Choice(["task", "item"]), default="task",
              show_default=True, help="For --results: a row per task or per uploaded item.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              default=None, metavar="FILE", help="Where to write; standard output by default.")
@with_database
def projects_export(project_id: int, what: str, fmt: str, level: str,
                    output: Path | None) -> None:
    """Write project PROJECT_ID's answers (as `bitesize consensus` reads them)
    or its results, streamed, to FILE or standard output."""
    project = existing_project(project_id)
    if what == "answers":
        rows = exports.answer_rows(services(), project.id, as_text=fmt == "csv")
        columns = exports.ANSWER_COLUMNS
    elif level == "item":
        rows, columns = exports.item_rows(services(), project.id), exports.ITEM_COLUMNS
    else:
        rows, columns = exports.result_rows(services(), project.id), exports.COLUMNS
    chunks = exports.render(rows, fmt, columns, False)
    if output is None:
        for chunk in chunks:
            sys.stdout.write(chunk)
        return
    with output.open("w", encoding="utf-8", newline="") as handle:
        for chunk in chunks:
            handle.write(chunk)
    click.echo(f"project {project.id}: {what} written to {output}", err=True)
