"""`bitesize consensus`: merge answers collected anywhere, with no database."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import click

from web.cli.base import cli

EXISTING_FILE = click.Path(dir_okay=False, path_type=Path)


@cli.command("consensus", with_appcontext=False)
@click.option("--type", "task_type", default="classify", show_default=True, metavar="TYPE",
              help="Task type of the answers (any installed type).")
@click.option("--method", type=click.Choice(["mv", "wmv", "ds", "onecoin", "auto", "live"]),
              default=None, help="For label types (classify): majority vote, weighted vote, "
              "Dawid-Skene, one-coin, the default blend (auto), or live: what the live "
              "merge gives under fresh volunteer estimates, from the counted answers.")
@click.option("--config", "config_path", type=EXISTING_FILE, metavar="CONFIG.json",
              help="The project config as a JSON file (other types: their defaults "
              "otherwise; classify: its labels, in order, are the label list).")
@click.option("--gold", "gold_path", type=EXISTING_FILE, metavar="GOLD.csv",
              help="GOLD.csv (task,answer): known answers, used as gold and to score.")
@click.option("-o", "--output", type=click.File("w", lazy=True, encoding="utf-8"), default="-",
              metavar="RESULTS.csv",
              help="RESULTS.csv (task,answer,confidence); stdout by default.")
@click.option("--strict", is_flag=True,
              help="Stop at the first row that cannot be read, naming its line; by default "
              "such rows are skipped, counted and listed, and the rest are merged.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              metavar="REPORT.json", help="Write what was merged and every skipped row "
              "(line, column, reason) as JSON, even when nothing could be merged.")
@click.argument("answers_path", metavar="ANSWERS.csv", type=EXISTING_FILE)
def consensus(task_type: str, method: str | None, config_path: Path | None,
              gold_path: Path | None, output, strict: bool, report_path: Path | None,
              answers_path: Path) -> None:
    """Merge ANSWERS.csv (a path; columns task,worker,answer, as `bitesize
    projects export` writes it) into one result per task, with the engine's
    own consensus code; needs no database or Redis.

    The answer cell is a label (classify), the text (transcribe), a number
    (number), tags separated by ";" (tag), or a JSON list of boxes or points
    (locate).

    The live results of a classify project are what `--method live --config
    CONFIG.json` gives on its answers export (with the gold of its gold and
    settled tasks as GOLD.csv) when the volunteers' estimates are fresh; the
    default, auto, is the project-wide model, whose confidences differ.

    A row that cannot be read (an empty cell, a label not in the config's
    list, an answer the type refuses: a box with no width, a number outside
    the config's min..max, a broken JSON cell) is skipped and listed by line
    on stderr (the first 20) and in --report, as is a box with no width left
    out of a row whose other boxes are kept; --strict stops at the first.
    Without --config, number reads the scale off the answers."""
    from engine.errors import InvalidError
    from engine.quality import offline
    from task_types import TaskTypeError, TaskTypeRegistry

    for path in (answers_path, config_path, gold_path):
        if path is not None and not path.is_file():
            raise click.ClickException(f"no such file: {path}")
    try:
        kind = TaskTypeRegistry.from_entry_points().get(task_type)
    except TaskTypeError as exc:
        raise click.ClickException(exc.message) from exc
    config = _offline_config(kind, config_path)
    labelled = kind.labels(config) is not None
    if not labelled and method is not None:
        raise click.UsageError(f"--method is for label types; {task_type} merges "
                               "with its own aggregate")
    skipped = offline.Skipped(strict=strict)
    summary, error = None, None
    try:
        if labelled:
            labels = kind.labels(config) if config_path is not None else None
            summary = offline.run(answers_path, output, gold_path, method or "auto", labels,
                                  skipped)
        else:
            given = config if config_path is not None else None  # None: read off the answers
            summary = offline.run_typed(answers_path, output, kind, given, gold_path, skipped)
        output.flush()  # a full disk says so here, not in a traceback at exit
    except (InvalidError, TaskTypeError) as exc:
        error = exc.message
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        error = f"cannot write the results{where}: {exc.strerror or exc}"
        with contextlib.suppress(OSError):  # else click's own close fails the same way
            output.close()
    if skipped.lines():  # rows skipped or replaced, or parts of kept rows left out
        click.echo("consensus: " + "\n".join(skipped.lines()), err=True)
    if report_path is not None:
        named = (method or "auto") if labelled else f"{kind.name} aggregate"
        _write_report(report_path, skipped, summary, named, error)
    if error is not None:
        raise click.ClickException(error)
    click.echo(f"consensus: {summary.line()}", err=True)


def _write_report(path: Path, skipped, summary, method: str, error: str | None) -> None:
    """REPORT.json: the summary's figures (zeros when nothing was merged), the
    error if any, and the skipped rows (the first offline_rows.REPORT_ROWS;
    ``truncated`` says whether there were more)."""
    from dataclasses import asdict

    figures = asdict(summary) if summary is not None else {
        "tasks": 0, "answers": 0, "workers": 0, "method": method}
    figures["seconds"] = round(figures.get("seconds", 0.0), 4)
    report = {**figures, **({"error": error} if error else {}), **skipped.report()}
    try:
        path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write the report {path}: {exc.strerror}") from exc


def _without_question(kind, config) -> dict:
    """A config checked by the type; one that leaves out the question (the
    README's own `{"shape": "point"}`) gets a stand-in: what the volunteers were
    asked never changes a merge."""
    from marshmallow import ValidationError

    try:
        return kind.load_config(config)
    except ValidationError as exc:
        if not isinstance(config, dict) or "question" in config or "question" not in exc.messages:
            raise
        return kind.load_config({"question": "(merged offline)", **config})


def _offline_config(kind, config_path: Path | None) -> dict:
    """The --config file checked by the type, or the type's offline defaults."""
    from marshmallow import ValidationError

    if config_path is None:
        return kind.offline_config()
    try:
        return _without_question(kind, json.loads(config_path.read_text(encoding="utf-8-sig")))
    except (ValueError, ValidationError, RecursionError) as exc:
        detail = (exc.messages if isinstance(exc, ValidationError)
                  else "nested too deeply" if isinstance(exc, RecursionError) else exc)
        raise click.ClickException(f"{config_path}: not a {kind.name} config: {detail}") from exc
