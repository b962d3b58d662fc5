"""Dispatch benchmark: the dispatch path's four budgets, measured in one run on one machine.

    python bench/dispatch.py            # full run, about 2-3 minutes
    python bench/dispatch.py --quick    # smoke run, a few seconds per part

(a) Lua: Dispatcher.checkout + Dispatcher.submit from one Python process,
    against a one-command Lua script, as calls per second and their ratio.
(b) HTTP: volunteer cycles (GET .../tasks/next + POST .../answers, and the page's
    one-call cycle: POST .../answers with "next": 1) against
    gunicorn, against a trivial Flask endpoint under the same gunicorn flags,
    with client-side p50/p99 latencies at 32 concurrent connections.
(c) Scaling: one checkout with 1,000 versus 1,000,000 open tasks in the pool.
(d) Memory: Redis bytes per open task (state hash + pool sorted set), and the
    payload cache beside it, reported separately.

Everything runs on the embedded defaults (SQLite and the embedded Redis in a
temporary instance folder) unless --redis-url / --database-url name servers.
The table goes to stdout and every figure, with machine info, to
bench/results/dispatch.json. Each comparison is measured in alternating rounds
(trivial, real, trivial, real...) so that a noisy neighbour slows both sides
alike instead of skewing the ratio.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

from engine.services import Services

# The parts live in sibling modules (dispatch_common, dispatch_lua, dispatch_http,
# dispatch_pool). Run as a script, bench/ is already on sys.path; loaded from its
# path (tests/test_bench_smoke.py), it is not, so put it there before importing them.
BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from bench_instance import temporary_services  # noqa: E402
from dispatch_common import (  # noqa: E402
    FULL,
    QUICK,
    Sizes,
    format_table,
    machine_info,
)
from dispatch_http import measure_http  # noqa: E402
from dispatch_lua import measure_lua_rates  # noqa: E402
from dispatch_pool import (  # noqa: E402
    check_fill_pool,
    measure_checkout_scaling,
    measure_memory,
)
from reporting import write_report  # noqa: E402

__all__ = ["FULL", "QUICK", "Sizes", "build_report", "check_fill_pool", "format_table",
           "machine_info", "main", "measure_checkout_scaling", "measure_http",
           "measure_lua_rates", "measure_memory", "run", "table_rows", "write_report"]

RESULTS_PATH = BENCH_DIR / "results" / "dispatch.json"

TARGETS = {
    "lua_ratio": ("dispatch Lua calls/s >= 70% of trivial", 0.70),
    "http_ratio": ("cycles/s >= 25% of trivial req/s", 0.25),
    "http_one_call_ratio": ("cycles/s >= 25% of trivial req/s", 0.25),
    "scaling_ratio": ("checkout at large pool <= 1.5x small", 1.5),
    "bytes_per_task": ("< 250 bytes per open task, payload excluded", 250),
}


# --- reporting -----------------------------------------------------------------------------

def verdicts(results: dict) -> dict:
    """Each target of the issue with the measured value, where the part was run."""
    values = {
        "lua_ratio": results.get("lua", {}).get("ratio"),
        "http_ratio": results.get("http", {}).get("ratio"),
        "http_one_call_ratio": results.get("http", {}).get("one_call", {}).get("ratio"),
        "scaling_ratio": results.get("scaling", {}).get("ratio"),
        "bytes_per_task": results.get("memory", {}).get("bytes_per_task", {})
                                 .get("state_and_pool"),
    }
    out = {}
    for name, value in values.items():
        if value is None:
            continue
        text, limit = TARGETS[name]
        met = value >= limit if name in ("lua_ratio", "http_ratio", "http_one_call_ratio") else (
            value <= limit if name == "scaling_ratio" else value < limit)
        out[name] = {"target": text, "limit": limit, "value": value, "met": met}
    return out


def build_report(results: dict, machine: dict, sizes: Sizes, quick: bool) -> dict:
    return {"machine": machine, "quick": quick, "sizes": asdict(sizes), **results,
            "targets": verdicts(results)}


def table_rows(report: dict) -> list[tuple[str, str, str, str, str]]:
    """(part, measure, value, target, result) rows for the printed table."""
    rows: list[tuple[str, str, str, str, str]] = []

    def row(part: str, measure: str, value: str, target: str | None = None) -> None:
        if target is None:
            rows.append((part, measure, value, "", ""))
        else:
            t = report["targets"][target]
            rows.append((part, measure, value, t["target"], "met" if t["met"] else "MISSED"))

    if "lua" in report:
        a = report["lua"]
        row("a", "trivial Lua script (1 GET), calls/s", f"{a['trivial_calls_per_s']:,.0f}")
        row("a", "trivial Lua script on the dispatcher's call path, calls/s",
            f"{a['trivial_wire_calls_per_s']:,.0f}")
        row("a", "dispatch checkout+submit, pairs/s", f"{a['dispatch_pairs_per_s']:,.0f}")
        row("a", "dispatch, Lua calls/s (2 per pair)", f"{a['dispatch_calls_per_s']:,.0f}")
        row("a", "client us/call: trivial | trivial, same path | dispatch",
            f"{a['client_us']['trivial_call']:.0f} | {a['client_us']['trivial_wire_call']:.0f}"
            f" | {a['client_us']['dispatch_pair'] / 2:.0f}")
        row("a", "in-script us/call: trivial | dispatch",
            f"{a['server_us']['trivial_call']:.1f} | {a['server_us']['dispatch_call']:.1f}")
        row("a", "Redis CPU us/call: trivial | dispatch",
            f"{a['redis_cpu_us']['trivial_call']:.0f} | {a['redis_cpu_us']['dispatch_call']:.0f}")
        row("a", "dispatch calls/s / trivial on the same call path",
            f"{a['ratio_same_path']:.0%}")
        low, high = a["ratio_range"]
        row("a", f"dispatch calls/s / trivial calls/s (median of {a['rounds']} rounds, range)",
            f"{a['ratio']:.0%} ({low:.0%}-{high:.0%})", "lua_ratio")
    if "http" in report:
        b = report["http"]
        row("b", "trivial endpoint, req/s", f"{b['trivial_req_per_s']:,.0f}")
        row("b", "volunteer cycles (next + answer)/s", f"{b['cycles_per_s']:,.0f}")
        low, high = b["ratio_range"]
        row("b", f"cycles/s / trivial req/s (all {b['rounds']} rounds; range per round)",
            f"{b['ratio']:.0%} ({low:.0%}-{high:.0%})", "http_ratio")
        row("b", "CPU per trivial request / CPU per cycle (cross-check)",
            f"{b['cpu_cost_ratio']:.0%}")
        one = b.get("one_call")
        if one:  # the volunteer page's cycle: the answer's reply hands out the next task
            row("b", "one-call cycles (answer with \"next\": 1)/s", f"{one['cycles_per_s']:,.0f}")
            low, high = one["ratio_range"]
            row("b", "one-call cycles/s / trivial req/s (range per round)",
                f"{one['ratio']:.0%} ({low:.0%}-{high:.0%})", "http_one_call_ratio")
            row("b", "CPU per trivial request / CPU per one-call cycle",
                f"{one['cpu_cost_ratio']:.0%}")
            lat = one["latency_ms"]["answer_next"]
            if lat.get("count"):
                row("b", "answer with next latency p50 | p99, ms",
                    f"{lat['p50']:.1f} | {lat['p99']:.1f}")
        for kind in ("trivial", "next", "answer"):
            lat = b["latency_ms"][kind]
            if lat.get("count"):
                row("b", f"{kind} latency p50 | p99, ms", f"{lat['p50']:.1f} | {lat['p99']:.1f}")
        cpus = [("trivial request", b["cpu_ms"]["per_trivial_request"]),
                ("cycle", b["cpu_ms"]["per_cycle"])]
        if one:
            cpus.append(("one-call cycle", one["cpu_ms_per_cycle"]))
        for label, cpu in cpus:
            row("b", f"CPU ms per {label}: gunicorn | redis | client | PostgreSQL",
                f"{cpu['gunicorn']:.2f} | {cpu['redis']:.2f} | {cpu['client']:.2f} | "
                f"{cpu.get('database', 0.0):.2f}")
        for label, key in (("trivial", "per_trivial_request"), ("volunteer", "per_cycle")):
            cpu = b["cpu_ms"][key]
            row("b", f"{label} windows: CPUs busy | stolen | used outside our processes",
                f"{cpu['machine_busy']:.0%} | {cpu['machine_stolen']:.0%} | "
                f"{cpu['others_cpus']:.2f} CPUs")
        failed = (sum(b["errors"]["volunteer"].values()) + sum(b["errors"]["trivial"].values())
                  + sum(one["errors"].values() if one else ()))
        row("b", "failed requests | server tracebacks", f"{failed} | {b['server_tracebacks']}")
    if "scaling" in report:
        c = report["scaling"]
        small, large = c["small"], c["large"]
        row("c", f"checkout median us, {small['open_tasks']:,} open", f"{small['median_us']:.0f}")
        row("c", f"checkout median us, {large['open_tasks']:,} open", f"{large['median_us']:.0f}")
        row("c", "server us/checkout: small | large",
            f"{small['server_us']:.0f} | {large['server_us']:.0f}")
        row("c", "large / small (client medians)", f"{c['ratio']:.2f}x", "scaling_ratio")
        deep = c["deep"]
        row("c", f"checkout past {deep['seen']:,} seen tasks: median us | server us",
            f"{deep['median_us']:.0f} | {deep['server_us']:.0f}")
    if "memory" in report:
        d = report["memory"]
        per = d["bytes_per_task"]
        row("d", f"bytes/task: state | pool ({d['tasks']:,} tasks)",
            f"{per['state']:.0f} | {per['pool']:.0f}")
        row("d", "bytes/task: payload hash (excluded)", f"{per['payload']:.0f}")
        row("d", "used_memory delta - payload, bytes/task",
            f"{d['used_memory_delta_minus_payload_per_task']:.0f}")
        row("d", "Dispatcher.add_tasks, tasks/s", f"{d['add_tasks_per_s']:,.0f}")
        if "scaling" in report:
            big = report["scaling"]["large_pool_memory"]
            row("d", f"bytes/task: state + pool at {big['tasks']:,}",
                f"{big['bytes_per_task']['state_and_pool']:.0f}")
        row("d", "bytes/task: state + pool", f"{per['state_and_pool']:.0f}", "bytes_per_task")
    return rows


# --- the run -------------------------------------------------------------------------------

@contextmanager
def bench_services(redis_url: str, database_url: str, queue_redis_url: str = "",
                   cluster: bool = False) -> Iterator[Services]:
    """Services on a temporary instance folder, which a run leaves nothing of
    (bench_instance: the embedded Redis is stopped, the folder removed)."""
    with temporary_services("bitesize-bench-", database_url, redis_url,
                            redis_cluster=int(cluster),
                            queue_redis_url=queue_redis_url) as services:
        yield services


def check_redis_url(url: str) -> None:
    """The benchmark flushes its Redis database; refuse the default database 0."""
    parts = urlsplit(url)
    db = parts.path.strip("/") or "0"
    if parts.scheme in ("redis", "rediss") and db == "0":
        raise SystemExit(f"--redis-url {url}: name a spare database, e.g. "
                         "redis://127.0.0.1:6379/9 -- the benchmark flushes it")


def run(sizes: Sizes, parts: str, redis_url: str, database_url: str, quick: bool,
        log: Callable[[str], None] = print, queue_redis_url: str = "",
        cluster: bool = False, checks: bool = False) -> dict:
    if cluster and (not redis_url or not queue_redis_url or set(parts) - {"b"}):
        raise SystemExit("--redis-cluster needs --redis-url (a node) and --queue-redis-url, "
                         "and runs part b only")
    if redis_url and not cluster:  # a Cluster has database 0 only: the flag says flush it
        check_redis_url(redis_url)
    with bench_services(redis_url, database_url, queue_redis_url, cluster) as services:
        r = services.redis
        dispatcher = services.dispatcher
        mode = ("cluster of " if cluster else "server ") + _without_password(redis_url) \
            if redis_url else "embedded, unix socket"
        machine = machine_info(r, services.settings, mode)
        machine["quality_checks"] = checks
        results: dict = {}
        r.flushdb()
        check_fill_pool(dispatcher)
        steps = [
            ("a", "lua", "(a) Lua calls/s", lambda: measure_lua_rates(
                dispatcher, sizes.lua_pool, sizes.lua_rounds, sizes.lua_seconds)),
            ("b", "http", "(b) HTTP cycles", lambda: measure_http(services, sizes, checks)),
            ("c", "scaling", "(c) checkout vs pool size", lambda: measure_checkout_scaling(
                dispatcher, sizes.small_pool, sizes.large_pool, sizes.checkouts)),
            ("d", "memory", "(d) memory per task", lambda: measure_memory(
                dispatcher, sizes.memory_tasks)),
        ]
        for letter, key, title, step in steps:
            if letter not in parts:
                continue
            r.flushdb()
            began = time.perf_counter()
            log(f"{title}...")
            results[key] = step()
            results[key]["wall_seconds"] = time.perf_counter() - began
            log(f"{title}: {results[key]['wall_seconds']:.1f} s")
        r.flushdb()
        machine["loadavg_end"] = os.getloadavg()
    return build_report(results, machine, sizes, quick)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--redis-url", default="",
                        help="a Redis server database to use (it is FLUSHED), e.g. "
                             "redis://127.0.0.1:6379/9; default: the embedded Redis")
    parser.add_argument("--database-url", default="",
                        help="SQLAlchemy URL, e.g. postgresql+psycopg://127.0.0.1/test "
                             "(part (b) adds a project to it); default: SQLite in a temp folder")
    parser.add_argument("--redis-cluster", action="store_true",
                        help="--redis-url names a node of a Redis Cluster, every master of "
                             "which is FLUSHED; needs --queue-redis-url; part b only")
    parser.add_argument("--queue-redis-url", default="",
                        help="RQ's queues on a Redis of their own (with --redis-cluster)")
    parser.add_argument("--checks", action="store_true",
                        help="part (b)'s project keeps a default project's per-answer quality "
                             "checks (quarantine on, thresholds no bench volunteer reaches)")
    parser.add_argument("--parts", default="abcd", help="which parts to run, e.g. 'ac'")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    began = time.perf_counter()
    report = run(sizes, args.parts, args.redis_url, args.database_url, args.quick,
                 log=lambda line: print(line, file=sys.stderr, flush=True),
                 queue_redis_url=args.queue_redis_url, cluster=args.redis_cluster,
                 checks=args.checks)
    report["wall_seconds"] = time.perf_counter() - began
    write_report(args.output, report)
    machine = report["machine"]
    print(f"\nbitesize dispatch benchmark ({'quick' if args.quick else 'full'}), "
          f"{machine['timestamp']}, {machine['nproc']} CPUs, Python {machine['python']}, "
          f"Redis {machine['redis_version']} ({machine['redis']}), {machine['database']}, "
          f"git {machine['git']}{', quality checks on' if args.checks else ''}\n")
    print(format_table(table_rows(report)))
    print(f"\n{report['wall_seconds']:.0f} s; every figure in {args.output}")


if __name__ == "__main__":
    main()
