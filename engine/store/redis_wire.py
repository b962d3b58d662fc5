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
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

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
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._idle: list = []
        self._pid = os.getpid()

    def script(self, script, keys: Sequence, args: Sequence):
        """EVALSHA of a registered script (redis-py's Script is the fallback)."""
        return self.call(("EVALSHA", script.sha, len(keys), *keys, *args),
                         lambda: script(keys=keys, args=args))

    @contextmanager
    def stream(self) -> Iterator[Callable[[Sequence[tuple]], None]]:
        """A sender for bulk loads (a rebuild, a job's tasks): each batch of
        commands goes out at once, packed by hiredis (redis-py's pipeline
        encodes every argument in Python, at a cost above Redis's own work),
        and its replies are read one batch later, so Redis works on a batch
        while the caller builds the next. The first error reply is raised once
        every reply is read, so the connection stays in step."""
        connection = self._checked()
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
            self._drop(connection)  # replies may be half read
            raise
        self._idle.append(connection)
        if errors:
            raise errors[0]

    def _checked(self):
        """A connection known to work (a PING answered): a bulk load has no
        fallback, and an idle connection may point at a master that is gone."""
        connection = self._take()
        try:
            connection.send_command("PING")
            connection.read_response()
        except (RedisConnectionError, RedisTimeoutError):
            self._drop(connection)
            connection = self._client.connection_pool.get_connection()
        return connection

    def _take(self):
        """An idle connection of this process, else a new one from the pool."""
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours
            self._idle, self._pid = [], os.getpid()
        try:
            return self._idle.pop()
        except IndexError:
            return self._client.connection_pool.get_connection()

    def call(self, command: tuple, fallback: Callable[[], Any]):
        connection = self._take()
        try:
            connection.send_packed_command(
                [_hiredis_pack(command)] if _hiredis_pack else connection.pack_command(*command),
                False)
            reply = connection.read_response()
        except NoScriptError:
            self._idle.append(connection)
        except (RedisConnectionError, RedisTimeoutError):
            self._drop(connection)
        except redis.ResponseError:
            self._idle.append(connection)
            raise  # a script's own error; the connection read it whole
        except BaseException:
            self._drop(connection)  # a reply may be half read
            raise
        else:
            self._idle.append(connection)
            return reply
        return fallback()

    def _drop(self, connection) -> None:
        """A connection that failed goes back to redis-py's pool closed, never to
        the idle list: the pool connects it afresh (through the Sentinels, to the
        master of the moment; a closed connection reused here would reconnect
        to the address it had, an old master after a failover)."""
        connection.disconnect()
        with contextlib.suppress(Exception):
            self._client.connection_pool.release(connection)
