"""Moderation benchmark: what a quarantine costs everyone else on a big project.

    python bench/moderation.py                 # 100,000 tasks, a volunteer with 10,000 answers
    python bench/moderation.py --tasks 20000 --answers 2000

Quarantining (or blocking, clearing, unblocking) a volunteer takes their answers
out of the count and merges the tasks they touched again; quarantines also fire
by themselves from the answer path. It used to run as one write transaction and
then rebuild the project's whole dispatch state, holding every other
volunteer's calls while it read SQL; now it re-merges a chunk per transaction
and moves the touched tasks' counts in Redis (engine.quality.remerging).

The project is made through the engine, then filled in bulk: `--answers` tasks
retired on three agreeing counted answers, one of them the quarantined
volunteer's, the rest open. Its dispatch state is built, then the volunteer is
quarantined while another volunteer asks for a task (and gives it back) in a
loop, 5 ms apart (in the same process: back to back, its calls took most of the
GIL and the quarantine ran 7 times slower on PostgreSQL). Reported: the
quarantine's seconds, its write transactions (count, longest), the other
volunteer's next_task latencies during it, and the tasks it reopened.
Embedded defaults (SQLite and the embedded Redis) unless --database-url /
--redis-url name servers. Prints a table and writes bench/results/moderation.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import insert, select

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from bench_instance import temporary_instance  # noqa: E402
from dispatch_common import format_table  # noqa: E402
from dispatch_http import prepare_http_project  # noqa: E402
from dispatch_pool import payload  # noqa: E402
from reporting import machine, write_report  # noqa: E402

from engine.config import Settings  # noqa: E402
from engine.dispatch.rebuild import rebuild_project  # noqa: E402
from engine.identity import Identity, create_volunteer  # noqa: E402
from engine.quality.moderation import quarantine  # noqa: E402
from engine.services import Services  # noqa: E402
from engine.store.models import Answer, Item, Result, Task, utcnow  # noqa: E402
from engine.volunteering import next_task, skip_task  # noqa: E402

RESULTS_PATH = BENCH_DIR / "results" / "moderation.json"
BATCH = 10_000
PAUSE = 0.005  # seconds between the other volunteer's calls


def fill(services: Services, tasks: int, answers: int) -> tuple[int, int]:
    """(project, the volunteer to quarantine): `answers` retired tasks, each on
    three counted "penguin" answers, one of them that volunteer's; the rest open."""
    project_id = prepare_http_project(services, 1)
    with services.db.session() as session:
        job_id, = session.execute(select(Item.job_id).where(Item.project_id == project_id)).one()
    target = create_volunteer(services)[0]
    others = [create_volunteer(services)[0] for _ in range(20)]
    now = utcnow()
    for first in range(2, tasks + 2, BATCH):
        numbers = range(first, min(first + BATCH, tasks + 2))
        with services.db.connection() as conn:
            items = conn.execute(insert(Item).returning(Item.id), [
                {"project_id": project_id, "job_id": job_id, "seq": n, "ref": f"{n:08d}",
                 "data": payload(n)} for n in numbers]).scalars().all()
            retired = [n - 2 < answers for n in numbers]
            task_ids = conn.execute(insert(Task).returning(Task.id), [
                {"project_id": project_id, "item_id": item, "payload": payload(n),
                 "is_gold": False, "state": "retired" if done else "open", "need": 3,
                 "priority": 0, "created_at": now, "retired_at": now if done else None}
                for n, item, done in zip(numbers, items, retired, strict=True)]
            ).scalars().all()
            closed = [task for task, done in zip(task_ids, retired, strict=True) if done]
            if not closed:
                continue
            conn.execute(insert(Answer), [
                {"task_id": task, "project_id": project_id, "volunteer_id": who,
                 "value": {"label": "penguin"}, "lease": None, "counted": True,
                 "created_at": now}
                for task in closed for who in (target, *_two(others, task))])
            conn.execute(insert(Result), [
                {"task_id": task, "project_id": project_id, "value": "penguin",
                 "confidence": 0.99, "answers": 3, "support": {"penguin": 1.0},
                 "method": "posterior", "updated_at": now} for task in closed])
    return project_id, target


