"""Parts (c) and (d) of the dispatch benchmark, and the synthetic projects they stand on.

Synthetic projects are written straight into Redis (no SQL), by fill_pool
when only the pool's size matters and by Dispatcher.add_tasks when the load
itself is measured; check_fill_pool keeps the two honest. Part (a) borrows
the same projects from here.
"""
from __future__ import annotations

import itertools
import json
import statistics
import time
from collections.abc import Iterable, Iterator

import redis
from dispatch_common import (
    CONFIG,
    NEED,
    chunks,
    evalsha_stats,
    percentile,
    ratio,
    wait_for_background_saves,
)

from engine.dispatch.dispatcher import Dispatcher, OpenTask, ProjectMeta, keys, pool_score, seen_key


def payload(task_id: int) -> dict:
    """A classify payload of realistic size: an image URL and the charity's reference."""
    return {"image": f"https://example.org/cams/{task_id:08d}.jpg", "ref": f"{task_id:08d}"}


def synthetic_tasks(count: int, first_id: int = 1) -> Iterator[OpenTask]:
    for task_id in range(first_id, first_id + count):
        yield OpenTask(task_id, NEED, 0, payload(task_id))


def open_project(dispatcher: Dispatcher, project_id: int) -> None:
    """Project meta as engine.projects.publish writes it, so checkouts find an active project."""
    dispatcher.set_meta(ProjectMeta(project_id, True, "classify", 60, CONFIG, "bench"))


def fill_pool(dispatcher: Dispatcher, project_id: int, tasks: Iterable[OpenTask],
              batch: int = 10_000) -> None:
    """Load open tasks with one HSET/ZADD per batch instead of three commands per task.

    Dispatcher.add_tasks loads 15,000-25,000 tasks/s here, so a million would
    eat about a minute of the time budget; this writes the very same keys and
    values about three times faster. check_fill_pool proves the layouts are
    identical, so a change to add_tasks' layout fails the benchmark instead of
    skewing it.
    Non-gold, unprioritised tasks only, under the default strategy (breadth).
    """
    k = keys(project_id)
    r = dispatcher.redis
    for chunk in chunks(tasks, batch):
        pipe = r.pipeline(transaction=False)
        pipe.hset(k["payload"], mapping={t.task_id: json.dumps(t.payload) for t in chunk})
        pipe.hset(k["state"], mapping={t.task_id: f"{t.need}:{t.done}:0:{t.priority}"
                                       for t in chunk})
        pipe.zadd(k["pool"], {t.task_id: pool_score("breadth", t.task_id, t.done, t.priority)
                              for t in chunk})
        pipe.execute()


def check_fill_pool(dispatcher: Dispatcher, count: int = 300) -> None:
    """Raise unless fill_pool writes exactly what Dispatcher.add_tasks writes."""
    engine_pid, bench_pid = 9_000_001, 9_000_002
    for pid in (engine_pid, bench_pid):
        open_project(dispatcher, pid)
    dispatcher.add_tasks(engine_pid, synthetic_tasks(count))
    fill_pool(dispatcher, bench_pid, synthetic_tasks(count))
    r = dispatcher.redis
    try:
        for name in ("state", "payload"):
            if r.hgetall(keys(engine_pid)[name]) != r.hgetall(keys(bench_pid)[name]):
                raise AssertionError(f"fill_pool's {name} hash differs from add_tasks'")
        if (r.zrange(keys(engine_pid)["pool"], 0, -1, withscores=True)
                != r.zrange(keys(bench_pid)["pool"], 0, -1, withscores=True)):
            raise AssertionError("fill_pool's pool differs from add_tasks'")
    finally:
        for pid in (engine_pid, bench_pid):
            dispatcher.drop_project(pid)


def timed_checkouts(dispatcher: Dispatcher, project_id: int, volunteers: Iterator[int],
                    count: int) -> list[float]:
    """Microseconds of each of `count` checkouts by fresh volunteers (client side)."""
    out = []
    for _ in range(count):
        volunteer = next(volunteers)
        began = time.perf_counter_ns()
        handed = dispatcher.checkout(project_id, volunteer)
        out.append((time.perf_counter_ns() - began) / 1000)
        if not handed:
            raise RuntimeError(f"project {project_id}'s pool ran dry")
    return out


