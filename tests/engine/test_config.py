"""Settings come from defaults, then BITESIZE_* variables, then explicit overrides."""
from __future__ import annotations

from engine.config import Settings


def test_environment_then_overrides(tmp_path):
    env = {"BITESIZE_INSTANCE_PATH": str(tmp_path / "inst"), "BITESIZE_MAX_UPLOAD_MB": "7",
           "BITESIZE_REDIS_URL": "redis://example:6379/2"}
    settings = Settings.from_env({"max_upload_mb": 9}, environ=env)
    assert settings.instance_path == tmp_path / "inst"
    assert settings.max_upload_mb == 9
    assert settings.redis_url == "redis://example:6379/2"
    assert settings.database_url == f"sqlite:///{tmp_path / 'inst' / 'bitesize.db'}"


def test_secret_is_made_once_per_instance(tmp_path):
    env = {"BITESIZE_INSTANCE_PATH": str(tmp_path / "inst")}
    first = Settings.from_env(environ=env).secret_key
    assert len(first) == 64
    assert Settings.from_env(environ=env).secret_key == first
    assert (tmp_path / "inst" / "secret_key").stat().st_mode & 0o077 == 0


def test_every_setting_is_in_the_readmes_configuration_table():
    from dataclasses import fields
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    missing = [f"BITESIZE_{f.name.upper()}" for f in fields(Settings)
               if f"| `BITESIZE_{f.name.upper()}` |" not in readme]
    assert not missing, f"settings missing from README's configuration table: {missing}"
