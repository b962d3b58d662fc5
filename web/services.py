"""The current app's engine Services, for request handlers."""
from __future__ import annotations

from flask import current_app

from engine.services import Services


def services() -> Services:
    return current_app.extensions["bitesize"]
