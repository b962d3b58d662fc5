"""auto chooses its crowd model by held-out answer likelihood
(engine.quality.truth_choice): the model each crowd calls for, the same one on a
re-run, the vote when the crowd is uniform, and a stated fallback on too little."""
from __future__ import annotations

import numpy as np

from engine.quality import truth


def _crowd(accuracy_of, n_tasks=400, per_task=5, prior=(0.5, 0.5), confuse=None, seed=0):
    """Answers from workers picked at random per task; ``accuracy_of(worker)`` is
    their one coin, or ``confuse`` (true label -> P(right)) a class-dependent crowd."""
    rng = np.random.default_rng(seed)
    n_workers = len(accuracy_of)
    rows, truth_of = [], []
    weights = np.array([w for _, w in accuracy_of], dtype=float)
    for task in range(n_tasks):
        true = int(rng.choice(len(prior), p=prior))
        truth_of.append(true)
        for worker in rng.choice(n_workers, per_task, replace=False, p=weights / weights.sum()):
            right = confuse[true] if confuse else accuracy_of[worker][0]
            said = true if rng.random() < right else 1 - true
            rows.append((f"t{task}", f"w{worker}", "ab"[said]))
    answers = truth.encode(rows, ["a", "b"])
    codes = np.array([truth_of[int(t[1:])] for t in answers.tasks])
    return answers, codes


def _accuracy(inference, codes) -> float:
    return float((inference.label == codes).mean())


def test_a_few_prolific_volunteers_of_different_skill_get_their_own_accuracy():
    """Heavy-tailed participation: three volunteers give most answers, one of them
    careless. Pooling treats the careless one like the careful; auto does not."""
    workers = [(0.95, 30.0), (0.55, 30.0), (0.9, 20.0)] + [(0.75, 1.0)] * 40
    answers, codes = _crowd(workers)
    fitted = truth.auto(answers)
    assert fitted.choice.chosen != "pooled"
    assert fitted.choice.reason == "best held-out answer likelihood"
    assert set(fitted.choice.scores) == set(truth.CANDIDATES)
    assert fitted.choice.scores[fitted.choice.chosen] == max(fitted.choice.scores.values())
    assert _accuracy(fitted, codes) > _accuracy(truth.majority_vote(answers), codes) + 0.02
    again = truth.auto(answers)
    assert again.choice == fitted.choice and (again.label == fitted.label).all()


def test_a_crowd_that_misses_the_rare_class_gets_class_by_class_matrices():
    """Imbalance with class-dependent errors: everyone sees the common class
    right 95% of the time and the rare one 60%. One accuracy per volunteer
    cannot say that; a confusion matrix can."""
    workers = [(0.0, 1.0)] * 30
    answers, codes = _crowd(workers, n_tasks=600, prior=(0.8, 0.2),
                            confuse={0: 0.95, 1: 0.6}, seed=1)
    fitted = truth.auto(answers)
    assert fitted.choice.chosen in ("ds", "hierarchical")
    assert fitted.choice.scores[fitted.choice.chosen] > fitted.choice.scores["onecoin"]
    assert _accuracy(fitted, codes) >= _accuracy(truth.majority_vote(answers), codes)


def test_a_crowd_of_equals_is_best_served_by_the_vote():
    answers, _ = _crowd([(0.75, 1.0)] * 12, n_tasks=300, per_task=3)
    assert truth.auto(answers).choice.chosen == "pooled"


def test_too_few_answers_to_hold_out_fall_back_and_say_so():
    answers, _ = _crowd([(0.8, 1.0)] * 10, n_tasks=20, per_task=3)
    choice = truth.auto(answers).choice
    assert choice.scores == {} and choice.hidden == 20
    assert choice.reason.startswith("fewer than 50 answers")
    assert choice.chosen in ("pooled", "smoothed")
    assert choice.as_dict()["chosen"] == choice.chosen


def _hard_items_crowd(hard_share: float, seed: int, n_tasks=500, per_task=5, n_workers=40):
    """Volunteers who miss the same items: on a share of hard tasks each is right
    only 35% of the time, on the rest 90%. A model that multiplies answers as
    independent evidence is overconfident on such a crowd."""
    rng = np.random.default_rng(seed)
    rows, truth_of = [], []
    for task in range(n_tasks):
        true = int(rng.integers(2))
        truth_of.append(true)
        right = 0.35 if rng.random() < hard_share else 0.9
        for worker in rng.choice(n_workers, per_task, replace=False):
            said = true if rng.random() < right else 1 - true
            rows.append((f"t{task}", f"w{worker}", "ab"[said]))
    answers = truth.encode(rows, ["a", "b"])
    return answers, np.array([truth_of[int(t[1:])] for t in answers.tasks])


def _calibration_error(posterior: np.ndarray, codes: np.ndarray, bins: int = 10) -> float:
    confidence, right = posterior.max(axis=1), posterior.argmax(axis=1) == codes
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    return float(sum((index == b).mean() * abs(confidence[index == b].mean()
                                                - right[index == b].mean())
                     for b in range(bins) if (index == b).any()))


def test_auto_tempers_its_confidence_where_volunteers_miss_the_same_items():
    """Held-out answers say the independent model is too sure: auto's posterior
    is tempered (τ < 1), its calibration error falls, and no result changes."""
    for seed in (0, 1):
        answers, codes = _hard_items_crowd(0.2, seed)
        fitted = truth.auto(answers)
        assert fitted.choice.temperature < 1.0
        assert fitted.choice.as_dict()["temperature"] == fitted.choice.temperature
        untempered = truth.CANDIDATES[fitted.choice.chosen](answers, None)
        assert (fitted.label == untempered.label).all()
        assert _calibration_error(fitted.posterior, codes) < \
            _calibration_error(untempered.posterior, codes) - 0.02
        # the live path's one-task posterior applies the same τ
        first = answers.task == 0
        again = truth.task_posterior(fitted, answers.worker[first], answers.label[first])
        assert np.allclose(again, fitted.posterior[0])


def test_gold_tasks_keep_their_clamped_posterior_when_tempered():
    answers, codes = _hard_items_crowd(0.2, 0)
    gold = np.full(answers.shape[0], truth.UNKNOWN)
    gold[:20] = codes[:20]
    fitted = truth.auto(answers, gold)
    assert fitted.choice.temperature < 1.0
    assert (fitted.posterior[np.arange(20), codes[:20]] == 1.0).all()
