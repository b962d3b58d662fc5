"""Redis lost, volunteering goes on or says so (issue 17.2).

A real redis-server of the test's own is stopped under a live app: the next
task is a 503 with Retry-After (never a 500, never a wrong task), answers are
still stored in SQL with a 201 and kept for replay, and once Redis is back
(with its old data, or empty) the replay counts them and merges the tasks
they complete, exactly as the live submits would have.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from engine import identity
from engine.services import Services
from engine.store.models import Answer, PendingSubmit, Result, Task
from engine.volunteering import replay_pending
from web import create_app

from .test_flow import make_project, upload_items


@pytest.fixture
def outage(settings, registry, own_redis):
    """Services and a test client on the test's own Redis."""
    services = Services(replace(settings, redis_url=own_redis.url), registry)
    client = create_app({"SERVICES": services, "TESTING": True}).test_client()
    yield services, client
    services.close()


def project_with_one_task(client, auth, work, need=2):
    charity = auth.charity()
    project = make_project(client, charity, min_answers=need, max_answers=need, confidence=0.5)
    upload_items(client, charity, project["id"], [{"text": "photo 1"}], work)
    return project["id"]


def lease(client, volunteer, project_id):
    r = client.get(f"/api/v1/projects/{project_id}/tasks/next", headers=volunteer)
    assert r.status_code == 200, r.json
    return r.json["task"]["id"], r.json["lease"]["token"]


def pending(services) -> int:
    with services.db.session() as session:
        return session.scalar(select(func.count()).select_from(PendingSubmit))


def task_state(services, task_id):
    with services.db.session() as session:
        task = session.get(Task, task_id)
        result = session.scalar(select(Result).where(Result.task_id == task_id))
        counted = session.scalar(select(func.count()).select_from(Answer).where(
            Answer.task_id == task_id, Answer.counted.is_(True)))
        return task.state, result, counted


@pytest.mark.parametrize("comes_back", ["with its data", "empty"])
def test_answers_are_kept_while_redis_is_down_and_counted_when_it_returns(
        client, auth, work, outage, own_redis, comes_back):
    services, web = outage
    project_id = project_with_one_task(client, auth, work)
    ana, ben, cat = auth.volunteer(), auth.volunteer(), auth.volunteer()
    task_id, ana_lease = lease(web, ana, project_id)
    _, ben_lease = lease(web, ben, project_id)

    own_redis.stop(save=comes_back == "with its data")
    identity._local_cache(services).clear()  # every token must be looked up again

    # No task can be handed out: a 503 that says when to come back, on the
    # hot path and on Flask's path (a query string) alike.
    for path in (f"/api/v1/projects/{project_id}/tasks/next",
                 f"/api/v1/projects/{project_id}/tasks/next?count=2"):
        r = web.get(path, headers=cat)
        assert r.status_code == 503, (path, r.status_code, r.json)
        assert r.headers["Retry-After"] == "5"
        assert r.json["error"]["code"] == "unavailable"

    # Answers are taken all the same, stored in SQL and kept for the replay.
    r = web.post(f"/api/v1/tasks/{task_id}/answers", headers=ana,
                 json={"lease": ana_lease, "answer": {"label": "penguin"}, "next": 1})
    assert r.status_code == 201, r.json
    assert r.json["next"] is None and r.json["next_error"]["status"] == 503
    r = web.post(f"/api/v1/tasks/{task_id}/answers", headers=ben,
                 json={"lease": ben_lease, "answer": {"label": "penguin"}})
    assert r.status_code == 201, r.json
    # a retry while Redis is away is the same answer, not a second one
    again = web.post(f"/api/v1/tasks/{task_id}/answers", headers=ben,
                     json={"lease": ben_lease, "answer": {"label": "penguin"}})
    assert again.status_code == 201 and again.json["id"] == r.json["id"]
    assert pending(services) == 2
    state, result, counted = task_state(services, task_id)
    assert (state, result) == ("open", None) and counted == 2

    own_redis.start()
    assert replay_pending(services) == 2
    assert pending(services) == 0
    state, result, counted = task_state(services, task_id)
    assert state == "retired" and result.value == "penguin" and counted == 2
    # the task is finished in Redis too: nobody else is handed it
    assert web.get(f"/api/v1/projects/{project_id}/tasks/next", headers=cat).status_code == 204
    assert replay_pending(services) == 0


@pytest.mark.parametrize("save", [True, False], ids=["redis back with its data",
                                                   "redis back empty"])
