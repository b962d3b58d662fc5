"""bench/calibration.py (part v of bench/consensus.py): its calibration error is ~0
for confidences that are right as often as they say and large for overconfident
ones, its live confidences are truth_live.posterior_from's, and the part runs on
synthetic crowds alone and writes its keys. No expected ECE of a real model."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.quality import truth_live
from tests.bench_modules import bench_modules

MODULES = ("crowds", "crowd_cuts", "crowd_data", "reporting", "consensus_hard", "calibration",
           "consensus")


@pytest.fixture(scope="module")
def bench():
    """bench/'s modules, with bench/ on sys.path (tests/bench_modules.py)."""
    yield from bench_modules(MODULES)


def test_confidences_right_as_often_as_they_say_have_no_calibration_error(bench):
    # four tasks at 0.75 with three right, five at 0.6 with three right, one at 1.0 right
    confidence = [0.75] * 4 + [0.6] * 5 + [1.0]
    correct = [1, 1, 1, 0] + [1, 1, 1, 0, 0] + [1]
    found = bench["calibration"].reliability(confidence, correct)
    assert found["ece"] == pytest.approx(0.0, abs=1e-12)
    assert found["signed"] == pytest.approx(0.0, abs=1e-12)
    assert [(b["bin"], b["tasks"]) for b in found["diagram"]] == [
        ([0.6, 0.7], 5), ([0.7, 0.8], 4), ([0.9, 1.0], 1)]  # 1.0 is in the last bin


def test_sampled_calibrated_confidences_score_near_zero(bench):
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 100_000)
    correct = rng.random(100_000) < confidence
    found = bench["calibration"].reliability(confidence, correct)
    assert found["ece"] < 0.01
    assert found["max_gap"] < 0.02


def test_overconfidence_is_large_and_signed(bench):
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.95, 1.0, 10_000)
    correct = rng.random(10_000) < 0.7
    over = bench["calibration"].reliability(confidence, correct)
    assert over["ece"] == pytest.approx(0.275, abs=0.02)
    assert over["signed"] == pytest.approx(over["ece"])  # every bin overconfident
    assert over["max_gap"] == pytest.approx(0.275, abs=0.03)
    under = bench["calibration"].reliability(np.full(1000, 0.55), np.ones(1000))
    assert under["signed"] == pytest.approx(-0.45)


def test_live_confidences_are_the_live_merges_posteriors(bench):
    crowd = bench["crowds"].generate("imbalance_4", 0, scale=0.05)
    a = crowd.answers
    model = truth_live.live_model(a)
    found = bench["calibration"].live_posterior(a, model)
    prior = truth_live.reported_prior(model, a)  # what the quality job stores
    assert abs(prior.max() - prior.min()) > 0.05  # an imbalanced crowd: not labels even
    for task in range(0, a.shape[0], 7):
        rows = np.flatnonzero(a.task == task)
        expected = truth_live.posterior_from(a.label[rows], model.confusion[a.worker[rows]],
                                             prior, model.temperature)
        np.testing.assert_allclose(found[task], expected, atol=1e-12)


def test_the_part_runs_on_synthetic_crowds_alone_and_writes_its_keys(bench, tmp_path):
    output = tmp_path / "consensus.json"
    bench["consensus"].main(["--parts", "calibration", "--synthetic-only", "--quick",
                             "--output", str(output)])
    report = json.loads(output.read_text())
    part = report["calibration"]
    assert part["synthetic_only"] is True
    assert set(part["sets"]) == set(bench["crowds"].SCENARIOS)
    for row in part["sets"].values():
        assert row["source"] == "synthetic"
        assert sum(row["chosen"].values()) == row["seeds"]
        for name in ("auto", "live", "auto_gold", "live_gold"):
            assert sum(b["tasks"] for b in row[name]["diagram"]) == row[name]["tasks"] > 0
            assert 0.0 <= row[name]["ece"] <= 1.0
        # the *_gold confidences are scored on the tasks not given as gold
        assert row["auto_gold"]["tasks"] == row["live_gold"]["tasks"] < row["auto"]["tasks"]
    for name in ("auto", "live", "auto_gold", "live_gold"):
        target = report["targets"][f"calibration_{name}_ece_under_0.05"]
        assert target["sets"] == len(bench["crowds"].SCENARIOS)
        assert target["met"] == (not target["missed"])
