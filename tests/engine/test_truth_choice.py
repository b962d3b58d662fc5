"""auto chooses its crowd model by held-out answer likelihood
(engine.quality.truth_choice): the model each crowd calls for, the same one on a
re-run, the vote when the crowd is uniform, and a stated fallback on too little."""
from __future__ import annotations

import numpy as np
import pytest

from engine.quality import truth, truth_choice, truth_live


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


def _hard_items_crowd(hard_share: float, seed: int, n_tasks=500, per_task=5, n_workers=40,
                      busy: tuple[int, int] = (0, 0)):
    """Volunteers who miss the same items: on a share of hard tasks each is right
    only 35% of the time, on the rest 90%. A model that multiplies answers as
    independent evidence is overconfident on such a crowd. ``busy`` (n, answers):
    the first n tasks get that many answers each (as gold does, shown to everyone)."""
    rng = np.random.default_rng(seed)
    rows, truth_of = [], []
    for task in range(n_tasks):
        true = int(rng.integers(2))
        truth_of.append(true)
        right = 0.35 if rng.random() < hard_share else 0.9
        many = busy[1] if task < busy[0] else per_task
        for worker in rng.choice(n_workers, many, replace=False):
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
        # the live path's one-task posterior applies the same τ, on a task the
        # cross-fitted cap left alone (the live path merges out of sample)
        refitted = truth.refit(fitted.choice, answers, np.full(answers.shape[0], -1))
        evidence = truth_choice.log_evidence(answers, refitted, truth.confusions_of)
        uncapped = truth_choice.softmax(fitted.choice.temperature * evidence)
        assert (fitted.confidence <= uncapped.max(axis=1) + 1e-12).all()
        task = int(np.flatnonzero(np.isclose(fitted.confidence, uncapped.max(axis=1)))[0])
        mine = answers.task == task
        again = truth_live.task_posterior(fitted, answers.worker[mine], answers.label[mine])
        assert np.allclose(again, fitted.posterior[task])


def test_gold_tasks_keep_their_clamped_posterior_when_tempered():
    answers, codes = _hard_items_crowd(0.2, 0)
    gold = np.full(answers.shape[0], truth.UNKNOWN)
    gold[:20] = codes[:20]
    fitted = truth.auto(answers, gold)
    assert fitted.choice.temperature < 1.0
    assert (fitted.posterior[np.arange(20), codes[:20]] == 1.0).all()


def _gold_evidence(n_tasks: int, wrong: int, margin: float = 10.0):
    """Evidence of two labels that favours label 0 by ``margin`` nats on every
    task (a posterior of 0.99995), with gold saying label 1 on ``wrong`` tasks."""
    evidence = np.tile([margin, 0.0], (n_tasks, 1))
    gold = np.zeros(n_tasks, dtype=np.int64)
    gold[:wrong] = 1
    return evidence, gold, np.ones(n_tasks, dtype=bool)


def test_gold_lowers_tau_to_what_its_labels_bear_out():
    """A quarter of the gold tasks contradict a posterior of 0.99995: τ falls
    until the winning label's confidence is about as often right as it says."""
    evidence, gold, answered = _gold_evidence(120, 30)
    tau = truth_choice.gold_calibration(evidence, gold, answered, 1.0).temperature
    confidence = truth_choice.temper(evidence, tau, evidence, np.full(120, -1)).max(axis=1)
    assert tau < 0.2
    assert 0.65 < confidence.mean() < 0.85


