"""The `bitesize` command: a Flask CLI group over the app factory.

Each module adds its commands to the group defined in web.cli.base."""
from __future__ import annotations

from web.cli import accounts, consensus, intake, projects, running  # noqa: F401 (registers)
from web.cli.base import cli, main

__all__ = ["cli", "main"]
