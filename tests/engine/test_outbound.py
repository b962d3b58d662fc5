"""The outbound guard: every request the server makes (IIIF, item images,
webhooks) reaches the public internet only, or what fetch_allow allows.

Real servers on loopback stand for "our own network": 127.0.0.1 is the one
allowed in most tests (as the suite's settings allow it), 127.0.0.2 is a
server inside that must never be reached. socket.getaddrinfo is replaced only
in the tests about DNS answers.
"""
from __future__ import annotations

import itertools
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.delivery import outbound, webhooks
from engine.delivery.outbound import FetchError, FetchTooLargeError, allowed, is_public
from engine.delivery.sender import deliver_due
from engine.errors import InvalidError
from engine.intake.fetch import fetch
from engine.intake.media import MediaStore, SplitMedia
from engine.projects import create_project
from engine.store.models import WebhookDelivery
from task_types import ItemError

SECRET_REPLY = "SECRET-REMOTE-REPLY"


class Site:
    """An HTTP server on one loopback address: routes of (status, body, location)."""

    def __init__(self, host: str) -> None:
        self.hits: list[tuple[str, str, str]] = []  # (method, path, Host header)
        self.routes: dict[str, tuple[int, bytes, str | None]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                site.hits.append((self.command, self.path, self.headers.get("Host")))
                status, body, location = site.routes.get(self.path, (404, b"", None))
                self.send_response(status, SECRET_REPLY if status >= 400 else None)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = answer  # noqa: N815 - the http.server API

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base = f"http://{host}:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class RawListener:
    """A TCP port that is open but speaks no HTTP (an FTP or SSH banner)."""

    def __init__(self, banner: bytes) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.banner = banner
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(self.banner)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def site():
    server = Site("127.0.0.1")
    server.routes["/photo.jpg"] = (200, b"pixels", None)
    yield server
    server.close()


@pytest.fixture
def inside():
    """A server on 127.0.0.2: our own network, never allowed."""
    server = Site("127.0.0.2")
    server.routes["/secret"] = (200, b"internal", None)
    yield server
    server.close()


@pytest.fixture
def banner():
    listener = RawListener(b"220 FTP and SSH-2.0-OpenSSH " + SECRET_REPLY.encode() + b"\r\n")
    yield listener
    listener.close()


@pytest.fixture
def dns(monkeypatch):
    """``dns[name] = [addresses]``: what the resolver answers for made-up names;
    ``dns.calls`` counts the lookups of those names."""
    real = socket.getaddrinfo

    class Answers(dict):
        calls: dict[str, int] = {}

    answers = Answers()

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        answers.calls[host] = answers.calls.get(host, 0) + 1
        found = answers[host]
        if callable(found):
            found = found()
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in found]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def refused(url: str, allow: str = "", reason: str = "address not allowed") -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, 1000, timeout=5, allow=allow)
    assert "could not be fetched" in caught.value.message
    assert caught.value.reason == reason, caught.value.message
    return caught.value


DISGUISES = [
    "127.0.0.1", "127.0.0.2", "127.1", "0x7f000001", "2130706433", "0177.0.0.1",
    "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::127.0.0.1]", "[2002:7f00:1::]",
    "[64:ff9b::7f00:1]", "[64:ff9b::a9fe:a9fe]", "[64:ff9b:1::a00:1]",
    "169.254.169.254", "[::ffff:169.254.169.254]", "[fe80::1]", "10.0.0.1", "172.16.0.1",
    "192.168.1.1", "100.64.0.1", "0.0.0.0", "[::]", "224.0.0.1", "[ff02::1]",
    "255.255.255.255", "240.0.0.1", "[fc00::1]", "[fd00::7]", "198.18.0.1",
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",  # Teredo
]


@pytest.mark.parametrize("host", DISGUISES)
def test_every_disguise_of_our_own_network_is_refused(site, host):
    port = site.port if "127" in host or "7f" in host or host in ("[::1]", "2130706433") else 80
    refused(f"http://{host}:{port}/photo.jpg")
    assert site.hits == []


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946",
                                     "::ffff:93.184.216.34", "2002:5db8:d822::1",
                                     "64:ff9b::5db8:d822", "1.1.1.1"])
def test_public_addresses_pass_in_every_form(address):
    import ipaddress

    assert is_public(ipaddress.ip_address(address))


