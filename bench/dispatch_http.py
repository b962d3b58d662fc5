"""Part (b) of the dispatch benchmark: volunteer cycles over HTTP against a trivial endpoint.

Kept apart because it is the only part with processes of its own: two
gunicorn servers (bitesize and bench/trivial_app.py) and the load processes
of bench/http_load.py, with the CPU each of them uses read from /proc.
"""
from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dispatch_common import (
    BENCH_DIR,
    CONFIG,
    LABELS,
    NEED,
    ROOT,
    Sizes,
    ratio,
    redis_cpu_reader,
    summarise,
)
from dispatch_pool import payload

from engine.config import Settings
from engine.identity import authenticate, create_user
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.services import Services
from engine.store import migrate

# The Procfile's config (gthread workers, timeouts), shared by both servers of
# part (b) so they compare like with like (bitesize's, started from the repo
# folder, would load it by itself; the trivial app's, from bench/, would not).
# No access log: the Procfile has none, and writing one line per request would
# be charged to the workers being measured.
GUNICORN_FLAGS = ("--config", str(ROOT / "gunicorn.conf.py"), "--workers", "2")
LOAD_PROCESSES, LOAD_THREADS = 2, 16  # 32 concurrent connections
# "depth" finishes tasks before starting new ones, so from the first seconds
# every third answer or so completes a task and merges its result inline
# (update_result), as in a live project. Under the default "breadth" a fresh
# 20,000-task project would only collect first answers during the whole run,
# and the benchmark would leave out that part of the answer's cost.
HTTP_STRATEGY = "depth"


# The bench's volunteers answer in no time: flags would quarantine them and
# rebuild the project mid-run. By default the project turns quarantine off,
# which also skips the per-answer checks' reads (engine.quality.arrivals);
# `--checks` keeps quarantine on, as a default project has it, with thresholds
# no bench volunteer reaches, so that every check reads what it reads in a
# default project and never fires.
UNCHECKED_QUALITY = {"quarantine": False, "trusted_after_minutes": 0}
CHECKED_QUALITY = {"quarantine": True, "trusted_after_minutes": 0,
                   "too_fast_seconds": 0, "same_answer_share": 1.01,
                   "failing_gold_below": 0, "low_agreement_below": 0}


def prepare_http_project(services: Services, tasks: int, strategy: str = HTTP_STRATEGY,
                         batch: int = 10_000, checks: bool = False) -> int:
    """A classify project with `tasks` open tasks, made through the engine's own functions
    (the same path as the API and the RQ job), before any server starts."""
    migrate.upgrade(services.db, services.settings.instance_path)
    _, token = create_user(services, "Bench Wildlife Trust", "charity")
    charity = authenticate(services, token)
    project = create_project(services, charity, {
        "name": "Bench camera traps", "task_type": "classify", "config": CONFIG,
        "min_answers": NEED, "max_answers": 5, "confidence": 0.8,
        "strategy": strategy,
        "quality": CHECKED_QUALITY if checks else UNCHECKED_QUALITY}).project
    for first in range(0, tasks, batch):
        items = [{"image": payload(n)["image"], "id": payload(n)["ref"]}
                 for n in range(first, min(first + batch, tasks))]
        job = create_job(services, charity, project.id, items=items)
        run_job(services, job.id)
    return project.id


# Rate limits stay on (BITESIZE_RATE_LIMITS=0 in the bench's environment turns
# them off, to compare): every answer and sign-up is checked in Redis as in
# production, but with allowances no bench volunteer reaches, since each of them
# answers many times a second, far above a person's pace and the defaults.
BENCH_LIMITS = {"BITESIZE_LIMIT_ANSWERS": "1000000/minute",
                "BITESIZE_LIMIT_VOLUNTEERS": "1000000/minute",
                "BITESIZE_LIMIT_VOLUNTEERS_NETWORK": "1000000/minute"}


def gunicorn_env(settings: Settings) -> dict[str, str]:
    """The environment of web/demo.py's children: the instance folder, and the
    database and Redis it names. Other BITESIZE_* variables are dropped so the
    servers see exactly what the benchmark's own process sees, except the
    rate-limit switch."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BITESIZE_")}
    env.update(BITESIZE_INSTANCE_PATH=str(settings.instance_path),
               BITESIZE_DATABASE_URL=settings.database_url,
               BITESIZE_REDIS_URL=settings.redis_url,
               BITESIZE_REDIS_CLUSTER=str(settings.redis_cluster),
               BITESIZE_QUEUE_REDIS_URL=settings.queue_redis_url,
               BITESIZE_RATE_LIMITS=os.environ.get("BITESIZE_RATE_LIMITS", "1"), **BENCH_LIMITS)
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
          project_id: int = 0, path: str = "/ok", seed: int = 1,
          postgres: bool = False) -> dict:
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
    # a local PostgreSQL's backends for our connections exist by now
    database_pids = postgres_pids() if postgres else []
    before = (cpu_seconds(server_pids), redis_cpu(), cpu_seconds(client_pids), machine_cpu(),
              cpu_seconds(database_pids))
    time.sleep(max(0.0, config["start"] + seconds - time.time()))
    after = (cpu_seconds(server_pids), redis_cpu(), cpu_seconds(client_pids), machine_cpu(),
             cpu_seconds(database_pids))
    outputs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"a load process failed (exit {proc.returncode})")
        outputs.append(json.loads(out))
    busy, stolen, total = (a - b for a, b in zip(after[3], before[3], strict=True))
    ours = {"gunicorn": after[0] - before[0], "redis": after[1] - before[1],
            "client": after[2] - before[2], "database": after[4] - before[4]}
    # CPU seconds used by everything else on the machine (other users' jobs, the
    # kernel's own threads): the noise this window ran under.
    others = max(0.0, busy / os.sysconf("SC_CLK_TCK") - sum(ours.values()))
    merged = {"seconds": seconds, "cycles": 0, "latencies_ms": {}, "errors": {},
              "cpu_seconds": {**ours, "others": others},
              "machine_busy": ratio(busy, total), "machine_stolen": ratio(stolen, total)}
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


def postgres_pids() -> list[int]:
    """A PostgreSQL server on this machine: its processes (postmaster, backends,
    background writers), whose CPU a cycle costs too. None with SQLite, which
    runs inside gunicorn's processes and is counted there."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                found.append(int(comm.parent.name))
        except OSError:
            continue
    return found


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


