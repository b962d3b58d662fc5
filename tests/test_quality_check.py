"""Issue 13's "Check of this capability", as a test: bench/quality_check.py's
scenario in its small form (30 tasks), black-box over HTTP against the
Procfile's processes (release, web, worker) on a temporary instance folder.

The scenario runs once for the module; each test asserts one pass condition
on its report. No timing thresholds: the seconds to quarantine and the inbox's
latency are reported by the benchmark, not judged here. The helpers that turn
observations into verdicts are also checked on made-up observations, so that a
verdict that could never fail would be noticed.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH_PATH = Path(__file__).resolve().parent.parent / "bench" / "quality_check.py"

@pytest.fixture(scope="module")
def bench():
    """bench/ is run as scripts, not imported as a package: load it from its path."""
    spec = importlib.util.spec_from_file_location("bench_quality_check", BENCH_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def report(bench, tmp_path_factory):
    """The small form of the check, run once: SQLite and the embedded Redis in a
    temporary instance folder, whatever BITESIZE_TEST_* name."""
    return bench.run_check(bench.QUICK, tmp_path_factory.mktemp("quality") / "instance")


@pytest.mark.e2e
def test_each_script_is_quarantined_before_its_tenth_answer(report):
    assert len(report["scripts"]) == 2
    for script in report["scripts"]:
        before = script["answers_before_quarantine"]
        assert before is not None and 0 < before < 10, script
        # its reply to the answer that tripped the quarantine already says so
        assert script["counted_replies"][before - 1] is False, script
        assert script["first_uncounted_reply"] is not None
        assert script["first_uncounted_reply"] <= before, script


@pytest.mark.e2e
def test_no_answer_of_a_script_counts_after_its_quarantine(report):
    """Not even an answer in flight while the admin blocks the script: it used to
    come back counted and stay so, about one run in eight (the engine side is
    tests/engine/test_quarantine.py's answer-during-rebuild test)."""
    for script in report["scripts"]:
        before = script["answers_before_quarantine"]
        assert not any(script["counted_replies"][before - 1:]), script
        assert script["quarantined_in_time"], script
    assert not any(report["figures"]["script_answers_counted_final"].values())
    assert report["checks"]["scripts_quarantined_before_10_answers"]
    assert report["checks"]["no_script_answer_counts_once_blocked"]


@pytest.mark.e2e
def test_the_inbox_listed_both_scripts_and_no_honest_volunteer(report):
    for script in report["scripts"]:
        assert script["listed"], script
        assert "too_fast" in script["reasons"], script
        assert script["inbox_latency_seconds"] is not None
    assert report["figures"]["honest_listed"] == []
    assert report["figures"]["inbox_rows_by_kind"]["volunteer"] == 2
    assert report["checks"]["inbox_listed_both_scripts"]


@pytest.mark.e2e
def test_no_task_without_a_counted_answer_has_a_value(report):
    figures = report["figures"]
    assert figures["mid_snapshot_taken"], "the scripts were never both blocked"
    assert figures["valueless_with_value_mid"] == []
    assert figures["valueless_with_value_final"] == []
    assert report["checks"]["no_value_without_counted_answer"]


@pytest.mark.e2e
def test_every_task_is_done_and_the_honest_volunteers_are_human(report):
    figures = report["figures"]
    assert report["checks"]["every_task_done_in_time"], figures["final_progress"]
    assert figures["final_progress"]["held"] == 0
    assert figures["tasks"] == 30 and figures["gold_tasks"] == 6
    assert figures["honest_majority_tasks"] == 30
    # the honest volunteers, as far as the quality job timed them, were slower
    # than the classify type's min_seconds (1 s)
    assert all(seconds > 1.0 for seconds in figures["honest_median_seconds"] if seconds)
    assert 0.7 < figures["honest_answer_accuracy"] < 0.97


@pytest.mark.e2e
def test_results_are_at_least_as_accurate_as_the_honest_majority(report):
    """The results use the honest answers at least as well as their own vote.
    The first quality estimate (on a handful of answers) used to overturn plain
    majorities: 73-83% against 95-97% in about half of the runs
    (tests/engine/test_truth.py has the case)."""
    figures = report["figures"]
    # One task in the quick run's 30 is the scenario's resolution: an honest tie
    # the vote scores as half right, or a newcomer capped by trust against a
    # volunteer gold established, moves a result by it. The inversion this
    # guards against cost 4 to 7 tasks.
    one_task = 1 / figures["tasks"]
    assert figures["results_accuracy"] >= figures["honest_majority_accuracy"] - one_task, \
        figures


@pytest.mark.e2e
def test_the_report_prints_and_serialises(bench, report):
    table = bench.table(report)
    for line in ("final results", "answers before quarantine", "time to quarantine",
                 "inbox latency", "verdict"):
        assert line in table
    again = json.loads(json.dumps(report))
    assert set(again["checks"]) == {
        "scripts_quarantined_before_10_answers", "results_at_least_honest_majority",
        "no_value_without_counted_answer", "inbox_listed_both_scripts",
        "no_script_answer_counts_once_blocked", "no_honest_volunteer_quarantined",
        "every_task_done_in_time"}
    assert again["figures"]["tracebacks_in_logs"] == {"worker": 0, "web": 0}


# --- the verdicts on made-up observations --------------------------------------------------

def _reply(counted: bool, second: int) -> dict:
    return {"task": second, "ref": f"item-{second}", "label": "deer", "counted": counted,
            "created_at": f"2026-01-01T10:00:{second:02d}"}


def _desk(bench, volunteer: int, since: str):
    desk = bench.Desk()
    desk.listed[volunteer] = {"since": since, "reasons": ["too_fast"]}
    desk.first_seen[volunteer] = bench.when(since).timestamp() + 0.5
    return desk


def test_a_script_counted_again_after_its_quarantine_fails_the_verdict(bench):
    since = "2026-01-01T10:00:04.500000+00:00"
    desk = _desk(bench, 7, since)
    good = [_reply(n < 4, n) for n in range(8)]  # the 5th answer tripped it
    verdict = bench.script_verdict(7, good, desk, {})
    assert verdict["answers_before_quarantine"] == 5
    assert verdict["first_uncounted_reply"] == 5
    assert verdict["inbox_latency_seconds"] == pytest.approx(0.5)
    assert verdict["seconds_to_quarantine"] == pytest.approx(4.5)
    assert verdict["quarantined_in_time"]
    slipped = [*good[:6], _reply(True, 6), good[7]]
    assert not bench.script_verdict(7, slipped, desk, {})["quarantined_in_time"]


def test_a_script_quarantined_at_its_tenth_answer_is_too_late(bench):
    desk = _desk(bench, 7, "2026-01-01T10:00:09.500000+00:00")
    replies = [_reply(n < 9, n) for n in range(12)]
    verdict = bench.script_verdict(7, replies, desk, {})
    assert verdict["answers_before_quarantine"] == 10
    assert not verdict["quarantined_in_time"]
    never = bench.script_verdict(8, replies, bench.Desk(), {})
    assert never["listed"] is False and never["quarantined_in_time"] is False


def test_the_honest_majority_shares_a_tie_and_ignores_scripts(bench):
    answers = [{"task": 1, "worker": 1, "answer": {"label": "deer"}},
               {"task": 1, "worker": 2, "answer": {"label": "fox"}},
               {"task": 1, "worker": 9, "answer": {"label": "fox"}},  # a script's
               {"task": 2, "worker": 1, "answer": {"label": "fox"}},
               {"task": 2, "worker": 2, "answer": {"label": "fox"}}]
    accuracy, tasks = bench.honest_majority(answers, {1, 2}, {1, 2}, {1: "deer", 2: "fox"})
    assert tasks == 2
    assert accuracy == pytest.approx((0.5 + 1.0) / 2)


def test_a_value_with_no_counted_answer_is_found(bench):
    snap = {"results": [{"task": 1, "value": "deer", "answers": 2},
                        {"task": 2, "value": "fox", "answers": 1},
                        {"task": 3, "value": None, "answers": 0},
                        {"task": 4, "value": "fox", "answers": 0}],
            "answers": [{"task": 1, "counted": True}, {"task": 2, "counted": False}]}
    assert bench.valueless_violations(snap) == [2, 4]
    assert bench.valueless_violations(None) == []
