"""Messy answers files: engine.quality.offline skips the rows it cannot read,
notes each by line, and merges the rest; without a collector it stops at the
first (issue 15, item 4). The files are small copies of what real ones did."""
from __future__ import annotations

import csv
import io

import pytest

from engine.errors import InvalidError
from engine.quality import offline
from engine.quality.offline_rows import Skipped, SkippedRow
from task_types.locate import locate
from task_types.number import number
from task_types.transcribe import transcribe


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def results(text: str) -> dict[str, dict]:
    return {row["task"]: row for row in csv.DictReader(io.StringIO(text))}


def merged(path, **kwargs) -> tuple[dict[str, dict], offline.Summary]:
    out = io.StringIO()
    summary = offline.run(path, out, **kwargs)
    return results(out.getvalue()), summary


def merged_typed(path, task_type, config=None, skipped=None):
    out = io.StringIO()
    summary = offline.run_typed(path, out, task_type, config, skipped=skipped)
    return results(out.getvalue()), summary


BOXES = ('task,worker,answer\n'
         'p1,w1,"[[10,10,50,50]]"\n'
         'p1,w2,"[[12,10,52,50]]"\n'
         'p1,w3,"[[30,30,30,80]]"\n'          # line 4: its only box has no width
         'p1,w4,"[[10,10,50,50],[5,5,9,5]]"\n'  # line 5: its second box has no height
         'p2,w1,"[[0,0,20,20]]"\n'
         'p2,w2,"[[0,0,5"\n'                   # line 7: a JSON cell cut short
         'p2,w3,"[[1,1,21,21]]"\n')


def test_a_degenerate_box_is_left_out_of_its_row_and_a_row_of_nothing_else_skipped(tmp_path):
    """Line 5 keeps its good box and the report counts the one left out; line 4
    marked nothing usable (not "nothing here"), so it goes, as line 7 does."""
    skipped = Skipped()
    rows, summary = merged_typed(write(tmp_path / "boxes.csv", BOXES), locate, skipped=skipped)
    assert [(row.line, row.column) for row in skipped.rows] == [(4, "answer"), (7, "answer")]
    assert "Box 1 must have x1 < x2 and y1 < y2" in skipped.rows[0].reason
    assert "not a JSON list of marks" in skipped.rows[1].reason
    assert skipped.parts == [SkippedRow(5, "answer", "Box 2 has no height: left out")]
    assert (skipped.total, skipped.parts_total) == (2, 1)
    assert (summary.tasks, summary.answers, summary.workers) == (2, 5, 4)
    lines = BOXES.splitlines()
    lines[4] = 'p1,w4,"[[10,10,50,50]]"'
    clean = write(tmp_path / "clean.csv", "\n".join(
        line for n, line in enumerate(lines, 1) if n not in (4, 7)) + "\n")
    assert rows == merged_typed(clean, locate)[0]  # as if the bad parts were never there
    assert rows["p1"]["answer"] == "[[10.0,10.0,50.0,50.0]]"  # w4 backs w1 now


def test_without_a_collector_the_first_bad_box_stops_the_merge(tmp_path):
    with pytest.raises(InvalidError, match=r"^boxes.csv: line 4: answer: not a locate answer: "
                                           r"Box 1 must have"):
        merged_typed(write(tmp_path / "boxes.csv", BOXES), locate)
    with pytest.raises(InvalidError, match="line 4"):  # a strict collector is the same
        merged_typed(tmp_path / "boxes.csv", locate, skipped=Skipped(strict=True))
    partly = write(tmp_path / "partly.csv", "\n".join(BOXES.splitlines()[:3] + [
        BOXES.splitlines()[4]]) + "\n")
    with pytest.raises(InvalidError, match=r"^partly.csv: line 4: answer: Box 2 has no height: "
                                           r"left out$"):
        merged_typed(partly, locate)


def test_degenerate_marks_of_every_kind_are_left_out_but_gold_stays_whole(tmp_path):
    answers = write(tmp_path / "a.csv", 'task,worker,answer\n'
                    'p1,w1,"[[1,1,1,1],[10,10,50,50],[],[20,20,60,20.5]]"\n'
                    'p1,w2,"[[10,10,50,50],[7,40,7.5,90]]"\n')
    skipped = Skipped()
    rows, summary = merged_typed(answers, locate, skipped=skipped)
    assert [part.text() for part in skipped.parts] == [
        "line 2: answer: Box 1 has no area: left out", "line 2: answer: Box 3 is empty: left out",
        "line 2: answer: Box 4 has no height: left out",
        "line 3: answer: Box 2 has no width: left out"]
    assert skipped.total == 0 and rows["p1"]["answer"] == "[[10.0,10.0,50.0,50.0]]"
    gold = write(tmp_path / "g.csv", 'task,answer\np1,"[[10,10,50,50],[5,5,5,9]]"\n')
    with pytest.raises(InvalidError, match="g.csv: line 2: answer: Box 2 has no width"):
        offline.run_typed(answers, io.StringIO(), locate, gold_path=gold, skipped=Skipped())


