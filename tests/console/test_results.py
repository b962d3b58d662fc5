"""The results pages and downloads in the console: merged results first, by
state, page by page; an item with its tasks, answers and the result drawn on
its picture; downloads that are streamed attachments of the right content;
and another organisation's project is a 404 on every route of these pages.
"""
from __future__ import annotations

import csv
import io
import json
import re

import pytest
from PIL import Image
from sqlalchemy import select, update

from engine.accounts.staff import find_staff
from engine.delivery.exports import ANSWER_COLUMNS, COLUMNS, ITEM_COLUMNS
from engine.identity import Identity, create_volunteer
from engine.intake import samples
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.store.models import Item, Job, Task
from engine.volunteering import next_task, submit_answer

LABELS = ["penguin", "seal", "empty"]


@pytest.fixture
def me(services, staff):
    return find_staff(services, staff.email).identity


def make_project(services, who, task_type="classify", config=None, items=None, **options):
    view = create_project(services, who, {
        "name": f"Test {task_type}", "task_type": task_type,
        "config": {"question": "What is it?", "labels": LABELS} if config is None else config,
        "min_answers": 1, "max_answers": 1, "confidence": 0.5,
        "quality": {"trusted_after_minutes": 0}, **options})  # volunteers minutes old
    if items:
        job = create_job(services, who, view.project.id, items=items)
        run_job(services, job.id)
    return view.project


def volunteer(services):
    return Identity("volunteer", create_volunteer(services)[0])


def answer(services, project, answer_for, count=None, who=None):
    """`who` answers up to `count` tasks (all it is offered by default) with
    answer_for(payload); returns how many it answered."""
    who = who or volunteer(services)
    done = 0
    while count is None or done < count:
        handout = next_task(services, who, project.id)
        if handout is None:
            break
        submit_answer(services, who, handout.task_id, handout.lease,
                      answer_for(handout.payload))
        done += 1
    return done


def label(name):
    return lambda payload: {"label": name}


def text_of(reply) -> str:
    assert reply.status_code == 200, reply.get_data(as_text=True)[:500]
    return reply.get_data(as_text=True)


def squash(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def link(page: str, name: str) -> str:
    found = re.search(rf'<a href="([^"]+)"[^>]*>{re.escape(name)}</a>', page)
    assert found, f"no link {name!r}"
    return found.group(1).replace("&amp;", "&")


def stored_image(services, size=(600, 400)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 210, 220)).save(out, "JPEG")
    return "/media/" + services.media.put(out.getvalue()).name


# -- the results table ----------------------------------------------------------------


def test_results_show_merged_results_first_by_state_and_page_by_page(console, services, me):
    project = make_project(services, me, items=[{"text": f"photo {n}", "id": f"p{n:02d}"}
                                                for n in range(55)])
    assert answer(services, project, label("seal"), count=3) == 3
    url = f"/console/projects/{project.id}/results"
    first = text_of(console.get(url))
    rows = re.findall(r'<tr>\s*<td><a href="/console/projects/\d+/items/\d+">Item (p\d+)</a>'
                      r'</td>\s*<td><span class="state state-(\w+)">', first)
    assert len(rows) == 50
    assert [state for _, state in rows[:3]] == ["retired"] * 3  # results first
    assert {state for _, state in rows[3:]} == {"open"}
    assert "Next page" in first and "Previous page" not in first
    text = squash(first)
    assert "All (55)" in text and "Open (52)" in text and "Retired (3)" in text
    assert re.search(r"Item p\d\d retired seal 100% 1 of 1", text)

    second = text_of(console.get(link(first, "Next page")))
    assert "Previous page" in second and "Next page" not in second
    assert len(re.findall(r'href="/console/projects/\d+/items/\d+"', second)) == 5
    shown = {ref for ref, _ in rows} | set(re.findall(r">Item (p\d+)</a>", second))
    assert len(shown) == 55  # every item once across the two pages

    retired = text_of(console.get(f"{url}?state=retired"))
    assert len(re.findall(r">Item p\d+</a>", retired)) == 3
    assert 'aria-current="page">Retired (3)' in retired
    assert "No contested items." in text_of(console.get(f"{url}?state=contested"))
    bad = console.get(f"{url}?state=lost")
    assert bad.status_code == 422 and "That cannot be used" in bad.get_data(as_text=True)


def test_an_item_shows_its_tasks_answers_and_merged_value(console, services, me):
    project = make_project(services, me, items=[{"text": "photo 1", "id": "cam-7"}],
                           min_answers=2, max_answers=2)
    ana, bo = volunteer(services), volunteer(services)
    answer(services, project, label("seal"), who=ana)
    answer(services, project, label("penguin"), who=bo)
    results = text_of(console.get(f"/console/projects/{project.id}/results"))
    page = text_of(console.get(link(results, "Item cam-7")))
    text = squash(page)
    assert "Item cam-7 retired" in text
    assert "Merged result penguin Confidence 50%" in text  # a tie: the first label listed
    assert f"{ana.id} seal yes" in text and f"{bo.id} penguin yes" in text
    assert "text photo 1" in text  # the item as uploaded (it has no picture)
    assert "<svg" not in page.split("Merged result")[1].split("Tasks and answers")[0]


