"""SQL tables: the system of record. Redis only mirrors dispatch state from here.

Names follow DESIGN.md's vocabulary: organisation, user, volunteer, project,
job, item, task, answer, result.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they were stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with its UTC offset whatever the database (None stays None)."""
    return aware(value).isoformat() if value is not None else None


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, Any: JSON}


class Organisation(Base):
    """A charity (or the platform's own staff): owns users and projects."""

    __tablename__ = "organisation"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    """A charity member or an admin: signs in to the console with email and
    password, and may also hold a personal API token (hashed)."""

    __tablename__ = "user"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))  # engine.identity.ROLES
    # "revoked:<hex>" when the user has no personal token (see engine.identity)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True, index=True)  # lower-case
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2id; None: not set yet
    # Bumped by "sign out everywhere" and password changes: older sessions end.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    """An organisation's API token, made and revoked by its staff in the console.
    It acts as the user who made it; shown once, stored as a SHA-256 hash."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # None: never


class AccountLink(Base):
    """A one-time link to set a password: an invitation or a "forgot password".
    Stored as a hash; used once; expires."""

    __tablename__ = "account_link"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # invite | reset
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Volunteer(Base):
    """Someone who answers tasks; anonymous unless they choose a name."""

    __tablename__ = "volunteer"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class VolunteerAccount(Base):
    """A volunteer who chose to keep their anonymous work: an email and password,
    or a recovery code to write down (for those without email), or both. Only
    hashes are kept; deleting the account deletes this row and ends every token,
    while the answers stay, tied to a volunteer no one can sign in as."""

    __tablename__ = "volunteer_account"
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    recovery_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # when a link sent to `email` was followed (engine.accounts.confirmations);
    # None until then, and again whenever the email changes
    email_confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # when the first confirmation link to `email` was mailed (None: none was):
    # unconfirmed past the link's days, the address goes to the next volunteer
    # who keeps it (engine.accounts.volunteers.claim)
    email_set_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VolunteerDevice(Base):
    """A further token of a volunteer who signed in on another device (each
    device keeps its own, so signing in on one never signs another out)."""

    __tablename__ = "volunteer_device"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NewsSubscription(Base):
    """A volunteer (with an email kept in VolunteerAccount) who asked a project to
    tell them when it has news, such as new photos (engine.accounts.news)."""

    __tablename__ = "news_subscription"
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProjectNews(Base):
    """One note a charity sent its subscribed volunteers, and how its sending went."""

    __tablename__ = "project_news"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    subject: Mapped[str] = mapped_column(String(150))
    message: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Project(Base):
    """A campaign: one task type, its config, and the redundancy policy."""

    __tablename__ = "project"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Learn by doing (the volunteer page): screens of Markdown shown before a
    # volunteer's first task, and a field guide reachable from every task
    tutorial: Mapped[list | None] = mapped_column(JSON)
    field_guide: Mapped[str | None] = mapped_column(Text)
    # the charity's own texts in other languages: {lang: {name, description,
    # question, instructions, labels: {label: shown}, tutorial, field_guide}}
    translations: Mapped[Any | None] = mapped_column(JSON)
    task_type: Mapped[str] = mapped_column(String(100))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    min_answers: Mapped[int] = mapped_column(Integer, default=3)
    max_answers: Mapped[int] = mapped_column(Integer, default=5)
    confidence: Mapped[float] = mapped_column(Float, default=0.8)
    lease_seconds: Mapped[int | None] = mapped_column(Integer)
    # draft | active | paused | completed | archived (see engine.lifecycle)
    state: Mapped[str] = mapped_column(String(20), default="active")
    strategy: Mapped[str] = mapped_column(String(20), default="breadth", server_default="breadth")
    gold_start: Mapped[float] = mapped_column(Float, default=0.4, server_default="0.4")
    gold_floor: Mapped[float] = mapped_column(Float, default=0.1, server_default="0.1")
    gold_ramp: Mapped[int] = mapped_column(Integer, default=20, server_default="20")
    # thresholds of the flags that quarantine (engine.quality.quarantine); None: defaults
    quality: Mapped[Any | None] = mapped_column(JSON)
    # what the periodic quality job learnt for live merges: {"temperature": τ}
    # (engine.quality.truth_live.fit_workers); None: untempered
    calibration: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    """One bulk upload into a project, split into tasks by a background job."""

    __tablename__ = "job"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # items | zip
    state: Mapped[str] = mapped_column(String(20), default="queued")  # queued|running|done|failed
    source: Mapped[str] = mapped_column(String(300), default="")  # file under uploads/
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # of its tasks
    items_total: Mapped[int] = mapped_column(Integer, default=0)
    items_split: Mapped[int] = mapped_column(Integer, default=0)
    tasks_made: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    problems: Mapped[Any] = mapped_column(JSON, default=list)  # the first 1,000 listed
    problems_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # all
    error: Mapped[str | None] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(String(300), default="", server_default="")  # as uploaded
    items_read: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Written every few seconds while a split runs: a stale one means its worker died.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resumed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # after a death
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Item(Base):
    """One uploaded thing (photo, row, page); its tasks' results combine into it."""

    __tablename__ = "item"
    __table_args__ = (UniqueConstraint("job_id", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"))
    seq: Mapped[int] = mapped_column(Integer)  # position in the upload: makes re-runs idempotent
    ref: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class Task(Base):
    """A microtask: what one volunteer sees, answered by several of them."""

    __tablename__ = "task"
    __table_args__ = (Index("ix_task_project_state", "project_id", "state"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    gold: Mapped[Any | None] = mapped_column(JSON)
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(20), default="open")  # open|retired|contested|settled
    need: Mapped[int] = mapped_column(Integer)  # counted answers wanted now
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    settled_by: Mapped[int | None] = mapped_column(ForeignKey("user.id"))


class Handout(Base):
    """A task given to a volunteer (a lease was opened): remembered in SQL so
    that even after Redis is wiped nobody is shown the same task twice.

    Written on every checkout, so it is one B-tree keyed by (task, volunteer):
    on SQLite a WITHOUT ROWID table, with no surrogate id and no index of its
    own to keep (rebuilds reach a project's handouts through its tasks).
    """

    __tablename__ = "handout"
    __table_args__ = (
        PrimaryKeyConstraint("task_id", "volunteer_id", name="pk_handout"),
        ForeignKeyConstraint(["task_id"], ["task.id"], name="fk_handout_task"),
        ForeignKeyConstraint(["volunteer_id"], ["volunteer.id"], name="fk_handout_volunteer"),
        ForeignKeyConstraint(["project_id"], ["project.id"], name="fk_handout_project"),
        # the few leases given back, for a rebuild to mark skipped again
        Index("ix_handout_released", "project_id", "released_at",
              sqlite_where=text("released_at IS NOT NULL"),
              postgresql_where=text("released_at IS NOT NULL")),
        {"sqlite_with_rowid": False},
    )
    task_id: Mapped[int] = mapped_column()
    volunteer_id: Mapped[int] = mapped_column()
    project_id: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # when the volunteer gave the lease back (a skip or a report): a rebuild
    # marks it skipped again, so an answer sent with it is still refused
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Answer(Base):
    """One volunteer's response to one task; never two per (task, volunteer)."""

    __tablename__ = "answer"
    __table_args__ = (
        UniqueConstraint("task_id", "volunteer_id", name="uq_answer_task_volunteer"),
        Index("ix_answer_project", "project_id", "id"),
        # a volunteer's latest answers in a project, newest first, read on the
        # answer path (engine.quality.arrivals.check_volunteer); also every
        # answer of a volunteer (its prefix)
        Index("ix_answer_volunteer_project", "volunteer_id", "project_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"))
    value: Mapped[Any] = mapped_column(JSON)
    lease: Mapped[str | None] = mapped_column(String(200))
    counted: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PendingSubmit(Base):
    """An answer stored while Redis was out of reach: its lease is closed and its
    task counted when Redis answers again (engine.volunteering.replay_pending).

    No foreign keys: nothing that deletes answers or projects has to know about
    this table; a replay skips rows whose answer is gone.
    """

    __tablename__ = "pending_submit"
    answer_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    project_id: Mapped[int] = mapped_column()
    task_id: Mapped[int] = mapped_column()
    volunteer_id: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrganisationBlock(Base):
    """A volunteer an admin blocked in every project of an organisation: the
    projects it has then are blocked one by one (VolunteerStat.blocked), and
    this row blocks them in each project it makes later (engine.projects).
    Ended by an unblock at organisation scope; a platform unblock leaves it."""

    __tablename__ = "organisation_block"
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"),
                                                 primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), primary_key=True)
    blocked_by: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    blocked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class VolunteerStat(Base):
    """What the engine knows of one volunteer in one project: how much and how
    well they answer, what looks suspicious, and whether an admin blocked them."""

    __tablename__ = "volunteer_stat"
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), primary_key=True)
    answers: Mapped[int] = mapped_column(Integer, default=0)
    gold_answers: Mapped[int] = mapped_column(Integer, default=0)
    gold_score: Mapped[float] = mapped_column(Float, default=0.0)  # mean score on gold
    reliability: Mapped[float | None] = mapped_column(Float)  # estimated P(right)
    agreement: Mapped[float | None] = mapped_column(Float)  # share agreeing with results
    confusion: Mapped[Any | None] = mapped_column(JSON)  # label x label, for Dawid-Skene
    median_seconds: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[Any] = mapped_column(JSON, default=list)
    # blocked here, at any scope: what hand-out, merges and pages read. It holds
    # while any of three blocks does: this project's own (blocked_here), the
    # organisation's (OrganisationBlock) or the platform's (Volunteer.blocked).
    # A platform unblock ends the platform's alone, so the charity's own stand
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked_here: Mapped[bool] = mapped_column(Boolean, default=False,
                                               server_default=false())
    blocked_by: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    blocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # quarantined: flagged, answers not counted, waiting for an admin's block or clear
    quarantined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    quarantine_reasons: Mapped[Any | None] = mapped_column(JSON)
    # an admin cleared them: flags count only answers given after this
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # an admin looked at their first answers (the newcomers' spot-check)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # their answers started or stopped counting, and the tasks they answered are
    # being merged again, a chunk per transaction (engine.quality.moderation),
    # since then; left set by a process that was lost, it is finished by the
    # periodic quality job
    remerging_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TaskReport(Base):
    """A volunteer's "something is wrong with this task" (a blank picture, upsetting
    content, unreadable): it reaches the charity's inbox, and enough of them take
    the task out of circulation (engine.quality.reports). One per (task, volunteer);
    resolved when staff dismiss the reports or settle the task."""

    __tablename__ = "task_report"
    __table_args__ = (
        UniqueConstraint("task_id", "volunteer_id", name="uq_task_report_task_volunteer"),
        Index("ix_task_report_project_open", "project_id", "resolved_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"))
    reason: Mapped[str] = mapped_column(String(20))  # engine.quality.reports.REASONS
    note: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One admin action on quality (who, what, when, why), or the engine's own
    (a quarantine by the flags: ``user_id`` None). Kept for good: the desk shows
    it and the charity can export it."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_organisation", "organisation_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))  # None: bitesize itself
    action: Mapped[str] = mapped_column(String(40))  # engine.quality.audit.ACTIONS
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteer.id"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id"))
    scope: Mapped[str | None] = mapped_column(String(20))  # project|organisation|platform
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Result(Base):
    """The merged answer of a task; its state is the task's state."""

    __tablename__ = "result"
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    value: Mapped[Any | None] = mapped_column(JSON)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    answers: Mapped[int] = mapped_column(Integer, default=0)
    support: Mapped[Any | None] = mapped_column(JSON)
    method: Mapped[str] = mapped_column(String(40), default="majority")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Webhook(Base):
    """Where a project's events are POSTed, signed with its secret (one per project).

    The secret is kept as given: signing needs it, a hash would not do."""

    __tablename__ = "webhook"
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[Any] = mapped_column(JSON)  # the event types subscribed
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # False: held, not sent
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookEvent(Base):
    """The outbox: an event to deliver, written in the same transaction as the
    change it reports, so no committed change goes unreported."""

    __tablename__ = "webhook_event"
    __table_args__ = (
        Index("ix_webhook_event_project_state", "project_id", "state", "id"),
        Index("ix_webhook_event_due", "state", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"))
    type: Mapped[str] = mapped_column(String(40))  # job.split | task.retired | project.completed
    payload: Mapped[Any] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    # pending | failed (retried at next_attempt_at) | delivered | dead (gave up; redeliverable)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    give_up_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))


class WebhookDelivery(Base):
    """The delivery log: one row per attempt to POST an event."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_project", "project_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_event.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[float] = mapped_column(Float)
