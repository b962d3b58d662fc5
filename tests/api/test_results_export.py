"""Results out as CSV, JSON and JSON Lines: parseable, private, and safe to open.

CSV cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``,
tab, carriage return first) get a leading apostrophe; numbers stay numbers.
"""
from __future__ import annotations

import csv
import io
import json

import pytest

from engine.delivery.exports import (
    ANSWER_COLUMNS,
    COLUMNS,
    ITEM_COLUMNS,
    escape_cell,
    unescape_cell,
)
from engine.quality import offline

LABELS = ["penguin", "=2+5", "-1", "@seal"]
REFS = ['=HYPERLINK("http://x")', "+SUM(1)", "-2", "@cmd", "\t=1", "\r=1", "plain", "12",
        "unanswered"]
FORMULA_REFS = REFS[:6]
# the label each volunteer picks, by item ref (unanswered stays open)
PICKS = {'=HYPERLINK("http://x")': "=2+5", "+SUM(1)": "-1", "-2": "@seal"}


@pytest.fixture
def project(api, charity) -> dict:
    """One answer retires a task; every item but 'unanswered' gets one."""
    project = api.project(charity, config={"question": "What?", "labels": LABELS},
                          min_answers=1, max_answers=1, confidence=0.5)
    job = api.items(charity, project["id"], [{"text": f"item {ref}", "id": ref}
                                             for ref in REFS])
    assert job["state"] == "done", job
    volunteer = api.volunteer()
    while True:
        r = api.client.get(f"/api/v1/projects/{project['id']}/tasks/next",
                           headers=volunteer["headers"])
        if r.status_code == 204:
            return project
        task, lease = r.json["task"], r.json["lease"]["token"]
        ref = task["payload"]["text"].removeprefix("item ")  # volunteers get no ref
        if ref == "unanswered":
            api.client.delete(f"/api/v1/leases/{lease}", headers=volunteer["headers"])
            continue
        label = PICKS.get(ref, "penguin")
        assert api.answer(volunteer["headers"], task["id"], lease, label).status_code == 201


def results(client, headers, project_id, fmt):
    r = client.get(f"/api/v1/projects/{project_id}/results?format={fmt}", headers=headers)
    assert r.status_code == 200, r.get_data(True)
    assert r.headers["Content-Disposition"] == (
        f'attachment; filename="project-{project_id}-results.{fmt}"')
    return r


def test_csv_escapes_formulas_and_keeps_numbers(client, charity, project):
    r = results(client, charity, project["id"], "csv")
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"  # its charset once
    table = list(csv.reader(io.StringIO(r.get_data(as_text=True), newline="")))
    assert tuple(table[0]) == COLUMNS
    rows = {row[2]: dict(zip(COLUMNS, row, strict=True)) for row in table[1:]}
    assert len(rows) == len(REFS)
    for ref in FORMULA_REFS:
        assert "'" + ref in rows, (ref, sorted(rows))
    assert {"plain", "12", "unanswered"} <= set(rows)
    assert rows["'" + REFS[0]]["value"] == "'=2+5"
    assert rows["'+SUM(1)"]["value"] == "'-1"
    assert rows["'-2"]["value"] == "'@seal"
    assert rows["plain"]["value"] == "penguin"
    for row in rows.values():  # numbers are untouched
        assert row["task"].isdigit() and row["item"].isdigit() and row["answers"].isdigit()
        assert not row["confidence"].startswith("'")
        float(row["confidence"])
    assert rows["plain"]["confidence"] == "1.0" and rows["plain"]["answers"] == "1"
    assert rows["plain"]["state"] == "retired"
    assert rows["unanswered"] == {**rows["unanswered"], "value": "", "confidence": "0.0",
                                  "answers": "0", "state": "open"}