def measure_checkout_scaling(dispatcher: Dispatcher, small: int, large: int, checkouts: int,
                             block: int = 100, small_pid: int = 201,
                             large_pid: int = 202) -> dict:
    """(c) checkout time at two pool sizes, both pools loaded side by side.

    Blocks of `block` checkouts alternate between the two projects (in
    alternating order), so machine noise falls on both alike. Checkouts are
    not submitted: with need 3 the small pool has room for 3 x small of them.
    """
    if checkouts >= NEED * small:
        raise ValueError(f"{checkouts} checkouts would drain a pool of {small} tasks")
    r = dispatcher.redis
    loaded = {}
    for pid, size in ((small_pid, small), (large_pid, large)):
        open_project(dispatcher, pid)
        began = time.perf_counter()
        fill_pool(dispatcher, pid, synthetic_tasks(size))
        loaded[pid] = time.perf_counter() - began
    waited = wait_for_background_saves(r)
    volunteers = itertools.count(1)
    timed_checkouts(dispatcher, small_pid, volunteers, 20)  # warm the script cache
    timed_checkouts(dispatcher, large_pid, volunteers, 20)
    client = {small_pid: [], large_pid: []}
    server = {small_pid: [0, 0], large_pid: [0, 0]}  # calls, usec
    order = [small_pid, large_pid]
    done = 0
    while done < checkouts:
        n = min(block, checkouts - done)
        for pid in order:
            calls_before, usec_before = evalsha_stats(r)
            client[pid] += timed_checkouts(dispatcher, pid, volunteers, n)
            calls_after, usec_after = evalsha_stats(r)
            server[pid][0] += calls_after - calls_before
            server[pid][1] += usec_after - usec_before
        order.reverse()
        done += n

    def side(pid: int, size: int) -> dict:
        return {"open_tasks": size, "load_seconds": loaded[pid],
                "median_us": statistics.median(client[pid]),
                "p90_us": percentile(client[pid], 90),
                "server_us": ratio(server[pid][1], server[pid][0])}

    small_side, large_side = side(small_pid, small), side(large_pid, large)
    return {"checkouts_each": checkouts, "block": block, "waited_for_aof_rewrite_s": waited,
            "small": small_side, "large": large_side,
            "deep": measure_deep_volunteer(dispatcher, large_pid, min(DEEP_SEEN, large // 2),
                                           DEEP_CHECKOUTS),
            "ratio": large_side["median_us"] / small_side["median_us"],
            "server_ratio": ratio(large_side["server_us"], small_side["server_us"]),
            "large_pool_memory": key_memory(r, large_pid, large)}


# A prolific volunteer under the depth strategy has answered hundreds of tasks that
# still wait for others' answers, and those sit at the top of the pool.
DEEP_SEEN, DEEP_CHECKOUTS = 1000, 200


def measure_deep_volunteer(dispatcher: Dispatcher, project_id: int, seen: int,
                           checkouts: int) -> dict:
    """Checkouts by volunteers who have each seen the `seen` best open tasks, so every
    checkout skips over them (up to the dispatcher's SCAN_LIMIT): each volunteer's
    seen set is copied, outside the timing, from one filled with the pool's top."""
    r = dispatcher.redis
    k = keys(project_id)
    template = f"{k['prefix']}bench-seen"
    r.sadd(template, *r.zrange(k["pool"], 0, seen - 1))
    client, calls, usec = [], 0, 0
    for volunteer in range(10_000_000, 10_000_000 + checkouts):
        r.copy(template, seen_key(project_id, volunteer))
        calls_before, usec_before = evalsha_stats(r)
        client += timed_checkouts(dispatcher, project_id, iter([volunteer]), 1)
        calls_after, usec_after = evalsha_stats(r)
        calls, usec = calls + calls_after - calls_before, usec + usec_after - usec_before
    r.delete(template)
    return {"seen": seen, "checkouts": checkouts, "median_us": statistics.median(client),
            "server_us": ratio(usec, calls)}


def key_memory(r: redis.Redis, project_id: int, tasks: int) -> dict:
    """Exact MEMORY USAGE (all elements sampled) of the per-task keys, in bytes and per task."""
    k = keys(project_id)
    sizes = {name: r.memory_usage(k[name], samples=0) or 0
             for name in ("state", "pool", "payload")}
    per_task = {name: value / tasks for name, value in sizes.items()}
    per_task["state_and_pool"] = per_task["state"] + per_task["pool"]
    return {"tasks": tasks, "bytes": sizes, "bytes_per_task": per_task}


def measure_memory(dispatcher: Dispatcher, tasks: int, project_id: int = 301) -> dict:
    """(d) Redis memory per open task, loaded through the engine's own Dispatcher.add_tasks.

    Two views that should agree: MEMORY USAGE of the state hash and pool
    sorted set (the payload hash reported beside them), and the growth of
    INFO used_memory over the whole load minus the payload hash. The load's
    own speed is reported too: it is what intake and rebuild pay per task.
    """
    r = dispatcher.redis
    open_project(dispatcher, project_id)
    wait_for_background_saves(r)
    used_before = r.info("memory")["used_memory"]
    began = time.perf_counter()
    dispatcher.add_tasks(project_id, synthetic_tasks(tasks))
    load_seconds = time.perf_counter() - began
    wait_for_background_saves(r)
    used_after = r.info("memory")["used_memory"]
    memory = key_memory(r, project_id, tasks)
    delta = used_after - used_before
    return {
        **memory,
        "add_tasks_seconds": load_seconds,
        "add_tasks_per_s": tasks / load_seconds,
        "used_memory_delta": delta,
        "used_memory_delta_per_task": delta / tasks,
        "used_memory_delta_minus_payload_per_task":
            (delta - memory["bytes"]["payload"]) / tasks,
    }
