"""Rebuild benchmark: how long Redis takes to come back for a big project.

    python bench/rebuild.py              # 1,000,000 open tasks, a few minutes with set-up
    python bench/rebuild.py --tasks 50000

Issue 17's target: after an empty Redis, a project's dispatch state is back
within 10 s per million open tasks. The project is made through the engine
(one job), then its tasks are added to SQL in bulk (as an import would leave
them, a third with one counted answer), Redis is emptied and the project is
rebuilt from SQL (engine.dispatch.rebuild.rebuild_project, what `bitesize
queue rebuild` and the hot path's automatic rebuild run). Prints a table and
writes bench/results/rebuild.json. Embedded defaults (SQLite and the
embedded Redis) unless --database-url / --redis-url name servers.
"""
from __future__ import annotations

import argparse
import sys
import time
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
from engine.dispatch.dispatcher import keys  # noqa: E402
from engine.dispatch.rebuild import rebuild_project  # noqa: E402
from engine.identity import create_volunteer  # noqa: E402
from engine.services import Services  # noqa: E402
from engine.store.models import Answer, Item, Task, utcnow  # noqa: E402

RESULTS_PATH = BENCH_DIR / "results" / "rebuild.json"
TARGET_SECONDS_PER_MILLION = 10.0
BATCH = 20_000


def fill(services: Services, tasks: int) -> int:
    """A project with `tasks` open tasks in SQL, a third with one counted answer."""
    project_id = prepare_http_project(services, 1)
    with services.db.session() as session:
        job_id, = session.execute(select(Item.job_id).where(Item.project_id == project_id)).one()
    volunteers = [create_volunteer(services)[0] for _ in range(50)]
    now = utcnow()
    for first in range(2, tasks + 1, BATCH):
        numbers = range(first, min(first + BATCH, tasks + 1))
        with services.db.connection() as conn:
            items = conn.execute(insert(Item).returning(Item.id), [
                {"project_id": project_id, "job_id": job_id, "seq": n, "ref": f"{n:08d}",
                 "data": payload(n)} for n in numbers]).scalars().all()
            task_ids = conn.execute(insert(Task).returning(Task.id), [
                {"project_id": project_id, "item_id": item, "payload": payload(n),
                 "is_gold": False, "state": "open", "need": 3, "priority": 0,
                 "created_at": now} for n, item in zip(numbers, items, strict=True)]
            ).scalars().all()
            conn.execute(insert(Answer), [
                {"task_id": task, "project_id": project_id,
                 "volunteer_id": volunteers[task % len(volunteers)],
                 "value": {"label": "penguin"}, "lease": None, "counted": True,
                 "created_at": now} for task in task_ids[::3]])
    return project_id


def run(tasks: int, settings: Settings) -> dict:
    services = Services(settings)
    try:
        began = time.perf_counter()
        project_id = fill(services, tasks)
        filled = time.perf_counter() - began
        services.redis.flushdb()
        began = time.perf_counter()
        loaded = rebuild_project(services, project_id)
        seconds = time.perf_counter() - began
        pool = services.redis.zcard(keys(project_id)["pool"])
        memory = services.redis.info("memory")["used_memory"]
    finally:
        services.close()
    per_million = seconds / tasks * 1_000_000
    return {"tasks": tasks, "loaded": loaded, "pooled": pool, "fill_seconds": filled,
            "rebuild_seconds": seconds, "seconds_per_million": per_million,
            "redis_used_memory": memory, "target_seconds_per_million": TARGET_SECONDS_PER_MILLION,
            "met": per_million <= TARGET_SECONDS_PER_MILLION}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    # its own folder, and nothing left of it after (the embedded Redis stopped)
    with temporary_instance("bitesize-rebuild-", args.database_url, args.redis_url) as settings:
        result = run(args.tasks, settings)
    backend = settings.database_url.split(":", 1)[0]
    print(format_table([("r", *row) for row in [
        (f"open tasks in SQL ({backend})", f"{result['tasks']:,}", "", ""),
        ("tasks loaded | pooled", f"{result['loaded']:,} | {result['pooled']:,}", "", ""),
        ("rebuild, seconds", f"{result['rebuild_seconds']:.1f}", "", ""),
        ("rebuild, seconds per million open tasks", f"{result['seconds_per_million']:.1f}",
         f"<= {TARGET_SECONDS_PER_MILLION:.0f}", "met" if result["met"] else "MISSED"),
        ("set-up (bulk insert), seconds", f"{result['fill_seconds']:.1f}", "", ""),
    ]]))
    write_report(args.output, {"machine": machine(), "database": backend, **result})
    print(f"every figure in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
