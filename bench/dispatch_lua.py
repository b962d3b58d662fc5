"""Part (a) of the dispatch benchmark: Dispatcher.checkout + submit against a trivial Lua script.

Kept apart because it is the one part that measures Lua calls from a single
Python process, in alternating windows against a one-command script.

The target compares against the trivial script called as redis-py calls any
script (Script.__call__). The dispatcher sends its EVALSHA on a leaner path
(engine.store.redis_wire.RedisWire), so the same trivial script is also measured
through that path: the dispatch ratio against it says how much of the
round-trip ceiling the scripts' own work leaves.
"""
from __future__ import annotations

import itertools
import statistics

from dispatch_common import evalsha_stats, ratio, redis_cpu_reader, run_window
from dispatch_pool import fill_pool, open_project, synthetic_tasks

from engine.dispatch.dispatcher import Dispatcher
from engine.store.redis_wire import RedisWire

TRIVIAL_LUA = "return redis.call('GET', KEYS[1])"


def measure_lua_rates(dispatcher: Dispatcher, pool: int, rounds: int,
                      seconds: float, project_id: int = 101) -> dict:
    """(a) checkout+submit pairs against a one-command script, alternating windows.

    Each pair is a fresh volunteer: one checkout (which finds an unseen task at
    once) and its submit. A pair is two Lua calls; both rates are reported.
    """
    r = dispatcher.redis
    open_project(dispatcher, project_id)
    fill_pool(dispatcher, project_id, synthetic_tasks(pool))
    trivial = r.register_script(TRIVIAL_LUA)
    trivial_key = "bench:trivial"
    r.set(trivial_key, "x")
    wire = RedisWire(r)
    volunteers = itertools.count(1)

    def trivial_call() -> None:
        trivial(keys=[trivial_key])

    def trivial_wire_call() -> None:
        wire.script(trivial, (trivial_key,), ())

    def dispatch_pair() -> None:
        volunteer = next(volunteers)
        handed = dispatcher.checkout(project_id, volunteer)
        if not handed:
            raise RuntimeError("the pool ran dry: raise Sizes.lua_pool")
        dispatcher.submit(project_id, handed[0].task_id, volunteer)

    warmup = min(0.2, seconds)  # scripts loaded, connection and caches warm
    run_window(trivial_call, warmup)
    run_window(trivial_wire_call, warmup)
    run_window(dispatch_pair, warmup)
    redis_cpu = redis_cpu_reader(r)
    rounds_out = []
    for _ in range(rounds):
        row = {}
        for side, step in (("trivial", trivial_call), ("trivial_wire", trivial_wire_call),
                           ("dispatch", dispatch_pair)):
            calls_before, usec_before = evalsha_stats(r)
            cpu_before = redis_cpu()
            count, elapsed = run_window(step, seconds)
            cpu_after = redis_cpu()
            calls_after, usec_after = evalsha_stats(r)
            calls = calls_after - calls_before
            row[side] = {"count": count, "seconds": elapsed,
                         # inside the script only
                         "server_us_per_call": ratio(usec_after - usec_before, calls),
                         # all the server's work: reading, replying, the AOF
                         "redis_cpu_us_per_call": ratio(1e6 * (cpu_after - cpu_before), calls)}
        rounds_out.append(row)
    trivial_rate = _rate(rounds_out, "trivial")
    wire_rate = _rate(rounds_out, "trivial_wire")
    pair_rate = _rate(rounds_out, "dispatch")
    # The ratio of each round (adjacent windows), then their median: a burst of
    # load from a neighbour spoils one round instead of the pooled rates.
    ratios = [2 * _rate([row], "dispatch") / _rate([row], "trivial") for row in rounds_out]
    wire_ratios = [2 * _rate([row], "dispatch") / _rate([row], "trivial_wire")
                   for row in rounds_out]
    return {
        "pool_tasks": pool, "rounds": rounds, "seconds_per_window": seconds,
        "trivial_calls_per_s": trivial_rate,
        "trivial_wire_calls_per_s": wire_rate,
        "dispatch_pairs_per_s": pair_rate,
        "dispatch_calls_per_s": 2 * pair_rate,
        "ratio": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "ratio_same_path": statistics.median(wire_ratios),
        "client_us": {"trivial_call": 1e6 / trivial_rate, "trivial_wire_call": 1e6 / wire_rate,
                      "dispatch_pair": 1e6 / pair_rate},
        "server_us": {side + "_call": statistics.median(row[side]["server_us_per_call"]
                                                         for row in rounds_out)
                      for side in ("trivial", "dispatch")},
        "redis_cpu_us": {side + "_call": statistics.median(row[side]["redis_cpu_us_per_call"]
                                                            for row in rounds_out)
                         for side in ("trivial", "dispatch")},
        "per_round": rounds_out,
    }


def _rate(rounds: list[dict], side: str) -> float:
    return (sum(row[side]["count"] for row in rounds)
            / sum(row[side]["seconds"] for row in rounds))
