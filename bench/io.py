"""Jobs in, results out: how fast items become tasks, and what an export costs.

    python bench/io.py            # 100,000 items, 100,000 CSV rows, 100k and 1M answers
    python bench/io.py --quick    # 10,000 / 10,000 / 10k and 100k: a smoke run

(a) Ingest: 100,000 JSON items through the real import path (the request's
    validation, the stored upload, the split job's batched Core inserts of
    items and tasks, the tasks pooled in Redis), in tasks per second, next to a
    raw SQLAlchemy Core bulk insert of the same item and task rows (same batch
    size, no validation, no Redis) in the same run. The same for a 100,000-row
    CSV when the CSV importer is installed.
(b) Export: the raw answers CSV of a project with 100,000 and with 1,000,000
    answers, each streamed to /dev/null by a fresh process: rows per second and
    the process's peak memory (its VmHWM), which must stay flat as rows grow.

Targets (issue 6): ingest at >= 25% of the raw insert rate; export peak memory
within 1.2x between the two sizes. Table to stdout, figures to
bench/results/io.json. SQLite and the embedded Redis by default; --database-url
and --redis-url (a spare database: it is flushed) for PostgreSQL and a server.
"""
from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import delete, insert, select

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
# bench/ (for reporting.py) is on sys.path when this runs as a script, not when it
# is loaded from its path (tests/test_bench_io_smoke.py).
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(ROOT))

from bench_instance import temporary_services  # noqa: E402
from reporting import machine, write_report  # noqa: E402

from engine.identity import Identity, create_user  # noqa: E402
from engine.intake import jobs as intake  # noqa: E402
from engine.projects import create_project  # noqa: E402
from engine.services import Services  # noqa: E402
from engine.store import migrate  # noqa: E402
from engine.store.models import Answer, Item, Job, Organisation, Project, Task, Volunteer  # noqa: E402

RESULTS_PATH = BENCH_DIR / "results" / "io.json"
CONFIG = {"question": "Which animal?", "labels": ["deer", "fox", "badger", "nothing"]}
BATCH = intake.BATCH


@contextmanager
def bench_services(database_url: str, redis_url: str):
    """Services on a temporary instance (bench_instance: nothing is left
    behind), on an empty schema."""
    with temporary_services("bitesize-io-", database_url, redis_url) as services:
        if database_url:
            _drop_all(services)
        migrate.upgrade(services.db, services.settings.instance_path)
        services.redis.flushdb()
        yield services


def _drop_all(services: Services) -> None:
    from engine.store.models import Base

    with services.db.connection() as conn:
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


def admin(services: Services) -> Identity:
    user_id, _ = create_user(services, "Bench Charity", "admin", "bench")
    with services.db.session() as session:
        org = session.scalar(select(Organisation.id).where(Organisation.name == "Bench Charity"))
    return Identity("user", user_id, org, "admin")


def new_project(services: Services, who: Identity, name: str) -> int:
    view = create_project(services, who, {"name": name, "task_type": "classify",
                                          "config": CONFIG, "min_answers": 3,
                                          "max_answers": 5, "confidence": 0.9})
    return view.project.id


def items(count: int) -> list[dict]:
    return [{"text": f"Field note {n}: a shape moved near the hedge.", "id": f"note-{n}"}
            for n in range(count)]


# --- (a) ingest -----------------------------------------------------------------------------

def ingest_json(services: Services, who: Identity, count: int) -> dict:
    """The whole import path, request to pooled tasks, without the RQ hop."""
    project = new_project(services, who, "ingest json")
    data = items(count)
    started = time.perf_counter()
    job = intake.create_job(services, who, project, items=data)
    queued = time.perf_counter()
    done = intake.run_job(services, job.id)
    finished = time.perf_counter()
    assert done.tasks_made == count, done.tasks_made
    return {"tasks": count, "seconds": finished - started, "request_seconds": queued - started,
            "tasks_per_s": count / (finished - started)}