def test_fetch_allow_lets_one_address_in_and_not_its_neighbours(site, inside):
    assert fetch(f"{site.base}/photo.jpg", 1000, allow="127.0.0.1") == b"pixels"
    refused(f"{inside.base}/secret", allow="127.0.0.1")
    assert inside.hits == []
    assert fetch(f"{inside.base}/secret", 1000, allow="127.0.0.0/30") == b"internal"
    refused(f"{site.base}/photo.jpg", allow=f"127.0.0.1:{site.port + 1}")
    assert fetch(f"{site.base}/photo.jpg", 1000, allow=f"127.0.0.1:{site.port}") == b"pixels"


def test_ports_other_than_80_and_443_need_allowing(dns):
    dns["images.example.test"] = ["93.184.216.34"]
    refused("http://93.184.216.34:8080/x.jpg", reason="port not allowed")
    refused("https://images.example.test:22/x.jpg", reason="port not allowed")


@pytest.mark.parametrize(("text", "hosts", "networks"), [
    ("", set(), 0),
    ("images.charity.org, Iiif.Charity.org.:8182", {("images.charity.org", None),
                                                    ("iiif.charity.org", 8182)}, 0),
    ("10.0.0.0/8 10.1.2.3:8080 [fd00::7]:8080 ::1", set(), 4),
])
def test_fetch_allow_reads_hosts_ports_and_networks(text, hosts, networks):
    parsed = allowed(text)
    assert set(parsed.hosts) == hosts and len(parsed.networks) == networks


@pytest.mark.parametrize("text", ["http://x/", "a/b", "10.0.0.0/33"])
def test_a_bad_fetch_allow_entry_is_loud(text):
    with pytest.raises(ValueError, match="fetch_allow"):
        allowed(text)


def test_a_name_answering_a_private_address_is_refused(site, dns):
    dns["images.example.test"] = ["10.1.2.3"]
    dns["mixed.example.test"] = ["93.184.216.34", "127.0.0.1"]
    refused("http://images.example.test/x.jpg")
    refused(f"http://mixed.example.test:{site.port}/photo.jpg", allow="")
    assert site.hits == []


def test_the_checked_address_is_the_one_connected_to(site, inside, dns):
    """One lookup per hop: a resolver that answers an allowed address, then an
    inside one (DNS rebinding), is asked once; the Host header keeps the name."""
    answers = iter([["127.0.0.1"], ["127.0.0.2"]])
    dns["museum.example.test"] = lambda: next(answers)
    url = f"http://museum.example.test:{site.port}/photo.jpg"
    assert fetch(url, 1000, allow="127.0.0.1") == b"pixels"
    assert dns.calls["museum.example.test"] == 1
    assert site.hits == [("GET", "/photo.jpg", f"museum.example.test:{site.port}")]
    assert inside.hits == []


def test_an_allowed_host_name_may_resolve_inside(site, dns):
    dns["images.charity.test"] = ["127.0.0.1"]
    url = f"http://images.charity.test:{site.port}/photo.jpg"
    refused(url)
    assert fetch(url, 1000, allow="images.charity.test") == b"pixels"


def test_a_redirect_inside_is_refused(site, inside):
    site.routes["/in"] = (302, b"", f"{inside.base}/secret")
    site.routes["/meta"] = (301, b"", "http://169.254.169.254/latest/meta-data/")
    site.routes["/mapped"] = (307, b"", f"http://[::ffff:127.0.0.2]:{inside.port}/secret")
    for path in ("/in", "/meta", "/mapped"):
        refused(f"{site.base}{path}", allow="127.0.0.1")
    assert inside.hits == []


def test_a_redirect_to_another_scheme_is_refused(site, banner):
    site.routes["/ftp"] = (302, b"", f"ftp://127.0.0.1:{banner.port}/x.jpg")
    site.routes["/file"] = (302, b"", "file:///etc/passwd")
    for path in ("/ftp", "/file"):
        refused(f"{site.base}{path}", allow="127.0.0.1", reason="redirect not allowed")
    assert banner.connections == 0


def test_at_most_three_redirects_are_followed(site):
    for n in range(4):
        site.routes[f"/r{n}"] = (302, b"", f"/r{n + 1}" if n < 3 else "/photo.jpg")
    assert fetch(f"{site.base}/r1", 1000, allow="127.0.0.1") == b"pixels"  # 3 hops
    refused(f"{site.base}/r0", allow="127.0.0.1", reason="too many redirects")
    assert ("GET", "/photo.jpg") not in [hit[:2] for hit in site.hits[4:]]


