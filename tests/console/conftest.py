"""Fixtures for the charity console through Flask's test client.

`staff` is a staff member who has set a password (tests/conftest.py's
`make_staff`); `console` is a test client signed in as them through the real
sign-in form. `forms` reads a page's CSRF token as a browser would have it
and posts forms with it: `forms.post(client, url, data, page=None)`.
"""
from __future__ import annotations

import email
import re
import socketserver
import threading

import pytest

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Forms:
    def token(self, client, url: str) -> str:
        page = client.get(url)
        found = _TOKEN.search(page.get_data(as_text=True))
        assert found, f"no CSRF token on {url} ({page.status_code})"
        return found.group(1)

    def post(self, client, url: str, data: dict, page: str | None = None, **kwargs):
        """POST a console form with the CSRF token of the page it lives on."""
        return client.post(url, data={**data, "csrf_token": self.token(client, page or url)},
                           **kwargs)

    def sign_in(self, client, login) -> None:
        reply = self.post(client, "/console/login",
                          {"email": login.email, "password": login.password})
        assert reply.status_code == 302, reply.get_data(as_text=True)


@pytest.fixture
def forms() -> Forms:
    return Forms()


@pytest.fixture
def staff(make_staff):
    return make_staff()


@pytest.fixture
def console(app, staff, forms):
    """A test client signed in as `staff`."""
    client = app.test_client()
    forms.sign_in(client, staff)
    return client


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib to deliver one message per connection."""

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        envelope: dict = {"to": []}
        while line := self.rfile.readline():
            verb = line.decode().strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == "MAIL":
                envelope["from"] = line.decode().strip()
                self.wfile.write(b"250 ok\r\n")
            elif verb == "RCPT":
                envelope["to"].append(line.decode().strip())
                self.wfile.write(b"250 ok\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go on\r\n")
                body = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    body += chunk
                envelope["message"] = email.message_from_bytes(body)
                self.server.received.append(envelope)
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server():
    """A real SMTP listener on loopback; `.received` holds what it was sent."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
