"""A crowd of simulated volunteers over real HTTP, for the concurrency test.

Run as a separate process: `python load_driver.py BASE_URL PROJECT VOLUNTEERS SEED LOG`.
Each volunteer (a thread) asks for tasks until the project has nothing left
for them, and mixes in what real volunteers do: answer, skip, abandon a
task (its lease expires), answer late, and retry a submit. Every
observation is written to LOG as JSON for the test to check against SQL.
"""
from __future__ import annotations

import json
import random
import sys
import threading
import time

import requests

LABELS = ["penguin", "seal", "empty"]
IDLE_STOP_SECONDS = 6.0  # longer than a lease: abandoned tasks come back meanwhile


def main(base: str, project: int, volunteers: int, seed: int, log_path: str) -> None:
    log: dict[str, list] = {"seen": [], "answers": [], "errors": []}
    lock = threading.Lock()
    threads = [threading.Thread(target=volunteer, args=(base, project, seed * 1000 + n, log, lock))
               for n in range(volunteers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(log_path, "w") as out:
        json.dump(log, out)


def volunteer(base, project, seed, log, lock) -> None:
    rng = random.Random(seed)
    http = requests.Session()
    try:
        token = http.post(f"{base}/api/v1/volunteers", timeout=30).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        idle_since = None
        while True:
            r = http.get(f"{base}/api/v1/projects/{project}/tasks/next", timeout=30)
            if r.status_code == 204:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > IDLE_STOP_SECONDS:
                    return
                time.sleep(0.5)
                continue
            if r.status_code == 429:  # holding the most leases allowed (abandoned ones)
                time.sleep(min(float(r.headers.get("Retry-After", "1")), 1.0))
                continue
            idle_since = None
            check(r, 200)
            task, lease = r.json()["task"]["id"], r.json()["lease"]["token"]
            with lock:
                log["seen"].append([token, task])
            act(http, base, rng, task, lease, token, log, lock)
    except Exception as exc:  # reported to the test, which fails on any
        with lock:
            log["errors"].append(f"{type(exc).__name__}: {exc}")


def act(http, base, rng, task, lease, token, log, lock) -> None:
    roll = rng.random()
    if roll < 0.05:
        return  # abandons the task; the lease expires
    if roll < 0.10:
        check(http.delete(f"{base}/api/v1/leases/{lease}", timeout=30), 200)
        return
    if roll < 0.13:
        time.sleep(2.5)  # answers after the lease expired
    body = {"lease": lease, "answer": {"label": rng.choice(LABELS)}}
    r = http.post(f"{base}/api/v1/tasks/{task}/answers", json=body, timeout=30)
    check(r, 201)
    if roll > 0.95:  # the reply got lost: the same submit again
        again = http.post(f"{base}/api/v1/tasks/{task}/answers", json=body, timeout=30)
        check(again, 201)
        if again.json()["id"] != r.json()["id"]:
            raise AssertionError("a retried submit made a second answer")
    with lock:
        log["answers"].append([token, task, r.json()["id"], r.json()["counted"]])


def check(response, status) -> None:
    if response.status_code != status:
        raise AssertionError(f"{response.request.method} {response.url} -> "
                             f"{response.status_code} {response.text[:300]}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