def test_a_located_item_has_its_boxes_drawn_on_the_picture(console, services, me):
    image = stored_image(services)
    project = make_project(services, me, "locate", {"question": "Box every penguin"},
                           items=[{"image": image, "id": "colony"}], min_answers=2,
                           max_answers=2)
    boxes = {"boxes": [[100, 50, 160, 170], [300, 200, 380, 260]]}
    for _ in range(2):
        answer(services, project, lambda payload: boxes)
    item_id = _only_item(services, project)
    page = text_of(console.get(f"/console/projects/{project.id}/items/{item_id}"))
    drawing = re.search(r'<svg class="overlay".*?</svg>', page, re.S).group(0)
    assert 'role="img"' in drawing and 'viewBox="0 0 600 400"' in drawing
    assert f'<image href="{image}" x="0" y="0" width="600" height="400"' in drawing
    assert '<rect class="mark box" x="100.0" y="50.0" width="60.0" height="120.0"' in drawing
    assert '<rect class="mark box" x="300.0" y="200.0" width="80.0" height="60.0"' in drawing
    assert "2 marks of the merged result drawn on the picture" in drawing
    assert "Mark 1 (confidence 100%)" in drawing
    text = squash(page)
    assert "Marks of the merged result (picture pixels)" in text
    assert "1 100 50 60 120" in text


def test_a_transcribed_page_has_its_lines_written_on_the_scan(console, services, me):
    lines = samples.LETTER[:2]
    scan = "/media/" + services.media.put(samples.letter_page(lines)).name
    project = make_project(services, me, "transcribe", {}, items=[{"image": scan}])
    typed = answer(services, project, lambda payload: {"text": lines[payload["line"] - 1]})
    assert typed == 2
    item_id = _only_item(services, project)
    page = text_of(console.get(f"/console/projects/{project.id}/items/{item_id}"))
    drawing = re.search(r'<svg class="overlay".*?</svg>', page, re.S).group(0)
    assert 'viewBox="0 0 1100 268"' in drawing
    for line in lines:
        assert re.search(rf'<text class="mark-text"[^>]*>{re.escape(line)}</text>', drawing)
    assert drawing.count('<rect class="mark box"') == 2
    assert "\n".join(lines) in page  # the merged page text
    assert "Task 1, line 1" in squash(page) or "line 1" in squash(page)


def _only_item(services, project) -> int:
    with services.db.session() as session:
        return session.scalar(select(Item.id).where(Item.project_id == project.id))


# -- downloads ----------------------------------------------------------------------------


@pytest.fixture
def answered(services, me):
    """Three items, two answered (one with a formula-looking label), one not."""
    project = make_project(services, me, config={"question": "What?",
                                                  "labels": ["penguin", "=1+1"]},
                           items=[{"text": "a", "id": "a"}, {"text": "b", "id": "b"},
                                  {"text": "c", "id": "c"}])
    answer(services, project, label("penguin"), count=1)
    answer(services, project, label("=1+1"), count=1)
    return project