def measure_http(services: Services, sizes: Sizes, checks: bool = False) -> dict:
    """(b) volunteer cycles over HTTP against a trivial endpoint, alternating windows."""
    began = time.perf_counter()
    project_id = prepare_http_project(services, sizes.http_tasks, checks=checks)
    setup_seconds = time.perf_counter() - began
    env = gunicorn_env(services.settings)
    logs = services.settings.instance_path
    redis_cpu = redis_cpu_reader(services.redis)
    postgres = services.settings.database_url.startswith("postgresql")
    windows = {"trivial": [], "volunteer": [], "one_call": []}
    with running_gunicorn("web:create_app()", ROOT, env, "/api/v1/openapi.json",
                          logs / "gunicorn-bitesize.log") as bitesize, \
            running_gunicorn("trivial_app:app", BENCH_DIR, env, "/ok",
                             logs / "gunicorn-trivial.log") as trivial:
        for n in range(sizes.http_rounds):
            windows["trivial"].append(drive(trivial, "trivial", sizes.trivial_seconds,
                                            sizes.warmup_seconds, redis_cpu, seed=100 * n + 1))
            windows["volunteer"].append(drive(bitesize, "volunteer", sizes.volunteer_seconds,
                                              sizes.warmup_seconds, redis_cpu, project_id,
                                              seed=100 * n + 51, postgres=postgres))
            windows["one_call"].append(drive(bitesize, "one_call", sizes.volunteer_seconds,
                                             sizes.warmup_seconds, redis_cpu, project_id,
                                             seed=100 * n + 76, postgres=postgres))
    tracebacks = (logs / "gunicorn-bitesize.log").read_text().count("Traceback")
    return {**summarise_http(windows, sizes, setup_seconds, tracebacks),
            "rate_limits": env["BITESIZE_RATE_LIMITS"] != "0"}


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
        out = {part: 1000 * sum(w["cpu_seconds"].get(part, 0.0) for w in windows[side])
               / max(units, 1) for part in ("gunicorn", "redis", "client", "database")}
        out["ours"] = out["gunicorn"] + out["redis"] + out["client"] + out["database"]
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
    rounds = [_round(t, v) for t, v in zip(windows["trivial"], windows["volunteer"], strict=True)]
    cpu_trivial = cpu_ms_per("trivial", len(trivial))
    cpu_cycle = cpu_ms_per("volunteer", cycles)
    # The page's cycle: one POST .../answers with "next": 1 per task
    one_cycles = sum(w["cycles"] for w in windows["one_call"])
    one_rate = one_cycles / seconds("one_call")
    one_rounds = [_round(t, v) for t, v in zip(windows["trivial"], windows["one_call"],
                                               strict=True)]
    cpu_one = cpu_ms_per("one_call", one_cycles)
    one_call = {
        "cycles_per_s": one_rate, "ratio": one_rate / trivial_rate,
        "ratio_range": (min(r["ratio"] for r in one_rounds),
                        max(r["ratio"] for r in one_rounds)),
        "cpu_cost_ratio": ratio(cpu_trivial["ours"], cpu_one["ours"]),
        "latency_ms": {"answer_next": summarise(pooled("one_call", "answer_next")),
                       "next": summarise(pooled("one_call", "next"))},
        "cpu_ms_per_cycle": cpu_one, "per_round": one_rounds,
        "errors": errors("one_call"),
    }
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
        "cpu_cost_ratio": ratio(cpu_trivial["ours"], cpu_cycle["ours"]),
        "latency_ms": {"trivial": summarise(trivial), "next": summarise(nexts),
                       "answer": summarise(answers)},
        "cpu_ms": {"per_trivial_request": cpu_trivial, "per_cycle": cpu_cycle},
        "per_round": rounds,
        # How far apart the rounds were: on a shared machine a single figure hides
        # that the same code measures a few points apart from one round to the next.
        "ratio_range": (min(r["ratio"] for r in rounds), max(r["ratio"] for r in rounds)),
        "errors": {"trivial": errors("trivial"), "volunteer": errors("volunteer")},
        "one_call": one_call,
        "server_tracebacks": tracebacks,
    }


def _round(trivial: dict, volunteer: dict) -> dict:
    """One alternating round's rates and their ratio."""
    trivial_rate = len(trivial["latencies_ms"].get("trivial", [])) / trivial["seconds"]
    cycles_rate = volunteer["cycles"] / volunteer["seconds"]
    return {"trivial_req_per_s": trivial_rate, "cycles_per_s": cycles_rate,
            "ratio": cycles_rate / trivial_rate if trivial_rate else 0.0}