def test_ratings_outside_the_configured_scale_are_skipped(tmp_path):
    """One file mixing a 0..100 and a -100..100 scale, merged under a 0..100
    config: the negative ratings are the ones left out."""
    config = number.load_config({"question": "How sure?", "min": 0, "max": 100})
    answers = write(tmp_path / "ratings.csv", "task,worker,answer\n"
                    "r1,w1,80\nr1,w2,-40\nr1,w3,76\nr1,w4,78\n"
                    "r2,w1,10\nr2,w2,-90\nr2,w3,12\nr2,w4,100\n"
                    "r3,w1,0\nr3,w2,-1\nr3,w3,0\n")
    skipped = Skipped()
    rows, summary = merged_typed(answers, number, config, skipped)
    assert [row.line for row in skipped.rows] == [3, 7, 11]
    assert {row.reason for row in skipped.rows} == {"not a number answer: Must be at least 0."}
    assert summary.answers == 8
    assert float(rows["r1"]["answer"]) == 78 and float(rows["r3"]["answer"]) == 0
    assert 10 <= float(rows["r2"]["answer"]) <= 100


def test_a_file_mixing_two_scales_merges_whole_without_a_config(tmp_path):
    """The same file as above with no config: negative values make it a signed
    scale, -100..100 (100 and -90 are ends the crowd reaches), nothing is
    skipped, and each task's result is the mean of its ratings."""
    answers = write(tmp_path / "ratings.csv", "task,worker,answer\n"
                    "r1,w1,80\nr1,w2,-40\nr1,w3,76\nr1,w4,78\n"
                    "r2,w1,10\nr2,w2,-100\nr2,w3,12\nr2,w4,100\n"
                    "r3,w1,0\nr3,w2,-1\nr3,w3,0\nr3,w4,100\n")
    skipped = Skipped()
    rows, summary = merged_typed(answers, number, None, skipped)
    assert skipped.total == 0 and summary.answers == 12
    assert {task: float(row["answer"]) for task, row in rows.items()} == {
        "r1": 48.5, "r2": 5.5, "r3": 24.75}
    assert summary.method == "number aggregate (from the answers: min -100, max 100, method mean)"


def test_a_classify_row_missing_its_worker_is_skipped(tmp_path):
    answers = write(tmp_path / "a.csv", "task,worker,answer\n"
                    "t1,w1,cat\nt1,w2,cat\nt1,,dog\nt1,w3,dog\n"
                    ",w1,dog\nt2,w1,dog\nt2,w2,\nt2,w3,dog\nt2,w4\n")
    skipped = Skipped()
    rows, summary = merged(answers, method="mv", skipped=skipped)
    assert [(row.line, row.column, row.reason) for row in skipped.rows] == [
        (4, "worker", "empty"), (6, "task", "empty"), (8, "answer", "empty"),
        (10, "answer", "empty")]
    assert (summary.tasks, summary.answers, summary.workers) == (2, 5, 3)
    assert rows["t1"]["answer"] == "cat" and rows["t2"]["answer"] == "dog"


def test_labels_outside_the_configs_list_are_skipped_or_stop_a_strict_read(tmp_path):
    answers = write(tmp_path / "a.csv", "task,worker,answer\n"
                    "t1,w1,cat\nt1,w2,Cat\nt1,w3,cat\nt2,w1,owl\nt2,w2,owl\nt2,w3,dog\n")
    skipped = Skipped()
    rows, summary = merged(answers, method="ds", labels=["cat", "owl"], skipped=skipped)
    assert [row.text() for row in skipped.rows] == [
        "line 3: answer: 'Cat' is not listed; the labels are cat, owl",
        "line 7: answer: 'dog' is not listed; the labels are cat, owl"]
    assert summary.answers == 4
    assert {task: row["answer"] for task, row in rows.items()} == {"t1": "cat", "t2": "owl"}
    with pytest.raises(InvalidError, match="^a.csv: line 3: answer: 'Cat' is not listed"):
        merged(answers, method="ds", labels=["cat", "owl"])


def test_live_keeps_each_read_rows_counted_flag(tmp_path):
    answers = write(tmp_path / "a.csv", "task,worker,answer,counted\n"
                    "t1,w1,cat,True\nt1,,dog,True\nt1,w2,dog,False\nt1,w3,cat,True\n")
    skipped = Skipped()
    rows, counted = offline.read_counted(answers, skipped)
    assert rows == [("t1", "w1", "cat"), ("t1", "w2", "dog"), ("t1", "w3", "cat")]
    assert counted == [True, False, True] and skipped.total == 1
    results_, summary = merged(answers, method="live", skipped=Skipped())
    assert results_["t1"]["answer"] == "cat" and summary.answers == 3


