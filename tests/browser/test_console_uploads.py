"""The uploads panel in a real browser: send files (bytes-sent bar), map a CSV's
columns, and watch the split's progress reach 100 and "done" without a reload.

The RQ worker runs in burst mode in the test's own thread once the upload has
arrived; the page, polling by itself, must catch up on its own. axe-core
checks each state of the page.
"""
from __future__ import annotations

import io
import os
import re
import zipfile

import pytest
from PIL import Image
from playwright.sync_api import expect

from engine.accounts import staff as accounts
from engine.projects import create_project

pytestmark = pytest.mark.browser
SPLIT_TIMEOUT_MS = 15_000  # the page polls every second

CSV = ("caption,ref,answer\n"
       + "".join(f"photo {n},r{n},{'seal' if n in (1, 4) else ''}\n" for n in range(7)))


def png(n: int, size=(16, 12)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (n * 50 % 256, 90, 200)).save(out, "PNG")
    return out.getvalue()


def photos_zip() -> bytes:
    """Three small pictures, one large one (noise: the bytes-sent bar has work to
    show), and a file that is no picture (a problem row)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for n in range(3):
            archive.writestr(f"cam/{n}.png", png(n))
        noise = Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3))
        big = io.BytesIO()
        noise.save(big, "PNG")
        archive.writestr("cam/big.png", big.getvalue())
        archive.writestr("cam/notes.txt", b"not a picture")
    return out.getvalue()


@pytest.fixture
def project(services, console_page):
    who = accounts.find_staff(services, console_page.staff.email).identity
    return create_project(services, who, {
        "name": "Seal cams", "task_type": "classify", "min_answers": 2, "max_answers": 3,
        "config": {"question": "What is it?", "labels": ["seal", "rock"]}}).project


def open_project(page, live_server, project) -> None:
    page.goto(f"{live_server}/console/projects/{project.id}")
    expect(page.get_by_role("heading", name="Uploads")).to_be_visible()


def test_a_zip_upload_shows_bytes_sent_then_the_split_live_until_done(
        console_page, live_server, project, work, accessible):
    page = console_page
    open_project(page, live_server, project)
    accessible(page)
    page.evaluate("""() => {
        window.notReloaded = true;
        window.bytesSeen = [];
        const bar = document.querySelector("[data-bytes-bar]");
        const box = document.querySelector("[data-upload-progress]");
        new MutationObserver(() => {
            window.bytesSeen.push([Number(bar.value), box.hidden]);
        }).observe(bar, {attributes: true});
    }""")
    page.get_by_label("Files").set_input_files(
        [{"name": "photos.zip", "mimeType": "application/zip", "buffer": photos_zip()}])
    expect(page.get_by_text("Chosen: photos.zip")).to_be_visible()
    page.get_by_role("button", name="Upload").click()

    bar = page.get_by_role("progressbar", name="Progress of photos.zip")
    expect(bar).to_have_attribute("aria-valuenow", "0")  # arrived, queued
    row = page.locator("tbody.job", has_text="photos.zip")
    expect(row.locator("[data-field=state]")).to_have_text("queued")
    expect(page.locator("[data-upload-progress]")).to_be_hidden()
    seen = page.evaluate("window.bytesSeen")
    assert seen and seen[-1] == [100, False], seen  # the whole file was sent, shown as sent
    accessible(page)

    work()
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=SPLIT_TIMEOUT_MS)
    expect(row.locator("[data-field=state]")).to_have_text("done")
    expect(row).to_contain_text("done")
    expect(row.locator("[data-field=tasks_made]")).to_have_text("4")
    expect(row.locator("[data-field=read]")).to_have_text("5 / 5")
    expect(row.get_by_role("cell", name="not an image file")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True  # followed live, no reload
    page.wait_for_timeout(1500)  # the page stops polling; the bar stays at 100
    expect(bar).to_have_attribute("aria-valuenow", "100")
    accessible(page)


def test_a_csv_goes_through_its_columns_then_splits_live(console_page, live_server, project,
                                                         work, accessible):
    page = console_page
    open_project(page, live_server, project)
    page.get_by_label("Files").set_input_files(
        [{"name": "seals.csv", "mimeType": "text/csv", "buffer": CSV.encode()}])
    page.get_by_role("button", name="Upload").click()

    expect(page.get_by_role("heading", name="Match the columns of seals.csv")).to_be_visible()
    preview = page.get_by_role("table", name="The first 5 rows of seals.csv")
    expect(preview.locator("tbody tr")).to_have_count(5)
    expect(preview).to_contain_text("photo 4")
    accessible(page)
    page.get_by_label("text", exact=True).select_option("caption")
    page.get_by_label("id", exact=True).select_option("ref")
    page.get_by_label("gold", exact=True).select_option("answer")
    page.get_by_role("button", name="Start import").click()

    expect(page).to_have_url(re.compile(rf"/console/projects/{project.id}#uploads$"))
    bar = page.get_by_role("progressbar", name="Progress of seals.csv")
    expect(bar).to_be_visible()
    page.evaluate("window.notReloaded = true")
    accessible(page)
    work()
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=SPLIT_TIMEOUT_MS)
    row = page.locator("tbody.job", has_text="seals.csv")
    expect(row).to_contain_text("done")
    expect(row.locator("[data-field=tasks_made]")).to_have_text("7")
    expect(row.locator("[data-field=gold]")).to_have_text("2")
    assert page.evaluate("window.notReloaded") is True


def test_a_iiif_manifest_url_is_read_and_followed_to_the_end(console_page, live_server, project,
                                                             museum, work, accessible):
    page = console_page
    open_project(page, live_server, project)
    url = museum.manifest()
    page.get_by_label("IIIF manifest URL").fill(url)
    page.get_by_role("button", name="Upload").click()
    bar = page.get_by_role("progressbar", name=f"Progress of {url}")
    expect(bar).to_be_visible()
    page.evaluate("window.notReloaded = true")
    work()
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=SPLIT_TIMEOUT_MS)
    row = page.locator("tbody.job", has_text=url)
    expect(row).to_contain_text("done")
    expect(row.locator("[data-field=tasks_made]")).to_have_text("2")
    assert page.evaluate("window.notReloaded") is True
    accessible(page)


def test_a_file_dropped_on_the_zone_is_sent_and_a_failure_offers_run_again(
        console_page, live_server, project, services, work, accessible):
    page = console_page
    open_project(page, live_server, project)
    dropped = page.evaluate_handle("""() => {
        const data = new DataTransfer();
        data.items.add(new File(['[{"text": "a seal", "gold": "seal"}, {"text": "a rock"}]'],
                                "items.json", {type: "application/json"}));
        return data;
    }""")
    page.locator("[data-dropzone]").dispatch_event("drop", {"dataTransfer": dropped})
    expect(page.get_by_text("Chosen: items.json")).to_be_visible()
    page.get_by_role("button", name="Upload").click()
    bar = page.get_by_role("progressbar", name="Progress of items.json")
    expect(bar).to_have_attribute("aria-valuenow", "0")

    job_id = page.locator("tbody.job").get_attribute("data-job")
    stored = services.settings.uploads_path / f"job-{job_id}.json"
    stored.write_text("spoilt")  # the split will fail
    work()
    row = page.locator("tbody.job", has_text="items.json")
    expect(row.locator("[data-field=state]")).to_have_text("failed", timeout=SPLIT_TIMEOUT_MS)
    expect(row).to_contain_text("This job failed:")
    accessible(page)

    stored.write_text('[{"text": "a seal", "gold": "seal"}, {"text": "a rock"}]')
    row.get_by_role("button", name="Run again").click()
    expect(page.get_by_text("items.json runs again")).to_be_visible()
    work()
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=SPLIT_TIMEOUT_MS)
    expect(row).to_contain_text("done")
    expect(row.locator("[data-field=gold]")).to_have_text("1")
    accessible(page)


def test_a_file_the_server_cannot_use_is_named_beside_the_form(console_page, live_server,
                                                               project, accessible):
    page = console_page
    open_project(page, live_server, project)
    page.get_by_label("Files").set_input_files(
        [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    page.get_by_role("button", name="Upload").click()
    alert = page.locator("[data-upload-errors]")
    expect(alert).to_contain_text("is not a .zip, .csv or .json file")
    expect(page.locator("[data-no-jobs]")).to_be_visible()
    accessible(page)
