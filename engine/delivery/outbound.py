"""The one door for every request the server makes: IIIF manifests, item images
and webhook deliveries all go out through ``request``.

A charity names the URLs, so a URL is hostile until checked: it could name our
own network (loopback, the cloud's metadata address 169.254.169.254, a
database on 10.0.0.5) under many disguises (``0x7f000001``, ``2130706433``,
``[::ffff:127.0.0.1]``, a DNS name answering a private address, a redirect to
one). So: http(s) only, no credentials in the URL, ports 80 and 443 only; the
host is resolved once, every address it resolves to is checked, and the
connection goes to a checked address (a second lookup could answer something
else); every redirect hop is checked the same way, at most MAX_REDIRECTS, and
never to another scheme (http may move up to https, nothing else).

A deployment allows its own servers with ``fetch_allow`` (README: Configuration).

Errors say "could not be fetched" and a short reason of our own: never the
remote reply nor the operating system's words, so that a closed port and an
open one that speaks no HTTP look alike. Advocate, the known guard library for
requests, pins urllib3 below 2, so this is http.client and ipaddress, small.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import SplitResult, quote, urljoin, urlsplit

from engine.errors import InvalidError, TooLargeError

MAX_REDIRECTS = 3
# The whole request (every hop: connect, send, every read) ends after this many
# times ``timeout``: a timeout bounds each socket wait, so a receiver sending a
# byte a second held a webhook delivery (and the worker) for as long as it liked.
DEADLINE_TIMEOUTS = 2
DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 64 * 1024
MAX_URL_SHOWN = 200
# IPv6 ranges that carry an IPv4 address in their low 32 bits (NAT64) or are
# for local translation only (RFC 8215): what they carry is what is reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchError(InvalidError):
    """A URL that could not be fetched. ``transient`` says whether trying again
    later may help (the server timed out, failed or asked to slow down); ``status``
    is the final HTTP status, when there was one."""

    def __init__(self, url: str, reason: str, transient: bool = False,
                 status: int | None = None) -> None:
        super().__init__(f"{shown(url)} could not be fetched: {reason}", {"url": reason})
        self.reason, self.transient, self.status = reason, transient, status


class FetchTooLargeError(TooLargeError):
    def __init__(self, url: str, max_bytes: int) -> None:
        super().__init__(f"{shown(url)} could not be fetched: too large (over the limit "
                         f"of {max_bytes} bytes)", {"url": "too large"})


@dataclass(frozen=True)
class Reply:
    """The final answer: its status and (up to the caller's limit) its body."""

    status: int
    body: bytes


@dataclass(frozen=True)
class Allowed:
    """``fetch_allow`` read: host names, IP networks, each with an optional port.
    An entry lifts both checks for what it names (any port, unless it names one)."""

    hosts: frozenset[tuple[str, int | None]]
    networks: tuple[tuple[Network, int | None], ...]

    def host(self, name: str, port: int) -> bool:
        return (name, None) in self.hosts or (name, port) in self.hosts

    def address(self, ip: IPAddress, port: int) -> bool:
        return any(ip in network and entry_port in (None, port)
                   for network, entry_port in self.networks)


@lru_cache(maxsize=32)
def allowed(text: str) -> Allowed:
    """Parse ``fetch_allow``: comma- or space-separated ``host``, ``host:port``,
    ``10.0.0.0/8``, ``10.0.0.7``, ``10.0.0.7:8080``, ``[fd00::7]:8080``. A bad
    entry is a ValueError: a deployment's typo must not pass silently."""
    hosts, networks = set(), []
    for entry in text.replace(",", " ").split():
        name, port = _split_port(entry)
        try:
            networks.append((ipaddress.ip_network(name.strip("[]"), strict=False), port))
        except ValueError:
            if not name or "/" in name or ":" in name:
                raise ValueError(f"fetch_allow: {entry!r} is not a host, host:port or "
                                 "network") from None
            hosts.add((_host_key(name), port))
    return Allowed(frozenset(hosts), tuple(networks))


def _split_port(entry: str) -> tuple[str, int | None]:
    head, colon, tail = entry.rpartition(":")
    if colon and tail.isdigit() and (head.endswith("]") or ":" not in head):
        return head, int(tail)
    return entry, None


def _host_key(name: str) -> str:
    return name.lower().rstrip(".")


def shown(url: str) -> str:
    """The URL as an error may show it: no credentials, not too long."""
    try:
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    except ValueError:
        pass
    return url if len(url) <= MAX_URL_SHOWN else url[:MAX_URL_SHOWN] + "..."


def is_public(ip: IPAddress) -> bool:
    """Whether an address is on the public internet, looking through the IPv6 forms
    that carry an IPv4 address (mapped, compatible, 6to4, Teredo, NAT64)."""
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ipaddress.IPv6Address(ip.compressed.split("%")[0])  # drop a scope id
        if ip in _LOCAL_NAT64 or ip in _IPV4_COMPATIBLE:
            return False
        if ip.ipv4_mapped is not None or ip in _NAT64:  # what is reached is the IPv4
            return is_public(ip.ipv4_mapped or ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        carried = [ip.sixtofour] if ip.sixtofour is not None else []
        carried += list(ip.teredo or ())
        if not all(is_public(inner) for inner in carried):
            return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified
                                 or ip.is_loopback or ip.is_link_local or ip.is_private)


@dataclass(frozen=True)
class Target:
    """One hop, checked: where to connect and what to ask for there."""

    scheme: str
    host: str  # as the URL names it (Host header and TLS server name)
    port: int
    addresses: tuple[str, ...]  # every one checked
    path: str


def check_url(url: str) -> SplitResult:
    """The URL's parts if it is one we would ever request (http(s), a host, a port
    in range, no credentials, nothing odd); FetchError otherwise. No lookup."""
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        port = parts.port if parts else None
    except ValueError:
        parts = port = None
    if parts is None or any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in url):
        raise FetchError(str(url), "not a valid URL")
    if parts.scheme not in DEFAULT_PORTS:
        raise FetchError(url, "not an http(s) URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise FetchError(url, "credentials in the URL are not allowed")
    if not parts.hostname or port == 0:
        raise FetchError(url, "not a valid URL")
    return parts


def check_target(url: str, allow: Allowed, resolve: bool = True) -> Target:
    """Check one hop: the URL, the port, and every address the host resolves to.

    With ``resolve=False`` (setting a webhook) a name that does not resolve now
    passes: it is checked again when something is sent."""
    parts = check_url(url)
    host = _ascii_host(url, parts.hostname)
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    addresses = _resolve(url, host, port, required=resolve)
    if not allow.host(_host_key(host), port):
        _check_addresses(url, host, port, allow, addresses)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, addresses, _ascii_path(path))