def test_rows_the_csv_module_cannot_parse_are_skipped_and_reading_goes_on(tmp_path):
    answers = write(tmp_path / "a.csv", 'task,worker,answer\n'
                    't1,w1,cat\n'
                    't1,w2,"cat"s\n'       # line 3: text after a closing quote
                    '\n'                   # a blank line: not a row, not skipped
                    't1,w3,cat\n'
                    't2,w1,dog\n'
                    't2,w2,"dog\n'         # line 7: a quote never closed: this row only
                    't2,w3,dog\n')
    skipped = Skipped()
    rows, summary = merged(answers, method="mv", skipped=skipped)
    assert [(row.line, row.column) for row in skipped.rows] == [(3, None), (7, None)]
    assert skipped.rows[0].reason.startswith("not readable as CSV")
    assert "lines 7-8" in skipped.rows[1].reason
    # reading went on at line 8 (a robustness audit's stray quote discarded the
    # 2,000 rows after it)
    assert summary.answers == 4 and rows["t2"]["answer"] == "dog"


def test_a_file_with_nothing_readable_is_an_error_that_counts_the_rows(tmp_path):
    answers = write(tmp_path / "a.csv", "task,worker,answer\nt1,,x\n\nt2,w1,\n")
    skipped = Skipped()
    with pytest.raises(InvalidError, match="a.csv: none of its 2 rows could be read; "
                                           "nothing to merge"):
        offline.run(answers, io.StringIO(), skipped=skipped)
    assert skipped.total == 2
    ratings = write(tmp_path / "r.csv", "task,worker,answer\nr1,w1,-5\nr1,w2,-6\n")
    config = number.load_config({"question": "How sure?", "min": 0, "max": 100})
    with pytest.raises(InvalidError, match="nothing to merge"):
        merged_typed(ratings, number, config, Skipped())


def test_the_collector_counts_past_what_it_keeps():
    skipped = Skipped(keep=3)
    for line in range(2, 27):
        skipped.note("a.csv", line, "answer", "empty")
    assert skipped.total == 25 and len(skipped.rows) == 3 and skipped.truncated
    assert skipped.report() == {"skipped": 25, "truncated": True, "rows": [
        {"line": n, "column": "answer", "reason": "empty"} for n in (2, 3, 4)],
        "left_out": 0, "left_out_rows": [], "replaced": 0, "replaced_rows": []}
    lines = Skipped()
    for line in range(2, 27):
        lines.note("a.csv", line, "answer", "empty")
    text = lines.lines()
    assert text[0] == "skipped 25 rows it could not read"
    assert text[1:21] == [f"  line {n}: answer: empty" for n in range(2, 22)]
    assert text[21:] == ["  ...and 5 more"]
    assert Skipped().lines() == []
    assert SkippedRow(4, None, "not readable as CSV (x)").text() == \
        "line 4: not readable as CSV (x)"


def test_the_collector_lists_parts_left_out_after_the_skipped_rows():
    skipped = Skipped(keep=2)
    skipped.note_part("a.csv", 5, "answer", "Box 2 has no height: left out")
    assert skipped.lines() == ["left out 1 part of rows it kept",
                               "  line 5: answer: Box 2 has no height: left out"]
    assert not skipped.truncated
    skipped.note("a.csv", 3, "answer", "empty")
    for line in (6, 7):
        skipped.note_part("a.csv", line, "answer", "Box 1 is empty: left out")
    assert skipped.lines(first=1) == [
        "skipped 1 row it could not read", "  line 3: answer: empty",
        "left out 3 parts of rows it kept", "  line 5: answer: Box 2 has no height: left out",
        "  ...and 2 more"]
    report = skipped.report()
    assert (report["skipped"], report["left_out"], report["truncated"]) == (1, 3, True)
    assert [row["line"] for row in report["left_out_rows"]] == [5, 6]


def test_gold_files_stay_strict(tmp_path):
    answers = write(tmp_path / "a.csv", "task,worker,answer\nt1,w1,cat\n")
    gold = write(tmp_path / "g.csv", "task,answer\nt1,\n")
    with pytest.raises(InvalidError, match="g.csv: line 2: answer: empty"):
        offline.run(answers, io.StringIO(), gold, skipped=Skipped())


def test_an_empty_tag_cell_is_still_an_answer_not_a_skip(tmp_path):
    from task_types.tag import tag

    answers = write(tmp_path / "a.csv", "task,worker,answer\nt1,w1,\nt1,w2,\nt1,w3,fox\n")
    skipped = Skipped()
    rows, summary = merged_typed(answers, tag, skipped=skipped)
    assert skipped.total == 0 and summary.answers == 3 and rows["t1"]["answer"] == ""


def test_a_blank_transcription_is_no_text_not_a_skip(tmp_path):
    """Depends on transcribe reading a blank cell as its "no text" answer
    (task_types/transcribe.py, answer_from_text)."""
    config = transcribe.offline_config()
    answers = write(tmp_path / "a.csv", "task,worker,answer\n"
                    "l1,w1,Dear Sir\nl1,w2,Dear Sir\nl1,w3,\n"
                    "l2,w1,\nl2,w2,\"  \"\nl2,w3,\n")
    skipped = Skipped()
    rows, summary = merged_typed(answers, transcribe, config, skipped)
    assert skipped.total == 0 and summary.answers == 6
    blank = transcribe.answer_schema(config).load(transcribe.answer_from_text("", config))
    no_text = transcribe.aggregate([blank], None, config).value
    assert rows["l1"]["answer"] == "Dear Sir"
    assert rows["l2"]["answer"] == transcribe.value_to_text(no_text)

