"""Fetching a remote image for an import or a split, with limits.

A charity's item may point at an image on its own web server (a CSV of image
URLs, a IIIF manifest). The engine downloads it only when it must see the
pixels (cutting tiles or lines), never more than a size limit, never for
long, and only over http(s).
"""
from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from engine.errors import InvalidError, TooLargeError

USER_AGENT = "bitesize/0.1 (+https://github.com/bitesize)"
CHUNK = 64 * 1024


def fetch(url: str, max_bytes: int, timeout: float = 30.0) -> bytes:
    """The body of ``url``; InvalidError when it cannot be had, TooLargeError
    past ``max_bytes`` (checked while reading, whatever Content-Length says)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise InvalidError(f"{url!r} is not an http(s) URL")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
            return _read_limited(response, url, max_bytes)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response and its socket
        raise InvalidError(f"{url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InvalidError(f"{url} could not be fetched: {reason}") from exc


def _read_limited(response, url: str, max_bytes: int) -> bytes:
    parts, size = [], 0
    while chunk := response.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise TooLargeError(f"{url} is over the limit of {max_bytes} bytes")
        parts.append(chunk)
    return b"".join(parts)
