"""A rebuild from SQL (engine.dispatch.rebuild): what comes back in Redis is
what was there, in the same order, and it streams (bench/rebuild.py times it)."""
from __future__ import annotations

import pytest
import redis

from engine.dispatch.rebuild import rebuild_project
from engine.store.redis_wire import RedisWire
from engine.volunteering import next_task, submit_answer

from .test_dispatch_features import task_ids


@pytest.mark.parametrize("strategy", ["depth", "breadth"])
def test_a_rebuild_keeps_the_projects_hand_out_order(services, make_project, volunteer,
                                                     strategy):
    """The pool is rebuilt in the project's own strategy. (It once took the
    strategy from the project's meta, which a rebuild writes last: every
    project came back as breadth.)"""
    project = make_project(tasks=3, min_answers=3, max_answers=3, strategy=strategy)
    ids = task_ids(services, project)
    v = volunteer()
    handout = next_task(services, v, project.id)
    assert handout.task_id == ids[0]
    submit_answer(services, v, ids[0], handout.lease, {"label": "a"})
    services.redis.flushdb()
    assert rebuild_project(services, project.id) == 3
    first = next_task(services, volunteer(), project.id).task_id
    # depth finishes the started task first; breadth starts an untouched one
    assert first == (ids[0] if strategy == "depth" else ids[1])


def test_a_rebuild_remembers_answers_and_hand_outs(services, make_project, volunteer):
    project = make_project(tasks=2, min_answers=2, max_answers=2)
    answered, shown = volunteer(), volunteer()
    handout = next_task(services, answered, project.id)
    receipt = submit_answer(services, answered, handout.task_id, handout.lease,
                            {"label": "a"})
    seen = next_task(services, shown, project.id).task_id
    services.redis.flushdb()
    rebuild_project(services, project.id)
    # the retried submit is the same answer, not a second count
    again = submit_answer(services, answered, handout.task_id, handout.lease, {"label": "a"})
    assert again.answer_id == receipt.answer_id and again.counted
    # nobody is handed what they answered or were shown before the wipe
    assert next_task(services, answered, project.id).task_id != handout.task_id
    assert next_task(services, shown, project.id).task_id != seen


def test_the_stream_raises_an_error_reply_after_reading_every_reply(services):
    wire = RedisWire(services.redis)
    services.redis.set("bs:test:text", "x")
    with pytest.raises(redis.ResponseError), wire.stream() as send:
        send([("SET", "bs:test:a", 1), ("INCR", "bs:test:text"), ("SET", "bs:test:b", 2)])
        send([("SET", "bs:test:c", 3)])
    assert services.redis.mget("bs:test:a", "bs:test:b", "bs:test:c") == [b"1", b"2", b"3"]
    # the connection went back in step: the next call reads its own reply
    assert wire.call(("GET", "bs:test:a"), lambda: None) == b"1"


def test_chunked_reads_are_planned_for_their_own_ids(services):
    """engine.store.db.custom_plans: on PostgreSQL the transaction plans each
    statement for its values (a generic plan for 500 task ids scanned a fresh
    project's tasks every time), and only that transaction; elsewhere nothing."""
    from sqlalchemy import text

    from engine.store.db import custom_plans

    with services.db.session() as session:
        custom_plans(session)
        if services.db.engine.dialect.name != "postgresql":
            return  # SQLite plans every statement as it runs
        assert session.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
    with services.db.session() as session:
        assert session.execute(text("SHOW plan_cache_mode")).scalar() == "auto"


def test_an_edit_while_redis_is_empty_leaves_the_project_to_its_rebuild(
        services, make_project, volunteer, owner):
    """A publish once wrote the meta into an empty Redis; the meta's presence
    says "this project's state is complete", so no rebuild ran and the
    project handed out nothing until someone ran `queue rebuild`."""
    from engine.lifecycle import update_project
    project = make_project(tasks=2)
    services.redis.flushdb()
    update_project(services, owner, project.id, {"name": "barn owls"})
    assert next_task(services, volunteer(), project.id) is not None


def _changing(services, owner, project_id: int, change: str):
    """A thread that edits or pauses the project, and a test of whether its
    change has committed."""
    import threading

    from engine import lifecycle
    from engine.store.models import Project

    if change == "edit":
        thread = threading.Thread(target=lifecycle.update_project, args=(
            services, owner, project_id, {"config": {"question": "Which owl?"}}))
    else:
        thread = threading.Thread(target=lifecycle.pause_project,
                                  args=(services, owner, project_id))

    def committed() -> bool:
        with services.db.session() as session:
            row = session.get(Project, project_id)
            return row.state == "paused" or row.config["question"] == "Which owl?"

    return thread, committed


