"""The `bitesize` group and what every command shares: the app, the database
check, and one clear line instead of a traceback when something is missing."""
from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click
import redis
from flask import current_app
from flask.cli import FlaskGroup, ScriptInfo
from sqlalchemy.exc import OperationalError

from engine.config import Settings
from engine.errors import BitesizeError, InvalidError
from engine.services import Services
from engine.store import migrate
from task_types import TaskTypeError
from web import create_app


def bitesize_version() -> str:
    try:
        return version("bitesize")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=False)
@click.version_option(bitesize_version(), "--version", prog_name="bitesize",
                      message="%(prog)s %(version)s")
def cli() -> None:
    """bitesize: bulk jobs in, microtasks to volunteers, trusted results out.

    Every command works on the instance named by BITESIZE_INSTANCE_PATH
    (default ./instance, where `bitesize demo` keeps its database and Redis)
    or on BITESIZE_DATABASE_URL and BITESIZE_REDIS_URL."""


def services() -> Services:
    return current_app.extensions["bitesize"]


def with_database(command):
    """Run `command` in the app, on a database that exists and is up to date.

    The SQLite file is looked for before the app is built, so a command run
    in the wrong folder fails with one line and leaves no empty instance
    folder behind; engine errors become that one line too."""

    @functools.wraps(command)
    @click.pass_context
    def run(ctx: click.Context, /, *args: Any, **kwargs: Any) -> Any:
        info = ctx.ensure_object(ScriptInfo)
        if info.create_app is create_app:  # a real run, not a test's ready app
            _database_file_exists()
        with clear_errors():
            with info.load_app().app_context():
                if not migrate.is_current(services().db):
                    raise click.ClickException(
                        f"the database at {database_url()} has no up-to-date "
                        "bitesize schema: run `bitesize db upgrade` first")
                return command(*args, **kwargs)

    return run


def with_app(command):
    """Run `command` in the app whatever state its database is in (a restore
    fills an empty one); engine errors become one line, as with_database's."""

    @functools.wraps(command)
    @click.pass_context
    def run(ctx: click.Context, /, *args: Any, **kwargs: Any) -> Any:
        with clear_errors(), ctx.ensure_object(ScriptInfo).load_app().app_context():
            return command(*args, **kwargs)

    return run


def _database_file_exists() -> None:
    settings = Settings.from_env(create=False)
    path = settings.sqlite_path
    if path is not None and not path.exists():
        raise click.ClickException(
            f"no database yet at {path}: run `bitesize db upgrade`, or point "
            "BITESIZE_INSTANCE_PATH at the instance folder of the bitesize you mean "
            "(the demo's is ./instance in the folder where it was started)")


def database_url() -> str:
    """The app's database URL as a person may see it (no password)."""
    return services().db.engine.url.render_as_string(hide_password=True)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the failures a person can fix into one line and exit status 1."""
    try:
        yield
    except InvalidError as exc:  # which field is wrong is the useful part
        raise click.ClickException(with_fields(exc)) from exc
    except (BitesizeError, TaskTypeError) as exc:
        raise click.ClickException(exc.message) from exc
    except OperationalError as exc:
        raise click.ClickException(f"cannot use the database: {exc.orig}") from exc
    except redis.ConnectionError as exc:
        raise click.ClickException(f"cannot reach Redis: {exc}") from exc


def with_fields(exc: BitesizeError) -> str:
    return f"{exc.message} {json.dumps(exc.fields)}" if exc.fields else exc.message


def main(argv: list[str] | None = None) -> None:
    """The console script: click's errors as one line on stderr, never usage
    pages or tracebacks for a mistake the person can fix."""
    try:
        code = cli.main(args=argv, prog_name="bitesize", standalone_mode=False)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "bitesize"
        said = " ".join(exc.format_message().split())  # click lists choices on lines
        click.echo(f"bitesize: {said} (see `{where} --help`)", err=True)
        raise SystemExit(exc.exit_code) from None
    except click.ClickException as exc:
        click.echo(f"bitesize: {exc.format_message()}", err=True)
        raise SystemExit(exc.exit_code) from None
    except click.Abort:
        click.echo("bitesize: stopped", err=True)
        raise SystemExit(1) from None
    raise SystemExit(code if isinstance(code, int) else 0)
