"""The answering page of every built-in type beyond classify, in a real headless
Chromium against the real app: what a volunteer types, clicks or draws is
what SQL stores, and hostile config text stays text."""
from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image
from playwright.sync_api import expect

from engine.intake import samples

from .volunteer_helpers import answers_of, current_task, volunteer_id, wait_for_new_task

pytestmark = pytest.mark.browser
HOSTILE = "<img src=x onerror=alert(1)>"


def make(client, headers, task_type, config, **extra) -> dict:
    body = {"name": f"{task_type} page", "task_type": task_type, "config": config,
            "min_answers": 1, "max_answers": 1, "confidence": 0.5, **extra}
    r = client.post("/api/v1/projects", json=body, headers=headers)
    assert r.status_code == 201, r.json
    return r.json


def upload_items(client, headers, project_id, items, work):
    r = client.post(f"/api/v1/projects/{project_id}/jobs", json={"items": items},
                    headers=headers)
    assert r.status_code == 202, r.json
    work()


def upload_images(client, headers, project_id, files, work):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    r = client.post(f"/api/v1/projects/{project_id}/jobs", headers=headers,
                    data={"file": (io.BytesIO(out.getvalue()), "job.zip")},
                    content_type="multipart/form-data")
    assert r.status_code == 202, r.json
    work()


def open_page(page, live_server, project_id) -> int:
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{live_server}/projects/{project_id}")
    expect(page.locator("#task")).to_be_visible()
    page.dialogs = dialogs
    return current_task(page)


def only_answer(services, page) -> dict:
    # the page moves on at once and sends the answer meanwhile: wait until sent
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "0")
    (answer,) = answers_of(services, volunteer_id(services, page))
    return answer.value


def test_tag_page_toggles_tags_adds_free_ones_and_sends(page, live_server, client, auth,
                                                        services, work):
    charity = auth.charity()
    project = make(client, charity, "tag", {"question": HOSTILE, "free_tags": True,
                                            "tags": ["fox", "deer", HOSTILE[:40]]})
    upload_items(client, charity, project["id"], [{"text": "a"}, {"text": "b"}], work)
    first = open_page(page, live_server, project["id"])
    expect(page.locator(".task-question")).to_have_text(HOSTILE)
    expect(page.locator("#keys-help")).to_have_text(  # the tags' number keys are told too
        f"Keys: 1 fox · 2 deer · 3 {HOSTILE[:40]} · Enter send"
        " · S skip (when not typing in a field)")
    page.get_by_role("button", name="fox").click()
    page.keyboard.press("2")  # the number keys toggle the first nine tags
    page.keyboard.press("2")  # ... and toggle them back
    expect(page.get_by_role("button", name="fox")).to_have_attribute("aria-pressed", "true")
    free = page.locator("[data-free-tag]")
    free.fill("Streams")
    free.press("Enter")  # adds a chip
    expect(page.locator("[data-tag-chips] li")).to_have_count(1)
    page.get_by_role("button", name="Done").click()
    second = wait_for_new_task(page, first)
    assert second != first
    assert only_answer(services, page) == {"tags": ["fox", "stream"]}
    # the next task starts clean
    expect(page.get_by_role("button", name="fox")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("[data-tag-chips] li")).to_have_count(0)
    assert page.dialogs == []