def _ascii_path(path: str) -> str:
    """The path and query with every non-ASCII character percent-encoded as
    UTF-8 (as a browser sends it): http.client refuses anything else, and a
    museum's ``/images/Ölgemälde.jpg`` was "no answer". The rest is left as the
    charity wrote it, escapes included."""
    if path.isascii():
        return path
    return "".join(ch if ch.isascii() else quote(ch, safe="") for ch in path)


def _ascii_host(url: str, hostname: str) -> str:
    try:
        return hostname.encode("idna").decode("ascii") if not hostname.isascii() else hostname
    except UnicodeError:
        raise FetchError(url, "not a valid URL") from None


def _check_addresses(url: str, host: str, port: int, allow: Allowed,
                     addresses: tuple[str, ...]) -> None:
    ips = [ipaddress.ip_address(address.split("%")[0]) for address in addresses]
    outside = [ip for ip in ips if not allow.address(ip, port)]
    if not all(is_public(ip) for ip in outside):
        raise FetchError(url, "address not allowed")
    if outside and port not in DEFAULT_PORTS.values():
        raise FetchError(url, "port not allowed")


def _resolve(url: str, host: str, port: int, required: bool) -> tuple[str, ...]:
    """Every address of ``host`` (a literal, in any of the forms the C library
    reads, resolves to itself). Called once per hop: the result is what we use."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        if required:
            raise FetchError(url, "no answer") from None
        return ()
    return tuple(dict.fromkeys(info[4][0] for info in found))


def request(url: str, allow: Allowed | str = "", *, method: str = "GET",
            body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 30.0, max_bytes: int = 1024, cut: bool = False,
            redirects: int = MAX_REDIRECTS) -> Reply:
    """Send one request through the guard and return the final reply.

    Up to ``redirects`` redirects are followed (each hop checked); with 0 a
    redirect is returned as the reply. The body is read up to ``max_bytes``:
    past it, FetchTooLargeError, or with ``cut`` the rest is left unread.
    ``timeout`` bounds each connect and each read, and the whole request ends
    after DEADLINE_TIMEOUTS times it, however slowly the other side trickles."""
    allow = allowed(allow) if isinstance(allow, str) else allow
    ends = time.monotonic() + DEADLINE_TIMEOUTS * timeout
    for hop in range(redirects + 1):
        target = check_target(url, allow)
        status, location, data = _exchange(url, target, method, body, headers or {}, timeout,
                                           max_bytes, cut, ends)
        if status not in REDIRECTS or location is None or redirects == 0:
            return Reply(status, data)
        if hop == redirects:
            raise FetchError(url, "too many redirects")
        url = _next_hop(url, location, target.scheme)
        method, body = ("GET", None) if status == 303 or method == "GET" else (method, body)
    raise AssertionError("unreachable")  # pragma: no cover


def _next_hop(url: str, location: str, scheme: str) -> str:
    """Where a redirect points, as an absolute URL on the same scheme (or http
    moved up to https): ftp://, file:// and the like are never followed."""
    try:
        following = urljoin(url, _as_sent(location).strip())
    except ValueError:
        raise FetchError(url, "redirect not allowed") from None
    new_scheme = urlsplit(following).scheme
    if new_scheme != scheme and (scheme, new_scheme) != ("http", "https"):
        raise FetchError(url, "redirect not allowed")
    return following


