"""bench/io.py still measures the real import and export paths, at tiny sizes.
No timing thresholds: the suite checks that the benchmark measures something."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH_PATH = Path(__file__).resolve().parent.parent / "bench" / "io.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_io", BENCH_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_ingest_parts_make_the_tasks_they_time(bench, services):
    who = bench.admin(services)
    plain = bench.plain_insert(services, 700)
    assert plain["rows"] == 700 and plain["rows_per_s"] > 0
    raw = bench.raw_insert(services, who, 700)
    json_part = bench.ingest_json(services, who, 700)
    assert raw["tasks"] == json_part["tasks"] == 700
    assert raw["tasks_per_s"] > 0 and json_part["tasks_per_s"] > 0
    assert services.redis.zcard(f"bs:{{p:{json_part_project(services)}}}:pool") == 700


def json_part_project(services) -> int:
    from sqlalchemy import select

    from engine.store.models import Project

    with services.db.session() as session:
        return session.scalar(select(Project.id).where(Project.name == "ingest json"))


def test_export_streams_every_answer_in_a_child_process(bench, services):
    who = bench.admin(services)
    project = bench.fill_answers(services, who, 1000)
    part = bench.export_answers(services, project, 1000)
    assert part["answers"] == 1000 and part["rows_per_s"] > 0
    assert part["bytes"] > 1000 * len("1,1,deer,True,False,1,=note-1,")
    assert part["peak_rss_mb"] > 10


def test_verdicts_and_table(bench):
    report = {"raw_insert": {"tasks": 10, "tasks_per_s": 100.0},
              "ingest_json": {"tasks": 10, "tasks_per_s": 30.0},
              "ingest_csv": {"error": "no CSV"},
              "export": [{"answers": 1, "rows_per_s": 5.0, "peak_rss_mb": 100.0},
                         {"answers": 10, "rows_per_s": 5.0, "peak_rss_mb": 130.0}],
              "export_baseline_rss_mb": 90.0}
    report["targets"] = bench.verdicts(report)
    assert report["targets"]["ingest_json"] == {"share_of_raw": 0.3, "met": True}
    assert report["targets"]["export_memory"]["met"] is False
    text = bench.table(report)
    assert "30% of raw" in text and "MISSED" in text and "no CSV" in text