def _until(condition, seconds: float = 10) -> bool:
    import time
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _published_row(services, project_id: int) -> None:
    """Redis's meta is the project's row as SQL has it now."""
    from engine.dispatch.dispatcher import keys
    from engine.projects import config_version
    from engine.store.models import Project

    with services.db.session() as session:
        row = session.get(Project, project_id)
        version, state = config_version(row), row.state
    meta = services.redis.hgetall(keys(project_id)["meta"])
    assert meta[b"version"].decode() == version
    assert meta[b"active"] == (b"1" if state == "active" else b"0")


@pytest.mark.parametrize("change", ["edit", "pause"])
@pytest.mark.parametrize("when", ["while it loads", "before it publishes"])
def test_a_rebuild_never_publishes_over_a_newer_change(services, make_project, owner,
                                                       monkeypatch, change, when):
    """A rebuild reads the project, loads its tasks for a while, then publishes.
    An edit or a pause committed and published meanwhile must not be written
    over by an older row (the answer schema, the kept quality thresholds and
    the active flag would be stale until the next publish): while it loads,
    the rebuild must publish the row as it is after; once it has read the row
    to publish, the change must publish after it (the rebuild lock)."""
    import threading

    from engine.dispatch import rebuild

    project = make_project(tasks=2)
    paused, go = threading.Event(), threading.Event()
    real = {"while it loads": services.dispatcher.add_tasks,
            "before it publishes": rebuild.publish}[when]

    def held(*args, **kwargs):
        if not paused.is_set():  # the rebuild's own call (the change's comes after)
            paused.set()
            go.wait(10)
        return real(*args, **kwargs)

    if when == "while it loads":
        monkeypatch.setattr(services.dispatcher, "add_tasks", held)
    else:
        monkeypatch.setattr(rebuild, "publish", held)
    rebuilding = threading.Thread(target=rebuild.rebuild_project, args=(services, project.id))
    rebuilding.start()
    assert paused.wait(10)
    changing, committed = _changing(services, owner, project.id, change)
    changing.start()
    assert _until(committed)
    changing.join(0.5)  # before: it published and returned; now: waits for the rebuild
    go.set()
    rebuilding.join(10)
    changing.join(10)
    assert not rebuilding.is_alive() and not changing.is_alive()
    _published_row(services, project.id)


def test_an_answer_during_an_edit_after_a_wipe_is_taken(services, make_project, volunteer,
                                                         owner, monkeypatch):
    """An edit's publish holds the rebuild lock and, Redis having lost the
    project, writes nothing. A submit that found the state missing and waited
    on that lock once gave up with "project does not exist"; it must rebuild."""
    import threading

    from engine.dispatch import rebuild
    from engine.lifecycle import update_project

    project = make_project(tasks=2)
    v = volunteer()
    handout = next_task(services, v, project.id)
    services.redis.flushdb()
    current, inside = rebuild._current, threading.Event()

    def slow_current(*args):
        if not inside.is_set():  # the edit's re-read, holding the lock
            inside.set()
            import time
            time.sleep(0.5)
        return current(*args)

    monkeypatch.setattr(rebuild, "_current", slow_current)
    editing = threading.Thread(target=update_project,
                               args=(services, owner, project.id, {"name": "barn owls"}))
    editing.start()
    assert inside.wait(10)
    receipt = submit_answer(services, v, handout.task_id, handout.lease, {"label": "a"})
    editing.join(10)
    assert receipt.counted


def test_a_draft_deleted_while_it_rebuilds_leaves_nothing_in_redis(
        services, make_project, owner, monkeypatch):
    """The rebuild publishes the row as it is after its load: a draft deleted
    meanwhile has none, and none of its state may stay behind."""
    import threading

    from engine.dispatch import rebuild
    from engine.errors import NotFoundError
    from engine.lifecycle import delete_draft

    project = make_project(tasks=2, state="draft")
    paused, go = threading.Event(), threading.Event()
    add_tasks = services.dispatcher.add_tasks

    def held(*args, **kwargs):
        paused.set()
        go.wait(10)
        return add_tasks(*args, **kwargs)

    monkeypatch.setattr(services.dispatcher, "add_tasks", held)
    failed = []

    def rebuild_it():
        try:
            rebuild.rebuild_project(services, project.id)
        except NotFoundError as exc:
            failed.append(exc)

    rebuilding = threading.Thread(target=rebuild_it)
    rebuilding.start()
    assert paused.wait(10)
    delete_draft(services, owner, project.id)
    go.set()
    rebuilding.join(10)
    assert failed
    assert not services.redis.keys(f"*{{p:{project.id}}}*")
