"""The Services a worker process uses, built once from the environment.

RQ imports job functions by name and calls them with plain arguments (ids),
so each worker process needs its own Services; the worker's start-up sets
it, and a job run elsewhere (a test, a forked work horse) builds it lazily.
"""
from __future__ import annotations

from engine.config import Settings
from engine.services import Services

_services: Services | None = None


def set_services(services: Services | None) -> None:
    global _services
    _services = services


def services() -> Services:
    global _services
    if _services is None:
        _services = Services(Settings.from_env())
    return _services
