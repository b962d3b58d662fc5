"""Email for account links (invitations, password resets), over SMTP.

Configured by one URL, BITESIZE_SMTP_URL:
``smtp://user:password@host:587?from=console@charity.org&starttls=1`` or
``smtps://...`` for TLS from the start. Without it nothing is sent and the
console shows the link for the person to pass on; so a failed send never
loses a link, it only says it could not be sent.
"""
from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from engine.config import Settings

TIMEOUT_SECONDS = 10
# One plain address: a dot-atom local part (letters of any script, digits and
# the RFC 5322 atom signs) and a domain of two labels or more. No comma, space,
# quote, angle bracket or line break: a "To" of "me@x.org,them@y.org" went to
# both, so one volunteer could confirm an address and have news mailed to
# another that nobody confirmed.
_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"
_LABEL = r"[^\W_](?:(?:[^\W_]|-)*[^\W_])?"
ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")
MAX_ADDRESS, MAX_LOCAL = 320, 64


def folded(email: str | None) -> str:
    """An address as accounts keep and look it up: trimmed, lower case."""
    return (email or "").strip().lower()


def is_address(text: str) -> bool:
    """Whether ``text`` is exactly one plain email address (see ADDRESS)."""
    local = text.partition("@")[0]
    return len(text) <= MAX_ADDRESS and len(local) <= MAX_LOCAL and \
        ADDRESS.fullmatch(text) is not None


def mail_configured(settings: Settings) -> bool:
    return bool(settings.smtp_url)


def send_mail(settings: Settings, to: str, subject: str, body: str) -> str | None:
    """Send a plain-text email; None when sent, else why not (for the page to say)."""
    if not settings.smtp_url:
        return "no mail server is configured (BITESIZE_SMTP_URL)"
    url = urlsplit(settings.smtp_url)
    options = {k: v[-1] for k, v in parse_qs(url.query).items()}
    if not is_address(to):  # stored before addresses were checked as they are now
        return "not one plain email address"
    message = EmailMessage()
    message["From"] = options.get("from") or f"bitesize@{url.hostname or 'localhost'}"
    message["To"] = to
    message["Subject"] = " ".join(subject.split())  # a line break in a name: one line
    message.set_content(body)
    try:
        with _connect(url, options) as smtp:
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            smtp.send_message(message)
    except (OSError, ValueError, smtplib.SMTPException) as exc:
        return f"the mail server did not take it ({type(exc).__name__}: {exc})"[:300]
    return None


def _connect(url, options: dict[str, str]) -> smtplib.SMTP:
    host = url.hostname or "localhost"
    if url.scheme == "smtps":
        return smtplib.SMTP_SSL(host, url.port or 465, timeout=TIMEOUT_SECONDS,
                                context=ssl.create_default_context())
    smtp = smtplib.SMTP(host, url.port or 25, timeout=TIMEOUT_SECONDS)
    if options.get("starttls") in ("1", "true", "yes"):
        smtp.starttls(context=ssl.create_default_context())
    return smtp
