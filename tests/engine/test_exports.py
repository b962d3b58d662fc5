"""Exports stream rows; a download cut short must release its database cursor."""
from __future__ import annotations

import gc
import warnings

from engine.delivery.exports import render, result_rows


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