def test_json_and_json_lines_parse_and_keep_raw_values(client, charity, project):
    rows = json.loads(results(client, charity, project["id"], "json").get_data(as_text=True))
    r = results(client, charity, project["id"], "jsonl")
    assert r.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in r.get_data(as_text=True).splitlines()]
    assert rows == lines
    assert [row["item_ref"] for row in rows] == REFS  # JSON is data: nothing escaped
    by_ref = {row["item_ref"]: row for row in rows}
    assert by_ref[REFS[0]]["value"] == "=2+5"
    assert by_ref["unanswered"]["value"] is None
    assert all(set(row) == set(COLUMNS) for row in rows)
    assert all(isinstance(row["confidence"], float) and isinstance(row["answers"], int)
               for row in rows)


def test_json_is_the_default_format(client, charity, project):
    r = client.get(f"/api/v1/projects/{project['id']}/results", headers=charity)
    assert r.mimetype == "application/json"
    assert len(r.json) == len(REFS)


def test_an_empty_project_exports_empty_files(client, api, charity):
    project = api.project(charity)
    assert results(client, charity, project["id"], "json").json == []
    assert results(client, charity, project["id"], "jsonl").data == b""
    assert results(client, charity, project["id"], "csv").get_data(as_text=True).strip() \
        == ",".join(COLUMNS)


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_results_are_private(client, api, auth, project, other_charity, fmt):
    path = f"/api/v1/projects/{project['id']}/results?format={fmt}"
    assert api.error(client.get(path, headers=other_charity), 404)["code"] == "not_found"
    assert api.error(client.get(path, headers=auth.admin("Seal Trust")), 404)
    assert api.error(client.get(path, headers=auth.volunteer()), 403)
    assert api.error(client.get(path), 401)
    assert client.get(path, headers=auth.admin("Penguin Watch")).status_code == 200


@pytest.mark.parametrize(("value", "cell"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("plain", "plain"), ("1=1", "1=1"), ("", ""),
    (None, ""), (-3, "-3"), (1.5, "1.5"), (0, "0"), (-0.25, "-0.25"), (12, "12"),
    ({"label": "=x"}, '{"label": "=x"}'), (["-1"], '["-1"]'),
])
def test_escape_cell(value, cell):
    assert escape_cell(value) == cell


def test_item_level_rows_carry_the_combined_result(client, charity, project):
    r = client.get(f"/api/v1/projects/{project['id']}/results?format=json&level=item",
                   headers=charity)
    assert r.status_code == 200
    assert r.headers["Content-Disposition"] == (
        f'attachment; filename="project-{project["id"]}-results-items.json"')
    rows = r.json
    assert all(set(row) == set(ITEM_COLUMNS) for row in rows)
    assert [row["item_ref"] for row in rows] == REFS  # upload order
    by_ref = {row["item_ref"]: row for row in rows}
    assert by_ref["plain"] == {**by_ref["plain"], "state": "done", "value": "penguin",
                               "confidence": 1.0, "tasks": 1, "tasks_done": 1}
    assert by_ref["unanswered"] == {**by_ref["unanswered"], "state": "open", "value": None,
                                    "confidence": 0.0, "tasks_done": 0}


def test_item_level_csv_is_escaped_too(client, charity, project):
    r = client.get(f"/api/v1/projects/{project['id']}/results?format=csv&level=item",
                   headers=charity)
    table = list(csv.reader(io.StringIO(r.get_data(as_text=True), newline="")))
    assert tuple(table[0]) == ITEM_COLUMNS
    rows = {row[1]: dict(zip(ITEM_COLUMNS, row, strict=True)) for row in table[1:]}
    assert rows["'+SUM(1)"]["value"] == "'-1"


def test_unknown_level_is_a_field_error(client, api, charity, project):
    r = client.get(f"/api/v1/projects/{project['id']}/results?level=page", headers=charity)
    assert "level" in api.error(r, 422)["fields"]


