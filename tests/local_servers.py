"""Serving the suite's own loopback HTTP servers (IIIF museums, webhook
receivers) on a thread for the length of a test."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def serving(server: T) -> Iterator[T]:
    """`server.httpd` (an http.server) answers on a thread inside the block,
    and is shut and closed after it, so a test leaves no listener behind."""
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
