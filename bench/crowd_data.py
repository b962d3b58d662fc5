"""Where the benchmarks find real crowd data, and a clear stop when it is not there.

The collection (shared/data/dev, see its README) lives beside the repository
on the team's machines, not in a clone; the tests use the small copies in
tests/data instead. A benchmark without its data says so and where it looked,
rather than printing an empty table.
"""
from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"


def require(found: object, data_dir: Path, needs: str) -> None:
    """Stop the benchmark with one line if `found` (sets, a folder test) is empty or false."""
    if not found:
        raise SystemExit(
            f"no crowd data for this benchmark: it needs {needs} under {data_dir} "
            "(the shared/data/dev collection beside the repository); "
            "pass --data DIR to read it from elsewhere")
