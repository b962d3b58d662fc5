"""RQ's workers block on a Redis client of their own.

A worker waits for jobs with BLPOP for minutes, and RQ raises its client's
read timeout to fit, for connections made from then on. When the workers
shared the dispatch client (the queues' home by default), connections made
before a worker started kept the dispatch timeout: `bitesize worker` logged
"could not connect to Redis instance: Timeout reading" every minute and backed
off for up to a minute while jobs queued (the demo's quality job, webhooks),
and the process's dispatch calls were left with a timeout of minutes.
"""
from __future__ import annotations

from rq import Queue
from rq.exceptions import DequeueTimeout

from workers.runner import run_worker


def test_a_worker_waits_for_jobs_past_the_dispatch_timeout_and_leaves_it_alone(services):
    services.redis.ping()  # a connection made before any worker, as the upkeep makes
    before = services.redis.connection_pool.connection_kwargs.get("socket_timeout")
    assert before  # dispatch calls fail in seconds when Redis hangs
    run_worker(services, burst=True)  # builds its RQ worker as `bitesize worker` does
    assert services.redis.connection_pool.connection_kwargs.get("socket_timeout") == before
    assert services.worker_redis is not services.redis
    wait = int(before) + 1  # past the dispatch client's read timeout: no job, no error
    try:
        Queue.dequeue_any(services.queues(), wait, connection=services.worker_redis)
    except DequeueTimeout:
        pass  # what RQ's worker loop expects when the wait ends empty
    else:
        raise AssertionError("no job was queued, yet one was dequeued")
