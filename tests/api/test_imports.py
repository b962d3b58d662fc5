"""Importers over HTTP with the real worker: JSON and CSV files, and zips with
duplicates. IIIF manifests, and the outbound guard on them, are in test_imports_iiif.py.

Every file is made in the test; every job runs through RQ's burst worker.
"""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from sqlalchemy import select

from engine.intake import importers
from engine.intake import jobs as intake
from engine.store.models import Job, Task

from .imports_helpers import V3, count, jpeg, run, stored_items, upload


@pytest.fixture
def project(api, charity) -> dict:
    return api.project(charity)


# --- JSON files ---------------------------------------------------------------

@pytest.mark.parametrize("shape", ["list", "object"])
def test_a_json_file_of_items_is_checked_like_a_body(client, api, services, charity, project,
                                                     shape):
    items = [{"text": "a seal", "id": "s1", "gold": " seal "}, {"text": "a rock"}]
    document = items if shape == "list" else {"items": items}
    job = run(client, api, charity, project["id"], json.dumps(document).encode(), "items.json")
    assert job["kind"] == "items" and job["state"] == "done", job
    assert job["progress"]["tasks_made"] == 2
    assert stored_items(services, job["id"])[0]["gold"] == "seal"  # loaded by the schema


@pytest.mark.parametrize(("document", "field"), [
    ([{"text": "ok"}, {"text": "x", "gold": "walrus"}], "items.1.gold"),
    ([{"text": "ok"}, {"image": "javascript:alert(1)"}], "items.1.image"),
    ({"items": [{"text": "ok"}], "extra": 1}, "file"),
    ([], "file"),
    ({"@context": V3, "type": "Manifest", "id": "x", "items": []}, "file"),  # IIIF, but empty
])
def test_a_bad_json_file_is_422_naming_the_item(client, api, services, charity, project,
                                               document, field):
    r = upload(client, charity, project["id"], json.dumps(document).encode(), "items.json")
    error = api.error(r, 422)
    assert api.field(error["fields"], field)
    assert count(services, Job) == 0


@pytest.mark.parametrize(("data", "words"), [
    (b"[{\"text\": NaN}]", "not valid JSON"), (b"{not json", "not valid JSON"),
    (b"\xff\xfe[]", "not valid JSON"), (b"[" * 100_000, "not valid JSON"),
    (b"[{\"text\": \"x\\u0000\"}]", "NUL"), (b"[{\"text\": \"\\ud800\"}]", "surrogate"),
])
def test_a_json_file_that_is_not_json_is_422(client, api, charity, project, data, words):
    error = api.error(upload(client, charity, project["id"], data, "items.json"), 422)
    assert "file" in error["fields"] and words in error["message"], error


def test_a_json_file_over_its_limit_is_413(client, api, charity, project, monkeypatch):
    monkeypatch.setattr(importers, "MAX_JSON_BYTES", 100)
    data = json.dumps([{"text": "x" * 50} for _ in range(5)]).encode()
    error = api.error(upload(client, charity, project["id"], data, "items.json"), 413)
    assert "CSV" in error["message"]


# --- CSV ----------------------------------------------------------------------

ROWS = ('\ufeffref,caption,answer,notes\r\n'
        'r1,"A seal, on a rock",seal,x\r\n'             # line 2: quoted comma
        'r2,"She said ""penguin""",penguin,\r\n'        # line 3: doubled quotes
        'r3,"two\nlines",empty,\r\n'                    # lines 4-5: quoted line break
        'r4,"=HYPERLINK(""http://evil.example"",""x"")",seal,\r\n'  # line 6: a formula
        'r5,+1 seal,walrus,\r\n'                        # line 7: gold not a label
        'r6,too,many,cells,here\r\n'                    # line 8: five cells
        'r7,"bad"quote,seal,\r\n'                       # line 9: strict quoting
        '\r\n'                                          # line 10: blank, skipped
        'r8,@SUM(A1),,\r\n')                            # line 11: no gold
