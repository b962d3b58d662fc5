"""Fixtures for driving the volunteer pages in a real headless Chromium.

`browser` starts Playwright and Chromium once per session; `live_server`
serves the test's `app` (real SQL and Redis from tests/conftest.py) over real
HTTP on 127.0.0.1; `page` is a fresh browser context (own localStorage, so
its own anonymous volunteer) and page per test.

Playwright's own browser download cannot work on these machines: Chromium is
Debian's, at BITESIZE_TEST_CHROMIUM (default /usr/bin/chromium). Without it
the browser tests skip, unless BITESIZE_REQUIRE_BROWSER=1 (as in CI), where
they fail instead.
"""
from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

CHROMIUM = (os.environ.get("BITESIZE_TEST_CHROMIUM") or shutil.which("chromium")
            or "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("BITESIZE_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 5_000


def _unavailable(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"browser tests are required but cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("python playwright is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no Chromium at {CHROMIUM} (set BITESIZE_TEST_CHROMIUM)")
    expect.set_options(timeout=TIMEOUT_MS)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
    except Exception:
        playwright.stop()
        raise
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The test's app over real HTTP, in a daemon thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # The page keeps calling in the background (outbox, lease extensions): at the
    # end, server_close() waits for requests still in flight, so none of them
    # holds a database connection once the test's services are disposed.
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


# Impacts that fail a page: every one axe-core reports (issue 16 asks for zero
# violations on the volunteer pages; the console's pages have none either).
BLOCKING_IMPACTS = ("minor", "moderate", "serious", "critical")


@pytest.fixture(scope="session")
def accessible():
    """`accessible(page)`: run axe-core (vendored in axe-playwright-python) on the
    page as it is now; fail on any violation, whatever its impact, naming each."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()

    def check(page, context=None) -> None:
        _assert_no_blocking(axe.run(page, context=context))

    return check


def _assert_no_blocking(results) -> None:
    blocking = [v for v in results.response["violations"] if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at "
        f"{[n['target'] for n in v['nodes']][:5]}" for v in blocking)


@pytest.fixture
def console_page(page, live_server, make_staff):
    """A browser page signed in to the console as a new staff member
    (ana@penguins.org of Penguin Watch); the page's `.staff` says who."""
    return _signed_in(page, live_server, make_staff())


@pytest.fixture
def admin_page(page, live_server, make_staff):
    """As console_page, signed in as an organisation admin of Penguin Watch
    (ada@penguins.org), who may use the quality desk."""
    return _signed_in(page, live_server, make_staff(email="ada@penguins.org", role="admin"))


def _signed_in(page, live_server, staff):
    page.goto(live_server + "/console/login")
    page.get_by_label("Email").fill(staff.email)
    page.get_by_label("Password").fill(staff.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server + "/console/")
    page.staff = staff
    return page