def _two(others: list[int], task: int) -> tuple[int, int]:
    return others[task % len(others)], others[(task + 1) % len(others)]


@contextmanager
def timed_writes(services: Services, spans: list[float]):
    """Every write transaction this thread opens, timed from begin to commit."""
    original, mine = services.db.writing, threading.get_ident()

    @contextmanager
    def writing():
        began = time.perf_counter()
        with original() as session:
            yield session
        if threading.get_ident() == mine:
            spans.append(time.perf_counter() - began)

    services.db.writing = writing
    try:
        yield
    finally:
        services.db.writing = original


def poll(services: Services, project_id: int, stop: threading.Event,
         latencies: list[float], failures: list[BaseException]) -> None:
    """Another volunteer: ask for a task, give it back, again."""
    try:
        other = Identity("volunteer", create_volunteer(services)[0])
        while not stop.is_set():
            began = time.perf_counter()
            task = next_task(services, other, project_id)
            latencies.append(time.perf_counter() - began)
            if task is not None:
                skip_task(services, other, task.lease)
            time.sleep(PAUSE)  # not starving the quarantine of this process's GIL
    except BaseException as exc:  # the figures would be wrong: the run says so
        failures.append(exc)


def run(tasks: int, answers: int, settings: Settings) -> dict:
    services = Services(settings)
    try:
        began = time.perf_counter()
        project_id, target = fill(services, tasks, answers)
        rebuild_project(services, project_id)
        filled = time.perf_counter() - began
        stop, latencies, spans, failures = threading.Event(), [], [], []
        poller = threading.Thread(target=poll, args=(services, project_id, stop, latencies,
                                                     failures))
        poller.start()
        time.sleep(1.0)  # its steady state first
        before = len(latencies)
        with timed_writes(services, spans):
            began = time.perf_counter()
            quarantine(services, project_id, target, ["manual"])
            seconds = time.perf_counter() - began
        during = latencies[before:]
        stop.set()
        poller.join()
        if failures:
            raise RuntimeError("the other volunteer's calls failed") from failures[0]
        with services.db.session() as session:
            reopened = session.scalar(select(Task.id).where(
                Task.project_id == project_id, Task.state == "open",
                Task.id.in_(select(Answer.task_id).where(Answer.volunteer_id == target)))
                .limit(1)) is not None
    finally:
        services.close()
    return {"tasks": tasks, "answers": answers, "fill_seconds": filled,
            "quarantine_seconds": seconds, "write_transactions": len(spans),
            "longest_write_seconds": max(spans, default=0.0),
            "other_next_task_calls": len(during),
            "other_next_task_median_ms": 1000 * statistics.median(during) if during else None,
            "other_next_task_max_ms": 1000 * max(during) if during else None,
            "touched_tasks_reopened": reopened}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--answers", type=int, default=10_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    if not 0 < args.answers <= args.tasks:
        parser.error("--answers must be between 1 and --tasks")
    # its own folder, and nothing left of it after (the embedded Redis stopped)
    with temporary_instance("bitesize-moderation-", args.database_url, args.redis_url) as settings:
        result = run(args.tasks, args.answers, settings)
    backend = settings.database_url.split(":", 1)[0]
    print(format_table([("m", *row) for row in [
        (f"tasks ({backend}) | retired on the volunteer's answers",
         f"{result['tasks']:,} | {result['answers']:,}", "", ""),
        ("quarantine, seconds", f"{result['quarantine_seconds']:.2f}", "", ""),
        ("write transactions | longest, seconds",
         f"{result['write_transactions']} | {result['longest_write_seconds']:.2f}", "", ""),
        ("another volunteer's next_task during it: calls | median | max, ms",
         f"{result['other_next_task_calls']} | {result['other_next_task_median_ms'] or 0:.1f}"
         f" | {result['other_next_task_max_ms'] or 0:.0f}", "", ""),
        ("the touched tasks reopened", "yes" if result["touched_tasks_reopened"] else "no",
         "", ""),
        ("set-up (bulk insert, rebuild), seconds", f"{result['fill_seconds']:.1f}", "", ""),
    ]]))
    write_report(args.output, {"machine": machine(), "database": backend, **result})
    print(f"every figure in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
