"""bench/ is run as scripts, not a package: tests import its modules with bench/
on sys.path for the time of a test module, then forget them again, so that two
test modules never share (or fight over) a half-configured bench module."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parent.parent / "bench"


def bench_modules(names: tuple[str, ...]) -> Iterator[dict[str, ModuleType]]:
    """For a module-scoped fixture: ``yield from bench_modules(("crowds", ...))``."""
    sys.path.insert(0, str(BENCH))
    try:
        yield {name: importlib.import_module(name) for name in names}
    finally:
        sys.path.remove(str(BENCH))
        for name in names:
            sys.modules.pop(name, None)