def test_an_answer_to_a_lease_skipped_before_the_outage_is_refused(
        client, auth, work, outage, own_redis, save):
    """SQL records the skip (handout.released_at), so the answer is refused
    while Redis is away, as Redis would refuse it. Before, it got 201 and was
    kept for the replay; with Redis back empty, the rebuild counted it (a
    review)."""
    services, web = outage
    project_id = project_with_one_task(client, auth, work)
    ana = auth.volunteer()
    task_id, token = lease(web, ana, project_id)
    assert web.delete(f"/api/v1/leases/{token}", headers=ana).status_code == 200

    own_redis.stop(save=save)
    r = web.post(f"/api/v1/tasks/{task_id}/answers", headers=ana,
                 json={"lease": token, "answer": {"label": "seal"}})
    assert r.status_code == 410 and r.json["error"]["fields"] == {"lease": "skipped"}
    assert pending(services) == 0

    own_redis.start()
    assert replay_pending(services) == 0
    with services.db.session() as session:
        assert session.query(Answer).count() == 0
    assert task_state(services, task_id)[:2] == ("open", None)
    again = web.post(f"/api/v1/tasks/{task_id}/answers", headers=ana,
                     json={"lease": token, "answer": {"label": "seal"}})
    assert again.status_code == 410  # and still once Redis is back (rebuilt if empty)


def test_sign_ups_wait_and_answers_go_uncounted_by_limits_while_redis_is_down(
        settings, registry, client, auth, work, own_redis):
    """Rate limits cannot count without Redis: a sign-up gets the 503 (no crowd
    of fakes during an outage), an answer is taken uncounted (kept for replay)."""
    project_id = project_with_one_task(client, auth, work)
    services = Services(replace(settings, redis_url=own_redis.url, rate_limits=1), registry)
    web = create_app({"SERVICES": services, "TESTING": True}).test_client()
    ana = auth.volunteer()
    task_id, token = lease(web, ana, project_id)
    own_redis.stop()

    r = web.post("/api/v1/volunteers")
    assert r.status_code == 503 and r.headers["Retry-After"] == "5", r.json
    r = web.post(f"/api/v1/tasks/{task_id}/answers", headers=ana,
                 json={"lease": token, "answer": {"label": "seal"}})
    assert r.status_code == 201 and "RateLimit-Limit" not in r.headers, r.json
    assert pending(services) == 1
    # the volunteer page itself needs no Redis: it loads, and says so through the API
    assert web.get(f"/projects/{project_id}").status_code == 200
    services.close()


def test_the_replay_is_a_periodic_job(services):
    from workers.schedule import PERIODIC

    func, queue, seconds = PERIODIC["replay"]
    assert func == "workers.jobs.replay_answers" and queue == "high" and seconds <= 10


def test_periodic_chains_lost_with_redis_are_started_again(services):
    """A Redis that came back empty took the scheduled runs (the replay's among
    them) with it; the worker's upkeep thread starts each chain again, once."""
    import time

    from workers.runner import start_upkeep
    from workers.schedule import PERIODIC

    services.redis.flushdb()
    stop = start_upkeep(services, every=0.05)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
                services.redis.exists(f"bs:periodic:{name}") for name in PERIODIC):
            time.sleep(0.05)
        assert all(services.redis.exists(f"bs:periodic:{name}") for name in PERIODIC)
        time.sleep(0.3)  # several more rounds: still one scheduled run per chain
    finally:
        stop.set()
        time.sleep(0.1)  # its last round ends before the fixture empties Redis
    scheduled = [job_id for queue in services.queues()
                 for job_id in queue.scheduled_job_registry.get_job_ids()]
    for name in PERIODIC:
        assert len([j for j in scheduled if j.startswith(f"periodic-{name}-")]) == 1, scheduled


def test_an_answer_that_cannot_be_replayed_does_not_hold_up_the_rest(
        client, auth, work, outage, own_redis, caplog):
    services, web = outage
    project_id = project_with_one_task(client, auth, work)
    ana, ben = auth.volunteer(), auth.volunteer()
    task_id, ana_lease = lease(web, ana, project_id)
    _, ben_lease = lease(web, ben, project_id)
    own_redis.stop(save=True)
    ids = [web.post(f"/api/v1/tasks/{task_id}/answers", headers=who,
                    json={"lease": token, "answer": {"label": "seal"}}).json["id"]
           for who, token in ((ana, ana_lease), (ben, ben_lease))]
    with services.db.session() as session:  # the older one's project cannot be found
        session.execute(PendingSubmit.__table__.update().where(
            PendingSubmit.answer_id == ids[0]).values(project_id=999_999))
    own_redis.start()
    assert replay_pending(services) == 2
    assert pending(services) == 0
    assert f"answer {ids[0]} could not be replayed" in caplog.text
    # the one after it went through, and the task (a restarted Redis is a new
    # master: its state was rebuilt from SQL, both answers counted) is merged
    state, result, counted = task_state(services, task_id)
    assert (state, counted) == ("retired", 2) and result.value == "seal"
