"""The quality desk, checked from outside: issue 13's "Check of this capability".

    python bench/quality_check.py            # 150 tasks, 8 honest volunteers, 2 scripts
    python bench/quality_check.py --quick    # 30 tasks: the form tests/test_quality_check.py runs
    python -m bench.quality_check --quick    # the same, from the repository's root

A black-box run over HTTP against the Procfile's processes. The Procfile's own
lines run in bash on a temporary instance folder (`release`: the schema; `web`:
gunicorn on a free port; `worker`: the RQ worker), with SQLite and the embedded
Redis in that folder unless --database-url / --redis-url name others. The
admin's token comes from `bitesize users create --role admin`; from then on
everything is an HTTP call to /api/v1/.

The scenario: a classify project with three labels, gold items and a known
truth for every item, made over HTTP (`POST /projects`, the items as JSON and
the gold items as a CSV through the jobs API), `quality: {"quarantine": true}`
set explicitly, 3 to 5 answers per task. Honest volunteers answer about 85% of
tasks right at a human pace (each answer more than the classify type's 1 s
`min_seconds` after its handout; they wait in threads, side by side). Two
scripted volunteers, started among them, give one label as fast as they can.
An admin acts only on what `GET /inbox` lists: a quarantined volunteer is
blocked in the project (`POST .../volunteers/<v>/block`, with a reason), a
contested task is settled with the known truth (its picture is read from the
review queue).

Passes when each script is quarantined before it has given 10 answers (the
answers it gave before the inbox's `since`, and the answer replies: the one that
tripped the quarantine and every later one say `"counted": false`), the final
results are at least as accurate as the honest volunteers' own majority vote on
the same tasks, no task without a counted answer has a value (checked right
after both scripts are blocked, and at the end), and the inbox listed both
scripts. Also checked: no answer of a blocked script counts at the end, no
honest volunteer was quarantined, and every task was done before the
deadline. Reported: the accuracies, the answers before quarantine, the seconds
to quarantine and the inbox's latency (when the admin's poll first saw the
volunteer, after its `since`).

Table to stdout, figures to bench/results/quality_check.json.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

# The parts live in sibling modules (quality_scenario, quality_processes,
# quality_actors, quality_verdict). Run as a script, bench/ is already on
# sys.path; loaded from its path (tests/test_quality_check.py) or run with -m,
# it is not, so put it there (and the repository, for engine) before importing them.
BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for folder in (BENCH_DIR, ROOT):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from quality_actors import (  # noqa: E402
    Api,
    Desk,
    admin_desk,
    create_project,
    honest_volunteer,
    new_volunteer,
    scripted_volunteer,
)
from quality_processes import deployment  # noqa: E402
from quality_scenario import FULL, QUICK, Sizes, make_truth  # noqa: E402
from quality_verdict import (  # noqa: E402
    evaluate,
    honest_majority,
    script_verdict,
    table,
    valueless_violations,
    when,
)
from reporting import machine, write_report  # noqa: E402

__all__ = ["FULL", "QUICK", "Desk", "Sizes", "evaluate", "honest_majority", "main", "play",
           "run_check", "script_verdict", "table", "valueless_violations", "when"]

RESULTS_PATH = BENCH_DIR / "results" / "quality_check.json"


# --- the run ------------------------------------------------------------------------------

def snapshot(admin: Api, project_id: int) -> dict[str, Any]:
    """Results first, then answers: an answer only ever starts counting later, so a
    value in these results with no counted answer in the later answers is real."""
    results = admin.json("GET", f"/projects/{project_id}/results", params={"format": "json"})
    answers = admin.json("GET", f"/projects/{project_id}/answers", params={"format": "json"})
    return {"results": results, "answers": answers, "at": time.time()}


def finished(admin: Api, project_id: int) -> bool:
    progress = admin.json("GET", f"/projects/{project_id}")["progress"]
    return progress["open"] == 0 and progress["contested"] == 0 and \
        progress["jobs_running"] == 0


def watch(admin: Api, project_id: int, scripts: list[int], script_runs: list, desk: Desk,
          deadline: float) -> tuple[dict | None, bool]:
    """Wait until every task is done and the scripts have stopped (and were blocked,
    or 5 s more went by); the snapshot taken once both were blocked, and whether
    it all happened before the deadline."""
    mid, done_since = None, None
    while time.monotonic() < deadline:
        blocked = all(v in desk.blocked for v in scripts)
        scripts_done = all(run.done() for run in script_runs)
        if mid is None and blocked and scripts_done:
            mid = snapshot(admin, project_id)
        if scripts_done and finished(admin, project_id):
            done_since = done_since or time.monotonic()
            if blocked or time.monotonic() - done_since > 5:
                return mid, True
        else:
            done_since = None
        time.sleep(0.5)
    return mid, False


def play(base: str, token: str, sizes: Sizes) -> dict[str, Any]:
    """The scenario against running processes; everything observed, for evaluate()."""
    with ExitStack() as sessions:
        admin = sessions.enter_context(closing(Api(base, token)))
        truth = make_truth(sizes)
        began = time.monotonic()
        project_id = create_project(admin, sizes, truth)
        honest = [new_volunteer(base, sessions) for _ in range(sizes.honest)]
        scripts = [new_volunteer(base, sessions) for _ in range(sizes.scripts)]
        # the desk's own session: an Api's session is not shared between threads
        desk_api = sessions.enter_context(closing(Api(base, token)))
        setup_seconds = time.monotonic() - began
        stop_event, desk = threading.Event(), Desk()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=sizes.honest + sizes.scripts + 1) as pool:
            honest_runs = [pool.submit(honest_volunteer, api, project_id, truth, sizes,
                                       sizes.seed * 100 + n, stop_event)
                           for n, (_, api) in enumerate(honest)]
            # the scripts start among the honest volunteers, a little apart
            script_runs = [pool.submit(scripted_volunteer, api, project_id, 0.5 + 1.5 * n,
                                       stop_event) for n, (_, api) in enumerate(scripts)]
            desk_run = pool.submit(admin_desk, desk_api, project_id, truth, sizes, desk,
                                   stop_event)
            try:
                mid, in_time = watch(admin, project_id, [v for v, _ in scripts], script_runs,
                                     desk, started + sizes.deadline_seconds)
            finally:
                stop_event.set()
            replies = {v: run.result() for (v, _), run in zip(
                honest + scripts, honest_runs + script_runs, strict=True)}
            desk_run.result()
        run_seconds = time.monotonic() - started
        final = snapshot(admin, project_id)
        final["volunteers"] = admin.json("GET",
                                         f"/projects/{project_id}/volunteers")["volunteers"]
        final["inbox"] = admin.json("GET", "/inbox", params={"project": project_id})
        final["progress"] = admin.json("GET", f"/projects/{project_id}")["progress"]
    return {"project": project_id, "truth": truth, "sizes": sizes,
            "honest": [v for v, _ in honest], "scripts": [v for v, _ in scripts],
            "replies": replies, "desk": desk, "mid": mid, "final": final,
            "in_time": in_time, "setup_seconds": setup_seconds, "run_seconds": run_seconds}

def run_check(sizes: Sizes, instance: Path, redis_url: str = "",
              database_url: str = "") -> dict[str, Any]:
    """Start the processes on `instance`, play the scenario, judge it."""
    with deployment(instance, redis_url, database_url) as live:
        try:
            observed = play(live.base, live.admin_token, sizes)
        except RuntimeError as exc:  # what the processes said is the useful part
            tails = "\n".join(f"--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}"
                               for log in live.logs)
            raise RuntimeError(f"{exc}\n{tails}") from exc
        tracebacks = {log.stem: log.read_text(errors="replace").count("Traceback")
                      for log in live.logs}
    report = evaluate(observed)
    report["figures"]["tracebacks_in_logs"] = tracebacks
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="30 tasks: the small form the test runs")
    parser.add_argument("--redis-url", default="",
                        help="a spare Redis database (it is FLUSHED); default: embedded Redis")
    parser.add_argument("--database-url", default="",
                        help="a spare SQLAlchemy database; default: SQLite in the instance")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bitesize-quality-") as folder:
        report = run_check(QUICK if args.quick else FULL, Path(folder) / "instance",
                           args.redis_url, args.database_url)
    report["machine"] = {**machine(), "quick": args.quick}
    print(table(report))
    write_report(args.output, report)
    print(f"\nwritten to {args.output}")
    return report


if __name__ == "__main__":
    raise SystemExit(0 if main()["passed"] else 1)