def fetch(console, url: str, filename: str):
    reply = console.get(url)
    assert reply.status_code == 200, reply.get_data(as_text=True)[:300]
    assert reply.headers["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert reply.is_streamed  # written as read, not built in memory first
    return reply.get_data(as_text=True)


def test_the_download_links_give_attachments_with_the_right_content(console, services,
                                                                      answered):
    pid = answered.id
    page = text_of(console.get(f"/console/projects/{pid}"))
    panel = page[page.index('id="downloads-title"'):]

    items_csv = fetch(console, link(panel, "Download CSV"), f"project-{pid}-results-items.csv")
    table = list(csv.reader(io.StringIO(items_csv)))
    assert tuple(table[0]) == ITEM_COLUMNS and len(table) == 4
    by_ref = {row[1]: dict(zip(ITEM_COLUMNS, row, strict=True)) for row in table[1:]}
    assert sorted(r["value"] for r in by_ref.values()) == ["", "'=1+1", "penguin"]
    assert not items_csv.startswith("\ufeff")

    items_json = json.loads(fetch(console, link(panel, "Download JSON"),
                                  f"project-{pid}-results-items.json"))
    assert [set(row) for row in items_json] == [set(ITEM_COLUMNS)] * 3
    assert sorted(str(r["value"]) for r in items_json) == ["=1+1", "None", "penguin"]

    lines = fetch(console, link(panel, "JSON Lines"),
                  f"project-{pid}-results-items.jsonl").splitlines()
    assert [json.loads(line)["item_ref"] for line in lines] == ["a", "b", "c"]

    excel = fetch(console, link(panel, "CSV for spreadsheets"),
                  f"project-{pid}-results-items.csv")
    assert excel.startswith("\ufeff") and excel[1:] == items_csv

    tasks = list(csv.reader(io.StringIO(fetch(console, link(panel, "Task CSV"),
                                              f"project-{pid}-results.csv"))))
    assert tuple(tasks[0]) == COLUMNS and len(tasks) == 4
    task_json = json.loads(fetch(console, link(panel, "Task JSON"),
                                 f"project-{pid}-results.json"))
    assert sorted(row["state"] for row in task_json) == ["open", "retired", "retired"]

    raw = list(csv.reader(io.StringIO(fetch(console, link(panel, "Answers CSV"),
                                            f"project-{pid}-answers.csv"))))
    assert tuple(raw[0]) == ANSWER_COLUMNS
    assert sorted(row[2] for row in raw[1:]) == ["'=1+1", "penguin"]
    raw_json = json.loads(fetch(console, link(panel, "Answers JSON"),
                                f"project-{pid}-answers.json"))
    assert sorted(row["answer"]["label"] for row in raw_json) == ["=1+1", "penguin"]
    assert "IIIF annotations" not in panel  # no item came from IIIF


def test_iiif_items_get_an_annotations_download(console, services, me):
    lines = samples.LETTER[:1]
    scan = "/media/" + services.media.put(samples.letter_page(lines)).name
    project = make_project(services, me, "transcribe", {}, items=[{"image": scan}])
    answer(services, project, lambda payload: {"text": lines[0]})
    canvas = "https://archive.example.org/canvas/1"
    with services.db.session() as session:  # as if the page came from a IIIF manifest
        session.execute(update(Job).where(Job.project_id == project.id).values(kind="iiif"))
        session.execute(update(Item).where(Item.project_id == project.id).values(
            data={"image": scan, "iiif": {"canvas": canvas, "width": 2200, "height": 408}}))
    page = text_of(console.get(f"/console/projects/{project.id}"))
    url = link(page, "Download IIIF annotations")
    annotation_page = json.loads(fetch(console, url,
                                       f"project-{project.id}-annotations.json"))
    assert annotation_page["type"] == "AnnotationPage"
    [note] = annotation_page["items"]
    assert note["body"]["value"] == lines[0]
    assert note["target"].startswith(canvas + "#xywh=")


def test_a_download_with_a_wrong_format_is_refused(console, answered):
    reply = console.get(f"/console/projects/{answered.id}/download/results?format=xls")
    assert reply.status_code == 422
    assert "Content-Disposition" not in reply.headers


def test_downloads_need_a_signed_in_session(app, answered):
    reply = app.test_client().get(f"/console/projects/{answered.id}/download/results")
    assert reply.status_code == 302 and "/console/login" in reply.headers["Location"]


# -- another organisation ---------------------------------------------------------------


def test_another_organisation_gets_404_on_every_route(app, services, forms, me, make_staff,
                                                      answered):
    pid = answered.id
    with services.db.session() as session:
        item_id = session.scalar(select(Task.item_id).where(Task.project_id == pid))
    other = app.test_client()
    forms.sign_in(other, make_staff(org="Seal Trust", email="bo@seals.org"))
    gets = [f"/console/projects/{pid}", f"/console/projects/{pid}/results",
            f"/console/projects/{pid}/items/{item_id}",
            f"/console/projects/{pid}/download/results?format=csv",
            f"/console/projects/{pid}/download/answers?format=json",
            f"/console/projects/{pid}/download/annotations",
            f"/console/projects/{pid}/webhooks"]
    for url in gets:
        reply = other.get(url)
        assert reply.status_code == 404, url
        assert "Page not found" in reply.get_data(as_text=True), url
        assert "Content-Disposition" not in reply.headers
    posts = [f"/console/projects/{pid}/webhooks",
             f"/console/projects/{pid}/webhooks/events/1/redeliver",
             f"/console/projects/{pid}/webhooks/delete"]
    for url in posts:  # with a valid CSRF token of their own session
        reply = forms.post(other, url, {"url": "https://x.org/h", "secret": "s" * 20,
                                        "events": ["job.split"]}, page="/console/")
        assert reply.status_code == 404, url
    from engine.delivery.webhooks import get_webhook
    from engine.errors import NotFoundError
    with pytest.raises(NotFoundError):
        get_webhook(services, me, pid)  # nothing was set on the owner's project


def test_an_item_of_another_project_is_not_found_under_this_one(console, services, me,
                                                                 answered):
    elsewhere = make_project(services, me, items=[{"text": "x"}])
    with services.db.session() as session:
        item_id = session.scalar(select(Item.id).where(Item.project_id == elsewhere.id))
    assert console.get(f"/console/projects/{answered.id}/items/{item_id}").status_code == 404
    assert console.get(f"/console/projects/{elsewhere.id}/items/{item_id}").status_code == 200