def test_number_page_refuses_empty_and_sends_the_value(page, live_server, client, auth,
                                                       services, work):
    charity = auth.charity()
    project = make(client, charity, "number", {"question": "How many dots?", "unit": "dots",
                                               "integer": True, "min": 0, "max": 100})
    upload_images(client, charity, project["id"], {
        "a.jpg": samples.dots_image(4, 1), "b.jpg": samples.dots_image(6, 2)}, work)
    first = open_page(page, live_server, project["id"])
    expect(page.locator("[data-bind-src=image]")).to_be_visible()
    number = page.locator("[data-number]")
    expect(page.locator("#keys-help")).to_have_text(
        "Keys: Enter send · S skip (when not typing in a field)")
    number.press("Enter")  # nothing typed: a message beside the field, nothing sent
    message = page.locator("#task .task-error")
    expect(message).to_have_text("Type a number first.")
    expect(message).to_have_attribute("role", "alert")
    expect(number).to_have_attribute("aria-invalid", "true")
    expect(number).to_have_attribute("aria-describedby", "task-number-unit task-error")
    expect(number).to_be_focused()
    assert answers_of(services, volunteer_id(services, page)) == []
    number.fill("4")
    expect(message).to_have_count(0)  # typing clears it
    expect(number).not_to_have_attribute("aria-invalid", "true")
    expect(number).to_have_attribute("aria-describedby", "task-number-unit")
    number.press("Enter")
    wait_for_new_task(page, first)
    assert only_answer(services, page) == {"value": 4}
    expect(page.locator("[data-number]")).to_have_value("")
    expect(page.locator("#saved")).to_have_text("Saved, thank you!")
    number.fill("101")
    number.press("Enter")  # refused: the last answer's thanks no longer stands beside it
    expect(message).to_have_text("The answer must be at most 100.")
    # at once, not when the thanks would have faded by itself (4 s)
    expect(page.locator("#saved")).to_have_text("", timeout=1000)


def test_transcribe_page_types_a_line_with_an_unclear_mark(page, live_server, client, auth,
                                                           services, work):
    charity = auth.charity()
    project = make(client, charity, "transcribe", {"instructions": HOSTILE})
    upload_images(client, charity, project["id"],
                  {"letter.jpg": samples.letter_page(samples.LETTER[:2])}, work)
    first = open_page(page, live_server, project["id"])
    line = page.locator("[data-bind-src=image]")
    expect(line).to_be_visible()
    assert line.evaluate("img => img.naturalWidth") > 0  # the cut line really loads
    page.locator(".task-instructions summary").click()
    expect(page.locator(".task-instructions p")).to_have_text(HOSTILE)
    text = page.locator("[data-line-text]")
    text.fill("Dear Sir, I write to")
    page.get_by_role("button", name="[unclear]").click()
    text.press("End")
    text.type("the society")
    text.press("Enter")
    wait_for_new_task(page, first)
    assert only_answer(services, page) == {"text": "Dear Sir, I write to [unclear] the society"}
    expect(page.locator("[data-line-text]")).to_have_value("")
    assert page.dialogs == []


def test_locate_page_draws_boxes_in_photo_pixels(page, live_server, client, auth, services,
                                                 work):
    charity = auth.charity()
    project = make(client, charity, "locate", {"question": "Box every penguin",
                                               "tile_size": 512, "overlap": 64})
    photo = io.BytesIO()
    Image.new("RGB", (400, 300), (220, 230, 240)).save(photo, "JPEG")
    upload_images(client, charity, project["id"], {"a.jpg": photo.getvalue(),
                                                   "b.jpg": samples.penguin_colony()}, work)
    first = open_page(page, live_server, project["id"])
    image = page.locator("[data-bind-src=image]")
    expect(image).to_be_visible()
    expect(image).to_have_js_property("complete", True)  # not wait_for_function: CSP
    natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    box = image.bounding_box()
    scale = natural[0] / box["width"]
    start = (box["x"] + 0.25 * box["width"], box["y"] + 0.25 * box["height"])
    end = (box["x"] + 0.5 * box["width"], box["y"] + 0.75 * box["height"])
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=5)
    page.mouse.up()
    page.locator(".task-locate form [type=submit]").click()
    wait_for_new_task(page, first)
    answer = only_answer(services, page)
    (drawn,) = answer["boxes"]
    expected = [0.25 * natural[0], 0.25 * natural[1], 0.5 * natural[0], 0.75 * natural[1]]
    assert drawn == pytest.approx(expected, abs=2 * scale + 1)


