"""An admin's settlement, or the volunteers' reports withdrawing a task,
committed while a rebuild is between its read of SQL and its write to Redis:
the rebuild read the task open and wrote it back into the pool, where it was
handed out again and collected answers that the result no longer matched.
Both now take the task out under the project's rebuild lock."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from engine.dispatch import rebuild
from engine.dispatch.dispatcher import Dispatcher, keys
from engine.quality.review import resolve
from engine.store.models import Task
from engine.volunteering import next_task, report_task


def _during_a_rebuild(services, project_id: int, monkeypatch, act: Callable[[], object]) -> list:
    """Run ``act`` in a thread once the rebuild has read SQL, before it writes
    the open tasks to Redis; what ``act`` returned, once it has."""
    real, done = Dispatcher.add_tasks, []

    def add_tasks(self, project, tasks, *args, **kwargs):
        tasks = list(tasks)  # read from SQL: the task is still open
        acting = threading.Thread(target=lambda: done.append(act()))
        acting.start()
        acting.join(2)  # it commits meanwhile, or waits for this rebuild
        return real(self, project, tasks, *args, **kwargs)

    monkeypatch.setattr(Dispatcher, "add_tasks", add_tasks)
    rebuild.rebuild_project(services, project_id)
    monkeypatch.setattr(Dispatcher, "add_tasks", real)
    deadline = time.monotonic() + 10
    while not done and time.monotonic() < deadline:
        time.sleep(0.05)
    assert done
    return done


def test_a_task_settled_during_a_rebuild_is_not_handed_out_again(
        services, make_project, owner, volunteer, monkeypatch):
    project = make_project(tasks=1, min_answers=3, max_answers=3)
    task_id = next_task(services, volunteer(), project.id).task_id
    [settled] = _during_a_rebuild(services, project.id, monkeypatch, lambda: resolve(
        services, owner, task_id, {"label": "a"}, "spot check"))
    assert settled.state == "settled"
    assert services.redis.hget(keys(project.id)["state"], str(task_id)) is None
    assert next_task(services, volunteer(), project.id) is None


def test_a_task_withdrawn_during_a_rebuild_is_not_handed_out_again(
        services, make_project, volunteer, monkeypatch):
    project = make_project(tasks=1, min_answers=3, max_answers=3)
    first, second = volunteer(), volunteer()
    leases = [next_task(services, v, project.id) for v in (first, second)]
    report_task(services, first, leases[0].lease, "offensive")
    [filed] = _during_a_rebuild(services, project.id, monkeypatch, lambda: report_task(
        services, second, leases[1].lease, "offensive"))
    assert filed.withdrawn
    with services.db.session() as session:
        assert session.get(Task, leases[0].task_id).state == "contested"
    assert next_task(services, volunteer(), project.id) is None
