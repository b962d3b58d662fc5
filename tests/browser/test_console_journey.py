"""Issue 12's "done when", in one browser journey: a person who has never seen
bitesize, given the URL and an invite link, runs a project from nothing to
downloaded results without a terminal.

Invite link -> set password -> new classify project through the wizard ->
upload a zip of photos and watch the split reach 100 -> publish -> the
project is on the volunteer home page -> volunteers answer (the API, as the
answering page would) -> the dashboard and results show it -> download CSV
and JSON -> pause and archive. A second organisation meanwhile gets 404 on
the project's pages. axe-core runs on every page on the way.
"""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile

import pytest
from PIL import Image
from playwright.sync_api import expect

from engine.accounts import staff as accounts

pytestmark = pytest.mark.browser
SPLIT_TIMEOUT_MS = 15_000


def photos_zip(count: int = 3) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for n in range(count):
            picture = io.BytesIO()
            Image.new("RGB", (40, 30), (60 * n, 120, 200)).save(picture, "PNG")
            archive.writestr(f"colony/photo-{n}.png", picture.getvalue())
    return out.getvalue()


def answer_everything(client, auth, project_id: int, volunteers: int, label: str) -> int:
    """Volunteers answer every task they are given, as the answering page would."""
    answered = 0
    for _ in range(volunteers):
        volunteer = auth.volunteer()
        while True:
            got = client.get(f"/api/v1/projects/{project_id}/tasks/next", headers=volunteer)
            if got.status_code == 204:
                break
            reply = client.post(f"/api/v1/tasks/{got.json['task']['id']}/answers",
                                headers=volunteer, json={"lease": got.json["lease"]["token"],
                                                         "answer": {"label": label}})
            assert reply.status_code == 201, reply.json
            answered += 1
    return answered


def test_from_an_invite_link_to_downloaded_results(browser, live_server, services, client,
                                                   auth, work, make_staff, accessible):
    # The charity's first staff member exists; they invite a new colleague,
    # who gets only a link.
    first = make_staff(org="Penguin Watch", email="ana@penguins.org")
    colleague, token = accounts.invite(services, accounts.find_staff(services, first.email),
                                       "newcomer@penguins.org")
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(f"{live_server}/console/set-password/{token}")
        accessible(page)
        page.get_by_label("New password").fill("first day at the charity")
        page.get_by_label("Repeat the password").fill("first day at the charity")
        page.get_by_role("button", name="Set password").click()
        expect(page.get_by_role("heading", name="Projects of Penguin Watch")).to_be_visible()
        accessible(page)

        # A new project through the wizard.
        page.get_by_role("link", name="New project").click()
        accessible(page)
        page.get_by_label("Name", exact=True).fill("Penguin colony count")
        page.get_by_label("Description", exact=True).fill("Counting penguins shows how "
                                                          "the colony fares.")
        page.get_by_label("Task type", exact=True).select_option("classify")
        page.get_by_label("Question", exact=True).fill("What is in the photo?")
        page.get_by_label("Labels", exact=True).fill("penguin\nseal\nnothing")
        page.get_by_role("button", name="Create project").click()
        expect(page).to_have_url(re.compile(r"/console/projects/\d+$"))
        project_url = page.url
        project_id = int(project_url.rsplit("/", 1)[1])
        accessible(page)

        # Photos in, and the split followed to the end without a reload.
        page.get_by_label("Files").set_input_files(
            [{"name": "colony.zip", "mimeType": "application/zip", "buffer": photos_zip()}])
        page.get_by_role("button", name="Upload").click()
        bar = page.get_by_role("progressbar", name="Progress of colony.zip")
        expect(bar).to_be_visible()
        work()  # the worker splits the upload
        expect(bar).to_have_attribute("aria-valuenow", "100", timeout=SPLIT_TIMEOUT_MS)
        expect(page.locator("#uploads tbody.job").first).to_contain_text("done")
        accessible(page)

        # Published: volunteers find it on the home page.
        page.get_by_role("button", name="Publish").click()
        expect(page.get_by_text("State: active")).to_be_visible()
        home = context.new_page()
        home.goto(live_server + "/")
        expect(home.get_by_role("heading", name="Penguin colony count")).to_be_visible()
        home.close()

        # Volunteers answer; the dashboard and the results follow.
        assert answer_everything(client, auth, project_id, 3, "penguin") >= 6
        page.reload()
        accessible(page)
        page.get_by_role("link", name=re.compile("results", re.I)).first.click()
        expect(page.get_by_role("cell", name="penguin").first).to_be_visible()
        accessible(page)
        page.goto(project_url)

        # Downloads, through the session (no token in the browser); each link's
        # name is its own (the contract finds them by name, not exactly).
        for name in ("Download CSV", "Download JSON"):
            expect(page.get_by_role("link", name=name)).to_have_count(1)
        with page.expect_download() as got_csv:
            page.get_by_role("link", name="Download CSV").click()
        with open(got_csv.value.path(), encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 3 and {row["value"] for row in rows} == {"penguin"}, rows
        with page.expect_download() as got_json:
            page.get_by_role("link", name="Download JSON").click()
        with open(got_json.value.path(), encoding="utf-8") as handle:
            items = json.load(handle)
        assert len(items) == 3 and all(item["value"] == "penguin" for item in items), items

        # Another organisation sees none of it.
        outsider = make_staff(org="Seal Count", email="dee@seals.org")
        other = browser.new_context().new_page()
        try:
            other.goto(live_server + "/console/login")
            other.get_by_label("Email").fill(outsider.email)
            other.get_by_label("Password").fill(outsider.password)
            other.get_by_role("button", name="Sign in").click()
            expect(other.get_by_role("heading", name="Projects of Seal Count")).to_be_visible()
            expect(other.get_by_role("link", name="Penguin colony count")).to_have_count(0)
            for path in ("", "/results", "/edit", "/webhooks"):
                reply = other.goto(project_url + path)
                assert reply.status == 404, path
        finally:
            other.context.close()

        # Paused, then archived: off the home page for good.
        page.get_by_role("button", name="Pause").click()
        expect(page.get_by_text("State: paused")).to_be_visible()
        page.get_by_role("button", name="Archive").click()
        accessible(page)  # the confirmation page
        page.get_by_role("button", name="Yes, archive").click()
        expect(page.get_by_text("State: archived")).to_be_visible()
        accessible(page)
    finally:
        context.close()
    assert colleague.email == "newcomer@penguins.org"
