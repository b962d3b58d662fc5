"""The projects list, dashboard, results, item and webhooks pages in a real
Chromium, driven by accessible names, each checked with axe-core; the
"Download CSV" and "Download JSON" links really download files."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from engine.accounts.staff import find_staff
from engine.delivery.exports import ITEM_COLUMNS
from engine.identity import Identity, create_volunteer
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.volunteering import next_task, submit_answer

pytestmark = pytest.mark.browser
PENGUINS = [[100, 50, 160, 170], [300, 200, 380, 260]]


@pytest.fixture
def colony(services, console_page):
    """A locate project of the signed-in organisation: one photo, boxed by two
    volunteers who agree, so it is done and its result is two boxes."""
    me = find_staff(services, console_page.staff.email).identity
    picture = Image.new("RGB", (600, 400), (205, 215, 225))
    draw = ImageDraw.Draw(picture)
    for box in PENGUINS:
        draw.ellipse(box, fill=(30, 30, 40))
    out = io.BytesIO()
    picture.save(out, "JPEG")
    image = "/media/" + services.media.put(out.getvalue()).name
    project = create_project(services, me, {
        "name": "Penguin colony", "task_type": "locate",
        "config": {"question": "Box every penguin"},
        "min_answers": 2, "max_answers": 2, "confidence": 0.5,
        "quality": {"trusted_after_minutes": 0}}).project  # its volunteers are minutes old
    run_job(services, create_job(services, me, project.id,
                                 items=[{"image": image, "id": "colony"}]).id)
    for _ in range(2):
        volunteer = Identity("volunteer", create_volunteer(services)[0])
        handout = next_task(services, volunteer, project.id)
        submit_answer(services, volunteer, handout.task_id, handout.lease,
                      {"boxes": PENGUINS})
    return {"project": project, "image": image}


def test_projects_list_and_dashboard(console_page, colony, accessible):
    page = console_page
    page.reload()
    bar = page.get_by_role("progressbar", name="Progress of Penguin colony")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(page.get_by_role("cell", name=re.compile("Finished: every task"))).to_be_visible()
    accessible(page)

    page.get_by_role("link", name="Penguin colony").click()
    expect(page.get_by_role("heading", name="Progress")).to_be_visible()
    expect(page.get_by_role("img", name="Answers per hour")).to_be_visible()
    expect(page.get_by_role("img", name="Confidence of results")).to_be_visible()
    expect(page.locator("#stat-items")).to_have_text("1 of 1")
    expect(page.locator("#stat-volunteers-day")).to_have_text("2")
    page.get_by_text("Answers per hour as a table").click()  # the chart's data, opened
    expect(page.get_by_role("table", name=re.compile("Hours with answers"))).to_be_visible()
    accessible(page)


def test_download_csv_and_json(console_page, live_server, colony):
    page = console_page
    pid = colony["project"].id
    page.goto(f"{live_server}/console/projects/{pid}")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV", exact=True).click()
    download = info.value
    assert download.suggested_filename == f"project-{pid}-results-items.csv"
    table = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert tuple(table[0]) == ITEM_COLUMNS
    [row] = [dict(zip(ITEM_COLUMNS, line, strict=True)) for line in table[1:]]
    assert row["item_ref"] == "colony" and row["state"] == "done"
    assert json.loads(row["value"]) == PENGUINS

    with page.expect_download() as info:
        page.get_by_role("link", name="Download JSON", exact=True).click()
    download = info.value
    assert download.suggested_filename == f"project-{pid}-results-items.json"
    [item] = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    assert item["value"] == PENGUINS and item["confidence"] == 1.0


def test_results_and_the_item_with_its_boxes_on_the_picture(console_page, live_server,
                                                            colony, accessible):
    page = console_page
    page.goto(f"{live_server}/console/projects/{colony['project'].id}")
    page.get_by_role("link", name="See the results").click()
    expect(page.get_by_role("heading", name="Results of Penguin colony")).to_be_visible()
    expect(page.get_by_role("link", name="Retired (1)")).to_be_visible()
    accessible(page)

    page.get_by_role("link", name="Item colony").click()
    drawing = page.get_by_role("img", name="The item's picture with its merged result")
    expect(drawing).to_be_visible()
    expect(drawing.locator("rect.mark")).to_have_count(2)
    expect(drawing.locator("image")).to_have_attribute("href", colony["image"])
    box = drawing.bounding_box()
    assert box and box["width"] > 300 and abs(box["width"] / box["height"] - 1.5) < 0.05
    picture = page.request.get(live_server + colony["image"])
    assert picture.ok and picture.headers["content-type"] == "image/jpeg"
    expect(page.get_by_role("table", name=re.compile("Marks of the merged result"))) \
        .to_be_visible()
    accessible(page)


def test_webhooks_page_validates_beside_the_fields(console_page, live_server, colony,
                                                   accessible):
    page = console_page
    page.goto(f"{live_server}/console/projects/{colony['project'].id}")
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Set a webhook")).to_be_visible()
    accessible(page)
    page.get_by_label("URL").fill("https://example.org/hook")
    page.get_by_label("Secret").fill("short")
    page.get_by_role("button", name="Save webhook").click()
    expect(page.locator("#f-secret-error")).to_contain_text("between 16 and 200")
    expect(page.get_by_label("Secret")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("URL")).to_have_value("https://example.org/hook")  # kept
    page.get_by_label("URL").fill("ftp://example.org/hook")
    page.get_by_label("Secret").fill("a-long-enough-secret")
    page.get_by_role("button", name="Save webhook").click()
    expect(page.locator("#f-url-error")).to_contain_text("must start with http://")
    expect(page.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    accessible(page)
    page.get_by_label("URL").fill("https://example.org/hook")
    page.get_by_label("Secret").fill("a-long-enough-secret")
    page.get_by_role("button", name="Save webhook").click()
    expect(page.get_by_text("The webhook is set")).to_be_visible()
    expect(page.get_by_role("heading", name="Events")).to_be_visible()
    accessible(page)
