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
