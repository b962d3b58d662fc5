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
as after a wipe. GETSET makes one process, not all, do it. On a Redis
Cluster the id is every primary's, so a failover of any node drops every
project's meta (those on other nodes are rebuilt needlessly, but quickly).
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from engine.dispatch.dispatcher import keys
from engine.services import Services
from engine.store.models import Project
from engine.store.redis_server import replication_id

REPLID_KEY = "bs:replid"
log = logging.getLogger(__name__)


def check_master(services: Services) -> bool:
    """If a new connection was opened since the last check, compare the master's
    replication id with the state's; True when the state was dropped."""
    if not services.redis_reconnected:
        return False
    # Cleared before the calls, which may open a connection (and set it again:
    # one more check, later); set again if they fail, so the check is not lost.
    services.redis_reconnected = False
    try:
        replid = replication_id(services.redis)
        previous = services.redis.getset(REPLID_KEY, replid) if replid else None
    except BaseException:
        services.redis_reconnected = True
        raise
    if not replid:  # a Redis that does not say: nothing to compare
        return False
    if previous is None or previous.decode() == replid:
        return False  # first check on an empty Redis (rebuilt anyway), or no change
    dropped = drop_states(services)
    log.warning("Redis master changed (replication id %s, was %s): dispatch state of "
                "%d projects is rebuilt from SQL", replid, previous.decode(), dropped)
    return True


def drop_states(services: Services) -> int:
    """Drop every project's meta: its state then reads as missing, and the next
    call rebuilds it from SQL under the rebuild lock."""
    with services.db.session() as session:
        project_ids = session.scalars(select(Project.id)).all()
    pipe = services.redis.pipeline(transaction=False)
    for project_id in project_ids:  # one key per call: each project has its own slot
        pipe.delete(keys(project_id)["meta"])
    pipe.execute()
    return len(project_ids)
