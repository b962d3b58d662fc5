"""Dispatch: who may get which task, kept in Redis and changed only by Lua scripts.

Every key of a project carries the hash tag ``{p:ID}`` so that one project
lives in one Redis Cluster slot. Each call below is one atomic script and one
round trip. The state here is a cache of SQL: ``load_project`` rebuilds it,
and ``checkout``/``submit`` report ``StateMissingError`` when it is gone so the
caller can rebuild and retry (see engine.volunteering).
"""
from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import NamedTuple

import redis

from engine.dispatch.meta import GoldMix, ProjectMeta  # noqa: F401  (exported from here too)
from engine.dispatch.meta import as_text as _text
from engine.dispatch.refusals import (
    ExtendLimitError,
    LeaseLimitError,
    LeaseSkippedError,  # noqa: F401  (exported: callers import the refusals from here)
    ProjectClosedError,
    ProjectMissingError,
    StateMissingError,
)
from engine.store.redis_server import REDIS_DOWN, is_cluster, unlink_matching
from engine.store.redis_wire import RedisWire

LUA_DIR = Path(__file__).parent / "lua"
SCAN_LIMIT = 2000  # pool entries a checkout may skip over (tasks this volunteer saw)
GRACE_MS = 24 * 3600 * 1000  # how long a closed lease is remembered, for retries
# A lease token is answerable until GRACE_MS after its expiry (engine.volunteering),
# so how its lease ended (answered, skipped) is remembered at least that long
# (the callers pass remember_ms); a rebuild, which knows when an answer or a
# skip came but not the lease's expiry, adds the longest lease term (an hour:
# web.api.schemas).
REBUILT_GRACE_MS = GRACE_MS + 3600 * 1000
VERSION_SECONDS = 1.0  # how long a process trusts the config version it read last
STRATEGIES = ("breadth", "fifo", "depth", "random")
TASK_SPAN = 2**32  # as in lua/common.lua
PRIORITY_OFFSET = 1000


# Rate-limit windows an answer is counted in by its own submit (web.rate_limits):
# (counter key, window length in ms) each.
Tally = Sequence[tuple[str, int]]

# What an answer's own checkout came to (Dispatcher.submit_and_checkout): the
# tasks handed out, or the refusal checkout would have raised.
Handing = list["Checkout"] | ProjectClosedError | ProjectMissingError | LeaseLimitError


@dataclass(frozen=True)
class Checkout:
    task_id: int
    expires_ms: int
    payload: dict
    task_type: str


@dataclass(frozen=True)
class Submission:
    outcome: str  # counted | repeat | surplus | gold | skipped (nothing counted)
    done: int
    need: int
    answered: int = 0  # the volunteer's answers in the project since the last rebuild
    # with a tally: each rate-limit window's (used, ms left) after this answer
    tallied: tuple[tuple[int, int], ...] = ()

    @property
    def counted(self) -> bool:
        """Whether the answer counts: toward redundancy, or (gold) toward reliability."""
        return self.outcome in ("counted", "repeat", "gold")


class OpenTask(NamedTuple):
    """An open task as the pool takes it (a tuple: a rebuild makes a million)."""

    task_id: int
    need: int
    done: int
    payload: dict | str  # or its JSON text, as a rebuild reads it from SQL
    priority: int = 0
    is_gold: bool = False


def keys(project_id: int) -> dict[str, str]:
    prefix = f"bs:{{p:{project_id}}}:"
    # the scripts also use "extends" and each volunteer's "held:ID" (lua/common.lua)
    names = ("meta", "pool", "state", "leases", "payload", "gold", "blocked", "muted",
             "extends")
    # Each volunteer's answer count lives outside the prefix (same cluster slot):
    # a rebuild drops the prefix's keys, and must not restart everyone's checks.
    return {"prefix": prefix, **{name: prefix + name for name in names},
            "answered": f"bs:answered:{{p:{project_id}}}"}


@lru_cache(maxsize=4096)
def _script_keys(project_id: int) -> tuple[tuple[str, ...], tuple[str, ...], str, str]:
    """The hot path's key lists of a project, built once: (checkout's keys before and
    after the volunteer's seen set, submit's keys after it, the key prefix)."""
    k = keys(project_id)
    return ((k["meta"], k["pool"], k["state"], k["leases"]),
            (k["payload"], k["gold"], k["blocked"]),
            (k["gold"], k["blocked"], k["muted"], k["answered"])), k["prefix"], \
        f"{k['prefix']}seen:"


