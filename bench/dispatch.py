"""Dispatch benchmark: the dispatch path's four budgets, measured in one run on one machine.

    python bench/dispatch.py            # full run, about 2-3 minutes
    python bench/dispatch.py --quick    # smoke run, a few seconds per part

(a) Lua: Dispatcher.checkout + Dispatcher.submit from one Python process,
    against a one-command Lua script, as calls per second and their ratio.
(b) HTTP: volunteer cycles (GET .../tasks/next + POST .../answers) against
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
import itertools
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import redis

from engine import migrate
from engine.config import Settings
from engine.dispatch import Dispatcher, OpenTask, ProjectMeta, keys, pool_score
from engine.identity import authenticate, create_user
from engine.intake import create_job, run_job
from engine.projects import create_project
from engine.redis_server import EmbeddedRedis
from engine.services import Services

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "results" / "dispatch.json"

LABELS = ["penguin", "seal", "empty"]
CONFIG = {"question": "What is in this photo?", "labels": LABELS, "instructions": ""}
NEED = 3  # min_answers of every benchmark project
TRIVIAL_LUA = "return redis.call('GET', KEYS[1])"

# The flags of web/demo.py and the Procfile, shared by both servers of part (b).
# No access log: the Procfile has none, and writing one line per request would
# be charged to the workers being measured.
GUNICORN_FLAGS = ("--workers", "2")
LOAD_PROCESSES, LOAD_THREADS = 2, 16  # 32 concurrent connections
# "depth" finishes tasks before starting new ones, so from the first seconds
# every third answer or so completes a task and merges its result inline
# (update_result), as in a live project. Under the default "breadth" a fresh
# 20,000-task project would only collect first answers during the whole run,
# and the benchmark would leave out that part of the answer's cost.
HTTP_STRATEGY = "depth"

TARGETS = {
    "lua_ratio": ("dispatch Lua calls/s >= 70% of trivial", 0.70),
    "http_ratio": ("cycles/s >= 25% of trivial req/s", 0.25),
    "scaling_ratio": ("checkout at large pool <= 1.5x small", 1.5),
    "bytes_per_task": ("< 250 bytes per open task, payload excluded", 250),
}


@dataclass(frozen=True)
class Sizes:
    """How big and how long each part runs; the full run keeps to about 3 minutes."""

    lua_pool: int
    lua_rounds: int
    lua_seconds: float  # per window, per side
    http_tasks: int
    http_rounds: int
    trivial_seconds: float
    volunteer_seconds: float
    warmup_seconds: float
    small_pool: int
    large_pool: int
    checkouts: int  # per pool size
    memory_tasks: int


FULL = Sizes(lua_pool=30_000, lua_rounds=8, lua_seconds=0.6,
             http_tasks=20_000, http_rounds=2, trivial_seconds=6, volunteer_seconds=12,
             warmup_seconds=2, small_pool=1_000, large_pool=1_000_000, checkouts=2_000,
             memory_tasks=100_000)
QUICK = Sizes(lua_pool=5_000, lua_rounds=2, lua_seconds=0.3,
              http_tasks=2_000, http_rounds=1, trivial_seconds=2, volunteer_seconds=3,
              warmup_seconds=1, small_pool=1_000, large_pool=50_000, checkouts=400,
              memory_tasks=10_000)


# --- synthetic projects (no SQL): parts (a), (c), (d) -------------------------------------

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
    for chunk in _chunks(tasks, batch):
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


def wait_for_background_saves(r: redis.Redis, timeout: float = 180) -> float:
    """Wait until Redis has no AOF rewrite or RDB save running; the seconds waited.

    Loading a million tasks grows the embedded Redis's append-only file past
    its auto-rewrite size, and the forked child then competes for the CPU
    while Redis buffers every write for it, which would show up in both
    checkout times and used_memory.
    """
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        info = r.info("persistence")
        if not any(info.get(flag) for flag in ("aof_rewrite_in_progress", "aof_rewrite_scheduled",
                                               "rdb_bgsave_in_progress")):
            break
        time.sleep(0.2)
    return time.monotonic() - began


def evalsha_stats(r: redis.Redis) -> tuple[int, int]:
    """(calls, microseconds) the server has spent in EVALSHA so far: server-side cost,
    without the client, read as a difference so nobody's counters get reset."""
    stats = r.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def run_window(step: Callable[[], None], seconds: float) -> tuple[int, float]:
    """Call step() for `seconds`; (calls, elapsed). The clock is read every 32 calls."""
    calls, began = 0, time.perf_counter()
    deadline = began + seconds
    while True:
        for _ in range(32):
            step()
        calls += 32
        now = time.perf_counter()
        if now >= deadline:
            return calls, now - began


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
    volunteers = itertools.count(1)

    def trivial_call() -> None:
        trivial(keys=[trivial_key])

    def dispatch_pair() -> None:
        volunteer = next(volunteers)
        handed = dispatcher.checkout(project_id, volunteer)
        if not handed:
            raise RuntimeError("the pool ran dry: raise Sizes.lua_pool")
        dispatcher.submit(project_id, handed[0].task_id, volunteer)

    warmup = min(0.2, seconds)  # scripts loaded, connection and caches warm
    run_window(trivial_call, warmup)
    run_window(dispatch_pair, warmup)
    redis_cpu = redis_cpu_reader(r)
    rounds_out = []
    for _ in range(rounds):
        row = {}
        for side, step in (("trivial", trivial_call), ("dispatch", dispatch_pair)):
            calls_before, usec_before = evalsha_stats(r)
            cpu_before = redis_cpu()
            count, elapsed = run_window(step, seconds)
            cpu_after = redis_cpu()
            calls_after, usec_after = evalsha_stats(r)
            calls = calls_after - calls_before
            row[side] = {"count": count, "seconds": elapsed,
                         # inside the script only
                         "server_us_per_call": _ratio(usec_after - usec_before, calls),
                         # all the server's work: reading, replying, the AOF
                         "redis_cpu_us_per_call": _ratio(1e6 * (cpu_after - cpu_before), calls)}
        rounds_out.append(row)
    trivial_rate = _rate(rounds_out, "trivial")
    pair_rate = _rate(rounds_out, "dispatch")
    # The ratio of each round (adjacent windows), then their median: a burst of
    # load from a neighbour spoils one round instead of the pooled rates.
    ratios = [2 * _rate([row], "dispatch") / _rate([row], "trivial") for row in rounds_out]
    return {
        "pool_tasks": pool, "rounds": rounds, "seconds_per_window": seconds,
        "trivial_calls_per_s": trivial_rate,
        "dispatch_pairs_per_s": pair_rate,
        "dispatch_calls_per_s": 2 * pair_rate,
        "ratio": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "client_us": {"trivial_call": 1e6 / trivial_rate, "dispatch_pair": 1e6 / pair_rate},
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
                "server_us": _ratio(server[pid][1], server[pid][0])}

    small_side, large_side = side(small_pid, small), side(large_pid, large)
    return {"checkouts_each": checkouts, "block": block, "waited_for_aof_rewrite_s": waited,
            "small": small_side, "large": large_side,
            "ratio": large_side["median_us"] / small_side["median_us"],
            "server_ratio": _ratio(large_side["server_us"], small_side["server_us"]),
            "large_pool_memory": key_memory(r, large_pid, large)}


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


