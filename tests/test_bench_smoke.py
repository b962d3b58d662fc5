"""bench/dispatch.py still runs against the engine: parts (c) and (d) at tiny sizes,
the bulk loader's layout, and the report's shape. No timing thresholds: this
suite checks that the benchmark measures something, not how fast it is."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH_PATH = Path(__file__).resolve().parent.parent / "bench" / "dispatch.py"


@pytest.fixture(scope="module")
def bench():
    """bench/ is not a package (it is run as a script), so load it from its path."""
    spec = importlib.util.spec_from_file_location("bench_dispatch", BENCH_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_bulk_loader_writes_what_add_tasks_writes(bench, services):
    bench.check_fill_pool(services.dispatcher, count=200)


def test_checkout_scaling_at_tiny_sizes(bench, services):
    scaling = bench.measure_checkout_scaling(services.dispatcher, small=100, large=1000,
                                             checkouts=150, block=50)
    for side, size in (("small", 100), ("large", 1000)):
        assert scaling[side]["open_tasks"] == size
        assert scaling[side]["median_us"] > 0
        assert scaling[side]["p90_us"] >= scaling[side]["median_us"]
        assert scaling[side]["server_us"] > 0
    assert scaling["ratio"] > 0
    assert scaling["large_pool_memory"]["bytes_per_task"]["state_and_pool"] > 0
    # volunteers who saw the large pool's best half, each handed the first task past it
    assert scaling["deep"]["seen"] == 500 and scaling["deep"]["server_us"] > 0
    assert services.redis.zcard("bs:{p:202}:leases") == 150 + 20 + scaling["deep"]["checkouts"]
    # 150 fresh volunteers each leased one task from each pool
    leases = services.redis.zcard("bs:{p:201}:leases")
    assert leases == 150 + 20  # the measured checkouts and the warm-up ones


def test_memory_per_task_at_tiny_size(bench, services):
    memory = bench.measure_memory(services.dispatcher, 500)
    per_task = memory["bytes_per_task"]
    assert memory["tasks"] == 500
    assert per_task["state"] > 0 and per_task["pool"] > 0 and per_task["payload"] > 0
    assert per_task["state_and_pool"] == pytest.approx(per_task["state"] + per_task["pool"])
    assert memory["add_tasks_per_s"] > 0
    assert services.redis.hlen("bs:{p:301}:state") == 500


def test_report_has_every_part_and_target(bench, services, tmp_path):
    dispatcher = services.dispatcher
    results = {
        "lua": bench.measure_lua_rates(dispatcher, pool=1000, rounds=2, seconds=0.05),
        "scaling": bench.measure_checkout_scaling(dispatcher, small=100, large=300,
                                                  checkouts=60, block=30),
        "memory": bench.measure_memory(dispatcher, 200),
    }
    assert results["lua"]["trivial_calls_per_s"] > 0
    assert results["lua"]["dispatch_calls_per_s"] == 2 * results["lua"]["dispatch_pairs_per_s"]
    machine = bench.machine_info(services.redis, services.settings, "test")
    report = bench.build_report(results, machine, bench.QUICK, quick=True)
    path = tmp_path / "results" / "dispatch.json"
    bench.write_report(path, report)

    written = json.loads(path.read_text())
    assert {"machine", "sizes", "lua", "scaling", "memory", "targets"} <= set(written)
    assert {"nproc", "python", "redis_version", "timestamp"} <= set(written["machine"])
    assert set(written["targets"]) == {"lua_ratio", "scaling_ratio", "bytes_per_task"}
    for target in written["targets"].values():
        assert {"target", "limit", "value", "met"} <= set(target)
    table = bench.format_table(bench.table_rows(written))
    assert "checkout median us" in table and "bytes/task" in table


def _window(seconds: float, kind: str, requests: int, cycles: int = 0) -> dict:
    """What drive() returns for one window, with made-up counts."""
    latencies = {kind: [5.0] * requests} if kind == "trivial" else {
        "answer_next": [12.0] * cycles} if kind == "one_call" else {
        "next": [9.0] * cycles, "answer": [11.0] * cycles}
    return {"seconds": seconds, "cycles": cycles, "latencies_ms": latencies, "errors": {},
            "cpu_seconds": {"gunicorn": 1.0, "redis": 0.1, "client": 0.5, "others": 0.0},
            "machine_busy": 0.9, "machine_stolen": 0.0}


def test_http_summary_gives_each_rounds_ratio_and_their_range(bench):
    import dispatch_http  # on sys.path once bench/dispatch.py is loaded

    windows = {"trivial": [_window(2, "trivial", 2000), _window(2, "trivial", 3000)],
               "volunteer": [_window(4, "volunteer", 0, cycles=1000),
                             _window(4, "volunteer", 0, cycles=1200)],
               "one_call": [_window(4, "one_call", 0, cycles=1500),
                            _window(4, "one_call", 0, cycles=1700)]}
    sizes = bench.Sizes(**{**bench.asdict(bench.QUICK), "http_rounds": 2})
    summary = dispatch_http.summarise_http(windows, sizes, setup_seconds=1.0, tracebacks=0)
    assert [r["ratio"] for r in summary["per_round"]] == pytest.approx([0.25, 0.2])
    assert summary["ratio_range"] == pytest.approx((0.2, 0.25))
    assert summary["ratio"] == pytest.approx((2200 / 8) / (5000 / 4))
    report = bench.build_report({"http": summary}, {}, sizes, quick=True)
    table = bench.format_table(bench.table_rows(report))
    assert "22% (20%-25%)" in table and "MISSED" in table
    # the page's one-call cycle, measured in the same rounds against the same trivial windows
    one = summary["one_call"]
    assert [r["ratio"] for r in one["per_round"]] == pytest.approx([1500 / 4 / 1000,
                                                                     1700 / 4 / 1500])
    assert one["ratio"] == pytest.approx((3200 / 8) / (5000 / 4))
    assert one["latency_ms"]["answer_next"]["count"] == 3200
    assert report["targets"]["http_one_call_ratio"]["met"]
    assert "32% (28%-38%)" in table and "one-call cycles" in table


def test_rebuild_bench_at_a_tiny_size(settings, tmp_path):
    """bench/rebuild.py: its project fills, empties and comes back whole."""
    from dataclasses import replace

    from .bench_modules import bench_modules

    modules = bench_modules(("rebuild",))
    rebuild = next(modules)["rebuild"]
    try:
        result = rebuild.run(300, replace(settings, instance_path=tmp_path / "bench"))
    finally:
        modules.close()
    assert result["loaded"] == result["pooled"] == 300
    assert result["seconds_per_million"] > 0 and isinstance(result["met"], bool)


def _redis_servers_in(prefix: str) -> set[int]:
    """The pids of embedded Redis servers whose socket is in a folder named so."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "redis-server" in line and f"/{prefix}" in line:
            found.add(int(proc.name))
    return found


