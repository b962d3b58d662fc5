"""Exports stream rows; a download cut short must release its database cursor."""
from __future__ import annotations

import csv
import gc
import io
import warnings

import pytest

from engine.delivery.exports import escape_cell, render, result_rows, unescape_cell


def test_a_download_cut_short_closes_its_cursor(services, make_project):
    project = make_project(tasks=5)
    rows = result_rows(services, project.id, chunk=2)
    first = next(rows)
    assert first["state"] == "open" and first["value"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows.close()
        gc.collect()
    assert list(render(result_rows(services, project.id), "jsonl"))[-1].endswith("\n")


# -- formula escaping: what a spreadsheet would run is written as text ------------

@pytest.mark.parametrize("value", [
    " =1+1", "  =HYPERLINK(\"http://x\")", "\n=1", " \t\r\n@A1", " +1", " -1",
    "＝1+1", "＋1", "－1", "＠A1", " ＝1", "|cmd", " |cmd", "｜cmd",
    "=1", "+1", "-1", "@A1", "\t", "\tplain", "\r=1",
    "\u200b=1+7", "\ufeff=1+7", " \u200d\u2060@A1",  # invisible marks before one
    "\u200b \u200b=1", " \u200b\u00a0\ufeff=1",  # mixed with blanks, in any order
])
def test_formula_looking_text_gets_an_apostrophe_and_reads_back(value):
    cell = escape_cell(value)
    assert cell == "'" + value
    assert unescape_cell(cell) == value


@pytest.mark.parametrize("value", [
    "plain", "1=1", "a|b", "x＝y", "", "   ", "'quoted", "1-2", "\u200bword",
])
def test_other_text_is_left_as_it_is(value):
    assert escape_cell(value) == value
    assert unescape_cell(value) == value


@pytest.mark.parametrize(("value", "cell"), [
    (-3, "-3"), (-0.5, "-0.5"), (3, "3"), (True, "True"), (None, ""),
    ({"label": " =x"}, '{"label": " =x"}'), ([" -1"], '[" -1"]'),
])
def test_numbers_and_structures_stay_data(value, cell):
    assert escape_cell(value) == cell


def test_a_csv_export_escapes_a_spaced_or_full_width_formula(services, make_project):
    """Through render, as a download writes it: csv quoting keeps the apostrophe
    at the cell's start, where the spreadsheet looks."""
    rows = iter([{"task": 1, "item": 2, "item_ref": " =cmd()", "state": "retired",
                  "value": "＝1+1", "confidence": 1.0, "answers": 3, "method": "|x"}])
    table = list(csv.reader(io.StringIO("".join(render(rows, "csv")), newline="")))
    assert table[1][2] == "' =cmd()" and table[1][4] == "'＝1+1" and table[1][7] == "'|x"


def test_a_page_with_one_line_known_keeps_that_line(services, owner, volunteer):
    """A transcribe item may carry gold for some of its lines only. Left out of
    the item's result, the known line vanished from the page's text (and with
    it listed as open work, the page never finished): it is the charity's own
    answer, part of the page, certain and done."""
    from PIL import Image

    from engine.delivery.exports import item_rows
    from engine.intake.jobs import create_job, run_job
    from engine.projects import create_project
    from engine.volunteering import next_task, submit_answer

    project = create_project(services, owner, {
        "name": "letters", "task_type": "transcribe", "config": {},
        "min_answers": 1, "max_answers": 1, "confidence": 0.5,
        "quality": {"trusted_after_minutes": 0}}).project  # its volunteers are new
    picture = io.BytesIO()
    Image.new("RGB", (600, 400), "white").save(picture, "PNG")
    page = services.media.store(picture.getvalue(), "png")
    regions = [[10, 10, 200, 30], [10, 60, 200, 30], [10, 110, 200, 30]]
    run_job(services, create_job(services, owner, project.id, items=[
        {"image": page, "id": "p1", "regions": regions, "gold": [None, "Known line", None]},
        {"image": page, "id": "g1", "regions": regions[:1], "gold": ["All known"]}]).id)
    for _ in range(4):
        v = volunteer()
        while (handout := next_task(services, v, project.id)) is not None:
            submit_answer(services, v, handout.task_id, handout.lease,
                          {"text": f"line {handout.payload['line']}"})
    [row] = list(item_rows(services, project.id))  # the all-gold item is left out
    assert (row["item_ref"], row["state"], row["tasks"], row["tasks_done"]) == ("p1", "done", 3, 3)
    assert row["value"].splitlines()[1] == "Known line"
    # the console's page of the item says the same as its list and the export
    from engine.delivery import item_results
    [listed] = item_results.result_page(services, project).rows
    shown = item_results.item_detail(services, project, row["item"]).result
    assert (shown.state, shown.value) == (listed.state, listed.value) == ("retired", row["value"])
