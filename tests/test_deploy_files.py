"""deploy/ cannot start here (no Docker engine, no systemd in the suite), so the
suite checks what can drift: every setting the files name exists, and the
Compose file is valid YAML with the services README's deploy section names."""
from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import yaml

from engine.config import ENV_PREFIX, Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_every_setting_the_deploy_files_name_exists():
    known = {ENV_PREFIX + f.name.upper() for f in fields(Settings)}
    named = {name for path in DEPLOY.rglob("*") if path.is_file()
             for name in re.findall(r"BITESIZE_[A-Z_]+", path.read_text())}
    assert named, "the deploy files name no settings"
    assert named <= known, f"unknown settings in deploy/: {sorted(named - known)}"


def test_the_compose_file_runs_each_part_of_a_deployment():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis-primary", "redis-replica", "sentinel-1", "sentinel-2",
            "sentinel-3", "migrate", "web", "worker", "nginx"} <= set(services)
    assert services["web"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["worker"]["command"] == ["bitesize", "worker"]
    assert services["migrate"]["command"] == ["bitesize", "db", "upgrade"]
    # every bitesize container finds Redis through the Sentinels
    for name in ("migrate", "web", "worker"):
        env = services[name]["environment"]
        assert env["BITESIZE_REDIS_SENTINELS"].count(":26379") == 3
        assert env["BITESIZE_REDIS_SENTINEL_MASTER"] == "bitesize"
