"""`bitesize consensus --type number` without a config on real ratings: the scale
is read off the answers and the merge is never worse than the plain mean
(issue 15, item 5). Data: tests/data/README.md."""
from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path

import pytest

from engine.quality import offline
from engine.quality.offline_rows import Skipped
from task_types.number import number

DATA = Path(__file__).resolve().parent.parent / "data"
SAME = 1e-9


def read(path: Path) -> dict[str, float]:
    with path.open(newline="", encoding="utf-8") as stream:
        return {row["task"]: float(row["answer"]) for row in csv.DictReader(stream)}


def mae(values: dict[str, float], gold: dict[str, float]) -> float:
    return statistics.fmean(abs(values[task] - truth) for task, truth in gold.items())


def answers_by_task(path: Path) -> dict[str, list[float]]:
    by_task: dict[str, list[float]] = {}
    with path.open(newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            by_task.setdefault(row["task"], []).append(float(row["answer"]))
    return by_task


@pytest.mark.parametrize(("name", "scale"), [("affect_anger", (0, 100)),
                                             ("affect_valence_20", (-100, 100))])
def test_no_config_merges_ratings_at_least_as_well_as_the_mean(name, scale):
    folder = DATA / name
    out, skipped = io.StringIO(), Skipped()
    summary = offline.run_typed(folder / "answers.csv", out, number, None,
                                folder / "gold.csv", skipped)
    assert skipped.total == 0 and f"min {scale[0]}, max {scale[1]}, method mean" in summary.method
    merged = {row["task"]: float(row["answer"])
              for row in csv.DictReader(io.StringIO(out.getvalue()))}
    gold = read(folder / "gold.csv")
    by_task = answers_by_task(folder / "answers.csv")
    mean = mae({task: statistics.fmean(v) for task, v in by_task.items()}, gold)
    median = mae({task: statistics.median(v) for task, v in by_task.items()}, gold)
    assert mae(merged, gold) <= mean + SAME
    assert mean < median  # why a rating is not merged by the median
    rows = offline.read_typed(folder / "answers.csv", number, number.offline_config())
    before = offline.merge_typed(number, number.offline_config(), rows).results
    assert mae(merged, gold) < mae({task: r.value for task, r in before.items()}, gold)


def test_a_config_given_is_used_as_it_is(tmp_path):
    answers = tmp_path / "a.csv"
    answers.write_text("task,worker,answer\nt1,w1,0\nt1,w2,0\nt1,w3,100\n"
                       "t2,w1,100\nt2,w2,10\nt2,w3,20\n", encoding="utf-8")
    config = number.load_config({"question": "How sure?", "min": 0, "max": 100})
    out = io.StringIO()
    summary = offline.run_typed(answers, out, number, config)
    assert summary.method == "number aggregate"
    assert "t1,0," in out.getvalue()  # the configured median, not the mean's 33.3
    out = io.StringIO()
    offline.run_typed(answers, out, number)
    assert "t1,33.3333333333333," in out.getvalue()
