"""After a Redis failover or restart: dispatch state rebuilt from SQL, once.

Redis replicates asynchronously, so a promoted replica may lack the last
writes its old master acknowledged: a lease, a counted answer. SQL has them
(answers are committed before Redis hears of them, hand-outs right after),
so the state must be rebuilt from SQL or a task could collect more counted
answers than it needs. Each master has its own replication id (INFO
replication's master_replid; a promoted replica takes a new one), and the
dispatch state keeps the id of the master that last checked it under
REPLID_KEY. A process checks the two after it opens a new connection to
Redis (at start, and after every lost connection: a failover breaks them
all): when they differ, every project's meta is dropped, and the next call
to each project rebuilds it from SQL (engine.dispatch.rebuild.ensure_state),
as after a wipe. GETSET makes one process, not all, do it.

The same process drops every cached identity too: a revocation's tombstone
(engine.identity.forget_token) written just before the failover may not have
reached the replica, nor a Redis restarted from an older snapshot, and the
identity cached beside it would then be honoured for a day. SQL refuses the
token; the next call reads SQL again.

On a Redis Cluster every primary has its id, and the state keeps the set. Only
the projects whose slot is served by a primary with an id not in that set are
dropped: a failover drops the projects of the node that failed over, not
everyone's. Ids that vanished with no new one (a master removed once its
slots, keys and all, had moved away) drop nothing; a master added takes slots
with their keys, so its projects are rebuilt once, needlessly but safely.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from engine.dispatch.dispatcher import keys
from engine.identity import forget_cached_identities
from engine.services import Services
from engine.store.models import Project
from engine.store.redis_server import REDIS_DOWN, is_cluster, replication_ids

REPLID_KEY = "bs:replid"
log = logging.getLogger(__name__)


def check_master(services: Services) -> bool:
    """If a new connection was opened since the last check, compare the masters'
    replication ids with the state's; True when some state was dropped."""
    if not services.redis_reconnected:
        return False
    # Cleared before the calls, which may open a connection (and set it again:
    # one more check, later); set again if they fail, so the check is not lost.
    services.redis_reconnected = False
    try:
        ids = replication_ids(services.redis)
        replids = ",".join(sorted(ids.values()))
        previous = services.redis.getset(REPLID_KEY, replids) if ids else None
    except BaseException:
        services.redis_reconnected = True
        raise
    # a drop this process failed to finish is owed whatever GETSET says now
    # (its own new ids, set before the drop)
    previous = services.failover_owed or previous
    if previous is None:  # a Redis that does not say, or the first check on an
        return False      # empty one (rebuilt anyway): nothing to compare
    new = set(ids.values()) - set(previous.decode().split(","))
    if not new:
        return False  # no change, or a master gone whose slots had moved away
    nodes = {name for name, replid in ids.items() if replid in new}
    try:
        dropped = drop_states(services, nodes if is_cluster(services.redis) else None)
        forgotten = forget_cached_identities(services)
    except BaseException:  # not done: this process's next check does it, and
        services.redis_reconnected = True  # others' if the old ids can be put back
        services.failover_owed = previous
        _put_back(services, previous)
        raise
    services.failover_owed = None
    log.warning("Redis master changed (replication ids %s, were %s): dispatch state of "
                "%d projects is rebuilt from SQL, %d cached identities are read from it "
                "again", replids, previous.decode(), dropped, forgotten)
    return True


def check_master_before_auth(services: Services) -> None:
    """check_master before a token is looked up: the first call after a failover
    must not be answered from identities the new master may lack the
    tombstones of. A check that fails (Redis out of reach, a demoted master
    refusing writes) fails no call: authenticate reads SQL while Redis is
    away, and check_master keeps the check owed for the next call."""
    try:
        check_master(services)
    except REDIS_DOWN:
        pass
    except Exception as exc:  # a check that failed is owed, not a failed call
        log.warning("the Redis master check failed (%s); tried again on the next call",
                    exc)


def _put_back(services: Services, previous: bytes) -> None:
    """The ids as they were before GETSET, so that the drop is not lost with
    this process's failure; if Redis refuses this too, it stays lost."""
    try:
        services.redis.set(REPLID_KEY, previous)
    except REDIS_DOWN:
        log.error("Redis master changed; dropping the dispatch state and cached "
                  "identities failed: only this process will try again")


def drop_states(services: Services, nodes: set[str] | None = None) -> int:
    """Drop every project's meta (on a Cluster, with `nodes`, of the projects
    whose slot those primaries serve): its state then reads as missing, and
    the next call rebuilds it from SQL under the rebuild lock. Returns how
    many were dropped."""
    with services.db.session() as session:
        project_ids = session.scalars(select(Project.id)).all()
    metas = [keys(project_id)["meta"] for project_id in project_ids]
    if nodes is not None:
        metas = [meta for meta in metas
                 if services.redis.get_node_from_key(meta).name in nodes]
    pipe = services.redis.pipeline(transaction=False)
    for meta in metas:  # one key per call: each project has its own slot
        pipe.delete(meta)
    pipe.execute()
    return len(metas)