@pytest.mark.parametrize("userinfo", ["user:pass@", "user@", ":pass@", "@"])
def test_credentials_in_a_url_are_refused(site, userinfo):
    error = refused(f"http://{userinfo}127.0.0.1:{site.port}/photo.jpg", allow="127.0.0.1",
                    reason="credentials in the URL are not allowed")
    assert "pass" not in error.message
    site.routes["/login"] = (302, b"", f"http://{userinfo}127.0.0.1:{site.port}/photo.jpg")
    refused(f"{site.base}/login", allow="127.0.0.1",
            reason="credentials in the URL are not allowed")
    assert [hit[1] for hit in site.hits] == ["/login"]


@pytest.mark.parametrize("url", ["ftp://example.org/x.jpg", "file:///etc/passwd", "gopher://x/",
                                 "/etc/passwd", "http://", "http://[::1/x", "http://a\\b/"])
def test_only_plain_http_urls_are_requested(url):
    with pytest.raises(FetchError, match="could not be fetched"):
        fetch(url, 1000)


def test_errors_never_repeat_the_remote_reply(site, banner, free_port):
    site.routes["/broken"] = (500, SECRET_REPLY.encode() * 3, None)
    error = refused(f"{site.base}/broken", allow="127.0.0.1", reason="HTTP 500")
    assert error.transient and SECRET_REPLY not in error.message
    opened = refused(f"http://127.0.0.1:{banner.port}/", allow="127.0.0.1", reason="no answer")
    closed_port = free_port()
    closed = refused(f"http://127.0.0.1:{closed_port}/", allow="127.0.0.1", reason="no answer")
    assert SECRET_REPLY not in opened.message and "refused" not in closed.message.lower()
    # an open port and a closed one read the same, but for the port number
    assert opened.message.replace(str(banner.port), "N") == \
        closed.message.replace(str(closed_port), "N")


def test_sizes_stay_bounded(site):
    site.routes["/big"] = (200, b"x" * 5000, None)
    with pytest.raises(FetchTooLargeError, match="could not be fetched: too large"):
        fetch(f"{site.base}/big", 1000, allow="127.0.0.1")
    assert outbound.request(f"{site.base}/big", "127.0.0.1", max_bytes=10, cut=True).body == \
        b"x" * 10


def test_an_item_image_inside_is_one_items_problem_and_never_stored(tmp_path, inside):
    """Task types cut pictures through SplitMedia: an image URL inside our network
    is refused there, so nothing of it is cut into tiles or kept under /media/."""
    media = SplitMedia(MediaStore(tmp_path), allow="127.0.0.1")
    with pytest.raises(ItemError) as caught:
        media.read(f"{inside.base}/secret")
    assert caught.value.fields["image"] == [f"{inside.base}/secret could not be fetched: "
                                            "address not allowed"]
    assert inside.hits == [] and not list(tmp_path.iterdir())


# Webhooks: refused when set, and checked again when sent.

@pytest.fixture
def project(services, owner):
    return create_project(services, owner, {
        "name": "owls", "task_type": "classify",
        "config": {"question": "Owl?", "labels": ["a", "b"]}, "min_answers": 1,
        "max_answers": 1}).project


@pytest.mark.parametrize("url", ["http://127.0.0.2/hook", "http://[::1]/hook",
                                 "http://169.254.169.254/latest", "http://0x7f000002/",
                                 "http://[::ffff:10.0.0.1]/", "http://10.0.0.1:8080/",
                                 "https://user:pw@hooks.example.org/"])
def test_a_webhook_into_our_network_is_refused_when_set(services, owner, project, url):
    with pytest.raises(InvalidError) as caught:
        webhooks.set_webhook(services, owner, project.id, {"url": url, "secret": "x" * 20})
    assert "url" in caught.value.fields


def test_a_webhook_whose_name_moves_inside_is_not_sent(services, owner, project, inside, dns,
                                                        make_project):
    dns["hooks.example.test"] = ["127.0.0.1"]  # allowed by the suite's settings
    webhooks.set_webhook(services, owner, project.id, {
        "url": f"http://hooks.example.test:{inside.port}/hook", "secret": "x" * 20})
    dns["hooks.example.test"] = ["127.0.0.2"]  # the DNS answer changed since
    make_project.add_items(project, [{"text": "t0"}])
    deliver_due(services)
    assert inside.hits == []
    with services.db.session() as session:
        errors = [d.error for d in session.query(WebhookDelivery)]
    assert errors and all(e.endswith("could not be fetched: address not allowed")
                          for e in errors)