def test_answers_csv_is_what_consensus_reads(client, charity, project, tmp_path):
    r = client.get(f"/api/v1/projects/{project['id']}/answers?bom=1", headers=charity)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"] == (
        f'attachment; filename="project-{project["id"]}-answers.csv"')
    text = r.get_data(as_text=True)
    assert text.startswith("\ufeff" + ",".join(ANSWER_COLUMNS))
    table = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    assert len(table) == len(REFS) - 1  # every item but 'unanswered' got one answer
    assert {row["answer"] for row in table} == {"'=2+5", "'-1", "'@seal", "penguin"}
    assert all(row["counted"] == "True" and row["answered_at"].endswith("+00:00")
               for row in table)
    path = tmp_path / "answers.csv"
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    offline.run(path, out, method="mv")
    merged = {row["task"]: row["answer"] for row in csv.DictReader(io.StringIO(out.getvalue()))}
    by_task = {row["task"]: row["item_ref"] for row in table}
    assert {by_task[task]: label for task, label in merged.items()}["'+SUM(1)"] == "-1"
    # the merge read "=2+5"; its results are escaped again as exports are (a plain
    # number such as -1 never needs it)
    assert set(merged.values()) == {"'=2+5", "-1", "'@seal", "penguin"}
    assert {unescape_cell(value) for value in merged.values()} == {"=2+5", "-1", "@seal",
                                                                   "penguin"}


def test_answers_json_keeps_the_answer_objects(client, charity, project):
    rows = client.get(f"/api/v1/projects/{project['id']}/answers?format=json",
                      headers=charity).json
    assert all(set(row) == set(ANSWER_COLUMNS) for row in rows)
    assert {row["answer"]["label"] for row in rows} == {"=2+5", "-1", "@seal", "penguin"}
    lines = client.get(f"/api/v1/projects/{project['id']}/answers?format=jsonl",
                       headers=charity).get_data(as_text=True).splitlines()
    assert [json.loads(line) for line in lines] == rows


@pytest.mark.parametrize("path", ["answers", "results?format=csv"])
def test_answers_and_results_are_private(client, api, auth, project, other_charity, path):
    url = f"/api/v1/projects/{project['id']}/{path}"
    assert api.error(client.get(url, headers=other_charity), 404)
    assert api.error(client.get(url, headers=auth.volunteer()), 403)
    assert api.error(client.get(url), 401)


def test_answers_query_is_checked(client, api, charity, project):
    r = client.get(f"/api/v1/projects/{project['id']}/answers?format=xlsx&bom=maybe",
                   headers=charity)
    assert set(api.error(r, 422)["fields"]) == {"format", "bom"}


def test_gold_items_are_left_out_as_progress_leaves_them_out(client, api, charity):
    """A gold item's answer is the charity's own and its task never retires:
    listed, it was open work with no answers for ever in a finished project."""
    project = api.project(charity, min_answers=1, max_answers=1, confidence=0.5)
    api.items(charity, project["id"], [{"text": "t1", "id": "r1"},
                                       {"text": "g1", "id": "g1", "gold": "seal"}])
    for _ in range(3):  # one of them is shown the gold task too
        volunteer = api.volunteer()
        while (r := client.get(f"/api/v1/projects/{project['id']}/tasks/next",
                               headers=volunteer["headers"])).status_code == 200:
            assert api.answer(volunteer["headers"], r.json["task"]["id"],
                              r.json["lease"]["token"], "seal").status_code == 201
    shown = client.get(f"/api/v1/projects/{project['id']}", headers=charity).json
    assert shown["progress"]["done_percent"] == 100
    base = f"/api/v1/projects/{project['id']}/results?format=json"
    tasks = client.get(base, headers=charity).json
    items = client.get(base + "&level=item", headers=charity).json
    assert [(t["item_ref"], t["state"]) for t in tasks] == [("r1", "retired")]
    assert [(i["item_ref"], i["state"]) for i in items] == [("r1", "done")]
