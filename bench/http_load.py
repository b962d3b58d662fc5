"""HTTP load for bench/dispatch.py part (b): a fixed number of connections in one process.

Run by bench/dispatch.py as `python bench/http_load.py CONFIG_JSON`; prints a
JSON summary on stdout. Each thread keeps exactly one request in flight, so
THREADS threads in all load processes are that many concurrent connections: a
closed loop, which measures the server's throughput without flooding it.

http.client rather than requests: it costs the client about a third of the
CPU per request, and on a 2-core machine every cycle the load generator burns
is taken from the server it measures. Gunicorn's sync workers close the
connection after each response; http.client reconnects on the next request.

Only requests that complete inside the shared window [start, start + seconds]
(wall clock, the same for every load process) are counted; what happens
before is warm-up (new volunteers, first connections, imports in the workers).
"""
from __future__ import annotations

import http.client
import json
import random
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlsplit


class Recorder:
    """What one thread saw in the window: latencies (ms) per request kind, errors."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.latencies: dict[str, list[float]] = {}
        self.errors: Counter[str] = Counter()
        self.cycles = 0

    def in_window(self) -> bool:
        return self.start <= time.time() <= self.end

    def add(self, kind: str, seconds: float) -> None:
        if self.in_window():
            self.latencies.setdefault(kind, []).append(round(seconds * 1000, 3))

    def error(self, what: str) -> None:
        if self.in_window():
            self.errors[what] += 1


def timed(conn: http.client.HTTPConnection, method: str, path: str,
          body: str | None = None, headers: dict | None = None) -> tuple[int, bytes, float]:
    """One request and its whole response; (status, body, seconds)."""
    began = time.perf_counter()
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    return response.status, data, time.perf_counter() - began


def trivial_loop(conn, config: dict, rec: Recorder) -> None:
    """GET the trivial endpoint until the window closes."""
    while time.time() < rec.end:
        status, _, seconds = timed(conn, "GET", config["path"])
        if status == 200:
            rec.add("trivial", seconds)
        else:
            rec.error(f"trivial {status}")


def sign_up(conn) -> tuple[dict, dict]:
    """A new anonymous volunteer: the headers of their GETs and of their JSON POSTs."""
    status, data, _ = timed(conn, "POST", "/api/v1/volunteers")
    if status != 201:
        raise RuntimeError(f"POST /api/v1/volunteers answered {status}: {data[:200]!r}")
    auth = {"Authorization": f"Bearer {json.loads(data)['token']}"}
    return auth, {**auth, "Content-Type": "application/json"}


def volunteer_loop(conn, config: dict, rec: Recorder, rng: random.Random) -> None:
    """A new anonymous volunteer who takes the next task and answers it, again and again."""
    auth, post = sign_up(conn)
    labels = config["labels"]
    next_path = f"/api/v1/projects/{config['project']}/tasks/next"
    while time.time() < rec.end:
        status, data, seconds = timed(conn, "GET", next_path, headers=auth)
        if status != 200:
            rec.error(f"next {status}")  # 204 means the pool ran dry: the run is too small
            continue
        rec.add("next", seconds)
        handed = json.loads(data)
        # Mostly agreeing answers, as a real crowd gives; some tasks then need a 4th.
        label = labels[0] if rng.random() < 0.9 else rng.choice(labels)
        body = json.dumps({"lease": handed["lease"]["token"], "answer": {"label": label}})
        status, data, seconds = timed(conn, "POST", f"/api/v1/tasks/{handed['task']['id']}/answers",
                                      body=body, headers=post)
        if status != 201:
            rec.error(f"answer {status}")
            continue
        rec.add("answer", seconds)
        if rec.in_window():
            rec.cycles += 1


def one_call_loop(conn, config: dict, rec: Recorder, rng: random.Random) -> None:
    """As volunteer_loop, the way the volunteer page works: each answer asks for the
    next task in its reply ("next": 1), so a cycle is one request. GET .../tasks/next
    only starts the chain, or restarts it when an answer handed out nothing."""
    auth, post = sign_up(conn)
    labels = config["labels"]
    next_path = f"/api/v1/projects/{config['project']}/tasks/next"
    handed = None
    while time.time() < rec.end:
        if handed is None:
            status, data, seconds = timed(conn, "GET", next_path, headers=auth)
            if status != 200:
                rec.error(f"next {status}")
                continue
            rec.add("next", seconds)
            handed = json.loads(data)
        label = labels[0] if rng.random() < 0.9 else rng.choice(labels)
        body = json.dumps({"lease": handed["lease"]["token"], "answer": {"label": label},
                           "next": 1})
        status, data, seconds = timed(conn, "POST", f"/api/v1/tasks/{handed['task']['id']}/answers",
                                      body=body, headers=post)
        handed = None
        if status != 201:
            rec.error(f"answer {status}")
            continue
        rec.add("answer_next", seconds)
        handed = json.loads(data).get("next")
        if rec.in_window():
            rec.cycles += 1


def worker(config: dict, rec: Recorder, seed: int) -> None:
    """One connection's thread; an exception is recorded, and the thread starts over."""
    url = urlsplit(config["base"])
    rng = random.Random(seed)
    while time.time() < rec.end:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        try:
            if config["mode"] == "trivial":
                trivial_loop(conn, config, rec)
            elif config["mode"] == "one_call":
                one_call_loop(conn, config, rec, rng)
            else:
                volunteer_loop(conn, config, rec, rng)
        except (OSError, http.client.HTTPException, RuntimeError) as exc:
            rec.error(type(exc).__name__)
            time.sleep(0.05)
        finally:
            conn.close()


def run(config: dict) -> dict:
    """Drive config["threads"] connections; return counts and latencies of the window."""
    start = config["start"]
    end = start + config["seconds"]
    recorders = [Recorder(start, end) for _ in range(config["threads"])]
    threads = [threading.Thread(target=worker, args=(config, rec, config["seed"] * 1000 + n))
               for n, rec in enumerate(recorders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies: dict[str, list[float]] = {}
    errors: Counter[str] = Counter()
    for rec in recorders:
        for kind, values in rec.latencies.items():
            latencies.setdefault(kind, []).extend(values)
        errors.update(rec.errors)
    return {"mode": config["mode"], "seconds": config["seconds"],
            "cycles": sum(rec.cycles for rec in recorders),
            "latencies_ms": latencies, "errors": dict(errors)}


if __name__ == "__main__":
    json.dump(run(json.loads(sys.argv[1])), sys.stdout)
