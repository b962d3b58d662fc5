"""bench/crowds.py makes the hard crowds it names, bench/crowd_cuts.py cuts them
out of real answers, and part (iv) of bench/consensus.py runs on synthetic
crowds alone and writes its verdicts. Tiny sizes; no expected accuracies, no
timing thresholds: the traits are what is checked."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.bench_modules import BENCH, bench_modules

DATA = BENCH.parent / "tests" / "data"  # vendored: see tests/data/README.md
MODULES = ("crowds", "crowd_cuts", "crowd_data", "reporting", "consensus_hard", "consensus")


@pytest.fixture(scope="module")
def bench():
    """bench/'s modules, with bench/ on sys.path (tests/bench_modules.py)."""
    yield from bench_modules(MODULES)


def distinct_pairs(answers) -> bool:
    return len(set(zip(answers.task.tolist(), answers.worker.tolist(), strict=True))) \
        == len(answers.task)


@pytest.mark.parametrize("seed", [0, 1])
def test_heavy_tail_has_three_prolific_volunteers_and_a_long_tail(bench, seed):
    crowd = bench["crowds"].generate("heavy_tail", seed, scale=0.1)
    traits = bench["crowds"].traits(crowd)
    assert traits["top3_share"] == pytest.approx(0.25, abs=0.03)
    assert all(0.06 <= share <= 0.11 for share in traits["top3_shares"])
    assert traits["share_under_20"] > 0.5
    assert distinct_pairs(crowd.answers)
    assert set(np.unique(crowd.truth)) == {0, 1, 2}


@pytest.mark.parametrize(("scenario", "commonest"), [("imbalance", 0.78), ("imbalance_4", 0.56)])
def test_imbalanced_scenarios_hold_their_class_shares(bench, scenario, commonest):
    crowd = bench["crowds"].generate(scenario, 0, scale=0.25)
    shares = bench["crowds"].traits(crowd)["class_shares"]
    assert shares[0] == pytest.approx(commonest, abs=0.04)
    assert shares == sorted(shares, reverse=True)


def test_a_school_reads_its_items_the_other_way_and_everyone_saw_every_item(bench):
    crowds = bench["crowds"]
    spec = crowds.Scenario(tasks=60, labels=2, workers=20, coverage=1.0, schools=(0.35,),
                           doubt=0.0)
    crowd = crowds.generate(spec, 3)
    a = crowd.answers
    assert (np.bincount(a.worker, minlength=20) == 60).all()  # dense: all items
    (members, items), = crowd.schools
    assert 0 < len(members) < 20 and len(items) > 0
    assert (crowd.truth[items] == np.argmin(np.bincount(crowd.truth))).all()
    on_items = np.isin(a.task, items)
    wrong = a.label != crowd.truth[a.task]
    in_school = np.isin(a.worker, members)
    assert wrong[on_items & in_school].mean() > 0.7
    assert wrong[on_items & ~in_school].mean() < wrong[on_items & in_school].mean() - 0.3


def test_the_schools_scenario_is_dense(bench):
    traits = bench["crowds"].traits(bench["crowds"].generate("schools", 0))
    assert (traits["tasks"], traits["volunteers"]) == (240, 53)
    assert traits["answers_per_task"] == pytest.approx(40, abs=2)
    assert traits["schools"][0]["items"] > 0


def test_cuts_reproduce_the_traits_on_real_answers(bench):
    cuts = bench["crowd_cuts"]
    whole = cuts.load(DATA, "temporal")  # binary, 10 answers a task
    heavy = bench["crowds"].traits(cuts.cut(whole, "heavy_tail", 0))
    assert heavy["top3_share"] == pytest.approx(0.25, abs=0.01)
    assert heavy["share_under_20"] > 0.5
    imbalanced = cuts.cut(whole, "imbalance", 0)
    assert max(bench["crowds"].traits(imbalanced)["class_shares"]) == pytest.approx(0.78,
                                                                                   abs=0.01)
    schooled = cuts.cut(whole, "schools+imbalance", 1)
    (members, items), = schooled.schools
    assert len(members) > 0 and len(items) > 0
    assert len(schooled.answers.task) == len(imbalanced.answers.task)


def test_cuts_keep_each_task_truth_and_skip_what_a_set_cannot_hold(bench):
    crowds, cuts = bench["crowds"], bench["crowd_cuts"]
    crowd = crowds.generate("control", 2, scale=0.2)  # three labels
    assert cuts.cut(crowd, "schools", 0) is None
    thinned = cuts.cut(crowd, "heavy_tail+imbalance", 0)
    truth_of = dict(zip(crowd.answers.tasks, crowd.truth.tolist(), strict=True))
    assert [truth_of[t] for t in thinned.answers.tasks] == thinned.truth.tolist()
    assert distinct_pairs(thinned.answers)
    assert max(crowds.traits(thinned)["class_shares"]) == pytest.approx(0.56, abs=0.02)


def test_hard_part_runs_on_synthetic_crowds_alone_and_writes_its_verdicts(bench, tmp_path,
                                                                          capsys):
    output = tmp_path / "consensus.json"
    bench["consensus"].main(["--parts", "hard", "--quick", "--synthetic-only",
                             "--output", str(output)])
    written = json.loads(output.read_text())
    assert written["parts"] == ["hard"] and "unsupervised" not in written
    assert set(written["targets"]) == {"hard_auto_at_least_mv",
                                       "hard_auto_within_half_point_of_best_model"}
    for target in written["targets"].values():
        assert isinstance(target["met"], bool) and target["sets"] == len(written["hard"]["sets"])
    sets = written["hard"]["sets"]
    assert set(sets) == set(bench["crowds"].SCENARIOS)
    for row in sets.values():
        assert row["source"] == "synthetic"
        assert all(0 <= value <= 100 for value in row["accuracy"].values())
        assert row["auto_minus_mv"] == pytest.approx(row["accuracy"]["auto"]
                                                     - row["accuracy"]["mv"])
    assert "hard_auto_at_least_mv" in capsys.readouterr().out
