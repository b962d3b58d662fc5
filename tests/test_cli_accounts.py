"""`bitesize users create --email`: console accounts from the command line."""
from __future__ import annotations

import re

from engine.accounts import staff as accounts
from web.cli import cli


def test_users_create_with_email_prints_a_one_time_link(runner, services, app):
    result = runner.invoke(cli, args=["users", "create", "--role", "charity", "--org",
                                      "Penguin Watch", "--email", "Ana@Penguins.org"])
    assert result.exit_code == 0, result.output
    link = result.stdout.strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:5000/console/set-password/[\w-]{40,}", link)
    assert "works once, for 7 days" in result.stderr
    token = link.rsplit("/", 1)[1]
    holder = accounts.link_holder(services, token)
    assert (holder.email, holder.organisation, holder.role) == (
        "ana@penguins.org", "Penguin Watch", "charity")
    page = app.test_client().get(f"/console/set-password/{token}")
    assert page.status_code == 200 and "ana@penguins.org" in page.get_data(as_text=True)


def test_password_stdin_reads_all_of_it_and_strips_one_newline(runner, services):
    result = runner.invoke(cli, input="  spaces kept  and more\n", args=[
        "users", "create", "--role", "admin", "--org", "Seal Count", "--email",
        "bo@seals.org", "--password-stdin"])
    assert result.exit_code == 0, result.output
    assert "can sign in as bo@seals.org" in result.stdout
    staff = accounts.sign_in(services, "bo@seals.org", "  spaces kept  and more", "127.0.0.1")
    assert staff.role == "admin"


def test_a_short_stdin_password_makes_no_account(runner, services):
    result = runner.invoke(cli, input="short\n", args=[
        "users", "create", "--role", "charity", "--org", "Seal Count", "--email",
        "cy@seals.org", "--password-stdin"])
    assert result.exit_code == 1
    assert "at least 10 characters" in result.output
    assert accounts.find_staff(services, "cy@seals.org") is None


def test_an_email_in_use_is_one_line(runner):
    args = ["users", "create", "--role", "charity", "--org", "A", "--email", "dee@a.org"]
    assert runner.invoke(cli, args=args).exit_code == 0
    again = runner.invoke(cli, args=args)
    assert again.exit_code == 1
    assert "dee@a.org already has an account" in again.output


def test_password_stdin_needs_an_email(runner):
    result = runner.invoke(cli, input="long enough password\n", args=[
        "users", "create", "--role", "charity", "--org", "A", "--password-stdin"])
    assert result.exit_code == 2
    assert "--password-stdin needs --email" in result.output