# --- the HTTP path: part (b) ---------------------------------------------------------------

def prepare_http_project(services: Services, tasks: int, strategy: str = HTTP_STRATEGY,
                         batch: int = 10_000) -> int:
    """A classify project with `tasks` open tasks, made through the engine's own functions
    (the same path as the API and the RQ job), before any server starts."""
    migrate.upgrade(services.db, services.settings.instance_path)
    _, token = create_user(services, "Bench Wildlife Trust", "charity")
    charity = authenticate(services, token)
    project = create_project(services, charity, {
        "name": "Bench camera traps", "task_type": "classify", "config": CONFIG,
        "min_answers": NEED, "max_answers": 5, "confidence": 0.8,
        "strategy": strategy}).project
    for first in range(0, tasks, batch):
        items = [{"image": payload(n)["image"], "id": payload(n)["ref"]}
                 for n in range(first, min(first + batch, tasks))]
        job = create_job(services, charity, project.id, items=items)
        run_job(services, job.id)
    return project.id


def gunicorn_env(settings: Settings) -> dict[str, str]:
    """The environment of web/demo.py's children: the instance folder, and the
    database and Redis it names. Other BITESIZE_* variables are dropped so the
    servers see exactly what the benchmark's own process sees."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BITESIZE_")}
    env.update(BITESIZE_INSTANCE_PATH=str(settings.instance_path),
               BITESIZE_DATABASE_URL=settings.database_url,
               BITESIZE_REDIS_URL=settings.redis_url)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    base: str
    pid: int  # gunicorn's master; its workers are its children


@contextmanager
def running_gunicorn(app: str, cwd: Path, env: dict[str, str], probe: str,
                     log_path: Path) -> Iterator[Server]:
    """gunicorn started as web/demo.py starts it; yields it once it serves."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *GUNICORN_FLAGS, "--bind", f"127.0.0.1:{port}",
             app], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        _wait_until_serving(base + probe, proc, log_path)
        yield Server(base, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_serving(url: str, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                if response.status == 200:
                    return
        except OSError:  # refused while starting; URLError and HTTPError are OSErrors
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not serve {url}; see {log_path}")


def drive(server: Server, mode: str, seconds: float, warmup: float, redis_cpu: Callable[[], float],
          project_id: int = 0, path: str = "/ok", seed: int = 1) -> dict:
    """Run the load processes for one window and merge what they saw.

    Besides the client's view, the CPU time each side used inside the window is
    read from /proc (gunicorn's processes, the load processes) and INFO cpu
    (Redis): the cost of one request or cycle per component, and whether the
    two cores were saturated or waiting (on SQLite's lock, say).
    """
    config = {"base": server.base, "mode": mode, "path": path, "project": project_id,
              "labels": LABELS, "threads": LOAD_THREADS, "seconds": seconds,
              "start": time.time() + warmup}
    procs = [subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "http_load.py"), json.dumps({**config, "seed": seed + n})],
        stdout=subprocess.PIPE, cwd=BENCH_DIR) for n in range(LOAD_PROCESSES)]
    server_pids = [server.pid, *children(server.pid)]
    client_pids = [proc.pid for proc in procs]
    time.sleep(max(0.0, config["start"] - time.time()))
    before = (cpu_seconds(server_pids), redis_cpu(), cpu_seconds(client_pids), machine_cpu())
    time.sleep(max(0.0, config["start"] + seconds - time.time()))
    after = (cpu_seconds(server_pids), redis_cpu(), cpu_seconds(client_pids), machine_cpu())
    outputs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"a load process failed (exit {proc.returncode})")
        outputs.append(json.loads(out))
    busy, stolen, total = (a - b for a, b in zip(after[3], before[3], strict=True))
    ours = {"gunicorn": after[0] - before[0], "redis": after[1] - before[1],
            "client": after[2] - before[2]}
    # CPU seconds used by everything else on the machine (other users' jobs, the
    # kernel's own threads): the noise this window ran under.
    others = max(0.0, busy / os.sysconf("SC_CLK_TCK") - sum(ours.values()))
    merged = {"seconds": seconds, "cycles": 0, "latencies_ms": {}, "errors": {},
              "cpu_seconds": {**ours, "others": others},
              "machine_busy": _ratio(busy, total), "machine_stolen": _ratio(stolen, total)}
    for out in outputs:
        merged["cycles"] += out["cycles"]
        for kind, values in out["latencies_ms"].items():
            merged["latencies_ms"].setdefault(kind, []).extend(values)
        for what, count in out["errors"].items():
            merged["errors"][what] = merged["errors"].get(what, 0) + count
    return merged


