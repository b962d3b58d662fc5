"""Remote images for splits: fetched over real HTTP from a local server, with limits.

The server is on 127.0.0.1, which the outbound guard refuses unless allowed
(tests/engine/test_outbound.py): these tests allow it as a deployment would.
"""
from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from engine.errors import InvalidError, TooLargeError, UnavailableError
from engine.intake.fetch import fetch
from engine.intake.media import MediaStore, SplitMedia
from task_types import ItemError


def jpeg(size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, "JPEG")
    return out.getvalue()


PHOTO = jpeg()
LOCAL = "127.0.0.1"  # fetch_allow for the local server


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        if self.path == "/photo.jpg":
            body = PHOTO
        elif self.path == "/big":
            body = b"x" * 5000
        elif self.path == "/busy.jpg":
            self.send_error(503)
            return
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_reads_a_remote_image(server):
    assert fetch(f"{server}/photo.jpg", max_bytes=10_000, allow=LOCAL) == PHOTO


def test_fetch_refuses_the_local_server_unless_allowed(server):
    with pytest.raises(InvalidError, match="could not be fetched: address not allowed"):
        fetch(f"{server}/photo.jpg", max_bytes=10_000)


@pytest.mark.parametrize(("path", "error", "message"), [
    ("/missing.jpg", InvalidError, "could not be fetched: HTTP 404"),
    ("/big", TooLargeError, "over the limit of 1000 bytes"),
])
def test_fetch_errors_say_why(server, path, error, message):
    with pytest.raises(error, match=message):
        fetch(f"{server}{path}", max_bytes=1000, allow=LOCAL)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x.jpg", "/etc/passwd"])
def test_fetch_refuses_other_schemes(url):
    with pytest.raises(InvalidError, match="not an http"):
        fetch(url, max_bytes=1000)


def test_fetch_reports_a_closed_port():
    with pytest.raises(InvalidError, match="could not be fetched"):
        fetch("http://127.0.0.1:9/x.jpg", max_bytes=1000, timeout=2, allow=LOCAL)


def test_split_media_reads_stored_and_remote_images_and_stores_pieces(tmp_path, server):
    store = MediaStore(tmp_path)
    media = SplitMedia(store, allow=LOCAL)
    stored = store.put(PHOTO, "photo.jpg")
    assert media.read(f"/media/{stored.name}") == PHOTO
    assert media.read(f"{server}/photo.jpg") == PHOTO
    piece = jpeg((8, 8))
    ref = media.store(piece, "jpg")
    assert ref.startswith("/media/") and media.read(ref) == piece
    assert media.store(piece, "jpg") == ref  # content-addressed: stored once


@pytest.mark.parametrize("ref", ["/media/../../etc/passwd", "/media/nope.jpg", "/missing.jpg"])
def test_split_media_turns_failures_into_item_errors(tmp_path, server, ref):
    media = SplitMedia(MediaStore(tmp_path), allow=LOCAL)
    with pytest.raises(ItemError) as caught:
        media.read(server + ref if ref == "/missing.jpg" else ref)
    assert caught.value.fields["image"]


def test_split_media_says_a_busy_image_server_is_worth_trying_later(tmp_path, server):
    """Not the item's fault: it must not become a problem, lost to the job."""
    media = SplitMedia(MediaStore(tmp_path), allow=LOCAL)
    with pytest.raises(UnavailableError, match="busy.jpg could not be fetched: HTTP 503"):
        media.read(f"{server}/busy.jpg")


def test_split_media_refuses_odd_pieces(tmp_path):
    store = MediaStore(tmp_path, max_bytes=100)
    with pytest.raises(InvalidError):
        store.store(b"x" * 10, "exe")
    with pytest.raises(InvalidError):
        store.store(b"x" * 101, "jpg")