def test_the_box_task_works_by_keyboard_alone(page, live_server, client, auth, services, work,
                                              accessible):
    charity = auth.charity()
    project = make(client, charity, "locate", {"question": "Box every penguin",
                                               "tile_size": 512, "overlap": 64})
    photo = io.BytesIO()
    Image.new("RGB", (400, 300), (220, 230, 240)).save(photo, "JPEG")
    other = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 210, 220)).save(other, "JPEG")
    upload_images(client, charity, project["id"], {"a.jpg": photo.getvalue(),
                                                   "b.jpg": other.getvalue()}, work)
    first = open_page(page, live_server, project["id"])
    expect(page.locator("[data-bind-src=image]")).to_have_js_property("complete", True)
    note = page.locator("[data-locate-note]")
    page.keyboard.press("Enter")  # no marks yet: Enter records nothing
    expect(note).to_contain_text("No marks yet")
    assert answers_of(services, volunteer_id(services, page)) == []
    stage = page.get_by_role("application", name="Box each one")
    stage.focus()
    accessible(page)
    page.keyboard.press("Enter")  # on the picture, Enter starts a box: a corner at (200, 150)
    expect(note).to_contain_text("Box started")
    for _ in range(5):
        page.keyboard.press("ArrowRight")  # 5 x 2% of 400 = 40 px
    page.keyboard.press("Shift+ArrowDown")  # 10% of 300 = 30 px
    page.keyboard.press("Space")
    expect(note).to_have_text("Box 1 marked.")
    page.keyboard.press("Space")  # a second box, then removed again
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Space")
    expect(note).to_have_text("Box 2 marked.")
    page.keyboard.press("Delete")
    expect(note).to_contain_text("1 left")
    expect(page.locator("[data-locate-done]")).to_have_text("Done (1 mark)")
    assert answers_of(services, volunteer_id(services, page)) == []  # Enter marked, not sent
    page.keyboard.press("Tab")  # out of the picture to Done, as its instructions say
    expect(page.locator("[data-locate-done]")).to_be_focused()
    page.keyboard.press("Enter")
    wait_for_new_task(page, first)
    assert only_answer(services, page) == {"boxes": [[200.0, 150.0, 240.0, 180.0]]}


def test_marks_have_a_dark_halo_under_the_yellow_line(page, live_server, client, auth, work):
    charity = auth.charity()
    project = make(client, charity, "locate", {"question": "Mark each seal", "shape": "point"})
    photo = io.BytesIO()
    Image.new("RGB", (200, 200), (221, 229, 226)).save(photo, "JPEG")  # the pale blue-grey
    upload_images(client, charity, project["id"], {"a.jpg": photo.getvalue()}, work)
    open_page(page, live_server, project["id"])
    expect(page.locator("[data-bind-src=image]")).to_have_js_property("complete", True)
    page.get_by_role("application", name="Mark each one").focus()
    page.keyboard.press("Space")
    halo, line = (page.locator(".locate-marks circle").nth(i) for i in (0, 1))
    assert halo.get_attribute("class") == "halo"
    dark = halo.evaluate("el => getComputedStyle(el).stroke")
    bright = line.evaluate("el => getComputedStyle(el).stroke")
    assert dark == "rgb(29, 42, 47)" and bright == "rgb(255, 212, 0)"
    # the halo against the photo's pale blue-grey: WCAG contrast well over 3:1
    def luminance(rgb):
        def part(c):
            c /= 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
        r, g, b = rgb
        return 0.2126 * part(r) + 0.7152 * part(g) + 0.0722 * part(b)
    light, dim = luminance((221, 229, 226)), luminance((29, 42, 47))
    assert (light + 0.05) / (dim + 0.05) >= 3


def _photo(width=1600, height=1200) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 90)).save(out, "JPEG")
    return out.getvalue()


LAPTOP_CASES = {  # type: (config, the control that sends the answer)
    "classify": ({"question": "What is it?", "labels": ["seal", "rock", "empty", "bird"]},
                 "bird"),
    "tag": ({"question": "What is there?", "free_tags": True,
             "tags": ["fox", "deer", "badger", "owl", "hare", "stoat"]}, "Done"),
    "number": ({"question": "How many?", "unit": "dots", "integer": True}, "Send"),
    "locate": ({"question": "Box every penguin", "tile_size": 512}, "Nothing here (0 marks)"),
}