MAPPING = json.dumps({"text": "caption", "id": "ref", "gold": "answer"})


def test_a_csv_becomes_items_and_bad_rows_are_reported_by_line(client, api, services,
                                                              charity, project):
    job = run(client, api, charity, project["id"], ROWS.encode(), "rows.csv", mapping=MAPPING)
    assert job["kind"] == "csv" and job["state"] == "done", job
    assert job["progress"] == {"items_total": 8, "items_read": 8, "items_split": 5, "tasks_made": 5,
                               "duplicates": 0}
    items = stored_items(services, job["id"])
    assert [item["id"] for item in items] == ["r1", "r2", "r3", "r4", "r8"]
    assert items[0] == {"text": "A seal, on a rock", "id": "r1", "gold": "seal"}
    assert items[1]["text"] == 'She said "penguin"'
    assert items[2]["text"] == "two\nlines"
    assert items[3]["text"] == '=HYPERLINK("http://evil.example","x")'  # data, kept as sent
    assert items[4] == {"text": "@SUM(A1)", "id": "r8"}  # an empty cell is no field
    problems = {p["line"]: p for p in job["problems"]}
    assert set(problems) == {7, 8, 9}
    assert problems[7]["item"] == 4 and "gold" in problems[7]["reason"]
    assert "5 cells" in problems[8]["reason"] and "4 columns" in problems[8]["reason"]
    assert "not valid CSV" in problems[9]["reason"]


def test_a_row_with_an_empty_text_cell_is_told_once_and_why(client, api, services, charity,
                                                            project):
    """The browser audit read "image: Give exactly one of image or text.; text: Give
    exactly one of image or text." for an empty text cell."""
    job = run(client, api, charity, project["id"], b"text,id\nhello,a\n,b\n", "rows.csv")
    (problem,) = job["problems"]
    assert problem["line"] == 3 and problem["reason"] == (
        "image, text: Give exactly one of image or text: this item has neither (an empty "
        "cell?).")


def test_a_quote_never_closed_costs_its_own_row_not_the_rest_of_the_file(
        client, api, services, charity, project):
    """A robustness audit: `"hello,f1` read to the end of the file, so f2 and f3
    were lost with one problem that did not name them."""
    rows = 'text,id\n"hello,f1\nbye,f2\nok,f3\n'
    job = run(client, api, charity, project["id"], rows.encode(), "rows.csv")
    assert job["state"] == "done", job
    assert [item["id"] for item in stored_items(services, job["id"])] == ["f2", "f3"]
    (problem,) = job["problems"]
    assert problem["line"] == 2 and "lines 2-4: a quote never closed?" in problem["reason"]
    assert job["progress"]["items_total"] == 3


def test_a_csv_without_mapping_takes_the_columns_named_like_item_fields(client, api, services,
                                                                       charity, project):
    stored = services.media.put(jpeg("teal"), "teal.jpg")
    rows = ("id,image,text,comment\n"
            "a,https://example.org/a.jpg,,ignored\n"
            "b,,some text,\n"
            "c,photos/c.jpg,,\n"
            "d,https://example.org/d.jpg,and text,\n"
            f"e,/media/{stored.name},,\n")
    job = run(client, api, charity, project["id"], rows.encode(), "ROWS.CSV")
    assert job["state"] == "done", job
    assert [item["id"] for item in stored_items(services, job["id"])] == ["a", "b", "e"]
    problems = {p["line"]: p["reason"] for p in job["problems"]}
    assert set(problems) == {4, 5}
    assert "'photos/c.jpg' is a file path" in problems[4] and ".zip" in problems[4]
    # said once, for both fields: this row gives both
    assert problems[5] == "image, text: Give exactly one of image or text, not both."


