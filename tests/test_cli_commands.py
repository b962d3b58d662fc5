"""`bitesize projects` and `bitesize users list|revoke|rotate`, in the test app."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest

from engine.errors import AuthenticationError
from engine.identity import authenticate
from tests.console.test_mail import _use_smtp
from web.cli import cli


def _invoke(runner, *args: str):
    result = runner.invoke(cli, args=list(args))
    assert result.exit_code == 0, result.output
    return result


def _answered_project(runner, client, auth, work, tmp_path) -> int:
    """A classify project made by the CLI; three volunteers answer both tasks."""
    auth.charity("Penguin Watch")  # the organisation exists
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"question": "Which?", "labels": ["penguin", "seal"]}))
    made = _invoke(runner, "projects", "create", "--org", "Penguin Watch", "--name", "Cams",
                   "--type", "classify", "--config", str(config), "--min-answers", "3")
    project_id = int(made.stdout.strip())
    charity = auth.charity("Penguin Watch")
    client.post(f"/api/v1/projects/{project_id}/jobs", headers=charity,
                json={"items": [{"text": "a"}, {"text": "b"}]})
    work()
    for n in range(3):
        volunteer = auth.volunteer()
        for _ in range(2):
            got = client.get(f"/api/v1/projects/{project_id}/tasks/next", headers=volunteer).json
            label = "seal" if n == 2 else "penguin"
            r = client.post(f"/api/v1/tasks/{got['task']['id']}/answers", headers=volunteer,
                            json={"lease": got["lease"]["token"], "answer": {"label": label}})
            assert r.status_code == 201, r.json
    return project_id


def test_projects_create_list_show(runner, client, auth, work, tmp_path):
    project_id = _answered_project(runner, client, auth, work, tmp_path)
    listed = _invoke(runner, "projects", "list").stdout.splitlines()
    assert listed[0].split() == ["id", "organisation", "name", "type", "state", "tasks",
                                 "done", "contested"]
    row = next(line for line in listed[1:] if line.split()[0] == str(project_id))
    assert "Penguin Watch" in row and "Cams" in row and "classify" in row
    shown = json.loads(_invoke(runner, "projects", "show", str(project_id)).stdout)
    assert shown["organisation"] == "Penguin Watch" and shown["min_answers"] == 3
    assert shown["config"]["labels"] == ["penguin", "seal"]
    assert shown["progress"]["tasks"] == 2


def test_projects_list_for_an_unknown_organisation_names_the_known_ones(runner, auth):
    auth.charity("Bat Count")
    result = runner.invoke(cli, args=["projects", "list", "--org", "Owl Watch"])
    assert result.exit_code == 1
    assert "no organisation is called 'Owl Watch' (known: 'Bat Count')" in result.output


def test_projects_export_writes_what_consensus_reads(runner, client, auth, work, tmp_path):
    project_id = _answered_project(runner, client, auth, work, tmp_path)
    answers = tmp_path / "answers.csv"
    _invoke(runner, "projects", "export", str(project_id), "-o", str(answers))
    rows = list(csv.DictReader(io.StringIO(answers.read_text())))
    assert len(rows) == 6 and {r["answer"] for r in rows} == {"penguin", "seal"}
    merged = tmp_path / "results.csv"
    _invoke(runner, "consensus", str(answers), "-o", str(merged))
    results = list(csv.DictReader(io.StringIO(merged.read_text())))
    assert sorted(r["answer"] for r in results) == ["penguin", "penguin"]
    live = _invoke(runner, "projects", "export", str(project_id), "--results", "--format", "json")
    assert {r["value"] for r in json.loads(live.stdout)} <= {"penguin", None}
    items = _invoke(runner, "projects", "export", str(project_id), "--results",
                    "--level", "item")
    assert next(csv.reader(io.StringIO(items.stdout)))[:2] == ["item", "item_ref"]


def test_projects_create_refuses_a_bad_config_with_the_field(runner, auth, tmp_path):
    auth.charity("Penguin Watch")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"question": "Which?", "labels": ["only one"]}))
    result = runner.invoke(cli, args=["projects", "create", "--org", "Penguin Watch",
                                      "--name", "X", "--type", "classify",
                                      "--config", str(config)])
    assert result.exit_code == 1 and "config" in result.output and "labels" in result.output
    config.write_text("{not json")
    result = runner.invoke(cli, args=["projects", "create", "--org", "Penguin Watch",
                                      "--name", "X", "--type", "classify",
                                      "--config", str(config)])
    assert result.exit_code == 1 and "is not JSON" in result.output


def test_users_list_revoke_and_rotate_take_effect_at_once(runner, client, services):
    token = _invoke(runner, "users", "create", "--role", "charity", "--org", "Bat Count",
                    "--name", "Ada").stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/projects", headers=headers).status_code == 200  # now cached
    listed = _invoke(runner, "users", "list").stdout.splitlines()
    user_id = listed[1].split()[0]
    assert listed[1].split()[1:5] == ["Bat", "Count", "charity", "active"]

    new = _invoke(runner, "users", "rotate", user_id).stdout.strip()
    assert new.startswith("bsu_") and new != token
    assert client.get("/api/v1/projects", headers=headers).status_code == 401
    assert client.get("/api/v1/projects",
                      headers={"Authorization": f"Bearer {new}"}).status_code == 200

    _invoke(runner, "users", "revoke", user_id)
    assert client.get("/api/v1/projects",
                      headers={"Authorization": f"Bearer {new}"}).status_code == 401
    assert "revoked" in _invoke(runner, "users", "list", "--org", "Bat Count").stdout


def test_users_list_tells_a_console_account_without_a_token_from_a_revoked_one(
        runner, services, make_staff):
    """A console account never had a personal API token: it is not revoked (the
    demo's printed one was, to a newcomer), until `users revoke` locks it."""
    from engine.accounts.staff import find_staff

    made = make_staff(email="carol@bats.org", org="Bat Count")
    carol = find_staff(services, made.email)

    def row() -> list[str]:
        listed = _invoke(runner, "users", "list", "--org", "Bat Count").stdout.splitlines()
        assert listed[0].split()[:6] == ["id", "organisation", "role", "token", "console",
                                         "name"]
        return next(line.split() for line in listed[1:] if line.split()[0] == str(carol.id))

    assert row()[4:6] == ["none", "active"]
    _invoke(runner, "users", "revoke", str(carol.id))
    assert row()[4:6] == ["revoked", "revoked"]
    _invoke(runner, "users", "rotate", str(carol.id))
    assert row()[4:6] == ["active", "revoked"]  # a token again; the password stays locked


def test_a_revoked_token_stays_refused_even_if_a_stale_lookup_refills_the_cache(
        runner, services):
    """A request that read SQL just before the revocation writes its cache entry
    with NX, so it cannot replace the revocation's tombstone."""
    token = _invoke(runner, "users", "create", "--role", "admin", "--org", "X").stdout.strip()
    identity = authenticate(services, token)
    _invoke(runner, "users", "revoke", str(identity.id))
    from engine.identity import _cache_key  # the key a racing refill would write
    from engine.tokens import token_hash

    services.redis.set(_cache_key(token_hash(token)), json.dumps(identity.__dict__), nx=True)
    with pytest.raises(AuthenticationError):
        authenticate(services, token)


def test_unknown_users_and_projects_are_one_line(runner):
    for args, said in ((["users", "revoke", "999"], "user 999 does not exist"),
                       (["users", "rotate", "999"], "user 999 does not exist"),
                       (["queue", "rebuild", "999"], "project 999 does not exist"),
                       (["projects", "show", "999"], "project 999 does not exist"),
                       (["projects", "export", "999"], "project 999 does not exist")):
        result = runner.invoke(cli, args=args)
        assert result.exit_code == 1, args
        assert said in result.output and len(result.output.strip().splitlines()) == 1, args


def test_projects_remerge_makes_results_follow_what_counts(runner, client, auth, work,
                                                            tmp_path, services):
    """An old database's task whose answers no longer count kept its value; after
    `projects remerge` it has none and asks for answers again."""
    from sqlalchemy import select, update

    from engine.store.models import Answer, Result, Task

    project_id = _answered_project(runner, client, auth, work, tmp_path)
    with services.db.writing() as session:
        task_id = session.scalar(select(Task.id).where(Task.project_id == project_id)
                                 .order_by(Task.id).limit(1))
        session.execute(update(Answer).where(Answer.task_id == task_id).values(counted=False))
    with services.db.session() as session:
        assert session.get(Result, task_id).value is not None  # stale, as before issue 13
    out = _invoke(runner, "projects", "remerge", str(project_id)).stdout
    assert out.startswith(f"project {project_id}: 2 tasks merged again"), out
    with services.db.session() as session:
        result, task = session.get(Result, task_id), session.get(Task, task_id)
        assert (result.value, result.confidence, result.method) == (None, 0.0, "none")
        assert task.state == "open"
    missing = runner.invoke(cli, args=["projects", "remerge", "999"])
    assert missing.exit_code == 1 and "project 999 does not exist" in missing.output


def test_users_revoke_ends_console_tokens_and_sessions_too(runner, client, services,
                                                           make_staff):
    """Issue 14: revoking a user ends every way they sign in: the organisation
    tokens they made in the console and their console sessions, not only the
    personal token."""
    from engine.accounts import api_tokens
    from engine.accounts.staff import current_staff, find_staff

    login = make_staff(org="Bat Count", email="ada@bats.org", role="admin")
    staff = find_staff(services, login.email)
    _, made = api_tokens.create_api_token(services, staff.identity, "nightly export")
    headers = {"Authorization": f"Bearer {made}"}
    assert client.get("/api/v1/projects", headers=headers).status_code == 200  # cached now
    assert current_staff(services, staff.id, staff.session_version) is not None
    _invoke(runner, "users", "revoke", str(staff.id))
    assert client.get("/api/v1/projects", headers=headers).status_code == 401
    assert current_staff(services, staff.id, staff.session_version) is None


def test_a_revoked_user_cannot_sign_in_again_until_restored(runner, services, make_staff, app,
                                                            work, smtp_server):
    """A security review signed in again with the password after `users revoke`
    and made a new organisation token. The password and any unused link end
    too; "forgot password" sends no link to a revoked account; `users restore`
    prints the one way back in."""
    from engine.accounts.staff import (
        can_reset,
        find_staff,
        issue_link,
        link_holder,
        sign_in,
        use_link,
    )
    from engine.errors import GoneError, InvalidError
    from engine.store.models import AccountLink

    login = make_staff(org="Bat Count", email="ada@bats.org", role="admin")
    staff = find_staff(services, login.email)
    pending = issue_link(services, staff.id, "reset")
    assert can_reset(services, staff)
    _invoke(runner, "users", "revoke", str(staff.id))
    with pytest.raises(InvalidError):
        sign_in(services, login.email, login.password, "10.0.0.9")
    with pytest.raises(GoneError):
        link_holder(services, pending)  # a reset link sent before the revoke
    assert not can_reset(services, staff)
    _use_smtp(services, smtp_server)  # the forgot form is there only where mail goes out
    forgot = app.test_client()
    page = forgot.get("/console/forgot").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert forgot.post("/console/forgot", data={"email": login.email, "csrf_token": csrf}
                       ).status_code == 200
    work()  # the worker that would send the link
    with services.db.session() as session:
        assert session.query(AccountLink).filter_by(user_id=staff.id, used_at=None).count() == 0
    restored = runner.invoke(cli, args=["users", "restore", str(staff.id)])
    assert restored.exit_code == 0, restored.output
    token = restored.stdout.strip().rsplit("/", 1)[1]
    use_link(services, token, "a new long password")
    assert sign_in(services, login.email, "a new long password", "10.0.0.9").id == staff.id
    nobody = runner.invoke(cli, args=["users", "restore", "999"])
    assert nobody.exit_code == 1 and "no console account" in nobody.output


def test_a_revoked_colleague_is_not_invited_back_from_the_console(runner, services,
                                                                  make_staff):
    """The console re-invites a charity member who never set a password, and shows
    the inviter the link: a revoked one must not come back (or be taken over)
    that way. The Team page says which is which."""
    from engine.accounts.staff import find_staff, invite, team
    from engine.errors import ConflictError

    alice = find_staff(services, make_staff(email="alice@bats.org", org="Bat Count").email)
    bob = find_staff(services, make_staff(email="bob@bats.org", org="Bat Count").email)
    _invoke(runner, "users", "revoke", str(bob.id))
    with pytest.raises(ConflictError):
        invite(services, alice, "bob@bats.org")
    assert dict((m.email, status) for m, status in team(services, alice.organisation_id)) == {
        "alice@bats.org": "active", "bob@bats.org": "revoked"}


def test_projects_remerge_leaves_an_archived_project_alone(runner, client, auth, work,
                                                           tmp_path, services):
    """Archived results are final: the operator's re-merge reopened an archived
    project's task and dropped its result (a review found it)."""
    from sqlalchemy import select, update

    from engine.store.models import Answer, Project, Result, Task

    project_id = _answered_project(runner, client, auth, work, tmp_path)
    with services.db.writing() as session:
        session.execute(update(Project).where(Project.id == project_id)
                        .values(state="archived"))
        session.execute(update(Answer).where(Answer.project_id == project_id)
                        .values(counted=False))  # as if edited by hand

    def outcomes():
        with services.db.session() as session:
            return {task.id: (task.state, session.get(Result, task.id).value)
                    for task in session.scalars(select(Task).where(
                        Task.project_id == project_id))}

    before = outcomes()
    refused = runner.invoke(cli, args=["projects", "remerge", str(project_id)])
    assert refused.exit_code == 1 and "archived" in refused.output, refused.output
    assert outcomes() == before


def test_projects_remerge_says_when_an_archive_stopped_it(runner, client, auth, work,
                                                          tmp_path, services, monkeypatch):
    from engine.quality import consensus

    project_id = _answered_project(runner, client, auth, work, tmp_path)
    monkeypatch.setattr(consensus, "final_since", lambda session, pid: True)  # archived now
    stopped = runner.invoke(cli, args=["projects", "remerge", str(project_id)])
    assert stopped.exit_code == 1 and "was archived meanwhile" in stopped.output, stopped.output
