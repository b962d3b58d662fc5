"""The README works as written: its fenced blocks are run here.

- `sh` blocks run in bash, as a newcomer pastes them: the virtual environment
  in an empty folder; the demo's command (`pip install -e . && bitesize demo`)
  from this repository, with its instance folder in a temporary directory and
  on a free port; then every other `sh` block against that running demo, in
  README order. Only hosts and ports are changed.
- The test command (`pip install -e '.[test]' && pytest`) is this suite
  itself: it is checked to be exactly what .ci/run runs.
- `python` blocks run against the engine's own code (the webhook signature).
- `text` blocks are diagrams, not commands.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(language: str | None = None) -> list[str]:
    found = BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    return [body for lang, body in found if language is None or lang == language]


def shell_env(instance: Path) -> dict[str, str]:
    """This Python's scripts first on PATH (pip, bitesize), no BITESIZE_* set
    but the instance folder the demo and the commands share."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITESIZE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["BITESIZE_INSTANCE_PATH"] = str(instance)
    return env


def on_port(command: str, port: int) -> str:
    command = command.replace("127.0.0.1:5000", f"127.0.0.1:{port}")
    return re.sub(r"\bbitesize demo\b(?! --port)", f"bitesize demo --port {port}", command)


def test_every_block_is_one_this_file_runs():
    languages = {lang for lang, _ in BLOCK.findall((ROOT / "README.md").read_text())}
    assert languages <= {"sh", "python", "text"}, languages
    assert len(blocks("sh")) >= 4 and blocks("python")


def test_the_test_command_is_what_ci_runs():
    (command,) = [b.strip() for b in blocks("sh") if "pytest" in b]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in [line.strip() for line in ci]


def test_the_virtual_environment_block(tmp_path):
    (venv,) = [b for b in blocks("sh") if "venv" in b]
    done = subprocess.run(["bash", "-e", "-c", venv + "\ncommand -v python"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / ".venv" / "bin" / "python")


def test_the_demo_and_every_session_block_against_it(tmp_path, free_port):
    (demo,) = [b for b in blocks("sh") if "bitesize demo" in b]
    sessions = [b for b in blocks("sh") if b != demo and "pytest" not in b and "venv" not in b]
    assert sessions, "no curl session in the README"
    port, env = free_port(), shell_env(tmp_path / "instance")
    proc = subprocess.Popen(["bash", "-e", "-c", on_port(demo, port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        seen = wait_for_announcement(proc)
        for block in sessions:
            done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", on_port(block, port)],
                                  cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 0, block + done.stdout + done.stderr
            check_session(done.stdout)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, seen + out
    assert out.strip().endswith("bitesize demo stopped")


def wait_for_announcement(proc: subprocess.Popen, timeout: float = 240) -> str:
    """pip's output, then the demo's; returns what was printed up to its URL."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if "Press Ctrl-C to stop." in line:
            return "".join(seen)
    raise AssertionError("the demo did not start:\n" + "".join(seen))


def check_session(out: str) -> None:
    """The curl session: the job it made, then the results CSV of its project."""
    lines = out.splitlines()
    assert '"state"' in lines[0] and '"progress"' in lines[0], out
    assert lines[1].startswith("task,item,item_ref,state,value,confidence,answers"), out
    assert len(lines) == 4, out  # the header and one row per item's task


class FakeRequest:
    def __init__(self, headers: dict[str, str], body: bytes) -> None:
        self.headers, self._body = headers, body

    def get_data(self) -> bytes:
        return self._body


@pytest.mark.parametrize("tampered", [False, True])
def test_the_webhook_check_accepts_our_signature_and_nothing_else(tampered):
    from engine.delivery.sender import signature

    (snippet,) = blocks("python")
    secret, body = "a-secret-of-twenty-chars", b'{"event": "job.split"}'
    stamp = str(int(time.time()))
    headers = {"X-Bitesize-Timestamp": stamp,
               "X-Bitesize-Signature": signature(secret, stamp, body)}
    sent = body + b" " if tampered else body
    scope = {"request": FakeRequest(headers, sent), "secret": secret, "hmac": hmac,
             "hashlib": hashlib, "time": time}
    exec(snippet, scope)  # noqa: S102 - the README's own snippet
    assert scope["valid"] is (not tampered)
