"""The console's live preview of the volunteer page, beside the wizard: each
type's example, the form's values as typed, and a project's first item."""
from __future__ import annotations

import json
import re

import pytest

from tests.console.test_wizard import TYPES, FormReader, add_items, post_wizard


def preview_task(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="preview-task">(.*?)</script>',
                      html, re.S)
    assert found, html[:2000]
    return json.loads(found.group(1))


@pytest.mark.parametrize("task_type", sorted(TYPES))
def test_the_preview_shows_each_types_example(console, task_type):
    reply = console.get(f"/console/preview?task_type={task_type}&name=Birds"
                        f"&description=Birds+matter")
    assert reply.status_code == 200
    html = reply.get_data(as_text=True)
    assert "data-preview" in html and "<h1>Birds</h1>" in html and "Birds matter" in html
    task = preview_task(html)
    assert task["task"]["type"] == task_type
    payload = task["task"]["payload"]
    assert payload.get("image") or payload.get("text"), payload
    if payload.get("image"):  # a picture the page can really load, not the internet
        assert payload["image"].startswith("/media/")
        with console.get(payload["image"]) as picture:
            assert picture.status_code == 200 and picture.mimetype == "image/jpeg"


def test_the_preview_follows_the_forms_values(console, forms):
    reply = console.get("/console/preview", query_string={
        "task_type": "classify", "config.question": "Is it a hedgehog?",
        "config.labels": "Yes\nNo", "config.instructions": "<script>x()</script> *now*"})
    html = reply.get_data(as_text=True)
    assert "Is it a hedgehog?" in html and "&lt;script&gt;x()&lt;/script&gt;" in html
    assert "<em>now</em>" in html and "<script>x()" not in html
    assert "Not valid yet" not in html
    half = console.get("/console/preview", query_string={
        "task_type": "classify", "config.question": "Is it a hedgehog?",
        "config.labels": "Only one"}).get_data(as_text=True)
    assert "Is it a hedgehog?" in half and "Deer" in half  # the example's labels stand in
    assert "Not valid yet, so shown with the example&#39;s: Labels." in half
    form = FormReader(console.get("/console/projects/new").get_data(as_text=True))
    posted = post_wizard(console, forms, {**form.values, "config.question": "Posted?",
                                          "config.labels": "A\nB"}, url="/console/preview",
                         page="/console/projects/new")
    assert posted.status_code == 200 and "Posted?" in posted.get_data(as_text=True)


def test_the_wizard_frames_the_preview(console):
    html = console.get("/console/projects/new").get_data(as_text=True)
    frame = re.search(r'<iframe name="preview" title="Preview of the volunteer page" '
                      r'src="([^"]+)"', html)
    assert frame and frame.group(1).startswith("/console/preview?task_type=classify")
    assert re.search(r'formaction="/console/preview" formtarget="preview"[^>]*>Refresh '
                     r'preview<', html)
    assert '<script src="/static/console/wizard.js"></script>' in html
    assert not re.search(r"<script>(?!\s*</script>)", html)  # no inline script


def test_a_projects_preview_shows_its_first_uploaded_item(console, services, draft_of):
    project = draft_of()
    url = f"/console/projects/{project.id}/preview"
    example = preview_task(console.get(url).get_data(as_text=True))
    assert "text" not in example["task"]["payload"]  # the example's picture, until...
    add_items(services, draft_of.identity(), project, [{"text": "owl number one"},
                                                      {"text": "owl number two"}])
    html = console.get(url).get_data(as_text=True)
    assert preview_task(html)["task"]["payload"]["text"] == "owl number one"
    assert "first item you uploaded" in html
    edited = console.get(url, query_string={"config.question": "Edited?",
                                            "config.labels": "Owl\nNo owl"})
    assert "Edited?" in edited.get_data(as_text=True)
