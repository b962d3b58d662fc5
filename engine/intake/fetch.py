"""Fetching a remote image or manifest for an import or a split, with limits.

A charity's item may point at an image on its own web server (a CSV of image
URLs, a IIIF manifest). The engine downloads it only when it must see the
pixels (cutting tiles or lines), never more than a size limit, never for
long, and only through the outbound guard (engine.delivery.outbound): public
http(s) addresses, or those the deployment allows with ``fetch_allow``.
"""
from __future__ import annotations

from engine.delivery.outbound import Allowed, FetchError, request

USER_AGENT = "bitesize/0.1 (+https://github.com/bitesize)"


def fetch(url: str, max_bytes: int, timeout: float = 30.0, allow: Allowed | str = "") -> bytes:
    """The body of ``url``. FetchError (an InvalidError saying "could not be
    fetched" and why, never the remote reply) when it cannot be had, with
    ``transient`` set when trying later may help; FetchTooLargeError (a
    TooLargeError) past ``max_bytes``, checked while reading."""
    reply = request(url, allow, headers={"User-Agent": USER_AGENT}, timeout=timeout,
                    max_bytes=max_bytes)
    if not 200 <= reply.status < 300:
        raise FetchError(url, f"HTTP {reply.status}",
                         transient=reply.status >= 500 or reply.status == 429,
                         status=reply.status)
    return reply.body
