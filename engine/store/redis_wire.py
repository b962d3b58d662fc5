"""Redis calls sent straight on connections kept here: the hot path's wire.

Both the dispatch scripts (engine.dispatch.dispatcher) and the rate limiter
(web.rate_limits) make one script call per volunteer request, so both go
through one RedisWire rather than through redis-py's full call path.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from redis.exceptions import AskError, ClusterDownError, NoScriptError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine.store.redis_server import is_cluster

# Replies of a Redis Cluster whose slots are moving, or a node failing over:
# redis-py's cluster client follows them (refreshing its slot map), so the
# call goes to `fallback`.
_CLUSTER_MOVES = (AskError, TryAgainError, ClusterDownError)

try:  # redis[hiredis] is a dependency; without it, redis-py's own packer is used
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover
    _hiredis_pack = None


class RedisWire:
    """The hot path's Redis calls, sent straight on connections kept here.

    redis-py's own call path (a pool checkout that polls the socket, a retry
    wrapper, observability hooks) costs about 30-40 us of Python per command
    on these machines: more than a checkout script runs inside Redis. The
    connections kept here come from the client's pool, so closing the client
    closes them, and each is used by one caller at a time. Anything unusual
    (Redis lost its script cache, a dropped connection) is left to redis-py
    through `fallback`, which reloads scripts and retries as usual.

    On a Redis Cluster each call goes to the node that serves its first key's
    slot (a script's keys all share one: the project's {p:ID} tag), with idle
    connections kept per node; a MOVED or ASK reply (slots moving) goes to
    redis-py's cluster client, which follows it and learns the new map, and
    the idle connections of nodes no longer in that map are then closed.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._cluster = is_cluster(client)
        self._idle: dict[Any, list] = {}  # connection pool -> its idle connections
        self._pid = os.getpid()

    def script(self, script, keys: Sequence, args: Sequence):
        """EVALSHA of a registered script (redis-py's Script is the fallback)."""
        return self.call(("EVALSHA", script.sha, len(keys), *keys, *args),
                         lambda: script(keys=keys, args=args), keys[0] if keys else None)

    @contextmanager
    def stream(self, key: str | None = None) -> Iterator[Callable[[Sequence[tuple]], None]]:
        """A sender for bulk loads (a rebuild, a job's tasks): each batch of
        commands goes out at once, packed by hiredis (redis-py's pipeline
        encodes every argument in Python, at a cost above Redis's own work),
        and its replies are read one batch later, so Redis works on a batch
        while the caller builds the next. The first error reply is raised once
        every reply is read, so the connection stays in step. On a Cluster
        every command must be in `key`'s slot."""
        pool = self._pool(key)
        connection = self._checked(pool)
        unread, errors = 0, []

        def read(count: int) -> None:
            for _ in range(count):
                try:
                    connection.read_response()
                except redis.ResponseError as exc:
                    errors.append(exc)

        def send(commands: Sequence[tuple]) -> None:
            nonlocal unread
            connection.send_packed_command(
                [_hiredis_pack(c) for c in commands] if _hiredis_pack
                else [part for c in commands for part in connection.pack_command(*c)], False)
            read(unread)
            unread = len(commands)

        try:
            yield send
            read(unread)
        except BaseException:
            self._drop(pool, connection)  # replies may be half read
            raise
        self._idle[pool].append(connection)
        if errors:
            raise errors[0]

    def _checked(self, pool):
        """A connection known to work (a PING answered): a bulk load has no
        fallback, and an idle connection may point at a master that is gone."""
        connection = self._take(pool)
        try:
            connection.send_command("PING")
            connection.read_response()
        except (RedisConnectionError, RedisTimeoutError):
            self._drop(pool, connection)
            connection = pool.get_connection()
        return connection

    def _pool(self, key: str | None):
        """The connection pool of the server (on a Cluster: of the node serving
        `key`'s slot, any node for no key)."""
        if not self._cluster:
            return self._client.connection_pool
        client = self._client
        node = client.get_node_from_key(key) if key is not None else client.get_default_node()
        return client.get_redis_connection(node).connection_pool

    def _take(self, pool):
        """An idle connection of this process to that pool's server, else a new one."""
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours
            self._idle, self._pid = {}, os.getpid()
        try:
            return self._idle[pool].pop()
        except KeyError:
            self._idle[pool] = []
        except IndexError:
            pass
        return pool.get_connection()

    def call(self, command: tuple, fallback: Callable[[], Any], key: str | None = None):
        """One command on a kept connection (on a Cluster, `key`'s node); anything
        unusual goes to `fallback`, redis-py's own call."""
        pool = self._pool(key)
        connection = self._take(pool)
        idle = self._idle[pool]
        try:
            connection.send_packed_command(
                [_hiredis_pack(command)] if _hiredis_pack else connection.pack_command(*command),
                False)
            reply = connection.read_response()
        except NoScriptError:
            idle.append(connection)
        except _CLUSTER_MOVES:
            idle.append(connection)
            return self._moved(fallback)
        except (RedisConnectionError, RedisTimeoutError):
            self._drop(pool, connection)
            if self._cluster:  # a node lost: the map may change
                return self._moved(fallback)
        except redis.ResponseError:
            idle.append(connection)
            raise  # a script's own error; the connection read it whole
        except BaseException:
            self._drop(pool, connection)  # a reply may be half read
            raise
        else:
            idle.append(connection)
            return reply
        return fallback()

    def _moved(self, fallback: Callable[[], Any]):
        """The fallback (redis-py's cluster client follows the reply and learns
        the new map), then the idle connections of nodes it no longer knows are
        closed: kept, they would leak a socket per departed node."""
        try:
            return fallback()
        finally:
            live = {node.redis_connection.connection_pool
                    for node in self._client.get_nodes() if node.redis_connection}
            for pool in [pool for pool in self._idle if pool not in live]:
                for connection in self._idle.pop(pool):
                    connection.disconnect()

    def _drop(self, pool, connection) -> None:
        """A connection that failed goes back to redis-py's pool closed, never to
        the idle list: the pool connects it afresh (through the Sentinels, to the
        master of the moment; a closed connection reused here would reconnect
        to the address it had, an old master after a failover)."""
        connection.disconnect()
        with contextlib.suppress(Exception):
            pool.release(connection)
