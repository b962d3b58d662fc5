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


@pytest.mark.parametrize("change", ["edit", "pause"])
def test_a_rebuild_never_publishes_over_a_newer_change(services, make_project, owner,
                                                       monkeypatch, change):
    """A rebuild reads the project, loads its tasks for a while, then publishes.
    An edit or a pause committed and published meanwhile must not be written
    over by the row the rebuild read before it (the answer schema, the kept
    quality thresholds and the active flag would be stale until the next
    publish): the last publish is of the row as it is then."""
    import threading

    from engine import lifecycle
    from engine.dispatch.dispatcher import keys
    from engine.dispatch.rebuild import rebuild_project as rebuild
    from engine.projects import config_version
    from engine.store.models import Project

    project = make_project(tasks=2)
    loading, go = threading.Event(), threading.Event()
    add_tasks = services.dispatcher.add_tasks

    def slow_add_tasks(*args, **kwargs):
        loading.set()
        go.wait(10)
        return add_tasks(*args, **kwargs)

    monkeypatch.setattr(services.dispatcher, "add_tasks", slow_add_tasks)
    rebuilding = threading.Thread(target=rebuild, args=(services, project.id))
    rebuilding.start()
    assert loading.wait(10)
    if change == "edit":
        changing = threading.Thread(target=lifecycle.update_project, args=(
            services, owner, project.id, {"config": {"question": "Which owl?"}}))
    else:
        changing = threading.Thread(target=lifecycle.pause_project,
                                    args=(services, owner, project.id))
    changing.start()
    changing.join(0.5)  # before: it published and returned; now: waits for the rebuild
    go.set()
    rebuilding.join(10)
    changing.join(10)
    with services.db.session() as session:
        row = session.get(Project, project.id)
        version, state = config_version(row), row.state
    meta = services.redis.hgetall(keys(project.id)["meta"])
    assert meta[b"version"].decode() == version
    assert meta[b"active"] == (b"1" if state == "active" else b"0")