def test_the_rebuild_bench_leaves_no_embedded_redis_running(tmp_path, capsys):
    """Run as a script, on its own temporary folder: that folder's Redis (a
    few hundred MB at full size) is stopped before the folder goes."""
    from .bench_modules import bench_modules

    before = _redis_servers_in("bitesize-rebuild-")
    modules = bench_modules(("rebuild",))
    rebuild = next(modules)["rebuild"]
    try:
        assert rebuild.main(["--tasks", "200", "--output", str(tmp_path / "r.json")]) == 0
    finally:
        modules.close()
    assert "rebuild, seconds per million" in capsys.readouterr().out
    assert _redis_servers_in("bitesize-rebuild-") - before == set()


def test_moderation_bench_at_a_tiny_size(settings, tmp_path):
    """bench/moderation.py: the quarantine reopens the tasks its volunteer's answers
    had retired, in more than one write transaction, while another volunteer's
    calls go on."""
    from dataclasses import replace

    from engine.quality.consensus import CHUNK

    from .bench_modules import bench_modules

    modules = bench_modules(("moderation",))
    moderation = next(modules)["moderation"]
    try:
        result = moderation.run(CHUNK + 100, CHUNK + 50,
                                replace(settings, instance_path=tmp_path / "bench"))
    finally:
        modules.close()
    assert result["touched_tasks_reopened"] is True
    assert result["write_transactions"] >= 3  # the recount, then two chunks at least
    assert result["other_next_task_calls"] > 0 and result["other_next_task_max_ms"] > 0


def test_replay_reports_the_calibration_of_retired_results():
    """bench/replay.py on a small synthetic crowd (no dev data needed): each run
    gives the accuracy, the share of answers used and the calibration error of
    the confidence the retired results report, which a run that only ever
    reported 0 or 1 would fail."""
    bench_dir = str(BENCH_PATH.parent)
    sys.path.insert(0, bench_dir)  # replay imports its sibling modules by name
    try:
        spec = importlib.util.spec_from_file_location("bench_replay", BENCH_PATH.parent
                                                      / "replay.py")
        replay = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = replay
        spec.loader.exec_module(replay)
        crowd = replay.crowds.generate("control", seed=0, scale=0.2)
        result = replay.run_answers(crowd.answers, crowd.truth, [0], (0.9,), ("auto",))
    finally:
        sys.modules.pop("bench_replay", None)
        sys.path.remove(bench_dir)
    run = result["replays"]["auto@0.9"]
    assert 50 <= run["accuracy"] <= 100 and 0 < run["used"] <= 1
    assert 0 <= run["reported_ece"] < 0.5
    seed = run["seeds"][0]
    assert seed["reported_ece"] == run["reported_ece"] and -0.5 < seed["reported_signed"] < 0.5
