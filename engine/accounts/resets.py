""""Forgot password" for console accounts, sent by a worker.

The page reads the same whether or not an account has the address, but when
the request itself made the link and talked to the mail server it took longer
when one did (an SMTP exchange, up to engine.accounts.mail.TIMEOUT_SECONDS),
which told anyone with a stopwatch which addresses have accounts; and a slow
mail server held a web thread. Now every request only queues the address (the
same work either way) and a worker looks it up, makes the link and sends it.
The job holds no secret: the link is made by the worker, stored as a hash.
"""
from __future__ import annotations

import logging

from engine.accounts.mail import send_mail
from engine.accounts.staff import LINK_DAYS, can_reset, find_staff, issue_link, normal_email
from engine.errors import InvalidError
from engine.services import Services

log = logging.getLogger(__name__)
SUBJECT = "Reset your bitesize password"
# A job not run (no worker) or failed (the database was away) keeps its
# arguments, an email address, in Redis: for a day at most, not for ever or
# RQ's default year (a link asked for yesterday is not wanted today).
FAILED_JOB_SECONDS = 24 * 3600


def request_reset(services: Services, email: str, link_prefix: str) -> None:
    """Queue the reset email for `email` (sent only if an account may reset);
    `link_prefix` is the set-password link without its token, on the public URL."""
    try:
        email = normal_email(email)
    except InvalidError:  # no account can have it: the page reads the same
        return
    services.queue("high").enqueue("workers.jobs.send_password_reset", email, link_prefix,
                                   ttl=FAILED_JOB_SECONDS, result_ttl=0,
                                   failure_ttl=FAILED_JOB_SECONDS)


def send_reset(services: Services, email: str, link_prefix: str) -> bool:
    """Email a one-time reset link to the account with this address, if it has a
    password to forget (engine.accounts.staff.can_reset); whether one was sent."""
    staff = find_staff(services, email)
    if staff is None or not can_reset(services, staff):
        return False
    token = issue_link(services, staff.id, "reset")
    problem = send_mail(services.settings, staff.email, SUBJECT, reset_body(link_prefix + token))
    if problem is not None:
        log.warning("password reset for user %s not emailed: %s", staff.id, problem)
    return problem is None


def reset_body(link: str) -> str:
    hours = LINK_DAYS["reset"] * 24
    return ("Someone (we hope you) asked to reset your bitesize password.\n\n"
            f"Set a new one here (the link works once, for {hours} hours):\n{link}\n\n"
            "If it was not you, ignore this email: your password stays as it is.\n")
