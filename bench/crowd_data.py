"""Where the benchmarks find real crowd data, and a clear stop when it is not there.

The collection (shared/data/dev, see its README) lives beside the repository
on the team's machines, not in a clone; the tests use the small copies in
tests/data instead. A benchmark without its data says so and where it looked,
rather than printing an empty table.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from engine.quality import offline, truth

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"


def require(found: object, data_dir: Path, needs: str) -> None:
    """Stop the benchmark with one line if `found` (sets, a folder test) is empty or false."""
    if not found:
        raise SystemExit(
            f"no crowd data for this benchmark: it needs {needs} under {data_dir} "
            "(the shared/data/dev collection beside the repository); "
            "pass --data DIR to read it from elsewhere")


def categorical_sets(data_dir: Path) -> list[str]:
    """Names of the sets whose meta.json says they are categorical, sorted."""
    return sorted(p.parent.name for p in data_dir.glob("*/meta.json")
                  if json.loads(p.read_text())["kind"] == "categorical")


def read_categorical(data_dir: Path, name: str) -> tuple[list, dict, truth.Answers, float]:
    """One categorical set: its rows, gold, the encoded answers (labels of the
    answers and the gold, naturally sorted) and the seconds encoding took."""
    rows = offline.read_answers(data_dir / name / "answers.csv")
    gold = offline.read_gold(data_dir / name / "gold.csv")
    started = time.perf_counter()
    answers = truth.encode(rows, truth.natural_sort([r[2] for r in rows] + list(gold.values())))
    return rows, gold, answers, time.perf_counter() - started
