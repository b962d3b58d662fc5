"""The audit log: every action on a project's quality, who took it, when and why.

Admins act on what volunteers did (block, clear, settle...) and charities must
be able to account for it ("why was this volunteer's work thrown out?"). Each
action writes one row in the same transaction as the change it records, so the
log never says something happened that did not, nor misses what did. The
engine's own actions (a quarantine the flags decided) are logged too, with no
user: "bitesize" did it.

Admins of an organisation read its log; platform admins read every one.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select

from engine.errors import PermissionDeniedError
from engine.identity import Identity
from engine.projects import get_moderated_project
from engine.services import Services
from engine.store.models import AuditEntry, Project, User, iso

# What an entry records. "reopen" is a retired task the re-check sent back for
# more answers; "spot_check" an admin's look at a newcomer's first answers.
# "dismiss_reports": staff found volunteers' reports of a task unfounded.
ACTIONS = ("quarantine", "clear", "block", "unblock", "settle", "spot_check", "reopen",
           "dismiss_reports", "delete_draft")  # the last written by engine.lifecycle
COLUMNS = ("id", "at", "who", "action", "project", "project_name", "volunteer", "task",
           "scope", "reason")
ENGINE = "bitesize"  # who, when the engine acted by itself


def record(session, project: Project, action: str, user_id: int | None,
           volunteer_id: int | None = None, task_id: int | None = None,
           scope: str | None = None, reason: str = "", detail: Any = None) -> AuditEntry:
    """Add one entry to the session: the caller's transaction commits it with
    the change it describes."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    entry = AuditEntry(organisation_id=project.organisation_id, project_id=project.id,
                       user_id=user_id, action=action, volunteer_id=volunteer_id,
                       task_id=task_id, scope=scope, reason=reason or "", detail=detail)
    session.add(entry)
    return entry


def audit_log(services: Services, identity: Identity, project_id: int | None = None,
              limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """The entries this admin may read, newest first, a page at a time."""
    query = _visible(services, identity, project_id)
    with services.db.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = session.execute(query.order_by(AuditEntry.id.desc())
                               .limit(limit).offset(offset)).all()
    return {"total": total, "limit": limit, "offset": offset,
            "entries": [_entry(*row) for row in rows]}


def audit_rows(services: Services, identity: Identity,
               project_id: int | None = None) -> Iterator[dict[str, Any]]:
    """Every entry this admin may read, newest first, as flat rows for CSV
    (engine.delivery.exports.render with COLUMNS escapes formula-like text).
    Who may read is checked now, before the caller starts a reply."""
    return _stream(services, _visible(services, identity, project_id)
                   .order_by(AuditEntry.id.desc()))


def _stream(services: Services, query) -> Iterator[dict[str, Any]]:
    with services.db.session() as session:
        for row in session.execute(query).yield_per(500):
            yield _entry(*row)


def _visible(services: Services, identity: Identity, project_id: int | None):
    """The entries of one project (404 unless the caller moderates it), or of
    every project the caller moderates."""
    identity.require_user()
    query = (select(AuditEntry, User.email, User.name, Project.name)
             .outerjoin(User, User.id == AuditEntry.user_id)
             .outerjoin(Project, Project.id == AuditEntry.project_id))
    if project_id is not None:
        project = get_moderated_project(services, identity, project_id)
        return query.where(AuditEntry.project_id == project.id)
    if identity.is_platform_admin:
        return query
    if not identity.moderates(identity.organisation_id):
        raise PermissionDeniedError("only an admin may read the audit log")
    return query.where(AuditEntry.organisation_id == identity.organisation_id)


def _entry(entry: AuditEntry, email: str | None, name: str | None,
           project_name: str | None) -> dict[str, Any]:
    who = ENGINE if entry.user_id is None else (email or name or f"user {entry.user_id}")
    return {"id": entry.id, "at": iso(entry.created_at),
            "who": who, "user": entry.user_id, "action": entry.action,
            "project": entry.project_id,
            "project_name": project_name or _deleted(entry).get("name", ""),
            "volunteer": entry.volunteer_id, "task": entry.task_id, "scope": entry.scope,
            "reason": entry.reason, "detail": entry.detail}


def _deleted(entry: AuditEntry) -> dict[str, Any]:
    """The deleted draft an entry was about (engine.lifecycle keeps its name)."""
    detail = entry.detail if isinstance(entry.detail, dict) else {}
    deleted = detail.get("deleted_project")
    return deleted if isinstance(deleted, dict) else {}
