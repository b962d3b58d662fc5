"""bench/tasktypes.py and its parts still measure the task types' real code: the
numbers part end to end through the runner, the text and boxes parts' scoring
and splitting on tiny inputs. No timing thresholds, no expected accuracies."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
DATA = BENCH.parent / "tests" / "data"  # vendored: see tests/data/README.md


@pytest.fixture(scope="module")
def bench():
    """The runner, loaded from its path with bench/ on sys.path for its parts."""
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_tasktypes", BENCH / "tasktypes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(BENCH))
    for name in ("task_types_text", "task_types_boxes", "task_types_numbers", "free_wording"):
        sys.modules.pop(name, None)


def test_numbers_part_through_the_runner(bench, tmp_path, capsys):
    report = bench.main(["--quick", "--parts", "numbers", "--data", str(DATA),
                         "--output", str(tmp_path / "r.json")])
    written = json.loads((tmp_path / "r.json").read_text())
    assert set(written["parts"]) == {"numbers"} and written["quick"] is True
    assert set(report["parts"]["numbers"]["targets"]) == {"numbers_mae"}
    rows = report["parts"]["numbers"]["rows"]
    assert {row[1] for row in rows} >= {"bitesize", "mean", "median"}
    assert all(isinstance(row[3], float) and row[3] >= 0 for row in rows)
    out = capsys.readouterr().out
    assert "numbers_mae" in out and "part" in out.splitlines()[0]


def test_the_runner_refuses_an_unknown_part(bench, tmp_path):
    with pytest.raises(SystemExit):
        bench.main(["--parts", "sculpture", "--output", str(tmp_path / "r.json")])


def test_text_part_scores_word_errors(bench):
    text = importlib.import_module("task_types_text")
    assert text.word_errors("The cat, sat.", "the cat sat") == 0
    assert text.word_errors("the cat", "the cat sat") == 1
    assert text.wer({"1": "a b c", "2": "x"}, {"1": "a b d", "2": "x"}) == pytest.approx(0.25)


def test_free_wording_crowds_are_seeded_and_shaped(bench):
    free = importlib.import_module("free_wording")
    crowd = free.crowd(5, moved=True)
    assert crowd == free.crowd(5, moved=True)  # the same seed, the same crowd
    assert len(crowd.answers) == 5 * free.ANSWERS_PER_TASK and set(crowd.gold) == {
        task for task, _, _ in crowd.answers}
    assert crowd.answers != free.crowd(5, moved=False).answers


def test_page_cutting_part_cuts_every_line(bench):
    text = importlib.import_module("task_types_text")
    rows, figures, target = text.split_part()
    assert figures["lines_found"] == text.PAGE_LINES
    assert target["met"] in (True, False) and "lines" in target["detail"]
    assert figures["split_ratio"] > 0 and len(rows) == 4


def test_boxes_part_scores_and_tiles(bench):
    boxes = importlib.import_module("task_types_boxes")
    gold = {"a": [[0, 0, 10, 10]], "b": []}
    found = {"a": [[0, 0, 10, 11], [50, 50, 60, 60]], "b": []}
    detection = boxes.scored(found, gold)
    assert (detection.matched, detection.found, detection.expected) == (1, 2, 1)
    answers = {"a": {"w1": [[0, 0, 10, 10]], "w2": [[1, 0, 10, 10]], "w3": []}}
    merged = boxes.merge_bitesize(answers, boxes.locate.load_config({"question": "Mark"}))
    assert len(merged["a"]) == 1
    part = boxes.tiling_part(quick=True)
    assert part["figures"]["tiles"] > 1 and part["figures"]["ratio"] > 0
