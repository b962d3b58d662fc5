"""The engine's shared parts for one process: settings, SQL, Redis, task types.

web/ and workers/ each build one Services at start-up and pass it to the
engine's functions; nothing here is a module global, so tests can build as
many as they like against different databases and Redis servers.
"""
from __future__ import annotations

from functools import cached_property

import redis
from rq import Queue

from engine.config import Settings
from engine.dispatch.dispatcher import Dispatcher
from engine.intake.media import MediaStore
from engine.intake.uploads import Uploads
from engine.store.db import Database
from engine.store.redis_server import connect, connect_queue, connect_worker
from task_types import TaskTypeRegistry

QUEUE_NAMES = ("high", "default", "low")


class Services:
    def __init__(self, settings: Settings, registry: TaskTypeRegistry | None = None) -> None:
        self.settings = settings
        self.db = Database(settings.database_url, settings.sqlite_synchronous)
        self.registry = registry or TaskTypeRegistry.from_entry_points()
        # Set whenever a connection to the dispatch Redis is opened (at start, and
        # after one was lost); engine.dispatch.failover checks the master then.
        self.redis_reconnected = False
        # The replication ids a new master replaced, while this process owes the
        # drop that failed (engine.dispatch.failover.check_master).
        self.failover_owed: bytes | None = None

    @cached_property
    def reader(self) -> Database:
        """Where exports and dashboards read: the read replica when one is set
        (BITESIZE_DATABASE_REPLICA_URL), else the primary.

        Only for what a person reads and a little lag cannot harm. Counts,
        merges, hand-outs and anything that decides what to write read the
        primary (self.db), always: a replica lags, and a count read from one
        hands out or merges on answers that are not there yet (a PyBossa fork
        served more answers than asked that way)."""
        url = self.settings.database_replica_url
        return Database(url, self.settings.sqlite_synchronous) if url else self.db

    @cached_property
    def redis(self) -> redis.Redis:
        # Connected on first use: a web process that only serves pages never
        # starts the embedded Redis.
        return connect(self.settings, on_connect=self._connected)

    def _connected(self, connection) -> None:
        """Called for each new Redis connection, after its handshake: a note for
        engine.dispatch.failover."""
        self.redis_reconnected = True

    @cached_property
    def queue_redis(self) -> redis.Redis:
        """Where RQ's queues, registries and the periodic jobs' guards live: a
        Redis of their own (RQ cannot work on Redis Cluster), else this one."""
        return connect_queue(self.settings) or self.redis

    @cached_property
    def worker_redis(self) -> redis.Redis:
        """The connection RQ's workers block on (redis_server.connect_worker):
        never this process's dispatch or enqueueing client."""
        return connect_worker(self.settings)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.redis)

    @cached_property
    def media(self) -> MediaStore:
        return MediaStore.at(self.settings.media_url, self.settings.media_path,
                             max_pixels=self.settings.max_image_pixels)

    @cached_property
    def uploads(self) -> Uploads:
        return Uploads(self.settings.uploads_url, self.settings.uploads_path)

    def queue(self, name: str = "default") -> Queue:
        return Queue(name, connection=self.queue_redis)

    def queues(self) -> list[Queue]:
        return [self.queue(name) for name in QUEUE_NAMES]

    def close(self) -> None:
        if "reader" in self.__dict__ and self.reader is not self.db:
            self.reader.dispose()
        self.db.dispose()
        if "queue_redis" in self.__dict__ and self.queue_redis is not self.__dict__.get("redis"):
            self.queue_redis.close()
        if "worker_redis" in self.__dict__:
            self.worker_redis.close()
        if "redis" in self.__dict__:
            self.redis.close()
