"""Project news by email: "new photos are up", to the volunteers who asked for it.

Opt-in only, per project, and only where the site has a mail server
(BITESIZE_SMTP_URL): a volunteer who kept their work with an email
(engine.accounts.volunteers) and confirmed it (engine.accounts.confirmations:
until then it may be someone else's address) may ask a project to tell them
when it has news; the charity writes a note, and bitesize sends it to them from a worker
(workers.jobs.send_project_news), so a slow mail server never holds a request
and the charity never sees an address. Every email ends with a link that
stops that project's news in one step: a signed token, no sign-in needed.
"""
from __future__ import annotations

import hashlib
import hmac
import re

from sqlalchemy import delete, select

from engine.accounts.mail import mail_configured, send_mail
from engine.errors import ConflictError, GoneError
from engine.identity import Identity
from engine.projects import get_owned_project, get_project
from engine.services import Services
from engine.store.db import insert_ignoring_duplicates
from engine.store.models import NewsSubscription, Project, ProjectNews, VolunteerAccount, utcnow

MAX_SUBJECT = 150
MAX_MESSAGE = 5000
_TOKEN = re.compile(r"([1-9][0-9]{0,18})\.([1-9][0-9]{0,18})\.([0-9a-f]{32})")


def subscribe(services: Services, identity: Identity, project_id: int) -> None:
    """This volunteer wants the project's news (again: no change)."""
    identity.require_volunteer()
    if not mail_configured(services.settings):
        raise ConflictError("this site sends no email", {"mail": "not configured"})
    project = get_project(services, None, project_id)  # a public project, else 404
    with services.db.session() as session:
        account = session.get(VolunteerAccount, identity.id)
        if account is None or not account.email:
            raise ConflictError("keep your work with an email first, to get news by email",
                                {"email": "none kept"})
        if account.email_confirmed_at is None:  # someone else's address, perhaps
            raise ConflictError("confirm your email first: follow the link we sent to it",
                                {"email": "not confirmed"})
        session.execute(insert_ignoring_duplicates(services.db, NewsSubscription.__table__)
                        .values(project_id=project.id, volunteer_id=identity.id,
                                created_at=utcnow()))


def unsubscribe(services: Services, volunteer_id: int, project_id: int) -> bool:
    """No more news from this project; whether there was a subscription."""
    with services.db.session() as session:
        return bool(session.execute(delete(NewsSubscription).where(
            NewsSubscription.project_id == project_id,
            NewsSubscription.volunteer_id == volunteer_id)).rowcount)


def subscribed_projects(services: Services, volunteer_id: int) -> set[int]:
    with services.db.session() as session:
        return set(session.scalars(select(NewsSubscription.project_id).where(
            NewsSubscription.volunteer_id == volunteer_id)))


def unsubscribe_token(secret: str, project_id: int, volunteer_id: int) -> str:
    body = f"{project_id}.{volunteer_id}"
    return f"{body}.{_sign(secret, body)}"


def unsubscribe_by_token(services: Services, token: str) -> str:
    """End the subscription a link names; the project's name, for the page.
    GoneError for a link that is not one of ours."""
    found = _TOKEN.fullmatch(token or "")
    if not found or not hmac.compare_digest(
            found[3], _sign(services.settings.secret_key, f"{found[1]}.{found[2]}")):
        raise GoneError("this link is not valid", {"link": "unknown"})
    project_id, volunteer_id = int(found[1]), int(found[2])
    unsubscribe(services, volunteer_id, project_id)
    with services.db.session() as session:
        return session.scalar(select(Project.name).where(Project.id == project_id)) or ""


def announce(services: Services, identity: Identity, project_id: int, subject: str,
             message: str) -> ProjectNews:
    """A charity's note to the project's subscribed volunteers, sent by a worker."""
    project = get_owned_project(services, identity, project_id)
    if not mail_configured(services.settings):
        raise ConflictError("this site sends no email: set BITESIZE_SMTP_URL",
                            {"mail": "not configured"})
    with services.db.session() as session:
        recipients = len(_recipients(session, project.id))
        news = ProjectNews(project_id=project.id, subject=subject.strip(),
                           message=message.strip(), created_by=identity.id,
                           recipients=recipients, sent=0, failed=0)
        session.add(news)
        session.flush()
    if recipients:
        services.queue("low").enqueue("workers.jobs.send_project_news", news.id)
    return news


def subscriber_count(services: Services, identity: Identity, project_id: int) -> int:
    """How many volunteers would get the project's news now (for the charity)."""
    project = get_owned_project(services, identity, project_id)
    with services.db.session() as session:
        return len(_recipients(session, project.id))


def sent_news(services: Services, identity: Identity, project_id: int,
              limit: int = 20) -> list[ProjectNews]:
    """The project's notes, newest first, with how their sending went."""
    project = get_owned_project(services, identity, project_id)
    with services.db.session() as session:
        return list(session.scalars(select(ProjectNews).where(
            ProjectNews.project_id == project.id).order_by(ProjectNews.id.desc()).limit(limit)))


def send_news(services: Services, news_id: int) -> dict[str, int]:
    """Email one note to each subscriber of its project (the worker's job)."""
    with services.db.session() as session:
        news = session.get(ProjectNews, news_id)
        name = session.scalar(select(Project.name).where(Project.id == news.project_id))
        recipients = _recipients(session, news.project_id)
    sent = failed = 0
    for volunteer_id, email in recipients:
        link = (services.settings.public_url.rstrip("/") + "/unsubscribe/"
                + unsubscribe_token(services.settings.secret_key, news.project_id,
                                    volunteer_id))
        body = (f"{news.message}\n\n-- \nNews from {name}, on bitesize. You asked for it; "
                f"to get no more news from this project: {link}\n")
        if send_mail(services.settings, email, f"{name}: {news.subject}", body) is None:
            sent += 1
        else:
            failed += 1
    with services.db.session() as session:
        row = session.get(ProjectNews, news_id)
        row.sent, row.failed, row.finished_at = sent, failed, utcnow()
    return {"sent": sent, "failed": failed}


def _recipients(session, project_id: int) -> list[tuple[int, str]]:
    return list(session.execute(
        select(NewsSubscription.volunteer_id, VolunteerAccount.email)
        .join(VolunteerAccount, VolunteerAccount.volunteer_id == NewsSubscription.volunteer_id)
        .where(NewsSubscription.project_id == project_id, VolunteerAccount.email.is_not(None),
               VolunteerAccount.email_confirmed_at.is_not(None))
        .order_by(NewsSubscription.volunteer_id)))


def _sign(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), f"news:{body}".encode(), hashlib.sha256).hexdigest()[:32]