def ingest_csv(services: Services, who: Identity, count: int) -> dict | None:
    """The CSV importer, if this version has one (issue 6); None otherwise."""
    create = getattr(intake, "create_job", None)
    project = new_project(services, who, "ingest csv")
    text = "id,text\n" + "".join(f"note-{n},Field note {n}: a shape moved near the hedge.\n"
                                 for n in range(count))
    started = time.perf_counter()
    try:
        job = create(services, who, project, upload=io.BytesIO(text.encode()),
                     filename="notes.csv")
    except Exception as exc:  # noqa: BLE001 - an old version without CSV: report, go on
        return {"error": f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"}
    done = intake.run_job(services, job.id)
    finished = time.perf_counter()
    if done.tasks_made != count:
        return {"error": f"made {done.tasks_made} tasks of {count}: {done.problems[:3]}"}
    seconds = finished - started
    return {"tasks": count, "seconds": seconds, "tasks_per_s": count / seconds}


def raw_insert(services: Services, who: Identity, count: int) -> dict:
    """The same item and task rows by plain Core executemany, in batches of the
    import's size, one transaction each: the ceiling an importer is held to."""
    project = new_project(services, who, "raw insert")
    with services.db.session() as session:
        job = Job(project_id=project, kind="items", state="done", problems=[])
        session.add(job)
        session.flush()
        job_id = job.id
    data = items(count)
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        chunk = data[start:start + BATCH]
        with services.db.session() as session:
            item_ids = session.scalars(insert(Item).returning(
                Item.id, sort_by_parameter_order=True), [
                {"project_id": project, "job_id": job_id, "seq": start + n, "ref": item["id"],
                 "data": item} for n, item in enumerate(chunk)]).all()
            session.execute(insert(Task), [
                {"project_id": project, "item_id": item_id, "payload": {"text": item["text"]},
                 "gold": None, "is_gold": False, "state": "open", "need": 3, "priority": 0}
                for item_id, item in zip(item_ids, chunk, strict=True)])
    seconds = time.perf_counter() - started
    return {"tasks": count, "rows": 2 * count, "seconds": seconds, "tasks_per_s": count / seconds}


def plain_insert(services: Services, count: int) -> dict:
    """Context only: plain three-column rows by Core executemany, no JSON and no
    RETURNING, in one transaction (what DESIGN.md's budget table measured)."""
    from sqlalchemy import Column, Integer, MetaData, String, Table

    table = Table("bench_plain", MetaData(), Column("id", Integer, primary_key=True),
                  Column("seq", Integer), Column("ref", String(200)))
    with services.db.connection() as conn:
        table.drop(conn, checkfirst=True)
        table.create(conn)
    rows = [{"seq": n, "ref": f"note-{n}"} for n in range(count)]
    started = time.perf_counter()
    with services.db.connection() as conn:
        conn.execute(insert(table), rows)
    seconds = time.perf_counter() - started
    with services.db.connection() as conn:
        table.drop(conn)
    return {"rows": count, "seconds": seconds, "rows_per_s": count / seconds}


# --- (b) export -----------------------------------------------------------------------------

def fill_answers(services: Services, who: Identity, count: int, per_task: int = 5) -> int:
    """A project with ``count`` answers (``per_task`` per task), inserted raw."""
    project = new_project(services, who, f"export {count}")
    tasks = count // per_task
    with services.db.session() as session:
        job = Job(project_id=project, kind="items", state="done", problems=[])
        session.add(job)
        session.flush()
        job_id = job.id
        volunteers = session.scalars(insert(Volunteer).returning(Volunteer.id), [
            {"token_hash": f"{project}-{n:060d}"} for n in range(per_task)]).all()
    labels = CONFIG["labels"]
    for start in range(0, tasks, 5000):
        size = min(5000, tasks - start)
        with services.db.session() as session:
            item_ids = session.scalars(insert(Item).returning(
                Item.id, sort_by_parameter_order=True), [
                {"project_id": project, "job_id": job_id, "seq": start + n,
                 "ref": f"=note-{start + n}", "data": {}} for n in range(size)]).all()
            task_ids = session.scalars(insert(Task).returning(
                Task.id, sort_by_parameter_order=True), [
                {"project_id": project, "item_id": item_id, "payload": {}, "state": "retired",
                 "need": 3, "priority": 0, "is_gold": False} for item_id in item_ids]).all()
            session.execute(insert(Answer), [
                {"task_id": task_id, "project_id": project, "volunteer_id": volunteer,
                 "value": {"label": labels[(task_id + v) % len(labels)]}, "counted": True}
                for task_id in task_ids for v, volunteer in enumerate(volunteers)])
    return project


# Peak memory is the child's own VmHWM: ru_maxrss would report the parent's size
# (Linux carries it across fork and exec), and this parent has just written 1M rows.
PEAK = """
def peak_kb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

EXPORT_CHILD = PEAK + """
import os, sys, time
sys.path.insert(0, {root!r})
from engine.delivery import exports
from engine.config import Settings
from engine.services import Services
settings = Settings(instance_path={instance!r}, database_url={database!r},
                    redis_url={redis!r}).resolved()
services = Services(settings)
started, rows, size = time.perf_counter(), 0, 0
with open(os.devnull, "w") as sink:
    for chunk in exports.render(exports.answer_rows(services, {project}, as_text=True), "csv",
                                exports.ANSWER_COLUMNS):
        size += len(chunk)
        sink.write(chunk)
seconds = time.perf_counter() - started
print(seconds, size, peak_kb())
"""


def export_answers(services: Services, project: int, count: int) -> dict:
    """Stream one project's answers CSV in a fresh process; its peak memory is
    the export's, not this benchmark's."""
    settings = services.settings
    code = EXPORT_CHILD.format(root=str(ROOT), instance=str(settings.instance_path),
                               database=settings.database_url, redis=settings.redis_url or "",
                               project=project)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    seconds, size, peak = float(out[0]), int(out[1]), int(out[2])
    return {"answers": count, "seconds": seconds, "rows_per_s": count / seconds,
            "bytes": size, "peak_rss_mb": peak / 1024}


def baseline_rss() -> float:
    """Peak memory of a child that only imports the engine: what every export pays."""
    code = PEAK + (f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                   "import engine.delivery.exports, engine.services; print(peak_kb())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return int(out) / 1024


# --- the run --------------------------------------------------------------------------------

def run(database_url: str, redis_url: str, quick: bool) -> dict:
    n_items = 10_000 if quick else 100_000
    small, large = (10_000, 100_000) if quick else (100_000, 1_000_000)
    with bench_services(database_url, redis_url) as services:
        who = admin(services)
        report = {"database": services.settings.database_url.split(":", 1)[0],
                  "redis": "server" if redis_url else "embedded"}
        print("(a) ingest...", file=sys.stderr, flush=True)
        report["plain_insert"] = plain_insert(services, n_items)
        report["raw_insert"] = raw_insert(services, who, n_items)
        report["ingest_json"] = ingest_json(services, who, n_items)
        report["ingest_csv"] = ingest_csv(services, who, n_items)
        _clear_tasks(services)
        print("(b) export...", file=sys.stderr, flush=True)
        report["export_baseline_rss_mb"] = baseline_rss()
        report["export"] = [export_answers(services, fill_answers(services, who, size), size)
                            for size in (small, large)]
    return report


def _clear_tasks(services: Services) -> None:
    """Ingest's rows are not needed for the export part; a smaller database keeps
    the export's timing about the export."""
    with services.db.session() as session:
        for table in (Task, Item, Job):
            session.execute(delete(table))
        session.execute(delete(Project).where(Project.name != "keep"))
    services.redis.flushdb()


def verdicts(report: dict) -> dict:
    raw = report["raw_insert"]["tasks_per_s"]
    out = {}
    for name in ("ingest_json", "ingest_csv"):
        part = report.get(name)
        if part and "tasks_per_s" in part:
            share = part["tasks_per_s"] / raw
            out[name] = {"share_of_raw": share, "met": share >= 0.25}
    small, large = report["export"]
    growth = large["peak_rss_mb"] / small["peak_rss_mb"]
    out["export_memory"] = {"growth": growth, "met": growth <= 1.2}
    return out


def table(report: dict) -> str:
    rows = [("part", "measure", "value", "target")]
    plain = report.get("plain_insert")
    if plain:
        rows.append(("a", f"context: Core insert of {plain['rows']:,} plain 3-column rows",
                     f"{plain['rows_per_s']:,.0f} rows/s", ""))
    raw = report["raw_insert"]
    rows.append(("a", f"raw Core insert, {raw['tasks']:,} items+tasks",
                 f"{raw['tasks_per_s']:,.0f} tasks/s", ""))
    for name, label in (("ingest_json", "JSON items"), ("ingest_csv", "CSV rows")):
        part = report.get(name) or {}
        if "tasks_per_s" in part:
            share = report["targets"][name]["share_of_raw"]
            rows.append(("a", f"import {label}, {part['tasks']:,}",
                         f"{part['tasks_per_s']:,.0f} tasks/s ({100 * share:.0f}% of raw)",
                         ">= 25% " + ("ok" if share >= 0.25 else "MISSED")))
        else:
            rows.append(("a", f"import {label}", part.get("error", "n/a"), ""))
    for part in report["export"]:
        rows.append(("b", f"answers CSV, {part['answers']:,} rows",
                     f"{part['rows_per_s']:,.0f} rows/s, peak {part['peak_rss_mb']:.1f} MB", ""))
    memory = report["targets"]["export_memory"]
    rows.append(("b", "peak memory, large / small", f"{memory['growth']:.3f}x",
                 "<= 1.2x " + ("ok" if memory["met"] else "MISSED")))
    rows.append(("b", "a child that only imports the engine",
                 f"{report['export_baseline_rss_mb']:.1f} MB", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--database-url", default="",
                        help="SQLAlchemy URL (its tables are DROPPED); default: SQLite in a "
                             "temporary folder")
    parser.add_argument("--redis-url", default="",
                        help="a spare Redis database (it is FLUSHED); default: embedded Redis")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    report = run(args.database_url, args.redis_url, args.quick)
    report["targets"] = verdicts(report)
    report["machine"] = {**machine(), "quick": args.quick}
    print(table(report))
    write_report(args.output, report)
    print(f"\nwritten to {args.output}")
    return report


if __name__ == "__main__":
    main()
