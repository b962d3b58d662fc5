"""`bitesize db` and `bitesize users`: the schema, and who may use the API."""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from engine.accounts import staff as accounts
from engine.identity import ROLES, create_user, list_users, revoke_user, rotate_user
from engine.store import migrate
from web.cli.base import clear_errors, cli, database_url, services, with_database

USER_ID = click.argument("user_id", metavar="USER_ID", type=int)


@cli.group(cls=click.Group)
def db() -> None:
    """The SQL database."""


@db.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version (in the instance
    folder's SQLite file unless BITESIZE_DATABASE_URL names another)."""
    s = services()
    with clear_errors():
        migrate.upgrade(s.db, s.settings.instance_path)
    click.echo(f"database at {database_url()} is up to date")


@cli.group(cls=click.Group)
def users() -> None:
    """Charity members, organisation and platform admins, and their API tokens."""


@users.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="charity: runs its organisation's projects; admin: also their quality "
                   "calls (review, block...); platform-admin: every call of both, on every "
                   "organisation's projects.")
@click.option("--org", "organisation", required=True, metavar="NAME",
              help="The organisation's name (made if new).")
@click.option("--name", default="", help="The person's name, for the record.")
@click.option("--email", default=None, metavar="EMAIL",
              help="Make a console account that signs in with this email: prints a one-time "
                   "link to set its password (valid 7 days) instead of an API token.")
@click.option("--password-stdin", is_flag=True,
              help="With --email: set the password from standard input (all of it, one "
                   "trailing newline stripped) instead of printing a link; for scripts.")
@with_database
def users_create(role: str, organisation: str, name: str, email: str | None,
                 password_stdin: bool) -> None:
    """Create a user. Without --email: print their API token (shown only this
    once). With --email: a console account, and the link to set its password."""
    if email is None:
        if password_stdin:
            raise click.UsageError("--password-stdin needs --email")
        user_id, token = create_user(services(), organisation, role, name)
        click.echo(token)
        click.echo(f"user {user_id} ({role}) of {organisation!r}; keep the token above safe",
                   err=True)
        return
    password = _stdin_password() if password_stdin else None
    if password is not None:
        accounts.check_password(password)  # before anything is made
    user_id = accounts.create_staff(services(), organisation, email, role, name)
    if password is not None:
        accounts.set_password(services(), user_id, password)
        click.echo(f"user {user_id} ({role}) of {organisation!r} can sign in as {email} at "
                   f"{console_url('/console/login')}")
        return
    link = accounts.issue_link(services(), user_id, "invite")
    click.echo(console_url(f"/console/set-password/{link}"))
    click.echo(f"user {user_id} ({role}) of {organisation!r}: send them the link above to set "
               f"their password (it works once, for 7 days)", err=True)


def _stdin_password() -> str:
    """All of standard input, less one trailing newline (what `echo` adds)."""
    text = sys.stdin.read()
    return text[:-1] if text.endswith("\n") else text


def console_url(path: str) -> str:
    """A link to the console on the server's public address (BITESIZE_PUBLIC_URL)."""
    return services().settings.public_url.rstrip("/") + path


@users.command("list")
@click.option("--org", "organisation", default=None, metavar="NAME",
              help="Only this organisation's users.")
@with_database
def users_list(organisation: str | None) -> None:
    """Every user: id, organisation, role, API token (active, none or revoked),
    console account (active, invited, revoked, or - for none), name and when made."""
    rows = list_users(services(), organisation)
    click.echo(table(["id", "organisation", "role", "token", "console", "name", "created"],
                     [[u.id, u.organisation, u.role, u.token, u.console or "-",
                       u.name, f"{u.created_at:%Y-%m-%d}"] for u in rows]))


@users.command("revoke")
@USER_ID
@with_database
def users_revoke(user_id: int) -> None:
    """End everything user USER_ID (its number in `bitesize users list`) signs in
    with, at once, on every process: API tokens, console sessions, password and
    unused links. `rotate` gives them a new API token, `restore` a link to set a
    new password."""
    revoke_user(services(), user_id)
    click.echo(f"user {user_id}: tokens, sessions and password revoked")


@users.command("restore")
@USER_ID
@with_database
def users_restore(user_id: int) -> None:
    """Print a one-time link (valid 7 days) for console user USER_ID to set a new
    password: the way back in after `revoke`, and the link of an admin's account
    whose first link expired (the console re-invites charity members only)."""
    link = accounts.restore(services(), user_id)
    click.echo(console_url(f"/console/set-password/{link}"))
    click.echo(f"user {user_id}: send them the link above (it works once, for 7 days)",
               err=True)


@users.command("rotate")
@USER_ID
@with_database
def users_rotate(user_id: int) -> None:
    """Print a new API token for user USER_ID (its number in `bitesize users
    list`) and end the old one at once."""
    click.echo(rotate_user(services(), user_id))
    click.echo(f"user {user_id}: new token above; the old one no longer works", err=True)


def table(header: list[str], rows: list[list]) -> str:
    """Rows as aligned plain-text columns, for people and for `cut`/`awk`."""
    cells = [header] + [["" if value is None else str(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip() for row in cells)