@pytest.mark.parametrize(("data", "mapping", "field", "words"), [
    (b"ref,caption\nr1,x\n", '{"text": "title"}', "mapping.text", "no column named 'title'"),
    (b"ref,caption\nr1,x\n", '{"colour": "caption"}', "mapping.colour", "not an item field"),
    (b"ref,caption,caption\nr1,x,y\n", '{"text": "caption"}', "file",
     "'caption' more than once"),
    (b"id,text,text\na,b,c\n", None, "file", "'text' more than once"),  # blamed the mapping
    (b"ref,caption\nr1,x\n", "{not json", "mapping", "not JSON"),
    (b"ref,caption\nr1,x\n", "[" * 5000 + "]" * 5000, "mapping", "not JSON"),  # was a 500
    (b"ref,caption\nr1,x\n", '["text"]', "mapping", "object"),
    (b"ref,caption\nr1,x\n", '{"text": 5}', "mapping", "object"),
    (b"ref,caption\nr1,x\n", None, "file", "no CSV column is named like an item field"),
    (b"", None, "file", "empty"),
    (b"\n\n", None, "file", "empty"),
    (b"text,id\n", None, "file", "header but no rows"),  # was a job "done" with nothing
    (b"text,id\n\n\n", None, "file", "header but no rows"),
    (b"id,text\na,caf\xe9\n", None, "file", "line 2 of the CSV is not UTF-8"),
    (b"id,text\n" + b"a,b\n" * 5000 + b"c,\xff\n", None, "file", "line 5002"),
    (b'id,"text\n', None, "file", "header"),
])
def test_a_csv_that_cannot_be_read_is_422_at_upload(client, api, services, charity, project,
                                                   data, mapping, field, words):
    form = {"mapping": mapping} if mapping is not None else {}
    error = api.error(upload(client, charity, project["id"], data, "rows.csv", **form), 422)
    assert words in error["message"] + json.dumps(error["fields"]), error
    assert api.field(error["fields"], field)
    assert count(services, Job) == 0


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_csv_separated_by_semicolons_or_tabs_is_read_as_such(client, api, services, charity,
                                                                project, separator):
    """Excel's "CSV" in French or German settings: semicolons, a BOM, CRLF. It
    was read as one column named "id;text", and a quoted line break in a cell
    split its row in two (a charity console audit)."""
    rows = (f'id{separator}text{separator}\r\na{separator}"Une lettre\r\navec saut"'
            f'{separator}\r\nb{separator}photo 2, zoomed{separator}\r\n'
            f'{separator}{separator}\r\n')
    job = run(client, api, charity, project["id"], "\ufeff".encode() + rows.encode(), "rows.csv")
    assert job["state"] == "done", job
    items = stored_items(services, job["id"])
    assert [(item["id"], item["text"]) for item in items] == [
        ("a", "Une lettre\r\navec saut"), ("b", "photo 2, zoomed")]


def test_a_mapping_is_only_for_a_csv(client, api, charity, project):
    error = api.error(upload(client, charity, project["id"], b"[]", "items.json",
                             mapping=MAPPING), 422)
    assert error["fields"] == {"mapping": "not a CSV"}
    job = run(client, api, charity, project["id"], make_zip(NESTED), "photos.zip", mapping=" ")
    assert job["state"] == "done"  # an empty form field is no mapping


def test_a_csv_with_a_header_only_is_refused_at_upload(client, api, services, charity,
                                                      project):
    """It made a job "done" with no item and no word of why (a robustness audit)."""
    error = api.error(upload(client, charity, project["id"], b"id,text\r\n", "rows.csv"), 422)
    assert "header but no rows" in error["message"] and error["fields"] == {"file": "no rows"}
    assert count(services, Job) == 0


