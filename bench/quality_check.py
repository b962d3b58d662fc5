"""The quality desk, checked from outside: issue 13's "Check of this capability".

    python bench/quality_check.py            # 150 tasks, 8 honest volunteers, 2 scripts
    python bench/quality_check.py --quick    # 30 tasks: the form tests/test_quality_check.py runs
    python -m bench.quality_check --quick    # the same, from the repository's root

A black-box run over HTTP against the Procfile's processes. The Procfile's own
lines run in bash on a temporary instance folder (`release`: the schema; `web`:
gunicorn on a free port; `worker`: the RQ worker), with SQLite and the embedded
Redis in that folder unless --database-url / --redis-url name others. The
admin's token comes from `bitesize users create --role admin`; from then on
everything is an HTTP call to /api/v1/.

The scenario: a classify project with three labels, gold items and a known
truth for every item, made over HTTP (`POST /projects`, the items as JSON and
the gold items as a CSV through the jobs API), `quality: {"quarantine": true}`
set explicitly, 3 to 5 answers per task. Honest volunteers answer about 85% of
tasks right at a human pace (each answer more than the classify type's 1 s
`min_seconds` after its handout; they wait in threads, side by side). Two
scripted volunteers, started among them, give one label as fast as they can.
An admin acts only on what `GET /inbox` lists: a quarantined volunteer is
blocked in the project (`POST .../volunteers/<v>/block`, with a reason), a
contested task is settled with the known truth (its picture is read from the
review queue).

Passes when each script is quarantined before it has given 10 answers (the
answers it gave before the inbox's `since`, and the answer replies: the one that
tripped the quarantine and every later one say `"counted": false`), the final
results are at least as accurate as the honest volunteers' own majority vote on
the same tasks, no task without a counted answer has a value (checked right
after both scripts are blocked, and at the end), and the inbox listed both
scripts. Also checked: no answer of a blocked script counts at the end, no
honest volunteer was quarantined, and every task was done before the
deadline. Reported: the accuracies, the answers before quarantine, the seconds
to quarantine and the inbox's latency (when the admin's poll first saw the
volunteer, after its `since`).

Table to stdout, figures to bench/results/quality_check.json.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.store.redis_server import EmbeddedRedis  # noqa: E402

RESULTS_PATH = BENCH_DIR / "results" / "quality_check.json"
ORG = "Quality Check Trust"
LABELS = ("deer", "fox", "empty")
PHOTO_TEXT = "camera trap photo "  # + the item's id: what a volunteer is shown
SCRIPT_LABEL = LABELS[0]  # both scripts give the same label: together they would carry votes
QUARANTINE_BEFORE = 10  # a script must be quarantined before it has given this many answers
START_SECONDS = 60


@dataclass(frozen=True)
class Sizes:
    tasks: int  # items without gold, each one task
    gold: int  # gold items
    honest: int
    scripts: int = 2
    honest_accuracy: float = 0.85
    pace: tuple[float, float] = (1.1, 1.5)  # seconds from handout to answer, honest
    min_answers: int = 3
    max_answers: int = 5
    gold_start: float = 0.25
    poll_seconds: float = 0.25  # the admin's inbox
    deadline_seconds: float = 180  # the volunteers' part, at most
    seed: int = 13


QUICK = Sizes(tasks=30, gold=6, honest=8, deadline_seconds=120)
FULL = Sizes(tasks=150, gold=15, honest=8, deadline_seconds=600)


# --- the Procfile's processes ---------------------------------------------------------------

def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """The Procfile's process types and their command lines."""
    lines = (line.split(":", 1) for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {name.strip(): command.strip() for name, command in lines}


def process_env(instance: Path, port: int, redis_url: str = "",
                database_url: str = "") -> dict[str, str]:
    """What a platform gives the Procfile's processes: this Python's scripts first
    on PATH (bitesize, gunicorn), PORT, and only the BITESIZE_* variables named here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITESIZE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(BITESIZE_INSTANCE_PATH=str(instance), PORT=str(port), WEB_CONCURRENCY="2",
               TMPDIR=str(instance / "tmp"),
               # the scripts answer as fast as they can: the quarantine is what is
               # measured here, not the answer rate limit (60/minute) stopping them
               BITESIZE_LIMIT_ANSWERS="100000/minute")
    if redis_url:
        env["BITESIZE_REDIS_URL"] = redis_url
    if database_url:
        env["BITESIZE_DATABASE_URL"] = database_url
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shell(command: str, env: dict[str, str], timeout: float = 120) -> str:
    """A one-off command as a platform runs it (the release step, the CLI); its stdout."""
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{command!r} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def admin_token(env: dict[str, str]) -> str:
    """An organisation admin's API token, made as the README says: on the command line."""
    out = shell(f"bitesize users create --role admin --org {shlex.quote(ORG)} "
                "--name 'Quality desk'", env)
    return out.strip().splitlines()[0]


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: Path


def spawn(name: str, command: str, env: dict[str, str], log: Path) -> Child:
    """One long-running Procfile line in its own process group (stopped as a group)."""
    with log.open("ab") as out:
        process = subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return Child(name, process, log)


def stop(children: list[Child]) -> None:
    """SIGTERM to each child's group (as a platform stops a dyno), SIGKILL if it lingers."""
    for child in children:
        if child.process.poll() is None:
            os.killpg(child.process.pid, signal.SIGTERM)
    for child in children:
        try:
            child.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()


def wait_until_serving(base: str, children: list[Child]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        dead = next((c for c in children if c.process.poll() is not None), None)
        if dead is not None:
            raise RuntimeError(f"the {dead.name} process exited: "
                               f"{dead.log.read_text(errors='replace')[-2000:]}")
        try:
            if requests.get(base + "/api/v1/openapi.json", timeout=5).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the web process did not serve {base} in {START_SECONDS} s")


@dataclass(frozen=True)
class Deployment:
    base: str  # http://127.0.0.1:PORT
    admin_token: str
    instance: Path
    logs: list[Path]


@contextmanager
def deployment(instance: Path, redis_url: str = "",
               database_url: str = "") -> Iterator[Deployment]:
    """The Procfile's release step, then its web and worker processes, on `instance`;
    everything they started is stopped afterwards (the embedded Redis too)."""
    (instance / "tmp").mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = process_env(instance, port, redis_url, database_url)
    lines = procfile()
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()  # a spare database: project ids restart
    children: list[Child] = []
    try:
        shell(lines["release"], env)
        token = admin_token(env)
        children = [spawn(name, lines[name], env, instance / f"{name}.log")
                    for name in ("worker", "web")]
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, children)
        yield Deployment(base, token, instance, [c.log for c in children])
    finally:
        stop(children)
        if not redis_url:
            EmbeddedRedis(instance).stop()


# --- the API, as its callers see it -------------------------------------------------------

class Api:
    """One caller's HTTP session (a volunteer's or the admin's); one thread each."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base + "/api/v1"
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200,),
             **kwargs: Any) -> requests.Response:
        response = self.http.request(method, self.base + path, timeout=60, **kwargs)
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response

    def json(self, method: str, path: str, expect: tuple[int, ...] = (200,),
             **kwargs: Any) -> Any:
        return self.call(method, path, expect, **kwargs).json()

    def close(self) -> None:
        self.http.close()


def new_volunteer(base: str, sessions: ExitStack) -> tuple[int, Api]:
    """An anonymous volunteer (POST /volunteers), with their own session, closed
    with `sessions`."""
    with closing(Api(base)) as anonymous:
        made = anonymous.json("POST", "/volunteers", expect=(201,))
    return made["id"], sessions.enter_context(closing(Api(base, made["token"])))


# --- the project --------------------------------------------------------------------------

@dataclass(frozen=True)
class Truth:
    """What the item shows, by item id (which its text shows, see shown_ref); gold ids apart."""

    labels: dict[str, str]
    gold: frozenset[str]


def make_truth(sizes: Sizes) -> Truth:
    rng = random.Random(sizes.seed)
    labels = {f"item-{n:04d}": rng.choice(LABELS) for n in range(sizes.tasks)}
    gold = {f"gold-{n:02d}": rng.choice(LABELS) for n in range(sizes.gold)}
    return Truth({**labels, **gold}, frozenset(gold))


def project_body(sizes: Sizes) -> dict[str, Any]:
    return {"name": "Quality check: camera traps", "task_type": "classify",
            "config": {"question": "Which animal is in this photo?", "labels": list(LABELS)},
            "min_answers": sizes.min_answers, "max_answers": sizes.max_answers,
            "gold_start": sizes.gold_start,
            "quality": {"quarantine": True}}  # explicit: not the default's business


def gold_csv(truth: Truth) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "id", "gold"])
    for ref in sorted(truth.gold):
        writer.writerow([f"{PHOTO_TEXT}{ref}", ref, truth.labels[ref]])
    return out.getvalue()


def create_project(admin: Api, sizes: Sizes, truth: Truth) -> int:
    """The project, its items as JSON and its gold items as a CSV, split by the worker."""
    project = admin.json("POST", "/projects", expect=(201,), json=project_body(sizes))
    items = [{"text": f"{PHOTO_TEXT}{ref}", "id": ref}
             for ref in sorted(truth.labels) if ref not in truth.gold]
    jobs = [admin.json("POST", f"/projects/{project['id']}/jobs", expect=(202,),
                       json={"items": items}),
            admin.json("POST", f"/projects/{project['id']}/jobs", expect=(202,),
                       files={"file": ("gold.csv", gold_csv(truth), "text/csv")})]
    for job in jobs:
        wait_for_job(admin, job["id"])
    return project["id"]


def wait_for_job(admin: Api, job_id: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = admin.json("GET", f"/jobs/{job_id}")
        if job["state"] == "done":
            return
        if job["state"] == "failed":
            raise RuntimeError(f"job {job_id} failed: {job['error']}")
        time.sleep(0.2)
    raise RuntimeError(f"job {job_id} was not split in {timeout} s (is the worker running?)")


# --- the volunteers -----------------------------------------------------------------------

def answer(api: Api, handout: dict, label: str) -> dict:
    """POST the answer; the reply's fields the check reads, with the task's ref."""
    task = handout["task"]
    reply = api.json("POST", f"/tasks/{task['id']}/answers", expect=(201,),
                     json={"lease": handout["lease"]["token"], "answer": {"label": label}})
    return {"task": task["id"], "ref": shown_ref(task["payload"]), "label": label,
            "counted": reply["counted"], "created_at": reply["created_at"]}


def shown_ref(payload: dict) -> str:
    """The item a volunteer is looking at, read off what the task shows (as a
    person would read the photo): volunteers are not sent the item's id."""
    return payload["text"].removeprefix(PHOTO_TEXT)


def honest_label(truth: Truth, ref: str, rng: random.Random, accuracy: float) -> str:
    """The true label most of the time, another one otherwise."""
    right = truth.labels[ref]
    if rng.random() < accuracy:
        return right
    return rng.choice([label for label in LABELS if label != right])


def honest_volunteer(api: Api, project_id: int, truth: Truth, sizes: Sizes, seed: int,
                     stop_event: threading.Event) -> list[dict]:
    """Looks at each task for a human while (more than min_seconds), then answers;
    when nothing is left for them, looks again now and then (tasks may reopen)."""
    rng, replies = random.Random(seed), []
    while not stop_event.is_set():
        got = api.call("GET", f"/projects/{project_id}/tasks/next", expect=(200, 204))
        if got.status_code == 204:
            stop_event.wait(0.3)
            continue
        handout = got.json()
        label = honest_label(truth, shown_ref(handout["task"]["payload"]), rng,
                             sizes.honest_accuracy)
        time.sleep(rng.uniform(*sizes.pace))
        replies.append(answer(api, handout, label))
    return replies


def scripted_volunteer(api: Api, project_id: int, start_after: float,
                       stop_event: threading.Event) -> list[dict]:
    """One label, as fast as it can, from its start until nothing more is handed out
    (a quarantined volunteer still gets tasks; a blocked one gets none)."""
    stop_event.wait(start_after)
    replies = []
    while not stop_event.is_set():
        got = api.call("GET", f"/projects/{project_id}/tasks/next", expect=(200, 204, 403))
        if got.status_code != 200:
            break
        replies.append(answer(api, got.json(), SCRIPT_LABEL))
    return replies


# --- the admin, at the inbox --------------------------------------------------------------

@dataclass
class Desk:
    """What the admin saw in the inbox and did about it."""

    polls: int = 0
    first_seen: dict[int, float] = field(default_factory=dict)  # volunteer -> time.time()
    listed: dict[int, dict] = field(default_factory=dict)  # volunteer -> its first inbox row
    blocked: dict[int, dict] = field(default_factory=dict)  # volunteer -> the block's reply
    settled: dict[int, str] = field(default_factory=dict)  # task -> the label given
    kinds: Counter = field(default_factory=Counter)  # distinct rows seen, by kind
    errors: list[str] = field(default_factory=list)
    seen: set = field(default_factory=set)


def admin_desk(admin: Api, project_id: int, truth: Truth, sizes: Sizes, desk: Desk,
               stop_event: threading.Event) -> Desk:
    """Poll the inbox; act on each row by the call it points to."""
    while not stop_event.is_set():
        page = admin.json("GET", "/inbox", params={"project": project_id, "limit": 100})
        now = time.time()
        desk.polls += 1
        for row in page["items"]:
            key = (row["kind"], row["volunteer"], row["task"], row["job"], row["event"])
            if key not in desk.seen:
                desk.seen.add(key)
                desk.kinds[row["kind"]] += 1
            act(admin, project_id, truth, row, now, desk)
        stop_event.wait(sizes.poll_seconds)
    return desk


def act(admin: Api, project_id: int, truth: Truth, row: dict, now: float, desk: Desk) -> None:
    if row["kind"] == "volunteer":
        block(admin, project_id, row, now, desk)
    elif row["kind"] == "task":
        settle(admin, project_id, truth, row["task"], desk)


def block(admin: Api, project_id: int, row: dict, now: float, desk: Desk) -> None:
    """A quarantined volunteer: blocked in this project, the flags as the reason."""
    volunteer = row["volunteer"]
    desk.first_seen.setdefault(volunteer, now)
    desk.listed.setdefault(volunteer, row)
    if volunteer in desk.blocked:
        return
    reason = "quarantined for " + ", ".join(row["reasons"] or ["no reason given"])
    desk.blocked[volunteer] = admin.json(
        "POST", f"/projects/{project_id}/volunteers/{volunteer}/block",
        json={"scope": "project", "reason": reason})


def settle(admin: Api, project_id: int, truth: Truth, task_id: int, desk: Desk) -> None:
    """A contested task: its picture read in the review queue, settled with the truth."""
    if task_id in desk.settled:
        return
    queue = admin.json("GET", f"/projects/{project_id}/review", params={"limit": 500})
    entry = next((t for t in queue["tasks"] if t["id"] == task_id), None)
    if entry is None:  # no longer contested (a block merged it again): nothing to do
        return
    label = truth.labels[entry["ref"]]
    done = admin.call("POST", f"/tasks/{task_id}/resolution", expect=(200, 409),
                      json={"answer": {"label": label}, "note": "checked against the truth"})
    if done.status_code == 200:
        desk.settled[task_id] = label


# --- the run ------------------------------------------------------------------------------

def snapshot(admin: Api, project_id: int) -> dict[str, Any]:
    """Results first, then answers: an answer only ever starts counting later, so a
    value in these results with no counted answer in the later answers is real."""
    results = admin.json("GET", f"/projects/{project_id}/results", params={"format": "json"})
    answers = admin.json("GET", f"/projects/{project_id}/answers", params={"format": "json"})
    return {"results": results, "answers": answers, "at": time.time()}


def finished(admin: Api, project_id: int) -> bool:
    progress = admin.json("GET", f"/projects/{project_id}")["progress"]
    return progress["open"] == 0 and progress["contested"] == 0 and \
        progress["jobs_running"] == 0


def watch(admin: Api, project_id: int, scripts: list[int], script_runs: list, desk: Desk,
          deadline: float) -> tuple[dict | None, bool]:
    """Wait until every task is done and the scripts have stopped (and were blocked,
    or 5 s more went by); the snapshot taken once both were blocked, and whether
    it all happened before the deadline."""
    mid, done_since = None, None
    while time.monotonic() < deadline:
        blocked = all(v in desk.blocked for v in scripts)
        scripts_done = all(run.done() for run in script_runs)
        if mid is None and blocked and scripts_done:
            mid = snapshot(admin, project_id)
        if scripts_done and finished(admin, project_id):
            done_since = done_since or time.monotonic()
            if blocked or time.monotonic() - done_since > 5:
                return mid, True
        else:
            done_since = None
        time.sleep(0.5)
    return mid, False


def play(base: str, token: str, sizes: Sizes) -> dict[str, Any]:
    """The scenario against running processes; everything observed, for evaluate()."""
    with ExitStack() as sessions:
        admin = sessions.enter_context(closing(Api(base, token)))
        truth = make_truth(sizes)
        began = time.monotonic()
        project_id = create_project(admin, sizes, truth)
        honest = [new_volunteer(base, sessions) for _ in range(sizes.honest)]
        scripts = [new_volunteer(base, sessions) for _ in range(sizes.scripts)]
        # the desk's own session: an Api's session is not shared between threads
        desk_api = sessions.enter_context(closing(Api(base, token)))
        setup_seconds = time.monotonic() - began
        stop_event, desk = threading.Event(), Desk()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=sizes.honest + sizes.scripts + 1) as pool:
            honest_runs = [pool.submit(honest_volunteer, api, project_id, truth, sizes,
                                       sizes.seed * 100 + n, stop_event)
                           for n, (_, api) in enumerate(honest)]
            # the scripts start among the honest volunteers, a little apart
            script_runs = [pool.submit(scripted_volunteer, api, project_id, 0.5 + 1.5 * n,
                                       stop_event) for n, (_, api) in enumerate(scripts)]
            desk_run = pool.submit(admin_desk, desk_api, project_id, truth, sizes, desk,
                                   stop_event)
            try:
                mid, in_time = watch(admin, project_id, [v for v, _ in scripts], script_runs,
                                     desk, started + sizes.deadline_seconds)
            finally:
                stop_event.set()
            replies = {v: run.result() for (v, _), run in zip(
                honest + scripts, honest_runs + script_runs, strict=True)}
            desk_run.result()
        run_seconds = time.monotonic() - started
        final = snapshot(admin, project_id)
        final["volunteers"] = admin.json("GET",
                                         f"/projects/{project_id}/volunteers")["volunteers"]
        final["inbox"] = admin.json("GET", "/inbox", params={"project": project_id})
    return {"project": project_id, "truth": truth, "sizes": sizes,
            "honest": [v for v, _ in honest], "scripts": [v for v, _ in scripts],
            "replies": replies, "desk": desk, "mid": mid, "final": final,
            "in_time": in_time, "setup_seconds": setup_seconds, "run_seconds": run_seconds}


