"""The real `bitesize` command, run as a person runs it: every mistake a
newcomer makes ends in one line on stderr and a non-zero exit, no traceback,
and nothing left behind."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.store.redis_server import EmbeddedRedis


def bitesize(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60):
    return subprocess.run([sys.executable, "-m", "web.cli", *args], cwd=cwd,
                          env=env or clean_env(), capture_output=True, text=True,
                          timeout=timeout)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of someone who set no BITESIZE_* variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITESIZE_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return {**env, **extra}


def one_line(result) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory) -> Path:
    """A folder whose ./instance has an up-to-date database and nothing else."""
    folder = tmp_path_factory.mktemp("upgraded")
    done = bitesize("db", "upgrade", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.mark.parametrize("args", [
    ["users", "create", "--role", "charity", "--org", "X"],
    ["users", "list"],
    ["projects", "list"],
    ["queue", "rebuild", "1"],
    ["import", "1", "."],
])
def test_no_database_yet_says_what_to_do_and_makes_nothing(tmp_path, args):
    line = one_line(bitesize(*args, cwd=tmp_path))
    assert line.startswith("bitesize: no database yet at ")
    assert "run `bitesize db upgrade`" in line and "BITESIZE_INSTANCE_PATH" in line
    assert list(tmp_path.iterdir()) == []  # no empty ./instance left behind


def test_an_empty_database_asks_for_the_upgrade(tmp_path):
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "bitesize.db").touch()
    line = one_line(bitesize("users", "list", cwd=tmp_path))
    assert "has no up-to-date bitesize schema: run `bitesize db upgrade` first" in line


@pytest.mark.parametrize(("args", "said"), [
    (["queue", "rebuild", "999"], "bitesize: project 999 does not exist"),
    (["users", "revoke", "7"], "bitesize: user 7 does not exist"),
    (["users", "rotate", "7"], "bitesize: user 7 does not exist"),
    (["projects", "show", "999"], "bitesize: project 999 does not exist"),
    (["import", "999", "."], "bitesize: project 999 does not exist"),
    (["projects", "create", "--org", "Nobody", "--name", "P", "--type", "classify",
      "--config", "missing.json"], "bitesize: no such file: missing.json"),
    (["import", "1", "missing.zip"], "bitesize: no such file or folder: missing.zip"),
    (["consensus", "missing.csv"], "bitesize: no such file: missing.csv"),
    (["users", "create", "--org", "X"], "bitesize: Missing option '--role'"),
    (["projects", "show", "one"], "bitesize: Invalid value for 'PROJECT_ID'"),
])
def test_unknown_things_and_missing_files_are_one_line(upgraded, args, said):
    assert one_line(bitesize(*args, cwd=upgraded)).startswith(said)


def test_version_is_bitesizes_own():
    from importlib.metadata import version

    result = bitesize("--version", cwd=Path.cwd())
    assert result.returncode == 0
    assert result.stdout.strip() == f"bitesize {version('bitesize')}"


def test_every_command_says_what_its_arguments_are():
    """--help of each command names each argument in its description, not only
    in the usage line, so a newcomer knows an id from a path."""
    import click

    from web.cli import cli

    def commands(group: click.Group, path: list[str]):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from commands(command, [*path, name])
            else:
                yield [*path, name], command

    checked = 0
    for path, command in commands(cli, []):
        for param in command.params:
            if isinstance(param, click.Argument):
                metavar = param.make_metavar(click.Context(command)).strip("[].")
                assert metavar in (command.help or ""), f"bitesize {' '.join(path)}: {metavar}"
                checked += 1
            elif isinstance(param, click.Option) and not param.is_flag and param.name != "help":
                assert param.help or param.show_default or param.type.name == "choice", \
                    f"bitesize {' '.join(path)} {param.opts[0]} has no help"
    assert checked >= 8


@pytest.mark.parametrize("command", ["demo", "run"])
def test_a_taken_port_is_said_before_anything_else(tmp_path, command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(bitesize(command, "--port", str(port), cwd=tmp_path, timeout=30))
    assert line.startswith(f"bitesize: port {port} is in use: try --port ")
    suggested = int(line.rsplit(" ", 1)[1])
    assert suggested > port
    assert list(tmp_path.iterdir()) == []


def start_demo(folder: Path, port: int) -> tuple[subprocess.Popen, dict]:
    """The demo with a private HOME and TMPDIR, to see what it writes outside."""
    home, tmp = folder / "home", folder / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = clean_env(HOME=str(home), TMPDIR=str(tmp))
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "demo", "--port", str(port)],
                            cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return proc, {"home": home, "tmp": tmp}


def read_until(proc: subprocess.Popen, marker: str, timeout: float = 90) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} in:\n" + "\n".join(lines) + proc.stderr.read())


def children_of(pid: int) -> dict[int, str]:
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                found[int(stat.parent.name)] = cmdline.decode()
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_demo_prints_its_address_last_keeps_logs_home_and_stops_cleanly(tmp_path, free_port):
    port = free_port()
    proc, outside = start_demo(tmp_path, port)
    try:
        shown = read_until(proc, "Press Ctrl-C to stop.")
        token_line = next(line for line in shown if "admin token:" in line)
        assert token_line.split()[-1].startswith("bsu_")
        announced = shown[shown.index(next(s for s in shown if "demo is running" in s)):]
        assert len(announced) <= 11  # the announcement is the last thing on screen
        import requests

        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        link = shown[shown.index(next(s for s in shown if "console:" in s)) + 1].strip()
        assert link.startswith(f"http://127.0.0.1:{port}/console/set-password/")
        welcome = requests.get(link, timeout=5)
        assert welcome.status_code == 200 and "demo@bitesize.example" in welcome.text
        access = tmp_path / "instance" / "logs" / "access.log"
        deadline = time.monotonic() + 10
        while '"GET / HTTP' not in (access.read_text() if access.exists() else ""):
            assert time.monotonic() < deadline, "the request is not in the access log"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert out.strip().splitlines()[-1] == "bitesize demo stopped"
    assert "GET /" not in out + err  # the access log stayed in its file
    assert not EmbeddedRedis(tmp_path / "instance").is_running()
    assert list(outside["home"].iterdir()) == [] and list(outside["tmp"].iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "instance", "tmp"]


def test_demo_names_a_child_that_died_and_exits_non_zero(tmp_path, free_port):
    proc, _ = start_demo(tmp_path, free_port())
    try:
        read_until(proc, "Press Ctrl-C to stop.")
        workers = [pid for pid, cmd in children_of(proc.pid).items() if "web.cli worker" in cmd]
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1
    assert "bitesize demo: the worker stopped (killed by SIGKILL" in err
    assert "Traceback" not in err
    assert children_of(proc.pid) == {}