def test_a_webhook_reply_is_never_logged(services, owner, project, site, make_project):
    site.routes["/hook"] = (500, SECRET_REPLY.encode(), None)
    webhooks.set_webhook(services, owner, project.id, {"url": f"{site.base}/hook",
                                                       "secret": "x" * 20})
    make_project.add_items(project, [{"text": "t0"}])
    deliver_due(services)
    with services.db.session() as session:
        errors = [d.error for d in session.query(WebhookDelivery)]
    assert errors == ["HTTP 500"]


class Drip:
    """A receiver that answers one byte of its headers every 0.1 s (for 10 s):
    each read finishes well inside any timeout, the request does not."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nX-Slow: "
            # 10 s at most, so that a broken deadline fails the test instead of hanging it
            for byte in itertools.islice(itertools.chain(head, itertools.repeat(ord("a"))), 100):
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    self.closed.set()
                    return
                time.sleep(0.1)


def test_a_receiver_that_trickles_is_cut_off_at_the_deadline():
    """A security review held a webhook delivery with timeout 5 s for 25 s (and
    could for ever) by sending one header byte a second: the timeout bounds each
    read. The whole request now ends after DEADLINE_TIMEOUTS x timeout."""
    drip = Drip()
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        outbound.request(f"http://127.0.0.1:{drip.port}/hook", "127.0.0.1", method="POST",
                         body=b"{}", timeout=0.5, redirects=0)
    took = time.monotonic() - started
    assert "timed out" in caught.value.message
    assert 2 * 0.5 <= took < 2 * 0.5 + 1.5, took
    assert drip.closed.wait(5)  # the connection was dropped, not left open
    drip.sock.close()


@pytest.fixture
def unanswered():
    """Four loopback addresses whose port never completes a connect: each has a
    listener whose one-slot backlog is taken, so the kernel drops new SYNs."""
    listeners, held = [], []
    for n in range(3, 7):
        listener = socket.socket()
        listener.bind((f"127.0.0.{n}", listeners[0].getsockname()[1] if listeners else 0))
        listener.listen(0)
        listeners.append(listener)
        held.append(socket.create_connection(listener.getsockname(), timeout=1))
    yield [sock.getsockname() for sock in listeners]
    for sock in held + listeners:
        sock.close()


def test_connecting_ends_at_the_deadline_however_many_addresses(dns, unanswered):
    """An audit held a request with timeout 1 s for 4 s: a name with four
    addresses that never answer got the full timeout on each connect, and the
    deadline's timer cannot cut a connect. Now the whole request, connects
    included, ends after DEADLINE_TIMEOUTS x timeout."""
    dns["four.example.test"] = [host for host, _ in unanswered]
    port = unanswered[0][1]
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        outbound.request(f"http://four.example.test:{port}/hook", "four.example.test",
                         method="POST", body=b"{}", timeout=1.0, redirects=0)
    took = time.monotonic() - started
    assert caught.value.reason == "timed out" and caught.value.transient
    assert 2 * 1.0 - 0.1 <= took < 2 * 1.0 + 0.9, took


def test_a_url_with_non_ascii_characters_is_fetched_percent_encoded(site):
    """A museum's file names are not all ASCII: http.client refused the path and
    every such image was "no answer". A browser sends it percent-encoded as UTF-8,
    and so do we; escapes already in the URL are left as written."""
    site.routes["/images/%C3%96lgem%C3%A4lde.jpg?by=Zo%C3%AB&n=1%2B1"] = (200, b"oil", None)
    url = f"{site.base}/images/Ölgemälde.jpg?by=Zoë&n=1%2B1"
    assert fetch(url, 1000, allow="127.0.0.1") == b"oil"
    assert site.hits[-1][1] == "/images/%C3%96lgem%C3%A4lde.jpg?by=Zo%C3%AB&n=1%2B1"


def test_a_redirect_to_a_raw_utf8_location_is_followed_as_meant(site):
    """A review: http.client reads a header's bytes as Latin-1, so a Location in
    raw UTF-8 became mojibake, percent-encoded into a path nobody serves."""
    site.routes["/images/%C3%96l.jpg"] = (200, b"oil", None)
    site.routes["/go"] = (302, b"", "/images/Öl.jpg".encode().decode("latin-1"))
    assert fetch(f"{site.base}/go", 1000, allow="127.0.0.1") == b"oil"
