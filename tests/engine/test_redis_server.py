"""The embedded Redis: started on first use, shared by every process of an instance."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import Settings
from engine.store.redis_server import EmbeddedRedis, _socket_path, connect


@pytest.fixture
def embedded(tmp_path):
    server = EmbeddedRedis(tmp_path / "instance")
    yield server
    server.stop()


def test_started_on_first_use_in_the_instance_folder(embedded, tmp_path):
    assert not embedded.is_running()
    client = connect(Settings(instance_path=tmp_path / "instance", secret_key="x").resolved())
    assert client.ping()
    assert embedded.socket.parent == tmp_path / "instance" / "redis"
    assert (tmp_path / "instance" / "redis" / "redis.pid").exists()


def test_another_process_shares_the_same_server(embedded, tmp_path):
    embedded.client().set("shared", "from parent")
    code = ("from engine.store.redis_server import EmbeddedRedis; import sys; "
            f"print(EmbeddedRedis({str(tmp_path / 'instance')!r}).client().get('shared').decode())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "from parent"


def test_concurrent_first_use_starts_one_server(embedded, tmp_path):
    code = ("from engine.store.redis_server import EmbeddedRedis; "
            f"print(EmbeddedRedis({str(tmp_path / 'instance')!r}).client().info()['process_id'])")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).parents[2]) for _ in range(4)]
    pids = {p.communicate(timeout=30)[0].strip() for p in procs}
    assert len(pids) == 1 and pids != {""}


def test_stop_shuts_the_server_down(embedded):
    embedded.ensure_running()
    embedded.stop()
    assert not embedded.is_running()


def test_long_instance_paths_get_a_short_socket(tmp_path):
    deep = tmp_path / ("x" * 120)
    assert len(str(_socket_path(deep))) < 108
    assert _socket_path(deep) == _socket_path(deep)  # every process computes the same one