def test_a_tag_project_takes_a_list_gold_from_a_csv_cell(client, api, services, charity):
    """It met "gold: Not a valid list": a cell is one string. Tags are separated
    by ";" as in the answers CSV that `bitesize consensus` reads."""
    project = api.project(charity, task_type="tag",
                          config={"question": "What is there?", "tags": ["Cat", "Dog", "Bird"]})
    rows = "text,gold\na cat and a dog,cat; Dog\na bird,\nodd,cat;walrus\n"
    job = run(client, api, charity, project["id"], rows.encode(), "rows.csv")
    assert job["progress"]["tasks_made"] == 2, job
    [problem] = job["problems"]
    assert problem["line"] == 4 and "'walrus' is not one of the project's tags" in problem["reason"]
    assert [item.get("gold") for item in stored_items(services, job["id"])] == [
        ["Cat", "Dog"], None]
    with services.db.session() as session:
        golds = session.scalars(select(Task.gold).where(Task.project_id == project["id"],
                                                        Task.is_gold.is_(True))).all()
    assert golds == [["Cat", "Dog"]]


def test_problems_count_is_every_problem_not_the_reports_length(client, api, charity, project,
                                                                 monkeypatch):
    monkeypatch.setattr(intake, "MAX_REPORTED_PROBLEMS", 2)
    rows = "text,gold\n" + "".join(f"row {n},{'walrus' if n % 2 else ''}\n" for n in range(10))
    job = run(client, api, charity, project["id"], rows.encode(), "rows.csv")
    assert job["progress"]["tasks_made"] == 5 and len(job["problems"]) == 3, job
    assert job["problems"][-1] == {"reason": "3 more problems not listed"}
    assert job["problems_count"] == 5
    listed = client.get(f"/api/v1/projects/{project['id']}/jobs", headers=charity).json
    assert listed["jobs"][0]["problems_count"] == 5


# --- zips: nested folders, duplicates -------------------------------------------

def make_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


NESTED = {"site-a/2024/dawn.jpg": jpeg("navy"), "site-a/2024/copy-of-dawn.jpg": jpeg("navy"),
          "site-b/deep/er/noon.jpg": jpeg("olive"), "readme.txt": b"notes"}


def test_a_duplicate_image_in_a_zip_is_reported_not_made_twice(client, api, services, charity,
                                                               project):
    job = run(client, api, charity, project["id"], make_zip(NESTED), "photos.zip")
    assert job["state"] == "done", job
    assert job["progress"] == {"items_total": 4, "items_read": 4, "items_split": 2, "tasks_made": 2,
                               "duplicates": 1}
    reasons = {p["path"]: p for p in job["problems"]}
    assert reasons["site-a/2024/copy-of-dawn.jpg"]["reason"] == "already in this project"
    assert reasons["site-a/2024/copy-of-dawn.jpg"]["duplicate"] is True
    assert reasons["readme.txt"]["reason"] == "not an image file"
    assert sorted(i["id"] for i in stored_items(services, job["id"])) == [
        "site-a/2024/dawn.jpg", "site-b/deep/er/noon.jpg"]

    again = run(client, api, charity, project["id"], make_zip(NESTED), "again.zip")
    assert again["progress"] == {"items_total": 4, "items_read": 4, "items_split": 0,
                                 "tasks_made": 0, "duplicates": 3}
    assert count(services, Task, project_id=project["id"]) == 2


def test_the_same_images_may_go_into_another_project(client, api, services, charity, project):
    run(client, api, charity, project["id"], make_zip(NESTED), "photos.zip")
    other = api.project(charity)
    job = run(client, api, charity, other["id"], make_zip(NESTED), "photos.zip")
    assert job["progress"]["tasks_made"] == 2 and job["progress"]["duplicates"] == 1


def test_an_image_uploaded_as_an_item_counts_as_in_the_project(client, api, services, charity,
                                                               project):
    stored = services.media.put(NESTED["site-b/deep/er/noon.jpg"], "noon.jpg")
    api.items(charity, project["id"], [{"image": f"/media/{stored.name}"}])
    job = run(client, api, charity, project["id"], make_zip(NESTED), "photos.zip")
    assert job["progress"]["duplicates"] == 2 and job["progress"]["tasks_made"] == 1