def _as_sent(header: str) -> str:
    """A header's text as the server meant it: http.client reads header bytes as
    Latin-1, so a Location with raw UTF-8 (``/Öl.jpg``) came out as mojibake,
    which was then percent-encoded into a path nobody serves. Text that is not
    UTF-8 stays as read."""
    try:
        return header.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return header


def _exchange(url: str, target: Target, method: str, body: bytes | None,
              headers: dict[str, str], timeout: float, max_bytes: int,
              cut: bool, ends: float) -> tuple[int, str | None, bytes]:
    """One request on a connection made to a checked address, cut off at the
    monotonic time ``ends``."""
    left = ends - time.monotonic()
    if left <= 0:
        raise FetchError(url, "timed out", transient=True)
    connection = _connection(target, min(timeout, left), ends)
    deadline = _Deadline(connection, left)
    try:
        connection.request(method, target.path, body=body, headers=headers)
        response = connection.getresponse()
        location = response.getheader("Location")
        data = _read(url, response, max_bytes, cut) if 200 <= response.status < 300 else b""
    except TimeoutError:
        raise FetchError(url, "timed out", transient=True) from None
    except (OSError, http.client.HTTPException, ValueError):
        if deadline.passed:
            raise FetchError(url, "timed out", transient=True) from None
        raise FetchError(url, "no answer", transient=True) from None
    finally:
        deadline.cancel()
        connection.close()
    if deadline.passed:  # a body read "to its end" may have been cut short
        raise FetchError(url, "timed out", transient=True)
    return response.status, location, data


class _Deadline:
    """Shuts a connection's socket down once ``seconds`` have passed, which ends
    whatever read or write is waiting on it (the socket's own timeout only
    bounds each wait)."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self.passed = False
        self._connection = connection
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        self.passed = True
        sock = self._connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed meanwhile

    def cancel(self) -> None:
        self._timer.cancel()


def _connection(target: Target, timeout: float, ends: float) -> http.client.HTTPConnection:
    """An http.client connection to ``target.host`` (its Host header and, for
    https, its TLS server name and certificate check) whose socket goes to the
    checked addresses only: http.client never looks the name up itself. The
    connecting ends at the request's deadline ``ends`` too."""
    if target.scheme == "https":
        connection = http.client.HTTPSConnection(target.host, target.port, timeout=timeout,
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)

    def connect(_address, timeout=timeout, source_address=None):
        return _connect_first(target, timeout, ends)

    connection._create_connection = connect
    return connection


def _connect_first(target: Target, timeout: float, ends: float) -> socket.socket:
    """A socket to the first checked address that answers. Each try waits at
    most ``timeout`` and never past ``ends``: the deadline's timer cannot cut a
    connect (there is no socket yet), so a name with four unreachable addresses
    held a webhook delivery for four timeouts."""
    error: OSError = OSError("no address")
    for address in target.addresses:
        left = ends - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed while connecting")
        try:
            return socket.create_connection((address, target.port), min(timeout, left))
        except OSError as exc:
            error = exc
    raise error


def _read(url: str, response: http.client.HTTPResponse, max_bytes: int, cut: bool) -> bytes:
    parts, size = [], 0
    while chunk := response.read(min(CHUNK, max_bytes + 1 - size)):
        size += len(chunk)
        if size > max_bytes:
            if cut:
                parts.append(chunk[:len(chunk) - (size - max_bytes)])
                break
            raise FetchTooLargeError(url, max_bytes)
        parts.append(chunk)
    return b"".join(parts)
