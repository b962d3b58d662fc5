"""The quality check's verdict (bench/quality_check.py): every figure and check of
its report, from what the run observed, and the report as a table.

Kept apart from the run so that the verdicts can be tried on made-up
observations (tests/test_quality_check.py): a check that could never fail
would be noticed there.
"""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from quality_actors import Desk
from quality_scenario import QUARANTINE_BEFORE, Truth

# --- the verdict --------------------------------------------------------------------------

def when(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def label_of(value: Any) -> str | None:
    """A result's or answer's label, whichever way it is written."""
    if isinstance(value, dict):
        return value.get("label")
    return value


def script_verdict(volunteer: int, replies: list[dict], desk: Desk,
                   stats: dict[int, dict]) -> dict[str, Any]:
    """When the script was quarantined, seen from its answer replies and the inbox."""
    row = desk.listed.get(volunteer)
    since_text = row["since"] if row else (stats.get(volunteer) or {}).get("quarantined_at")
    since = when(since_text) if since_text else None
    counted = [r["counted"] for r in replies]
    first_uncounted = next((n for n, c in enumerate(counted, 1) if not c), None)
    out = {"volunteer": volunteer, "answers": len(replies), "listed": row is not None,
           "reasons": row["reasons"] if row else [], "counted_replies": counted,
           "first_uncounted_reply": first_uncounted, "since": since_text,
           "answers_before_quarantine": None, "seconds_to_quarantine": None,
           "inbox_latency_seconds": None, "quarantined_in_time": False}
    if since is None or not replies:
        return out
    before = sum(1 for r in replies if when(r["created_at"]) < since)
    out["answers_before_quarantine"] = before
    out["seconds_to_quarantine"] = (since - when(replies[0]["created_at"])).total_seconds()
    if volunteer in desk.first_seen:
        out["inbox_latency_seconds"] = desk.first_seen[volunteer] - since.timestamp()
    # the answer that tripped it (the last one before `since`) and every later one
    out["quarantined_in_time"] = (0 < before < QUARANTINE_BEFORE
                                  and not any(counted[before - 1:]))
    return out


def honest_majority(answers: list[dict], honest: set[int], tasks: set[int],
                    truth: dict[int, str]) -> tuple[float | None, int]:
    """The honest volunteers' own plain vote per task, a tie shared among its labels
    (the expected accuracy of breaking it at random); and how many tasks it covers."""
    votes: dict[int, Counter] = defaultdict(Counter)
    for a in answers:
        if a["worker"] in honest and a["task"] in tasks:
            votes[a["task"]][label_of(a["answer"])] += 1
    scores = []
    for task, tally in votes.items():
        top = max(tally.values())
        winners = [label for label, n in tally.items() if n == top]
        scores.append(winners.count(truth[task]) / len(winners))
    return (statistics.fmean(scores) if scores else None), len(scores)


def valueless_violations(snap: dict | None) -> list[int]:
    """Tasks with a value although no answer of theirs counts (by the results' own
    `answers`, or by the answers export read after them)."""
    if snap is None:
        return []
    counted = Counter(a["task"] for a in snap["answers"] if a["counted"])
    return [r["task"] for r in snap["results"] if r["value"] is not None
            and (not r["answers"] or not counted[r["task"]])]


def accuracy(pairs: list[tuple[Any, str]]) -> float | None:
    return statistics.fmean(label_of(v) == t for v, t in pairs) if pairs else None


def evaluate(observed: dict[str, Any]) -> dict[str, Any]:
    """Every figure of the report and its checks, from what play() observed."""
    truth: Truth = observed["truth"]
    final, desk = observed["final"], observed["desk"]
    honest, scripts = set(observed["honest"]), list(observed["scripts"])
    ref_of = {r["task"]: r["item_ref"] for r in final["results"]}  # gold is left out
    truth_of = {task: truth.labels[ref] for task, ref in ref_of.items()}
    plain = {task for task, ref in ref_of.items() if ref not in truth.gold}
    gold_answered = {a["task"] for a in final["answers"] if a["item_ref"] in truth.gold}
    answers = [a for a in final["answers"] if a["task"] in plain]
    stats = {s["volunteer"]: s for s in final["volunteers"]} if final.get("volunteers") else {}
    majority, covered = honest_majority(answers, honest, plain, truth_of)
    results = [(r["value"], truth_of[r["task"]]) for r in final["results"]
               if r["task"] in plain]
    per_script = [script_verdict(v, observed["replies"][v], desk, stats) for v in scripts]
    honest_listed = sorted(v for v in desk.listed if v in honest)
    figures = {
        "tasks": len(plain), "gold_tasks": len(gold_answered),
        "honest_volunteers": len(honest), "scripts": len(scripts),
        "answers": len(final["answers"]),
        "honest_answer_accuracy": accuracy([(a["answer"], truth_of[a["task"]])
                                            for a in answers if a["worker"] in honest]),
        "script_answer_accuracy": accuracy([(a["answer"], truth_of[a["task"]])
                                            for a in answers if a["worker"] in set(scripts)]),
        "honest_majority_accuracy": majority, "honest_majority_tasks": covered,
        "results_accuracy": accuracy(results),
        "results_by_method": dict(Counter(r["method"] for r in final["results"]
                                          if r["task"] in plain)),
        "tasks_settled_by_admin": len(desk.settled), "inbox_polls": desk.polls,
        "inbox_rows_by_kind": dict(desk.kinds),
        "valueless_with_value_mid": valueless_violations(observed["mid"]),
        "valueless_with_value_final": valueless_violations(final),
        "mid_snapshot_taken": observed["mid"] is not None,
        "script_answers_counted_final": {v: sum(1 for a in final["answers"]
                                                if a["worker"] == v and a["counted"])
                                         for v in scripts},
        "honest_listed": honest_listed,
        "honest_median_seconds": [stats[v]["median_seconds"] for v in sorted(honest)
                                  if v in stats],
        "setup_seconds": observed["setup_seconds"], "run_seconds": observed["run_seconds"],
        # what was left when the watch ended: held tasks, open ones, jobs
        "final_progress": final.get("progress"),
    }
    checks = {
        "scripts_quarantined_before_10_answers": all(s["quarantined_in_time"]
                                                     for s in per_script),
        "results_at_least_honest_majority": (
            figures["results_accuracy"] is not None and majority is not None
            and figures["results_accuracy"] >= majority),
        "no_value_without_counted_answer": observed["mid"] is not None and not (
            figures["valueless_with_value_mid"] or figures["valueless_with_value_final"]),
        "inbox_listed_both_scripts": all(s["listed"] for s in per_script),
        "no_script_answer_counts_once_blocked": not any(
            figures["script_answers_counted_final"].values()),
        "no_honest_volunteer_quarantined": not honest_listed,
        "every_task_done_in_time": bool(observed["in_time"]),
    }
    return {"project": observed["project"], "sizes": asdict(observed["sizes"]),
            "figures": figures, "scripts": per_script, "checks": checks,
            "passed": all(checks.values())}


# --- the report ---------------------------------------------------------------------------

def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def table(report: dict[str, Any]) -> str:
    f, checks = report["figures"], report["checks"]

    def ok(name: str) -> str:
        return "ok" if checks[name] else "FAILED"

    rows = [("measure", "value", "check"),
            ("tasks (+ gold), honest volunteers, scripts",
             f"{f['tasks']} (+{f['gold_tasks']}), {f['honest_volunteers']}, {f['scripts']}", ""),
            ("honest volunteers' answers right", _share(f["honest_answer_accuracy"]), ""),
            ("scripts' answers right", _share(f["script_answer_accuracy"]), ""),
            (f"honest majority vote ({f['honest_majority_tasks']} tasks)",
             _share(f["honest_majority_accuracy"]), ""),
            ("final results", _share(f["results_accuracy"]),
             ">= honest majority " + ok("results_at_least_honest_majority")),
            ("tasks settled from the inbox", str(f["tasks_settled_by_admin"]), "")]
    for s in report["scripts"]:
        name = f"script {s['volunteer']}"
        rows += [(f"{name}: answers before quarantine ({s['answers']} given)",
                  str(s["answers_before_quarantine"]),
                  f"< {QUARANTINE_BEFORE} " + ("ok" if s["quarantined_in_time"] else "FAILED")),
                 (f"{name}: first reply with counted false", str(s["first_uncounted_reply"]),
                  ""),
                 (f"{name}: time to quarantine", _seconds(s["seconds_to_quarantine"]), ""),
                 (f"{name}: inbox latency (since -> seen)",
                  _seconds(s["inbox_latency_seconds"]),
                  ("listed " + ", ".join(s["reasons"])) if s["listed"] else "NOT LISTED")]
    rows += [("inbox listed both scripts", str(checks["inbox_listed_both_scripts"]),
              ok("inbox_listed_both_scripts")),
             ("values without a counted answer (mid, end)",
              f"{len(f['valueless_with_value_mid'])}, {len(f['valueless_with_value_final'])}",
              "none " + ok("no_value_without_counted_answer")),
             ("scripts' answers counted at the end",
              str(sum(f["script_answers_counted_final"].values())),
              "none " + ok("no_script_answer_counts_once_blocked")),
             ("honest volunteers quarantined", str(len(f["honest_listed"])),
              "none " + ok("no_honest_volunteer_quarantined")),
             ("every task done in time", f"{f['run_seconds']:.1f} s",
              ok("every_task_done_in_time")),
             ("verdict", "PASSED" if report["passed"] else "FAILED", "")]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
