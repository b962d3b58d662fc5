"""`bitesize worker` and `bitesize demo`: the long-running processes."""
from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import click
from flask.cli import ScriptInfo

from web.cli.base import cli, services, with_app, with_database


@cli.command("worker", with_appcontext=False)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--imports", default=3, show_default=True, type=click.IntRange(0, 64),
              help="Import lanes (threads) beside the periodic jobs: this many charities' "
                   "imports run at once, one per charity (0: imports share the periodic "
                   "jobs' worker).")
@with_database
def worker(burst: bool, imports: int) -> None:
    """Run a background worker (splitting jobs, results, exports)."""
    from workers.runner import run_worker

    if not burst:  # one line that it runs (the demo's worker.log was empty: it logs warnings)
        lanes = f"imports in {imports} lanes" if imports else "imports among them"
        click.echo(f"bitesize worker started (pid {os.getpid()}): the periodic jobs, {lanes}; "
                   "from here on it logs warnings and errors only", err=True)
    run_worker(services(), burst=burst, imports=imports)


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on host:port (bound as a server would)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror}") from exc
    return False


def check_port(host: str, port: int) -> None:
    """One line naming a free port to try, before anything is started or printed."""
    if not port_in_use(host, port):
        return
    free = next((p for p in range(port + 1, min(port + 50, 65536)) if not port_in_use(host, p)),
                None)
    hint = f": try --port {free}" if free else ""
    raise click.ClickException(f"port {port} is in use{hint}")


@cli.command("demo", with_appcontext=False)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535),
              help="TCP port for the web server.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--logs", is_flag=True,
              help="Show the web server's and worker's logs here, live, instead of "
                   "keeping them in <instance>/logs/.")
@click.pass_context
def demo(ctx: click.Context, port: int, host: str, logs: bool) -> None:
    """Web server + worker + embedded Redis + SQLite + sample projects, in one go.

    Everything it writes stays in the instance folder (BITESIZE_INSTANCE_PATH,
    default ./instance): database, Redis, pictures, logs. Ctrl-C stops it."""
    from web.demo import run_demo

    check_port(host, port)  # before the app makes anything or the demo prints anything
    with ctx.ensure_object(ScriptInfo).load_app().app_context():
        raise SystemExit(run_demo(services(), host, port, show_logs=logs))


def _checked_run() -> click.Command:
    """Flask's `run`, with the same port check as the demo before it prints anything."""
    from flask.cli import run_command

    def run(*args, **kwargs):
        check_port(kwargs["host"], kwargs["port"])
        return run_command.callback(*args, **kwargs)

    return click.Command("run", params=run_command.params, callback=run,
                         help=run_command.help, short_help=run_command.short_help)


cli.add_command(_checked_run())


@cli.command("backup", with_appcontext=False)
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@with_database
def backup_command(dest: Path) -> None:
    """Back up the database and the instance folder's files into a new folder
    under DEST (consistent while the site runs)."""
    from engine.store.backup import backup

    svc = services()
    made = backup(svc.settings, svc.db, dest)
    click.echo(f"backed up the {made.database} database (revision "
               f"{', '.join(made.revision) or 'none'}) and {made.files} files to {made.path}")


@cli.command("restore", with_appcontext=False)
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds projects.")
@with_app
def restore_command(source: Path, force: bool) -> None:
    """Put the backup in SOURCE (a folder `bitesize backup` made) back into the
    configured database and instance folder (stop the site first); the
    dispatch state in Redis is then rebuilt from the restored database."""
    from engine.dispatch.failover import drop_states
    from engine.identity import forget_cached_identities
    from engine.store.backup import restore

    svc = services()
    done = restore(svc.settings, svc.db, source, force=force)
    projects = drop_states(svc)
    forget_cached_identities(svc)
    click.echo(f"restored the {done.database} database and {done.files} files from "
               f"{done.path}; {projects} projects' tasks are rebuilt from it on first use")
