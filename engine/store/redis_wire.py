"""Redis calls sent straight on connections kept here: the hot path's wire.

Both the dispatch scripts (engine.dispatch.dispatcher) and the rate limiter
(web.rate_limits) make one script call per volunteer request, so both go
through one RedisWire rather than through redis-py's full call path.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
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

    def call(self, command: tuple, fallback: Callable[[], Any]):
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours
            self._idle, self._pid = [], os.getpid()
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = self._client.connection_pool.get_connection()
        try:
            connection.send_packed_command(
                [_hiredis_pack(command)] if _hiredis_pack else connection.pack_command(*command),
                False)
            return connection.read_response()
        except (NoScriptError, RedisConnectionError, RedisTimeoutError):
            pass  # below, once the connection is back in the idle list
        except redis.ResponseError:
            raise  # a script's own error; the connection read it whole
        except BaseException:
            connection.disconnect()  # a reply may be half read
            raise
        finally:
            self._idle.append(connection)
        return fallback()