def test_every_types_send_control_is_on_a_laptops_screen_without_scrolling(
        page, live_server, client, auth, work):
    # Tried at 1280x800 with a 4:3 photo: the tag page's Done and the locate
    # page's "Nothing here" used to sit below the fold.
    charity = auth.charity()
    page.set_viewport_size({"width": 1280, "height": 800})
    for task_type, (config, control) in LAPTOP_CASES.items():
        project_id = make(client, charity, task_type, config)["id"]
        upload_images(client, charity, project_id, {"a.jpg": _photo()}, work)
        page.goto(f"{live_server}/projects/{project_id}")
        expect(page.locator("#task")).to_have_attribute("aria-busy", "false")
        expect(page.get_by_role("button", name=control)).to_be_in_viewport(ratio=1)


def _free_tags_page(page, live_server, client, auth, work):
    """A tag project taking free tags, open on its first task: (that task, the
    free tags' field)."""
    charity = auth.charity()
    project = make(client, charity, "tag", {"question": "Which?", "free_tags": True,
                                            "tags": ["fox"]})
    upload_items(client, charity, project["id"], [{"text": "a"}, {"text": "b"}], work)
    return (open_page(page, live_server, project["id"]),
            page.get_by_role("textbox", name="Other tags"))


def test_a_free_tag_pasted_with_hidden_characters_or_too_long_is_mended_before_sending(
        page, live_server, client, auth, services, work, accessible):
    """The server refuses a tag holding a format character (a zero-width space, a
    soft hyphen) or longer than 50 once casefolded ("ß" is "ss"), and with it the
    whole answer, after the page had moved on: the page drops what cannot be
    seen, and says beside the field which tag is too long, before sending."""
    first, free = _free_tags_page(page, live_server, client, auth, work)
    free.fill("red\u200bdeer, roe\u00addeer,")
    chips = page.get_by_role("list", name="Your own tags").get_by_role("listitem")
    expect(chips).to_have_count(2)
    expect(chips.first).to_contain_text("reddeer")
    free.fill("ß" * 30)  # 30 characters typed, 60 once casefolded
    free.press("Enter")
    expect(free).to_have_attribute("aria-invalid", "true")
    note = page.get_by_role("alert")
    expect(note).to_have_text("This tag is too long: at most 50 characters.")
    expect(free).to_have_attribute("aria-describedby", note.get_attribute("id"))
    expect(free).to_have_value("ß" * 30)  # kept, to be mended
    assert current_task(page) == first  # nothing sent, the task stays
    assert page.locator("#volunteer").get_attribute("data-outbox") == "0"
    accessible(page)
    free.fill("ß" * 25)  # 50 once casefolded
    expect(free).not_to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Done").click()
    wait_for_new_task(page, first)
    assert only_answer(services, page) == {"tags": ["reddeer", "roedeer", "ss" * 25]}


def test_a_free_tag_with_an_emoji_newer_than_the_servers_unicode_is_sent_and_stored(
        page, live_server, client, auth, services, work, accessible):
    """U+1FABF (a goose) is an emoji in the browser's Unicode (15) and unassigned
    in Python 3.11's: the page kept it and the server refused the whole answer
    (422) after the page had moved on. Both now take it."""
    first, free = _free_tags_page(page, live_server, client, auth, work)
    free.fill("\U0001FABF goose,")
    chips = page.get_by_role("list", name="Your own tags").get_by_role("listitem")
    expect(chips).to_have_count(1)
    expect(chips.first).to_contain_text("\U0001FABF goose")
    accessible(page)
    page.get_by_role("button", name="Done").click()
    wait_for_new_task(page, first)
    expect(page.locator("#volunteer")).to_have_attribute("data-outbox", "0")
    expect(page.locator("#status")).to_be_hidden()  # no "Your answer was not taken"
    assert only_answer(services, page) == {"tags": ["\U0001FABF goose"]}