# --- the verdict --------------------------------------------------------------------------

def when(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def label_of(value: Any) -> str | None:
    """A result's or answer's label, whichever way it is written."""
    if isinstance(value, dict):
        return value.get("label")
    return value


def script_verdict(volunteer: int, replies: list[dict], desk: Desk,
                   stats: dict[int, dict]) -> dict[str, Any]:
    """When the script was quarantined, seen from its answer replies and the inbox."""
    row = desk.listed.get(volunteer)
    since_text = row["since"] if row else (stats.get(volunteer) or {}).get("quarantined_at")
    since = when(since_text) if since_text else None
    counted = [r["counted"] for r in replies]
    first_uncounted = next((n for n, c in enumerate(counted, 1) if not c), None)
    out = {"volunteer": volunteer, "answers": len(replies), "listed": row is not None,
           "reasons": row["reasons"] if row else [], "counted_replies": counted,
           "first_uncounted_reply": first_uncounted, "since": since_text,
           "answers_before_quarantine": None, "seconds_to_quarantine": None,
           "inbox_latency_seconds": None, "quarantined_in_time": False}
    if since is None or not replies:
        return out
    before = sum(1 for r in replies if when(r["created_at"]) < since)
    out["answers_before_quarantine"] = before
    out["seconds_to_quarantine"] = (since - when(replies[0]["created_at"])).total_seconds()
    if volunteer in desk.first_seen:
        out["inbox_latency_seconds"] = desk.first_seen[volunteer] - since.timestamp()
    # the answer that tripped it (the last one before `since`) and every later one
    out["quarantined_in_time"] = (0 < before < QUARANTINE_BEFORE
                                  and not any(counted[before - 1:]))
    return out


def honest_majority(answers: list[dict], honest: set[int], tasks: set[int],
                    truth: dict[int, str]) -> tuple[float | None, int]:
    """The honest volunteers' own plain vote per task, a tie shared among its labels
    (the expected accuracy of breaking it at random); and how many tasks it covers."""
    votes: dict[int, Counter] = defaultdict(Counter)
    for a in answers:
        if a["worker"] in honest and a["task"] in tasks:
            votes[a["task"]][label_of(a["answer"])] += 1
    scores = []
    for task, tally in votes.items():
        top = max(tally.values())
        winners = [label for label, n in tally.items() if n == top]
        scores.append(winners.count(truth[task]) / len(winners))
    return (statistics.fmean(scores) if scores else None), len(scores)


def valueless_violations(snap: dict | None) -> list[int]:
    """Tasks with a value although no answer of theirs counts (by the results' own
    `answers`, or by the answers export read after them)."""
    if snap is None:
        return []
    counted = Counter(a["task"] for a in snap["answers"] if a["counted"])
    return [r["task"] for r in snap["results"] if r["value"] is not None
            and (not r["answers"] or not counted[r["task"]])]


def accuracy(pairs: list[tuple[Any, str]]) -> float | None:
    return statistics.fmean(label_of(v) == t for v, t in pairs) if pairs else None


def evaluate(observed: dict[str, Any]) -> dict[str, Any]:
    """Every figure of the report and its checks, from what play() observed."""
    truth: Truth = observed["truth"]
    final, desk = observed["final"], observed["desk"]
    honest, scripts = set(observed["honest"]), list(observed["scripts"])
    ref_of = {r["task"]: r["item_ref"] for r in final["results"]}
    truth_of = {task: truth.labels[ref] for task, ref in ref_of.items()}
    plain = {task for task, ref in ref_of.items() if ref not in truth.gold}
    answers = [a for a in final["answers"] if a["task"] in plain]
    stats = {s["volunteer"]: s for s in final["volunteers"]} if final.get("volunteers") else {}
    majority, covered = honest_majority(answers, honest, plain, truth_of)
    results = [(r["value"], truth_of[r["task"]]) for r in final["results"]
               if r["task"] in plain]
    per_script = [script_verdict(v, observed["replies"][v], desk, stats) for v in scripts]
    honest_listed = sorted(v for v in desk.listed if v in honest)
    figures = {
        "tasks": len(plain), "gold_tasks": len(ref_of) - len(plain),
        "honest_volunteers": len(honest), "scripts": len(scripts),
        "answers": len(final["answers"]),
        "honest_answer_accuracy": accuracy([(a["answer"], truth_of[a["task"]])
                                            for a in answers if a["worker"] in honest]),
        "script_answer_accuracy": accuracy([(a["answer"], truth_of[a["task"]])
                                            for a in answers if a["worker"] in set(scripts)]),
        "honest_majority_accuracy": majority, "honest_majority_tasks": covered,
        "results_accuracy": accuracy(results),
        "results_by_method": dict(Counter(r["method"] for r in final["results"]
                                          if r["task"] in plain)),
        "tasks_settled_by_admin": len(desk.settled), "inbox_polls": desk.polls,
        "inbox_rows_by_kind": dict(desk.kinds),
        "valueless_with_value_mid": valueless_violations(observed["mid"]),
        "valueless_with_value_final": valueless_violations(final),
        "mid_snapshot_taken": observed["mid"] is not None,
        "script_answers_counted_final": {v: sum(1 for a in final["answers"]
                                                if a["worker"] == v and a["counted"])
                                         for v in scripts},
        "honest_listed": honest_listed,
        "honest_median_seconds": [stats[v]["median_seconds"] for v in sorted(honest)
                                  if v in stats],
        "setup_seconds": observed["setup_seconds"], "run_seconds": observed["run_seconds"],
    }
    checks = {
        "scripts_quarantined_before_10_answers": all(s["quarantined_in_time"]
                                                     for s in per_script),
        "results_at_least_honest_majority": (
            figures["results_accuracy"] is not None and majority is not None
            and figures["results_accuracy"] >= majority),
        "no_value_without_counted_answer": observed["mid"] is not None and not (
            figures["valueless_with_value_mid"] or figures["valueless_with_value_final"]),
        "inbox_listed_both_scripts": all(s["listed"] for s in per_script),
        "no_script_answer_counts_once_blocked": not any(
            figures["script_answers_counted_final"].values()),
        "no_honest_volunteer_quarantined": not honest_listed,
        "every_task_done_in_time": bool(observed["in_time"]),
    }
    return {"project": observed["project"], "sizes": asdict(observed["sizes"]),
            "figures": figures, "scripts": per_script, "checks": checks,
            "passed": all(checks.values())}


def run_check(sizes: Sizes, instance: Path, redis_url: str = "",
              database_url: str = "") -> dict[str, Any]:
    """Start the processes on `instance`, play the scenario, judge it."""
    with deployment(instance, redis_url, database_url) as live:
        observed = play(live.base, live.admin_token, sizes)
        tracebacks = {log.stem: log.read_text(errors="replace").count("Traceback")
                      for log in live.logs}
    report = evaluate(observed)
    report["figures"]["tracebacks_in_logs"] = tracebacks
    return report


# --- the report ---------------------------------------------------------------------------

def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def table(report: dict[str, Any]) -> str:
    f, checks = report["figures"], report["checks"]

    def ok(name: str) -> str:
        return "ok" if checks[name] else "FAILED"

    rows = [("measure", "value", "check"),
            ("tasks (+ gold), honest volunteers, scripts",
             f"{f['tasks']} (+{f['gold_tasks']}), {f['honest_volunteers']}, {f['scripts']}", ""),
            ("honest volunteers' answers right", _share(f["honest_answer_accuracy"]), ""),
            ("scripts' answers right", _share(f["script_answer_accuracy"]), ""),
            (f"honest majority vote ({f['honest_majority_tasks']} tasks)",
             _share(f["honest_majority_accuracy"]), ""),
            ("final results", _share(f["results_accuracy"]),
             ">= honest majority " + ok("results_at_least_honest_majority")),
            ("tasks settled from the inbox", str(f["tasks_settled_by_admin"]), "")]
    for s in report["scripts"]:
        name = f"script {s['volunteer']}"
        rows += [(f"{name}: answers before quarantine ({s['answers']} given)",
                  str(s["answers_before_quarantine"]),
                  f"< {QUARANTINE_BEFORE} " + ("ok" if s["quarantined_in_time"] else "FAILED")),
                 (f"{name}: first reply with counted false", str(s["first_uncounted_reply"]),
                  ""),
                 (f"{name}: time to quarantine", _seconds(s["seconds_to_quarantine"]), ""),
                 (f"{name}: inbox latency (since -> seen)",
                  _seconds(s["inbox_latency_seconds"]),
                  ("listed " + ", ".join(s["reasons"])) if s["listed"] else "NOT LISTED")]
    rows += [("inbox listed both scripts", str(checks["inbox_listed_both_scripts"]),
              ok("inbox_listed_both_scripts")),
             ("values without a counted answer (mid, end)",
              f"{len(f['valueless_with_value_mid'])}, {len(f['valueless_with_value_final'])}",
              "none " + ok("no_value_without_counted_answer")),
             ("scripts' answers counted at the end",
              str(sum(f["script_answers_counted_final"].values())),
              "none " + ok("no_script_answer_counts_once_blocked")),
             ("honest volunteers quarantined", str(len(f["honest_listed"])),
              "none " + ok("no_honest_volunteer_quarantined")),
             ("every task done in time", f"{f['run_seconds']:.1f} s",
              ok("every_task_done_in_time")),
             ("verdict", "PASSED" if report["passed"] else "FAILED", "")]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="30 tasks: the small form the test runs")
    parser.add_argument("--redis-url", default="",
                        help="a spare Redis database (it is FLUSHED); default: embedded Redis")
    parser.add_argument("--database-url", default="",
                        help="a spare SQLAlchemy database; default: SQLite in the instance")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bitesize-quality-") as folder:
        report = run_check(QUICK if args.quick else FULL, Path(folder) / "instance",
                           args.redis_url, args.database_url)
    report["machine"] = {"platform": platform.platform(), "python": platform.python_version(),
                         "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                         "when": datetime.now(UTC).isoformat(timespec="seconds"),
                         "quick": args.quick}
    print(table(report))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    return report


if __name__ == "__main__":
    raise SystemExit(0 if main()["passed"] else 1)