def children(pid: int) -> list[int]:
    """The processes whose parent is pid (gunicorn's workers), from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (0 for any that ended)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[int, int, int]:
    """(busy, stolen, total) clock ticks of all CPUs so far, from /proc/stat.

    Steal is time the hypervisor gave to other machines: the noisy neighbours.
    """
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + steal + idle + iowait


def redis_cpu_reader(r: redis.Redis) -> Callable[[], float]:
    """CPU seconds the Redis server has used (all its clients: on a shared server, others too)."""
    def read() -> float:
        info = r.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return read


def measure_http(services: Services, sizes: Sizes) -> dict:
    """(b) volunteer cycles over HTTP against a trivial endpoint, alternating windows."""
    began = time.perf_counter()
    project_id = prepare_http_project(services, sizes.http_tasks)
    setup_seconds = time.perf_counter() - began
    env = gunicorn_env(services.settings)
    logs = services.settings.instance_path
    redis_cpu = redis_cpu_reader(services.redis)
    windows = {"trivial": [], "volunteer": []}
    with running_gunicorn("web:create_app()", ROOT, env, "/api/v1/openapi.json",
                          logs / "gunicorn-bitesize.log") as bitesize, \
            running_gunicorn("trivial_app:app", BENCH_DIR, env, "/ok",
                             logs / "gunicorn-trivial.log") as trivial:
        for n in range(sizes.http_rounds):
            windows["trivial"].append(drive(trivial, "trivial", sizes.trivial_seconds,
                                            sizes.warmup_seconds, redis_cpu, seed=100 * n + 1))
            windows["volunteer"].append(drive(bitesize, "volunteer", sizes.volunteer_seconds,
                                              sizes.warmup_seconds, redis_cpu, project_id,
                                              seed=100 * n + 51))
    tracebacks = (logs / "gunicorn-bitesize.log").read_text().count("Traceback")
    return summarise_http(windows, sizes, setup_seconds, tracebacks)


def summarise_http(windows: dict[str, list[dict]], sizes: Sizes, setup_seconds: float,
                   tracebacks: int) -> dict:
    """Rates over all windows of a side; latency percentiles over all their requests."""
    def pooled(side: str, kind: str) -> list[float]:
        return [v for w in windows[side] for v in w["latencies_ms"].get(kind, [])]

    def seconds(side: str) -> float:
        return sum(w["seconds"] for w in windows[side])

    def errors(side: str) -> dict:
        out: dict[str, int] = {}
        for w in windows[side]:
            for what, count in w["errors"].items():
                out[what] = out.get(what, 0) + count
        return out

    def cpu_ms_per(side: str, units: int) -> dict:
        """CPU milliseconds per request (trivial) or per cycle (volunteer), per component."""
        out = {part: 1000 * sum(w["cpu_seconds"][part] for w in windows[side]) / max(units, 1)
               for part in ("gunicorn", "redis", "client")}
        out["ours"] = out["gunicorn"] + out["redis"] + out["client"]
        for key in ("machine_busy", "machine_stolen"):
            out[key] = statistics.fmean(w[key] for w in windows[side])
        out["others_cpus"] = (sum(w["cpu_seconds"]["others"] for w in windows[side])
                              / seconds(side))
        return out

    trivial = pooled("trivial", "trivial")
    trivial_rate = len(trivial) / seconds("trivial")
    cycles = sum(w["cycles"] for w in windows["volunteer"])
    cycles_rate = cycles / seconds("volunteer")
    nexts, answers = pooled("volunteer", "next"), pooled("volunteer", "answer")
    cpu_trivial = cpu_ms_per("trivial", len(trivial))
    cpu_cycle = cpu_ms_per("volunteer", cycles)
    return {
        "tasks": sizes.http_tasks, "strategy": HTTP_STRATEGY, "setup_seconds": setup_seconds,
        "rounds": sizes.http_rounds,
        "connections": LOAD_PROCESSES * LOAD_THREADS,
        "client": f"{LOAD_PROCESSES} processes x {LOAD_THREADS} threads, http.client",
        "gunicorn_flags": list(GUNICORN_FLAGS),
        "trivial_req_per_s": trivial_rate,
        "cycles_per_s": cycles_rate,
        "volunteer_req_per_s": (len(nexts) + len(answers)) / seconds("volunteer"),
        "ratio": cycles_rate / trivial_rate,
        # The same ratio from CPU cost instead of throughput: what one trivial
        # request costs our processes over what one cycle costs them. It hardly
        # moves when other jobs take CPU from the run; a cross-check of "ratio".
        "cpu_cost_ratio": _ratio(cpu_trivial["ours"], cpu_cycle["ours"]),
        "latency_ms": {"trivial": summarise(trivial), "next": summarise(nexts),
                       "answer": summarise(answers)},
        "cpu_ms": {"per_trivial_request": cpu_trivial, "per_cycle": cpu_cycle},
        "per_round": [{"trivial_req_per_s": len(t["latencies_ms"].get("trivial", []))
                       / t["seconds"], "cycles_per_s": v["cycles"] / v["seconds"]}
                      for t, v in zip(windows["trivial"], windows["volunteer"], strict=True)],
        "errors": {"trivial": errors("trivial"), "volunteer": errors("volunteer")},
        "server_tracebacks": tracebacks,
    }


# --- reporting -----------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


def summarise(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    return {"count": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "mean": statistics.fmean(values), "max": max(values)}


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def verdicts(results: dict) -> dict:
    """Each target of the issue with the measured value, where the part was run."""
    values = {
        "lua_ratio": results.get("lua", {}).get("ratio"),
        "http_ratio": results.get("http", {}).get("ratio"),
        "scaling_ratio": results.get("scaling", {}).get("ratio"),
        "bytes_per_task": results.get("memory", {}).get("bytes_per_task", {})
                                 .get("state_and_pool"),
    }
    out = {}
    for name, value in values.items():
        if value is None:
            continue
        text, limit = TARGETS[name]
        met = value >= limit if name in ("lua_ratio", "http_ratio") else (
            value <= limit if name == "scaling_ratio" else value < limit)
        out[name] = {"target": text, "limit": limit, "value": value, "met": met}
    return out


def machine_info(r: redis.Redis, settings: Settings, redis_mode: str) -> dict:
    import gunicorn

    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis_version": r.info("server")["redis_version"],
        "redis": redis_mode,
        "database": settings.database_url.split(":", 1)[0],
        "gunicorn": gunicorn.__version__,
        "git": _git_revision(),
        "loadavg_start": os.getloadavg(),
    }


def _git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def build_report(results: dict, machine: dict, sizes: Sizes, quick: bool) -> dict:
    return {"machine": machine, "quick": quick, "sizes": asdict(sizes), **results,
            "targets": verdicts(results)}


def write_report(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


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
        row("a", "dispatch checkout+submit, pairs/s", f"{a['dispatch_pairs_per_s']:,.0f}")
        row("a", "dispatch, Lua calls/s (2 per pair)", f"{a['dispatch_calls_per_s']:,.0f}")
        row("a", "client us/call: trivial | dispatch",
            f"{a['client_us']['trivial_call']:.0f} | {a['client_us']['dispatch_pair'] / 2:.0f}")
        row("a", "in-script us/call: trivial | dispatch",
            f"{a['server_us']['trivial_call']:.1f} | {a['server_us']['dispatch_call']:.1f}")
        row("a", "Redis CPU us/call: trivial | dispatch",
            f"{a['redis_cpu_us']['trivial_call']:.0f} | {a['redis_cpu_us']['dispatch_call']:.0f}")
        low, high = a["ratio_range"]
        row("a", f"dispatch calls/s / trivial calls/s (median of {a['rounds']} rounds, range)",
            f"{a['ratio']:.0%} ({low:.0%}-{high:.0%})", "lua_ratio")
    if "http" in report:
        b = report["http"]
        row("b", "trivial endpoint, req/s", f"{b['trivial_req_per_s']:,.0f}")
        row("b", "volunteer cycles (next + answer)/s", f"{b['cycles_per_s']:,.0f}")
        row("b", "cycles/s / trivial req/s", f"{b['ratio']:.0%}", "http_ratio")
        row("b", "CPU per trivial request / CPU per cycle (cross-check)",
            f"{b['cpu_cost_ratio']:.0%}")
        for kind in ("trivial", "next", "answer"):
            lat = b["latency_ms"][kind]
            if lat.get("count"):
                row("b", f"{kind} latency p50 | p99, ms", f"{lat['p50']:.1f} | {lat['p99']:.1f}")
        for label, key in (("trivial request", "per_trivial_request"), ("cycle", "per_cycle")):
            cpu = b["cpu_ms"][key]
            row("b", f"CPU ms per {label}: gunicorn | redis | client",
                f"{cpu['gunicorn']:.2f} | {cpu['redis']:.2f} | {cpu['client']:.2f}")
        for label, key in (("trivial", "per_trivial_request"), ("volunteer", "per_cycle")):
            cpu = b["cpu_ms"][key]
            row("b", f"{label} windows: CPUs busy | stolen | used outside our processes",
                f"{cpu['machine_busy']:.0%} | {cpu['machine_stolen']:.0%} | "
                f"{cpu['others_cpus']:.2f} CPUs")
        failed = sum(b["errors"]["volunteer"].values()) + sum(b["errors"]["trivial"].values())
        row("b", "failed requests | server tracebacks", f"{failed} | {b['server_tracebacks']}")
    if "scaling" in report:
        c = report["scaling"]
        small, large = c["small"], c["large"]
        row("c", f"checkout median us, {small['open_tasks']:,} open", f"{small['median_us']:.0f}")
        row("c", f"checkout median us, {large['open_tasks']:,} open", f"{large['median_us']:.0f}")
        row("c", "server us/checkout: small | large",
            f"{small['server_us']:.0f} | {large['server_us']:.0f}")
        row("c", "large / small (client medians)", f"{c['ratio']:.2f}x", "scaling_ratio")
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


def format_table(rows: list[tuple[str, ...]]) -> str:
    header = ("part", "measure", "value", "target", "result")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    aligns = ("<", "<", ">", "<", "<")
    lines = []
    for n, row in enumerate([header, *rows]):
        lines.append("  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, aligns, widths,
                                                                       strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------

@contextmanager
def bench_services(redis_url: str, database_url: str) -> Iterator[Services]:
    """Services on a temporary instance folder; the embedded Redis (if used) is stopped
    and the folder removed afterwards, so a run leaves nothing behind."""
    instance = Path(tempfile.mkdtemp(prefix="bitesize-bench-"))
    settings = Settings(instance_path=instance, database_url=database_url,
                        redis_url=redis_url).resolved()
    services = Services(settings)
    try:
        yield services
    finally:
        if redis_url:
            services.redis.flushdb()
        services.close()
        if not redis_url:
            EmbeddedRedis(instance).stop()
        shutil.rmtree(instance, ignore_errors=True)


def check_redis_url(url: str) -> None:
    """The benchmark flushes its Redis database; refuse the default database 0."""
    parts = urlsplit(url)
    db = parts.path.strip("/") or "0"
    if parts.scheme in ("redis", "rediss") and db == "0":
        raise SystemExit(f"--redis-url {url}: name a spare database, e.g. "
                         "redis://127.0.0.1:6379/9 -- the benchmark flushes it")


def run(sizes: Sizes, parts: str, redis_url: str, database_url: str, quick: bool,
        log: Callable[[str], None] = print) -> dict:
    if redis_url:
        check_redis_url(redis_url)
    with bench_services(redis_url, database_url) as services:
        r = services.redis
        dispatcher = services.dispatcher
        mode = "server " + _without_password(redis_url) if redis_url else "embedded, unix socket"
        machine = machine_info(r, services.settings, mode)
        results: dict = {}
        r.flushdb()
        check_fill_pool(dispatcher)
        steps = [
            ("a", "lua", "(a) Lua calls/s", lambda: measure_lua_rates(
                dispatcher, sizes.lua_pool, sizes.lua_rounds, sizes.lua_seconds)),
            ("b", "http", "(b) HTTP cycles", lambda: measure_http(services, sizes)),
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


def _chunks(iterable: Iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--redis-url", default="",
                        help="a Redis server database to use (it is FLUSHED), e.g. "
                             "redis://127.0.0.1:6379/9; default: the embedded Redis")
    parser.add_argument("--database-url", default="",
                        help="SQLAlchemy URL, e.g. postgresql+psycopg://127.0.0.1/test "
                             "(part (b) adds a project to it); default: SQLite in a temp folder")
    parser.add_argument("--parts", default="abcd", help="which parts to run, e.g. 'ac'")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    began = time.perf_counter()
    report = run(sizes, args.parts, args.redis_url, args.database_url, args.quick,
                 log=lambda line: print(line, file=sys.stderr, flush=True))
    report["wall_seconds"] = time.perf_counter() - began
    write_report(report, args.output)
    machine = report["machine"]
    print(f"\nbitesize dispatch benchmark ({'quick' if args.quick else 'full'}), "
          f"{machine['timestamp']}, {machine['nproc']} CPUs, Python {machine['python']}, "
          f"Redis {machine['redis_version']} ({machine['redis']}), {machine['database']}, "
          f"git {machine['git']}\n")
    print(format_table(table_rows(report)))
    print(f"\n{report['wall_seconds']:.0f} s; every figure in {args.output}")


if __name__ == "__main__":
    main()