def test_gold_never_raises_tau_and_needs_enough_tasks():
    evidence, gold, answered = _gold_evidence(120, 0)
    all_right = truth_choice.gold_calibration(evidence, gold, answered, 0.4)
    assert all_right.temperature == 0.4
    few = truth_choice.MIN_GOLD_TASKS - 1
    evidence, gold, answered = _gold_evidence(few, few // 2)
    assert truth_choice.gold_calibration(evidence, gold, answered, 0.7).temperature == 0.7
    evidence, gold, _ = _gold_evidence(120, 60)
    unanswered = np.zeros(120, dtype=bool)  # gold nobody answered says nothing
    assert truth_choice.gold_calibration(evidence, gold, unanswered, 0.7).temperature == 0.7


def test_one_wrong_gold_label_does_not_make_every_result_unsure():
    evidence, gold, answered = _gold_evidence(100, 1)
    assert truth_choice.gold_calibration(evidence, gold, answered, 1.0).temperature >= 0.5


def test_gold_tempers_where_the_whole_crowd_misses_the_same_items():
    """On hard items the crowd's majority is wrong, and the answer hidden from a
    task agrees with it: held-out answers cannot see that; 60 gold tasks can.
    auto and the live merge both temper further, and say so."""
    answers, codes = _hard_items_crowd(0.2, 0)
    gold = np.full(answers.shape[0], truth.UNKNOWN)
    gold[:60] = codes[:60]
    without, given = truth.auto(answers), truth.auto(answers, gold)
    assert given.choice.tempered_by == "gold" == given.choice.as_dict()["tempered_by"]
    assert without.choice.tempered_by == "held-out answers"
    assert given.temperature == given.choice.temperature < without.temperature
    rest = np.arange(60, answers.shape[0])
    assert _calibration_error(given.posterior[rest], codes[rest]) < \
        _calibration_error(without.posterior[rest], codes[rest]) - 0.02
    assert (truth_live.live_model(answers, gold).temperature
            < truth_live.live_model(answers).temperature)


def _rows_and_gold(answers, codes, n_gold: int):
    """A crowd as (task, worker, label) rows, and its first tasks' truths as gold."""
    rows = [(answers.tasks[t], answers.workers[w], answers.labels[label])
            for t, w, label in zip(answers.task, answers.worker, answers.label, strict=True)]
    return rows, {answers.tasks[t]: answers.labels[codes[t]] for t in range(n_gold)}


def test_the_quality_run_stores_that_gold_tempered_the_merge():
    """What the periodic estimate stores on the project (Project.calibration), from
    the same crowd as rows: the τ, and that gold chose it."""
    rows, gold = _rows_and_gold(*_hard_items_crowd(0.2, 0), 60)
    fit = truth_live.fit_workers(rows, ["a", "b"], gold)
    assert fit.calibration["tempered_by"] == "gold"
    assert fit.calibration["temperature"] < truth_live.fit_workers(rows, ["a", "b"], {}) \
        .calibration["temperature"]


def test_bitesize_consensus_names_gold_as_what_tempered_it():
    """The summary line of `bitesize consensus` says when gold set τ."""
    from engine.quality import offline

    rows, gold = _rows_and_gold(*_hard_items_crowd(0.2, 0), 60)
    with_gold = offline._model_of(offline.merge(rows, gold)[1].choice)
    without = offline._model_of(offline.merge(rows)[1].choice)
    assert with_gold.endswith("(by gold)") and "confidence tempered by 0." in with_gold
    assert "tempered by" in without and "gold" not in without


def test_gold_with_many_answers_does_not_leave_ordinary_tasks_unsure():
    """Gold is shown to every volunteer, so a gold task gathers far more answers
    than the tasks τ is for; τ is fitted on as many of its answers as an
    ordinary task has (gold_sample). On 35 answers a gold task, the fit took τ
    to 0.1 and made the calibration of 5-answer tasks worse than no gold at all."""
    answers, codes = _hard_items_crowd(0.2, 0, busy=(60, 35))
    gold = np.full(answers.shape[0], truth.UNKNOWN)
    gold[:60] = codes[:60]
    sampled = truth_choice.gold_sample(answers, gold)
    per_task = np.bincount(sampled.task, minlength=answers.shape[0])
    assert set(per_task[:60]) == {5} and (per_task[60:] == 5).all()
    without, given = truth.auto(answers), truth.auto(answers, gold)
    rest = np.arange(60, answers.shape[0])
    assert _calibration_error(given.posterior[rest], codes[rest]) < \
        _calibration_error(without.posterior[rest], codes[rest])
    assert given.temperature > 0.15


def test_gold_finds_the_firm_mistakes_a_temperature_cannot_express():
    """Half the gold tasks have answers that agree firmly (10 nats), and one in
    ten of them is wrong anyway (a mistake the whole crowd shares); the other
    half are close calls (1 nat: 0.73), right as often as they say. A τ alone
    would have to flatten the close calls to bring the firm ones down; the
    lapse brings the firm ones to about 0.9 and leaves the close calls be."""
    firm, close = 100, 100
    evidence = np.vstack([np.tile([10.0, 0.0], (firm, 1)), np.tile([1.0, 0.0], (close, 1))])
    gold = np.zeros(firm + close, dtype=np.int64)
    gold[:10] = 1  # firm and wrong
    gold[firm:firm + 27] = 1  # close calls: right 73 times in 100
    answered = np.ones(firm + close, dtype=bool)
    fit = truth_choice.gold_calibration(evidence, gold, answered, 1.0)
    assert fit.temperature >= 0.9
    assert 0.15 <= fit.lapse <= 0.25
    flat = np.full(firm + close, -1)
    posterior = truth_choice.lapsed(truth_choice.temper(evidence, fit.temperature, evidence,
                                                        flat), fit.lapse)
    confidence = posterior.max(axis=1)
    assert abs(confidence[:firm].mean() - 0.9) < 0.03  # as often right as it says
    assert confidence[firm:].mean() > 0.6  # close calls still say which way they lean
    assert (posterior.argmax(axis=1) == 0).all()  # the lapse never turns a label
    # τ alone (the fit before there was a lapse) brings the firm ones down only
    # by flattening the close calls below how often they are right (0.56 < 0.73)
    tau = truth_choice.TEMPERATURES[np.argmax([
        np.log(0.98 * truth_choice.softmax(t * evidence)[np.arange(len(gold)), gold] + 0.01).sum()
        for t in truth_choice.TEMPERATURES])]
    alone = truth_choice.softmax(tau * evidence).max(axis=1)
    assert alone[firm:].mean() < 0.6


def test_no_gold_no_lapse():
    evidence, gold, answered = _gold_evidence(120, 0)
    assert truth_choice.gold_calibration(evidence, gold, answered, 1.0).lapse == 0.0
    few = truth_choice.MIN_GOLD_TASKS - 1
    evidence, gold, answered = _gold_evidence(few, few // 3)
    assert truth_choice.gold_calibration(evidence, gold, answered, 0.8) == \
        truth_choice.GoldFit(0.8, 0.0)


def test_each_gold_task_is_judged_by_a_fit_that_did_not_see_its_label():
    """A fit that had the gold label clamped learnt the task from it: its
    evidence there says nothing about ordinary tasks. tempered_by_gold asks for
    refits, each with a share of the gold hidden, and takes each gold task's
    evidence from the refit that hid it."""
    answers, codes = _hard_items_crowd(0.2, 0)
    gold = np.full(answers.shape[0], truth.UNKNOWN)
    gold[:60] = codes[:60]
    calls = []

    def evidence_of(sample, kept):
        calls.append(kept.copy())
        hidden = (gold >= 0) & (kept < 0)
        seen = (gold >= 0) & (kept >= 0)
        evidence = np.zeros((answers.shape[0], answers.shape[2]))
        evidence[hidden, codes[hidden]] = 3.0  # right, from a refit that hid them
        evidence[seen, (codes[seen] + 1) % answers.shape[2]] = 10.0  # firmly wrong: unused
        return evidence

    fit = truth_choice.tempered_by_gold(answers, gold, evidence_of, 1.0)
    assert len(calls) == truth_choice.GOLD_FOLDS
    hidden = np.concatenate([np.flatnonzero((gold >= 0) & (kept < 0)) for kept in calls])
    assert sorted(hidden.tolist()) == list(range(60))  # each gold task hidden once
    assert all((kept[60:] == truth.UNKNOWN).all() for kept in calls)  # no gold made up
    # every gold task read the refit that hid it (right by 3 nats), none the
    # firmly wrong evidence of a refit that saw it: nothing to temper
    assert fit == truth_choice.GoldFit(1.0, 0.0)


def test_the_live_tau_is_chosen_on_matrices_that_never_saw_the_hidden_answers():
    """live_temperature hides one answer per task and scores how well each τ
    predicts it; the matrices it predicts with are fitted on the other answers
    alone (matrices that had counted an answer predicted it as if they knew it:
    rte's live results were reported at 0.997 and right 95% of the time)."""
    answers, _ = _hard_items_crowd(0.2, 0)
    seen = []

    def matrices_of(kept):
        seen.append(kept)
        return np.tile(np.array([[0.8, 0.2], [0.2, 0.8]]), (answers.shape[1], 1, 1))

    gold = np.full(answers.shape[0], truth.UNKNOWN)
    tau = truth_choice.live_temperature(answers, gold, matrices_of)
    assert len(seen) == truth_choice.FOLDS and tau in truth_choice.TEMPERATURES
    everyone = set(zip(answers.task.tolist(), answers.worker.tolist(), strict=True))
    for fold, kept in enumerate(seen):
        _, hidden = truth_choice._hide(answers, fold)
        pairs = set(zip(kept.task.tolist(), kept.worker.tolist(), strict=True))
        assert len(pairs) == len(answers.task) - len(hidden) and pairs <= everyone
        assert not pairs & set(zip(answers.task[hidden].tolist(),
                                   answers.worker[hidden].tolist(), strict=True))


def test_capped_lowers_the_winner_only_where_the_cap_is_lower_and_never_to_a_tie():
    posterior = np.array([[0.9, 0.08, 0.02], [0.2, 0.7, 0.1], [0.5, 0.5, 0.0],
                          [0.45, 0.4, 0.15]])
    out = truth_choice.capped(posterior, np.array([0.6, 0.95, 0.1, 0.2]))
    assert np.allclose(out.sum(axis=1), 1.0)
    assert (out.argmax(axis=1) == posterior.argmax(axis=1)).all()
    assert out[0, 0] == pytest.approx(0.6)  # lowered to the cap, the rest scaled up
    assert out[0, 1] / out[0, 2] == pytest.approx(0.08 / 0.02)
    assert np.allclose(out[1], posterior[1])  # a cap above the confidence: unchanged
    assert np.allclose(out[2], posterior[2])  # a tie stays a tie
    assert out[3, 0] > out[3, 1] and out[3, 0] < 0.45  # lowered, but short of a tie
    # near-certain rows: the rest shared as it was, or evenly when it was nothing
    edges = truth_choice.capped(np.array([[1 - 5e-7, 5e-7, 0.0], [1.0, 0.0, 0.0],
                                          [1.0, 0.0, 0.0]]), np.array([0.9, 0.8, np.nan]))
    assert np.allclose(edges.sum(axis=1), 1.0) and (edges.argmax(axis=1) == 0).all()
    assert np.allclose(edges[:2], [[0.9, 0.1, 0.0], [0.8, 0.1, 0.1]])
    assert np.allclose(edges[2], [1.0, 0.0, 0.0])  # no cap known: unchanged


def test_each_task_is_judged_by_a_fit_that_saw_none_of_its_answers():
    """auto caps its confidence by cross-fitted evidence: the fit that scores a
    task left out every answer of that task, and each answer is left out once."""
    answers, _ = _crowd([(0.8, 1.0)] * 30, n_tasks=120)
    kept_by_fit = []

    def fit_without(kept):
        kept_by_fit.append(set(kept.tolist()))
        return truth.CANDIDATES["onecoin"](truth_choice.subset(answers, kept), None)

    evidence = truth_choice.cross_fitted_evidence(answers, fit_without, truth.confusions_of)
    assert evidence.shape == (answers.shape[0], answers.shape[2])
    assert len(kept_by_fit) == truth_choice.CROSS_FOLDS
    rows = np.arange(len(answers.task))
    left_out = [set(rows.tolist()) - kept for kept in kept_by_fit]
    assert sorted(r for part in left_out for r in part) == rows.tolist()  # each once
    for part in left_out:  # whole tasks: no task has answers on both sides
        tasks = set(answers.task[sorted(part)].tolist())
        assert not tasks & set(answers.task[sorted(set(rows.tolist()) - part)].tolist())


def test_auto_is_no_surer_than_out_of_sample_and_keeps_every_result(monkeypatch):
    answers, codes = _hard_items_crowd(0.2, 0, n_workers=120)
    capped = truth.auto(answers)
    assert (truth.auto(answers).posterior == capped.posterior).all()  # same file, same
    monkeypatch.setattr(truth_choice, "MIN_CROSS_TASKS", 10**9)
    plain = truth.auto(answers)
    assert (capped.label == plain.label).all()
    assert (capped.confidence <= plain.confidence + 1e-12).all()
    assert (capped.confidence < plain.confidence - 1e-3).any()
