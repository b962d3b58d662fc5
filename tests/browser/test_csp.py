"""Issue 14.7 in a real Chromium: the Content-Security-Policy (no inline script or
style) breaks nothing a volunteer or a charity does, and the volunteer page
refuses to be framed by another origin unless Settings.frame_ancestors names it.

A violation is caught twice: the page's `securitypolicyviolation` events
(listened to in every frame before any page script runs) and Chromium's
console messages about the policy; a check with a deliberately inline script
shows the listener really hears them."""
from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image
from playwright.sync_api import expect
from werkzeug.serving import make_server

from engine.intake import samples
from engine.services import Services
from web import create_app

from .test_task_type_pages import make, upload_images, upload_items
from .volunteer_helpers import current_task, wait_for_new_task

pytestmark = pytest.mark.browser

LISTEN = """
document.addEventListener("securitypolicyviolation", function (ev) {
  window.__cspViolation(ev.violatedDirective + " blocked " + ev.blockedURI + " at "
                        + ev.sourceFile + ":" + ev.lineNumber);
});
"""


@pytest.fixture
def violations(page) -> list[str]:
    """Every CSP violation the page (any of its frames) reports, as text."""
    seen: list[str] = []
    page.context.expose_function("__cspViolation", lambda text: seen.append(text))
    page.context.add_init_script(LISTEN)
    page.on("console", lambda msg: seen.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    return seen


def visit(page, url: str) -> None:
    """Open a page and check it was served under the strict policy."""
    response = page.goto(url)
    assert response.ok, url
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy, url


def open_task(page, url: str) -> int:
    """Open a project's page under the policy; the task it shows."""
    visit(page, url)
    expect(page.locator("#task")).to_be_visible()
    return current_task(page)


def photo(size=(400, 300)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (220, 230, 240)).save(out, "JPEG")
    return out.getvalue()


def test_the_listener_hears_a_violation(page, live_server, violations):
    visit(page, live_server + "/")
    page.evaluate("""() => {
      const script = document.createElement("script");
      script.textContent = "window.ran = true";
      document.body.append(script);
    }""")
    assert page.evaluate("window.ran === undefined")  # refused
    expect(page.locator("body")).to_be_visible()
    # The reports are asynchronous: wait for one (wait_for_function would eval()).
    deadline = time.monotonic() + 5
    while not any("script-src" in text for text in violations) and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert any("script-src" in text for text in violations), violations


def test_volunteer_pages_of_every_type_work_under_the_policy(page, live_server, client, auth,
                                                             services, work, violations):
    charity = auth.charity()
    classify = make(client, charity, "classify", {"question": "What?",
                                                  "labels": ["penguin", "seal"]})
    upload_items(client, charity, classify["id"], [{"text": "a"}, {"text": "b"}], work)
    tag = make(client, charity, "tag", {"question": "Tags?", "tags": ["fox"],
                                        "free_tags": True, "instructions": "*read* me"})
    upload_items(client, charity, tag["id"], [{"text": "a"}, {"text": "b"}], work)
    number = make(client, charity, "number", {"question": "How many?", "integer": True})
    upload_images(client, charity, number["id"], {"a.jpg": samples.dots_image(4, 1),
                                                  "b.jpg": samples.dots_image(6, 2)}, work)
    transcribe = make(client, charity, "transcribe", {})
    upload_images(client, charity, transcribe["id"],
                  {"letter.jpg": samples.letter_page(samples.LETTER[:2])}, work)
    locate = make(client, charity, "locate", {"question": "Box them", "tile_size": 512})
    upload_images(client, charity, locate["id"], {"a.jpg": photo(), "b.jpg": photo((300, 200))},
                  work)

    visit(page, live_server + "/")
    bar = page.locator(f'.project-card[data-project="{classify["id"]}"] .progress span')
    expect(bar).to_be_attached()  # its width is set by progress.js, not a style attribute
    assert page.evaluate("() => document.querySelectorAll('[style]').length") == \
        page.locator(".progress span").count()

    first = open_task(page, f"{live_server}/projects/{classify['id']}")
    page.get_by_role("button", name="penguin").click()
    wait_for_new_task(page, first)

    first = open_task(page, f"{live_server}/projects/{tag['id']}")
    page.get_by_role("button", name="fox").click()
    expect(page.get_by_role("button", name="fox")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Done").click()
    wait_for_new_task(page, first)

    first = open_task(page, f"{live_server}/projects/{number['id']}")
    page.locator("[data-number]").fill("4")
    page.locator("[data-number]").press("Enter")
    wait_for_new_task(page, first)

    first = open_task(page, f"{live_server}/projects/{transcribe['id']}")
    page.get_by_role("button", name="[unclear]").click()  # transcribe.js runs
    expect(page.locator("[data-line-text]")).to_have_value("[unclear] ")
    page.locator("[data-line-text]").press("Enter")
    wait_for_new_task(page, first)

    first = open_task(page, f"{live_server}/projects/{locate['id']}")
    # locate.css really applies: the marks layer lies over the picture
    assert page.locator(".locate-marks").evaluate("el => getComputedStyle(el).position") == \
        "absolute"
    page.locator(".task-locate form [type=submit]").click()
    wait_for_new_task(page, first)
    assert violations == []


def test_console_pages_work_under_the_policy(admin_page, live_server, client, auth, work,
                                             violations):
    page = admin_page
    admin = auth.admin()
    project = make(client, admin, "classify", {"question": "What?", "labels": ["a", "b"]})
    upload_items(client, admin, project["id"], [{"text": "a"}, {"text": "b"}], work)
    base = f"{live_server}/console"
    pid = project["id"]
    for path in ("/", f"/projects/{pid}", f"/projects/{pid}/quality", f"/projects/{pid}/results",
                 f"/projects/{pid}/edit", f"/projects/{pid}/webhooks",
                 f"/projects/{pid}/newcomers", "/team", "/tokens", "/desk", "/desk/audit"):
        visit(page, base + path)
    visit(page, base + "/projects/new")
    preview = page.frame_locator("iframe[data-preview-frame]")
    expect(preview.locator("#task")).to_be_visible()  # the preview (framed by the console) runs
    page.wait_for_timeout(200)  # late reports from the frame
    assert violations == []


# --- framing -------------------------------------------------------------------------

class Framer:
    """Another origin (another port): a page that frames the volunteer page."""

    def __init__(self) -> None:
        framer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                body = (f'<!doctype html><title>charity</title><h1>Our charity</h1>'
                        f'<iframe src="{framer.target}" width="600" height="400"></iframe>'
                        ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.target = ""
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def framer() -> Iterator[Framer]:
    made = Framer()
    yield made
    made.close()


def serve(app) -> tuple[str, Callable[[], None]]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_port}", stop


def framed_heading(page, framer: Framer) -> str | None:
    """The heading of the page inside the framer's iframe; None when Chromium
    refused to show it there (its own error page, at chrome-error://)."""
    page.goto(framer.origin + "/")
    expect(page.locator("h1")).to_have_text("Our charity")
    frame = page.locator("iframe").element_handle().content_frame()
    frame.wait_for_load_state()
    if frame.url.startswith("chrome-error:"):
        return None
    return frame.locator("h1").text_content()


def test_another_origin_cannot_frame_the_volunteer_page(page, live_server, framer,
                                                        violations):
    framer.target = live_server + "/"
    assert framed_heading(page, framer) is None
    assert any("frame-ancestors" in text for text in violations), violations


def test_an_origin_in_frame_ancestors_can(page, framer, settings, registry, services):
    svc = Services(replace(settings, frame_ancestors=framer.origin), registry)
    base, stop = serve(create_app({"SERVICES": svc, "TESTING": True}))
    try:
        framer.target = base + "/"
        assert framed_heading(page, framer) == "Give a few minutes"
        # ... and the console still cannot be framed, even by that origin
        framer.target = base + "/console/login"
        assert framed_heading(page, framer) is None
    finally:
        stop()
        svc.close()