def seen_key(project_id: int, volunteer_id: int) -> str:
    return f"bs:{{p:{project_id}}}:seen:{volunteer_id}"


class Dispatcher:
    """The dispatch calls of DESIGN.md: checkout, submit, release, settle, load."""

    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection
        common = (LUA_DIR / "common.lua").read_text()
        bodies = {name: (LUA_DIR / f"{name}.lua").read_text()
                  for name in ("checkout", "submit", "release", "settle", "extend",
                               "submit_checkout", "tally", "tallied", "recount")}
        texts = {name: common + bodies[name]
                 for name in ("checkout", "submit", "release", "settle", "extend", "recount")}
        parts = common + _as_function("submit", bodies["submit"]) + _as_function(
            "checkout", bodies["checkout"])
        texts["submit_checkout"] = parts + bodies["submit_checkout"]
        # the same two, also counting the answer in its rate-limit windows
        tally = _as_function("tally", bodies["tally"])
        texts["tallied_submit"] = (common + tally + _as_function("call", bodies["submit"])
                                   + bodies["tallied"])
        texts["tallied_submit_checkout"] = (
            parts + tally + _as_function("call", bodies["submit_checkout"]) + bodies["tallied"])
        self._scripts = {name: connection.register_script(text) for name, text in texts.items()}
        self._scripts["mark"] = connection.register_script((LUA_DIR / "mark.lua").read_text())
        for name in ("remeta", "setmeta"):
            self._scripts[name] = connection.register_script(
                (LUA_DIR / f"{name}.lua").read_text())
        self._scripts["tally"] = connection.register_script(bodies["tally"])
        self._wire = RedisWire(connection)
        # On a Redis Cluster an answer's rate-limit counters (keyed by volunteer)
        # are not in its project's slot: they are counted by a call of their own.
        self._tally_apart = is_cluster(connection)
        self._versions: dict[int, tuple[float, str]] = {}  # project -> (fresh until, version)

    def checkout(self, project_id: int, volunteer_id: int, count: int = 1,
                 max_leases: int = 0) -> list[Checkout]:
        """Lease up to `count` of the best unseen open tasks (gold mixed in) to a volunteer,
        so that they hold at most `max_leases` live leases (0: no cap).

        An empty list means nothing is left for them. Raises ProjectClosedError
        when the project takes no answers now, LeaseLimitError when they hold
        `max_leases` already.
        """
        (base, after, _), prefix, seen = _script_keys(project_id)
        reply = self._wire.script(
            self._scripts["checkout"], (*base, f"{seen}{volunteer_id}", *after),
            (prefix, volunteer_id, SCAN_LIMIT, count, max_leases,
             *(random.random() for _ in range(count))))
        return _checkouts(project_id, reply)

    def submit(self, project_id: int, task_id: int, volunteer_id: int,
               tally: Tally = (), remember_ms: int = GRACE_MS) -> Submission:
        """Close the lease once (retries are idempotent: how it ended is remembered
        for `remember_ms`, as long as its token is answerable) and count the answer
        if needed; outcome 'skipped' when the volunteer gave the task back (nothing
        counted). The answer is also counted in the `tally`'s rate-limit windows,
        if any (Submission.tallied), in the same call."""
        (base, _, after), prefix, seen = _script_keys(project_id)
        reply = self._tallied("submit", (*base, f"{seen}{volunteer_id}", *after),
                              (prefix, task_id, volunteer_id, remember_ms), tally)
        return _submission(project_id, reply[0], reply[1])

    def submit_and_checkout(self, project_id: int, task_id: int, volunteer_id: int,
                            count: int, max_leases: int = 0, tally: Tally = (),
                            remember_ms: int = GRACE_MS) -> tuple[Submission, Handing]:
        """`submit`, then `checkout` of up to `count` tasks, in one atomic call: an
        answer that asks for the next task costs one round trip, not two.

        The second part is what checkout would return, or the ProjectClosedError
        or LeaseLimitError it would raise, returned instead: the answer stands
        whatever happens to the hand-out. No checkout is made when the answer's
        lease was skipped (the caller refuses that answer): the list is empty.
        """
        (base, (payload, *_), after), prefix, seen = _script_keys(project_id)
        reply, tallied = self._tallied(
            "submit_checkout", (*base, f"{seen}{volunteer_id}", *after, payload),
            (prefix, task_id, volunteer_id, remember_ms, SCAN_LIMIT, count, max_leases,
             *(random.random() for _ in range(count))), tally)
        submission = _submission(project_id, reply[0], tallied)
        try:
            return submission, _checkouts(project_id, reply[1]) if len(reply) > 1 else []
        except (ProjectClosedError, ProjectMissingError, LeaseLimitError) as refusal:
            return submission, refusal

    def _tallied(self, name: str, keys: tuple, args: tuple, tally: Tally) -> tuple[list, list]:
        """Run a submit script, through lua/tallied.lua when there is a tally:
        (the script's reply, the tally's flat reply, empty without one)."""
        if not tally:
            return self._wire.script(self._scripts[name], keys, args), []
        if self._tally_apart:
            return self._tallied_apart(name, keys, args, tally)
        reply = self._wire.script(
            self._scripts[f"tallied_{name}"], (*keys, *(key for key, _ in tally)),
            (*args, *(ms for _, ms in tally), len(tally)))
        return reply[0], reply[1] if len(reply) > 1 else []

    def _tallied_apart(self, name: str, keys: tuple, args: tuple, tally: Tally
                       ) -> tuple[list, list]:
        """The submit, then (a fresh one only, as lua/tallied.lua decides) the
        answer's count in its windows, in a second call to their own slot."""
        reply = self._wire.script(self._scripts[name], keys, args)
        submitted = reply[0] if isinstance(reply[0], list) else reply  # submit_checkout's
        if len(submitted) < 4:
            return reply, []
        try:
            return reply, self._wire.script(self._scripts["tally"], [key for key, _ in tally],
                                            [ms for _, ms in tally])
        except REDIS_DOWN:  # the answer went through: it goes uncounted (a soft limit)
            return reply, []

    def extend(self, project_id: int, task_id: int, volunteer_id: int,
               max_extends: int = 2**31) -> int | None:
        """Push a live lease's expiry forward; its new expiry (ms), or None if not live.

        Raises ExtendLimitError once the lease was extended `max_extends` times."""
        (base, _, _), prefix, _ = _script_keys(project_id)
        reply = int(self._wire.script(self._scripts["extend"], base,
                                      (prefix, task_id, volunteer_id, max_extends)))
        if reply < 0:
            raise ExtendLimitError(
                f"this lease was extended {max_extends} times, the most allowed: "
                "submit the answer or skip the task", {"lease": "extended too often"})
        return reply or None

    def release(self, project_id: int, task_id: int, volunteer_id: int,
                remember_ms: int = GRACE_MS) -> bool:
        """A skip: the task goes back to the pool, never again to this volunteer, and
        the lease can no longer be answered (for `remember_ms`: as long as its
        token is answerable). True if a live lease was released."""
        (base, _, _), prefix, _ = _script_keys(project_id)
        reply = self._wire.script(self._scripts["release"], base,
                                  (prefix, task_id, volunteer_id, remember_ms))
        return bool(reply)

    def settle(self, project_id: int, task_id: int, need: int | None,
               exact: bool = False) -> int:
        """Retire a task (need None) or raise its need so it collects more answers;
        `exact`: set the need, lower too (a re-merge counted every answer again).
        0: the task has no state; 1: settled; 2: settled, and it already holds
        the need (answers counted against a higher one): the caller merges it."""
        (base, (payload, *_), _), prefix, _ = _script_keys(project_id)
        return int(self._wire.script(self._scripts["settle"], (*base, payload),
                                     (prefix, task_id, need or 0, int(exact))))

    def recount(self, project_id: int, volunteer_id: int, deltas: dict[int, int]) -> int:
        """Move each task's count of counted answers by its delta (task id ->
        delta): the volunteer's answers stopped counting, or count again
        (engine.quality.moderation), and their tasks go back into the pool, or
        leave it, at once. Tasks with no state (retired, gold) are passed over,
        and so is an answer Redis never counted (lua/recount.lua). Returns how
        many tasks moved; -1 when the project has no state."""
        (base, _, _), prefix, _ = _script_keys(project_id)
        moved = 0
        for chunk in _batched(sorted(deltas.items()), 5000):
            got = int(self._wire.script(
                self._scripts["recount"], base,
                (prefix, volunteer_id, *itertools.chain.from_iterable(chunk))))
            if got < 0:
                return -1
            moved += got
        return moved

    def stateless(self, project_id: int, task_ids: Sequence[int]) -> list[int]:
        """Those of these tasks that have no state in Redis (retired, never
        loaded); none when the project has no state at all (a rebuild will
        load it whole)."""
        k = keys(project_id)
        if not task_ids or not self.redis.exists(k["meta"]):
            return []
        found = self.redis.hmget(k["state"], list(task_ids))
        return [task for task, state in zip(task_ids, found, strict=True) if state is None]

    def meta(self, project_id: int) -> ProjectMeta | None:
        raw = self.redis.hgetall(keys(project_id)["meta"])
        return ProjectMeta.from_fields(project_id, raw) if raw else None

    def meta_version(self, project_id: int) -> str | None:
        """Just the config version: enough to tell whether cached schemas are fresh.

        Read from Redis at most once a second per project (every answer asks),
        so another process's config change is seen within VERSION_SECONDS;
        this process's own set_meta is seen at once. None: no state in Redis.
        """
        now = time.monotonic()
        cached = self._versions.get(project_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        meta = keys(project_id)["meta"]
        version = self._wire.call(("HGET", meta, "version"),
                                  lambda: self.redis.hget(meta, "version"), meta)
        if version is None:
            return None
        if len(self._versions) > 10_000:
            self._versions.clear()
        self._versions[project_id] = (now + VERSION_SECONDS, _text(version))
        return _text(version)

    def set_meta(self, meta: ProjectMeta, present_only: bool = False) -> bool:
        """Write the project's meta; with `present_only`, only over a meta Redis
        still has (lua/setmeta.lua says why). Returns whether it was written."""
        written = self._scripts["setmeta"](keys=[keys(meta.project_id)["meta"]], args=[
            "1" if present_only else "0", *(x for pair in meta.fields().items() for x in pair)])
        self._versions.pop(meta.project_id, None)  # after the write: no stale re-read
        return written == 1

    def versions(self, project_ids: Sequence[int]) -> dict[int, str]:
        """The version each of these projects has in Redis (those with none are
        left out), in one pipelined round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for project_id in project_ids:
            pipe.hget(keys(project_id)["meta"], "version")
        return {project_id: _text(version) for project_id, version
                in zip(project_ids, pipe.execute(), strict=True) if version is not None}

    def replace_version(self, project_id: int, read: str, version: str) -> bool:
        """Set the project's version alone, only while it is still `read`."""
        written = self._scripts["remeta"](keys=[keys(project_id)["meta"]],
                                          args=[read, version]) == 1
        self._versions.pop(project_id, None)
        return written

    def add_tasks(self, project_id: int, tasks: Iterable[OpenTask],
                  answered: Iterable[tuple[int, int, bool]] = (),
                  handed: Iterable[tuple[int, int]] = (), strategy: str | None = None,
                  skipped: Iterable[tuple[int, int]] = ()) -> int:
        """Put open tasks, and the answers they already have, into the pool;
        returns how many tasks were put (`tasks` may be a stream).

        Used for new tasks from a job and by a rebuild; pipelined in batches
        because a job may bring a hundred thousand tasks. Each stored answer
        (task, volunteer, counted) marks its lease as closed, so a submit
        retried after a rebuild is still recognised and not counted twice.
        Each handout (task, volunteer) keeps that task from that volunteer;
        each skipped one (given back, never answered) is refused an answer.
        The pool is ordered by the project's strategy: a rebuild names it (the
        project's meta, which says it otherwise, is written after the tasks).
        """
        k = keys(project_id)
        strategy = strategy or _text(self.redis.hget(k["meta"], "strategy") or b"breadth")
        marks = itertools.chain(
            ((task, volunteer, "done" if counted else "surplus")
             for task, volunteer, counted in answered),
            ((task, volunteer, "-") for task, volunteer in handed),
            ((task, volunteer, "skipped") for task, volunteer in skipped))
        mark = self._scripts["mark"]
        if answered or handed or skipped:
            self.redis.script_load(mark.script)  # EVALSHA below, on the stream
        with self._wire.stream(k["meta"]) as send:
            # The marks first: Redis runs them while the tasks are read from SQL.
            for chunk in _batched(marks, 5000):
                send([("EVALSHA", mark.sha, 1, k["meta"], k["prefix"], REBUILT_GRACE_MS,
                       *itertools.chain.from_iterable(chunk))])
            put = 0
            for chunk in _batched(tasks, 2000):
                send(self._pool_chunk(k, strategy, chunk))
                put += len(chunk)
        return put

    @staticmethod
    def _pool_chunk(k: dict[str, str], strategy: str, chunk: list[OpenTask]) -> list[tuple]:
        """One HSET or ZADD per key for a whole chunk of tasks (one command per task
        cost a job most of its time in Redis). Payloads and states go first, so a
        checkout never meets a pooled task without them. A rebuild puts a million
        tasks through here, so the loop is kept lean (it was a tenth of one)."""
        payloads, states, pool, gold = [], [], [], []
        scored = partial(pool_score, strategy)
        for task_id, need, done, payload, priority, is_gold in chunk:
            # a rebuild reads payloads from SQL as JSON text already
            payloads += (task_id, payload if payload.__class__ is str else json.dumps(payload))
            if is_gold:
                gold += (task_id, task_id)
                continue
            states += (task_id, f"{need}:{done}:0:{priority}")
            if done < need:
                pool += (scored(task_id, done, priority), task_id)
        commands = [("HSET", k["payload"], *payloads)]
        if states:
            commands.append(("HSET", k["state"], *states))
        if pool:
            commands.append(("ZADD", k["pool"], *pool))
        if gold:
            commands.append(("ZADD", k["gold"], *gold))
        return commands

    def block(self, project_id: int, volunteer_ids: Iterable[int]) -> None:
        """These volunteers get no tasks in the project and their answers don't count."""
        ids = list(volunteer_ids)
        if ids:
            self.redis.sadd(keys(project_id)["blocked"], *ids)

    def mute(self, project_id: int, volunteer_ids: Iterable[int]) -> None:
        """Quarantine: these volunteers still get tasks (a script cannot tell) but
        their answers do not count, gold included."""
        ids = list(volunteer_ids)
        if ids:
            self.redis.sadd(keys(project_id)["muted"], *ids)

    def unmute(self, project_id: int, volunteer_ids: Iterable[int]) -> None:
        """Their answers count again, and they get tasks (unblock, clear): out of
        both the blocked and the muted sets (a block ends a quarantine)."""
        ids = list(volunteer_ids)
        if ids:
            k = keys(project_id)
            self.redis.srem(k["blocked"], *ids)
            self.redis.srem(k["muted"], *ids)

    def drop_project(self, project_id: int) -> None:
        """Forget a project's dispatch state entirely (before a rebuild)."""
        self._versions.pop(project_id, None)
        unlink_matching(self.redis, f"bs:{{p:{project_id}}}:*", keys(project_id)["meta"])


def pool_score(strategy: str, task_id: int, cover: int, priority: int) -> int:
    """The pool order of a task: the same formula as `score` in lua/common.lua."""
    band = (PRIORITY_OFFSET - priority) * 256
    if strategy == "fifo":
        return band * TASK_SPAN + task_id
    if strategy == "depth":
        return (band + 255 - min(cover, 255)) * TASK_SPAN + task_id
    if strategy == "random":
        return band * TASK_SPAN + (task_id * 2654435761) % TASK_SPAN
    return (band + min(cover, 255)) * TASK_SPAN + task_id


def _checkouts(project_id: int, reply: list) -> list[Checkout]:
    """The tasks of a checkout script's reply, or the error it stands for."""
    task_type = _text(reply[0])  # or the reason why no task could be given
    if task_type == "missing" and len(reply) == 1:
        raise StateMissingError(f"no dispatch state for project {project_id}")
    if task_type == "closed" and len(reply) == 1:
        raise ProjectClosedError(f"project {project_id} is not taking answers now")
    if task_type == "hidden" and len(reply) == 1:
        raise ProjectMissingError(project_id)
    if task_type == "full" and len(reply) == 2:  # a hand-out has 1 + 3n entries
        raise LeaseLimitError(int(reply[1]))
    return [Checkout(int(reply[i]), int(reply[i + 1]), json.loads(reply[i + 2]), task_type)
            for i in range(1, len(reply), 3)]


def _submission(project_id: int, reply: list, tallied: list = ()) -> Submission:
    """A submit script's reply (and its tally's), or StateMissingError."""
    if _text(reply[0]) == "missing":
        raise StateMissingError(f"no dispatch state for project {project_id}")
    return Submission(_text(reply[0]), int(reply[1]), int(reply[2]),
                      int(reply[3]) if len(reply) > 3 else 0,
                      tuple(zip(map(int, tallied[::2]), map(int, tallied[1::2]), strict=True)))


def _as_function(name: str, body: str) -> str:
    """A script's text as a local Lua function of its own KEYS and ARGV, so that a
    script can run another's body unchanged (lua/submit_checkout.lua)."""
    return f"local function {name}(KEYS, ARGV)\n{body}\nend\n"


def _batched(iterable, size: int):
    iterator = iter(iterable)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
