"""Offline merging: engine.quality.offline on CSV files, and `bitesize consensus` around it."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from engine.errors import InvalidError
from engine.quality import offline, truth
from web.cli import cli
from web.cli.consensus import consensus


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def crowd(tmp_path):
    """60 tasks in a shuffled order, 5 answers each from 12 workers, two of whom
    always answer "cat"; gold for every task in gold.csv."""
    rng = np.random.default_rng(7)
    labels = ["cat", "dog", "owl"]
    tasks = [f"task-{n}" for n in rng.permutation(60)]
    truths = {task: labels[rng.integers(3)] for task in tasks}
    lines = ["task,worker,answer"]
    for task in tasks:
        for worker in rng.choice(12, 5, replace=False):
            right = worker >= 2 and rng.random() < 0.8
            answer = truths[task] if right else ("cat" if worker < 2 else labels[rng.integers(3)])
            lines.append(f"{task},w{worker},{answer}")
    answers = write(tmp_path / "answers.csv", "\n".join(lines) + "\n")
    gold = write(tmp_path / "gold.csv", "task,answer\n" + "".join(
        f"{task},{label}\n" for task, label in truths.items()))
    return answers, gold, tasks, truths


def results(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_results_come_one_per_task_in_input_order(crowd):
    answers, _, tasks, truths = crowd
    out = io.StringIO()
    summary = offline.run(answers, out, method="auto")
    rows = results(out.getvalue())
    assert out.getvalue().startswith("task,answer,confidence\n")
    assert [row["task"] for row in rows] == tasks
    assert all(0 < float(row["confidence"]) <= 1 for row in rows)
    assert sum(row["answer"] == truths[row["task"]] for row in rows) >= 50
    assert (summary.tasks, summary.answers, summary.workers, summary.accuracy) == (60, 300, 12,
                                                                                  None)


def test_offline_gives_what_engine_truth_gives(crowd):
    answers, _, _, _ = crowd
    for method in truth.METHODS:
        out = io.StringIO()
        offline.run(answers, out, method=method)
        encoded = truth.encode(offline.read_answers(answers))
        expected = truth.infer(encoded, method)
        assert [row["answer"] for row in results(out.getvalue())] == \
            [encoded.labels[label] for label in expected.label]


def test_gold_is_used_and_the_blind_run_is_scored(crowd, tmp_path):
    answers, gold, tasks, truths = crowd
    out = io.StringIO()
    summary = offline.run(answers, out, gold, method="ds")
    rows = results(out.getvalue())
    assert all(row["answer"] == truths[row["task"]] for row in rows)
    assert {row["confidence"] for row in rows} == {"1.000000"}
    assert summary.gold == 60 and 0.8 < summary.accuracy < 1
    assert "on 60 gold tasks" in summary.line()


def test_headers_blanks_extra_columns_and_duplicates(tmp_path):
    answers = write(tmp_path / "a.csv", " Task ,note,Worker,ANSWER\n"
                    "t1,,w1, Deer\nt1,,w2,Deer \nt1,,w3,Fox\nt1,,w3,Deer\n\n")
    out = io.StringIO()
    summary = offline.run(answers, out, method="mv")
    assert results(out.getvalue()) == [{"task": "t1", "answer": "Deer", "confidence": "1.000000"}]
    assert summary.answers == 3  # w3's later answer replaced the earlier one


@pytest.mark.parametrize(("text", "message"), [
    ("", "a.csv is empty: expected a header line task,worker,answer"),
    ("task,worker,answer\n", "a.csv has a header but no rows"),
    ("task,volunteer,answer\nt1,w1,x\n", "a.csv: line 1: missing column(s) worker"),
    ("task,worker,answer\nt1,w1,x\nt2,,x\n", "a.csv: line 3: worker: empty"),
    ("task,worker,answer\nt1,w1\n", "a.csv: line 2: answer: empty"),
    ('task,worker,answer\nt1,w1,"x\n', "a.csv: line 2: not readable as CSV"),
])
def test_bad_answer_files_name_the_problem(tmp_path, text, message):
    answers = write(tmp_path / "a.csv", text)
    with pytest.raises(InvalidError) as caught:
        offline.run(answers, io.StringIO())
    assert caught.value.message.startswith(message)


def test_bad_gold_and_encoding(tmp_path):
    answers = write(tmp_path / "a.csv", "task,worker,answer\nt1,w1,x\n")
    gold = write(tmp_path / "g.csv", "task,answer\nt1,x\nt1,y\n")
    with pytest.raises(InvalidError, match="line 3: task 't1' has two gold answers"):
        offline.run(answers, io.StringIO(), gold)
    (tmp_path / "latin.csv").write_bytes("task,worker,answer\nt1,w1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidError, match="not UTF-8"):
        offline.run(tmp_path / "latin.csv", io.StringIO())
    with pytest.raises(InvalidError, match="unknown method"):
        offline.merge([("t1", "w1", "x")], method="median")


def test_cli_writes_results_and_a_summary(runner, crowd, tmp_path):
    answers, gold, tasks, _ = crowd
    output = tmp_path / "results.csv"
    result = runner.invoke(cli, args=["consensus", "--type", "classify", "--method", "ds",
                                      "--gold", str(gold), str(answers), "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert [row["task"] for row in results(output.read_text())] == tasks
    summary = result.stderr.strip()
    assert summary.startswith("consensus: 60 tasks, 300 answers, 12 workers, method ds, ")
    assert "% on 60 gold tasks" in summary


def test_cli_prints_to_stdout_by_default(runner, crowd):
    answers, _, tasks, _ = crowd
    result = runner.invoke(cli, args=["consensus", str(answers)])
    assert result.exit_code == 0, result.output
    assert [row["task"] for row in results(result.stdout)] == tasks
    assert "method auto" in result.stderr


def test_cli_refuses_bad_files_and_types(runner, tmp_path):
    bad = write(tmp_path / "bad.csv", "task,who,answer\nt1,w1,x\n")
    result = runner.invoke(cli, args=["consensus", str(bad)])
    assert result.exit_code == 1
    assert "bad.csv: line 1: missing column(s) worker" in result.output
    result = runner.invoke(cli, args=["consensus", "--type", "sculpt", str(bad)])
    assert result.exit_code == 1
    assert "unknown task type 'sculpt'; installed: classify" in result.output


def test_cli_offers_every_method():
    method = next(param for param in consensus.params if param.name == "method")
    assert tuple(method.type.choices) == offline.METHODS == (*truth.METHODS, "live")


# -- every other type: its own aggregate, weighted by agreement -------------------

def test_numbers_merge_by_the_types_aggregate_and_score_against_gold(tmp_path):
    answers = write(tmp_path / "a.csv", "task,worker,answer\n"
                    "t1,w1,10\nt1,w2,11\nt1,w3,400\n"
                    "t2,w1,-3\nt2,w2,-3\nt2,w3,'-3\n")  # an escaped export cell reads back
    gold = write(tmp_path / "g.csv", "task,answer\nt1,10\nt2,-3\n")
    from task_types.number import number

    out = io.StringIO()
    summary = offline.run_typed(answers, out, number, gold_path=gold)
    rows = {row["task"]: row for row in results(out.getvalue())}
    assert float(rows["t1"]["answer"]) == pytest.approx(10.5, abs=0.6)  # 400 is an outlier
    assert float(rows["t2"]["answer"]) == -3 and float(rows["t2"]["confidence"]) > 0.9
    assert (summary.tasks, summary.answers, summary.workers, summary.gold) == (2, 6, 3, 2)
    assert summary.measure == "mean score" and summary.accuracy == pytest.approx(1.0)
    assert "mean score 100.00% on 2 gold tasks" in summary.line()


def test_agreement_weights_the_careful_worker_up(tmp_path):
    from task_types.transcribe import transcribe

    lines = ["task,worker,answer"]
    for n in range(8):  # w3 types nonsense; w1 and w2 agree
        lines += [f"t{n},w1,the quick brown fox {n}", f"t{n},w2,the quick brown fox {n}",
                  f"t{n},w3,zzz yyy {n}"]
    rows = offline.read_typed(write(tmp_path / "a.csv", "\n".join(lines) + "\n"),
                              transcribe, transcribe.offline_config())
    merged = offline.merge_typed(transcribe, transcribe.offline_config(), rows)
    assert merged.reliability["w1"] > 0.8 > 0.4 > merged.reliability["w3"]
    assert merged.results["t3"].value == "the quick brown fox 3"


def test_an_empty_tag_answer_is_a_none_of_these_vote(tmp_path):
    from task_types.tag import tag

    answers = write(tmp_path / "a.csv", 'task,worker,answer\nt1,w1,\nt1,w2,""\nt1,w3,fox\n'
                    "t2,w1,Foxes; deer\nt2,w2,fox\nt2,w3,fox\n")
    out = io.StringIO()
    offline.run_typed(answers, out, tag)
    rows = {row["task"]: row["answer"] for row in results(out.getvalue())}
    assert rows == {"t1": "", "t2": "fox"}


def test_unreadable_typed_answers_name_the_line(tmp_path):
    from task_types.locate import locate
    from task_types.number import number

    bad = write(tmp_path / "a.csv", "task,worker,answer\nt1,w1,12\nt1,w2,twelve\n")
    with pytest.raises(InvalidError, match=r"a.csv: line 3: answer: not a number answer"):
        offline.run_typed(bad, io.StringIO(), number)
    boxes = write(tmp_path / "b.csv", 'task,worker,answer\nt1,w1,"[[0,0,5"\n')
    with pytest.raises(InvalidError, match=r"b.csv: line 2: answer: not a locate answer"):
        offline.run_typed(boxes, io.StringIO(), locate)


def test_cli_merges_boxes_with_a_config_file(runner, tmp_path):
    answers = write(tmp_path / "a.csv", 'task,worker,answer\n'
                    'p1,w1,"[[10,10]]"\np1,w2,"[[12,11]]"\np1,w3,"[]"\n')
    config = write(tmp_path / "c.json", '{"question": "Mark", "shape": "point", "radius": 5}')
    result = runner.invoke(cli, args=["consensus", "--type", "locate", "--config", str(config),
                                      str(answers)])
    assert result.exit_code == 0, result.output
    (row,) = results(result.stdout)
    assert row["task"] == "p1" and len(json.loads(row["answer"])) == 1
    assert "locate aggregate" in result.stderr
    bad = write(tmp_path / "bad.json", '{"shape": "hexagon"}')
    result = runner.invoke(cli, args=["consensus", "--type", "locate", "--config", str(bad),
                                      str(answers)])
    assert result.exit_code == 1 and "not a locate config" in result.output
    result = runner.invoke(cli, args=["consensus", "--type", "locate", "--method", "ds",
                                      str(answers)])
    assert result.exit_code == 2 and "--method is for label types" in result.output


def test_live_merges_the_counted_answers_under_estimates_fitted_on_all(tmp_path):
    """--method live: estimates from every row, each task from its counted rows
    (an export's `counted` column); a task none counts on has no answer."""
    lines = ["task,worker,answer,counted"]
    for n in range(12):
        lines += [f"t{n},w1,cat,True", f"t{n},w2,cat,True", f"t{n},w3,dog,True"]
    lines += ["t0,spam,dog,False", "lone,spam,dog,False"]
    answers = write(tmp_path / "a.csv", "\n".join(lines) + "\n")
    out = io.StringIO()
    summary = offline.run(answers, out, method="live", labels=["cat", "dog", "owl"])
    rows = {row["task"]: row for row in csv.DictReader(io.StringIO(out.getvalue()))}
    assert summary.method == "live" and summary.answers == 38
    assert rows["lone"] == {"task": "lone", "answer": "", "confidence": "0.000000"}
    assert all(rows[f"t{n}"]["answer"] == "cat" for n in range(12))
    # t0's uncounted "dog" is left out of its merge: it merges as every other task
    assert rows["t0"]["confidence"] == rows["t1"]["confidence"]
    everything = io.StringIO()
    offline.run(write(tmp_path / "b.csv", "\n".join(lines).replace(",False", ",True") + "\n"),
                everything, method="live", labels=["cat", "dog", "owl"])
    assert everything.getvalue() != out.getvalue()
    with pytest.raises(InvalidError, match="not listed.*the labels are cat, owl"):
        offline.run(answers, io.StringIO(), method="live", labels=["cat", "owl"])


def test_live_without_a_counted_column_counts_every_row(tmp_path):
    answers = write(tmp_path / "a.csv", "task,worker,answer\nt1,w1,x\nt1,w2,x\nt2,w1,y\n")
    rows, counted = offline.read_counted(answers)
    assert counted == [True, True, True] and rows[2] == ("t2", "w1", "y")
    out = io.StringIO()
    offline.run(answers, out, method="live")
    assert [row["answer"] for row in csv.DictReader(io.StringIO(out.getvalue()))] == ["x", "y"]
