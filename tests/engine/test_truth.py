"""Truth inference on hand-made answers, generated crowds and one real data set."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from engine.quality import trust, truth, truth_choice, truth_live
from task_types.classify import classify

DATA = Path(__file__).parents[1] / "data"  # vendored: see tests/data/README.md


def simulate(confusions: np.ndarray, n_tasks: int, per_task: int, seed: int = 0):
    """Answers from workers with known confusion matrices [worker, true, answer];
    returns (triples, true label codes)."""
    rng = np.random.default_rng(seed)
    n_workers, n_labels, _ = confusions.shape
    truths = rng.integers(n_labels, size=n_tasks)
    triples = []
    for task, true in enumerate(truths):
        for worker in rng.choice(n_workers, per_task, replace=False):
            answer = rng.choice(n_labels, p=confusions[worker, true])
            triples.append((f"t{task}", f"w{worker}", f"l{answer}"))
    return triples, truths


def one_coin_matrix(accuracy: float, n_labels: int) -> np.ndarray:
    off = (1 - accuracy) / (n_labels - 1)
    return np.full((n_labels, n_labels), off) + np.eye(n_labels) * (accuracy - off)


def accuracy(inference: truth.Inference, answers: truth.Answers, truths: np.ndarray) -> float:
    expected = np.array([truths[int(name[1:])] for name in answers.tasks])
    return float((inference.label == expected).mean())


@pytest.fixture(scope="module")
def swapping_crowd():
    """Three labels; half the workers confuse l0 with l1 both ways, so a vote is
    often wrong on those, while a confusion matrix can undo the swap."""
    good = one_coin_matrix(0.85, 3)
    swap = np.array([[0.25, 0.7, 0.05], [0.7, 0.25, 0.05], [0.05, 0.05, 0.9]])
    confusions = np.stack([good] * 10 + [swap] * 10)
    triples, truths = simulate(confusions, 1500, 5, seed=1)
    return truth.encode(triples), truths, confusions


def test_majority_vote_counts_and_breaks_ties_by_label_order():
    answers = truth.encode([("t1", "a", "x"), ("t1", "b", "x"), ("t1", "c", "y"),
                            ("t2", "a", "y"), ("t2", "b", "x")])
    result = truth.majority_vote(answers)
    assert answers.labels == ("x", "y")
    assert [answers.labels[i] for i in result.label] == ["x", "x"]
    assert result.confidence.tolist() == pytest.approx([2 / 3, 0.5])


def test_majority_vote_agrees_with_the_classify_task_type():
    """The live path's aggregate and the vectorised vote give the same results."""
    rng = np.random.default_rng(3)
    labels = ["Deer", "Fox", "Badger"]
    triples = [(f"t{t}", f"w{w}", labels[rng.integers(3)]) for t in range(200) for w in range(4)]
    result = truth.majority_vote(truth.encode(triples, labels))
    config = {"labels": labels}
    for task in range(200):
        votes = [{"label": label} for t, _w, label in triples if t == f"t{task}"]
        merged = classify.aggregate(votes, None, config)
        assert labels[result.label[task]] == merged.value
        assert result.confidence[task] == pytest.approx(merged.confidence)


def test_weighted_vote_lets_a_trusted_worker_outvote_two_others():
    answers = truth.encode([("t", "a", "x"), ("t", "b", "x"), ("t", "c", "y")])
    weights = np.array([1.0, 1.0, 3.0])
    result = truth.weighted_vote(answers, weights)
    assert answers.labels[result.label[0]] == "y"
    assert result.confidence[0] == pytest.approx(0.6)
    with pytest.raises(ValueError):
        truth.weighted_vote(answers, np.array([1.0, -1.0, 1.0]))


def test_duplicate_pairs_keep_the_last_answer():
    answers = truth.encode([("t", "a", "x"), ("t", "b", "y"), ("t", "a", "y")])
    assert len(answers.task) == 2
    assert sorted(answers.labels[i] for i in answers.label) == ["y", "y"]


def test_labels_sort_naturally_and_must_be_known():
    answers = truth.encode([("t", "a", "10"), ("t", "b", "2"), ("t", "c", "1")])
    assert answers.labels == ("1", "2", "10")
    with pytest.raises(ValueError, match="not listed"):
        truth.encode([("t", "a", "cat")], labels=["dog"])
    with pytest.raises(ValueError, match="not listed"):
        answers.gold_codes({"t": "cat"})
    assert answers.gold_codes({"t": "2", "nobody answered": "1"}).tolist() == [1]


@pytest.mark.parametrize("method", truth.METHODS)
def test_posteriors_are_distributions(method, swapping_crowd):
    answers, _, _ = swapping_crowd
    result = truth.infer(answers, method)
    assert result.posterior.shape == (len(answers.tasks), 3)
    assert np.allclose(result.posterior.sum(axis=1), 1.0)
    assert (result.posterior >= 0).all()
    assert np.array_equal(result.confidence, result.posterior.max(axis=1))


def test_dawid_skene_recovers_confusions_and_beats_the_vote(swapping_crowd):
    answers, truths, confusions = swapping_crowd
    ds = truth.dawid_skene(answers)
    order = [int(name[1:]) for name in answers.workers]
    assert np.abs(ds.confusion - confusions[order]).max() < 0.08
    assert accuracy(ds, answers, truths) > accuracy(truth.majority_vote(answers), answers,
                                                    truths) + 0.05
    assert accuracy(truth.auto(answers), answers, truths) >= accuracy(ds, answers, truths) - 0.01


def test_one_coin_learns_each_workers_accuracy():
    rates = np.linspace(0.4, 0.95, 12)
    confusions = np.stack([one_coin_matrix(rate, 4) for rate in rates])
    triples, truths = simulate(confusions, 1500, 5, seed=2)
    answers = truth.encode(triples)
    fitted = truth.one_coin(answers)
    order = [int(name[1:]) for name in answers.workers]
    assert np.abs(fitted.reliability - rates[order]).max() < 0.06
    assert accuracy(fitted, answers, truths) > accuracy(truth.majority_vote(answers), answers,
                                                        truths)


def test_a_worker_always_giving_one_label_gets_low_reliability():
    confusions = np.stack([one_coin_matrix(0.8, 4)] * 8 + [np.tile([1.0, 0, 0, 0], (4, 1))])
    triples, _ = simulate(confusions, 800, 4, seed=4)
    answers = truth.encode(triples)
    spammer = answers.workers.index("w8")
    for method in ("ds", "onecoin", "auto"):
        reliability = truth.infer(answers, method).reliability
        assert reliability[spammer] < 0.4 < np.delete(reliability, spammer).min()


def test_gold_is_clamped_and_steers_the_start():
    """An adversarial majority fools every unsupervised method; gold on a tenth
    of the tasks tells EM which way round the labels go."""
    confusions = np.stack([one_coin_matrix(0.2, 2)] * 6 + [one_coin_matrix(0.9, 2)] * 3)
    triples, truths = simulate(confusions, 600, 5, seed=5)
    answers = truth.encode(triples)
    assert accuracy(truth.dawid_skene(answers), answers, truths) < 0.5
    gold = {f"t{t}": f"l{truths[t]}" for t in range(0, 600, 10)}
    codes = answers.gold_codes(gold)
    for method in ("ds", "auto"):
        assert accuracy(truth.infer(answers, method, codes), answers, truths) > 0.9
    flipped = {task: "l1" if label == "l0" else "l0" for task, label in gold.items()}
    for method in truth.METHODS:
        result = truth.infer(answers, method, answers.gold_codes(flipped))
        known = codes >= 0
        assert (result.label[known] == 1 - codes[known]).all()
        assert (result.confidence[known] == 1.0).all()


def test_task_posterior_reproduces_the_fit_and_handles_new_workers(swapping_crowd,
                                                                   monkeypatch):
    answers, _, _ = swapping_crowd
    capped = truth.infer(answers, "auto")
    # auto's in-sample posteriors are capped by cross-fitted ones (truth_choice):
    # the live path, which merges tasks the fit has not seen, reproduces them uncapped
    monkeypatch.setattr(truth_choice, "MIN_CROSS_TASKS", 10**9)
    for method in ("ds", "onecoin", "auto"):
        fitted = truth.infer(answers, method)
        for task in (0, 7, 42):
            mine = answers.task == task
            alone = truth_live.task_posterior(fitted, answers.worker[mine], answers.label[mine])
            assert alone == pytest.approx(fitted.posterior[task])
            if method == "auto":
                assert capped.label[task] == alone.argmax()
                assert capped.confidence[task] <= alone.max() + 1e-12
        stranger = truth_live.task_posterior(fitted, [truth.UNKNOWN, 10_000], [2, 2])
        assert stranger.argmax() == 2 and stranger.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no worker model"):
        truth_live.task_posterior(truth.majority_vote(answers), [0], [0])


def test_many_confident_answers_do_not_underflow():
    triples = [("t", f"w{w}", "x") for w in range(400)] + [("u", f"w{w}", "y") for w in range(400)]
    for method in truth.METHODS:
        result = truth.infer(truth.encode(triples), method)
        assert np.isfinite(result.posterior).all()
        assert result.confidence.tolist() == pytest.approx([1.0, 1.0])


def test_a_single_label_and_bad_arguments():
    answers = truth.encode([("t", "a", "x"), ("u", "b", "x")])
    for method in truth.METHODS:
        assert truth.infer(answers, method).confidence.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="unknown method"):
        truth.infer(answers, "median")
    with pytest.raises(ValueError, match="max_iter"):
        truth.dawid_skene(answers, max_iter=0)
    with pytest.raises(ValueError, match="gold"):
        truth.dawid_skene(answers, np.array([5, 0]))


def test_worker_estimates_for_the_periodic_job():
    triples = [(1, 10, "x"), (1, 11, "x"), (2, 10, "y"), (2, 11, "gone")]
    reliability, confusion = truth_live.worker_estimates(triples, ["x", "y"], {1: "x", 2: "z"})
    assert set(reliability) == {10, 11} and set(confusion) == {10, 11}
    assert np.allclose(np.sum(confusion[10], axis=1), 1.0)
    assert truth_live.worker_estimates([], ["x"], {}) == ({}, {})


def read_set(name: str) -> tuple[truth.Answers, np.ndarray]:
    with open(DATA / name / "answers.csv", newline="") as f:
        answers = truth.encode(tuple(row) for row in list(csv.reader(f))[1:])
    with open(DATA / name / "gold.csv", newline="") as f:
        gold = dict(tuple(row) for row in list(csv.reader(f))[1:])
    return answers, answers.gold_codes(gold)


def test_dawid_skene_beats_the_vote_on_real_product_matches():
    """Published: vote 89.66%, Dawid-Skene 93.66% (Zheng et al., PVLDB 2017)."""
    answers, gold = read_set("product_match")
    known = gold >= 0

    def score(result: truth.Inference) -> float:
        return float((result.label[known] == gold[known]).mean())

    vote = score(truth.majority_vote(answers))
    assert vote == pytest.approx(0.8966, abs=0.001)
    assert score(truth.dawid_skene(answers)) > vote + 0.03
    assert score(truth.auto(answers)) > vote + 0.03


def test_posterior_from_stored_matrices_and_reliabilities():
    """The live path may hold only stored per-worker estimates, not a whole fit."""
    careful = np.array([[0.9, 0.1], [0.2, 0.8]])
    says_one_always = np.array([[0.0, 1.0], [0.0, 1.0]]) + 1e-9
    posterior = truth_live.posterior_from([0, 1], np.stack([careful, says_one_always]))
    assert posterior.argmax() == 0 and posterior.sum() == pytest.approx(1.0)
    assert posterior[0] == pytest.approx(0.9 / (0.9 + 0.2), rel=1e-6)
    matrices = truth_live.one_coin_confusions([0.9, 0.6, 0.6], 3)
    assert np.allclose(matrices.sum(axis=2), 1.0)
    posterior = truth_live.posterior_from([2, 0, 0], matrices, prior=np.array([0.2, 0.2, 0.6]))
    odds = (0.2 * 0.05 * 0.6 * 0.6) / (0.6 * 0.9 * 0.2 * 0.2)
    assert posterior[0] / posterior[2] == pytest.approx(odds)


def test_early_in_a_project_auto_pools_the_crowd():
    """On a tenth of a real set's answers (1-2 per task), per-worker models do
    worse than the vote; auto then gives the vote's labels, with a confidence."""
    answers, gold = read_set("temporal")
    keep = np.random.default_rng(0).permutation(len(answers.task))[: len(answers.task) // 10]
    early = truth.Answers(answers.task[keep], answers.worker[keep], answers.label[keep],
                          answers.tasks, answers.workers, answers.labels)
    vote, fitted = truth.majority_vote(early), truth.auto(early)
    assert fitted.confusion is None and len(set(fitted.reliability.tolist())) == 1
    clear = vote.confidence > 0.5
    assert (fitted.label[clear] == vote.label[clear]).all()
    answered = np.bincount(early.task, minlength=len(early.tasks)) > 0
    assert (fitted.confidence[answered] >= 0.5).all() and (fitted.confidence < 1).all()


def test_live_model_cross_fits_so_lucky_workers_cannot_retire_tasks_alone():
    """Twelve workers, each truly right 75% of the time, three answers a task. EM
    grades each against posteriors their own answer helped form, and some come
    out near-perfect; three of those agreeing would pass a 0.99 target although
    three 75% workers agreeing are right 96.4% of the time. The live model's
    cross-fitted matrices must not trust anyone beyond what the others confirm."""
    rng = np.random.default_rng(0)
    rows = []
    for task in range(150):
        true = int(rng.integers(2))
        for worker in rng.choice(12, 3, replace=False):
            said = true if rng.random() < 0.75 else 1 - true
            rows.append((f"t{task}", f"w{worker}", str(said)))
    answers = truth.encode(rows)
    # per-worker matrices (auto itself rightly chooses the pooled vote for this crowd)
    fitted = truth.hierarchical(answers)
    live = truth_live.calibrated(fitted, answers)
    assert truth.auto(answers).choice.chosen == "pooled"
    assert (live.label == fitted.label).all()  # calibration changes confidences only
    assert np.allclose(live.confusion.sum(axis=2), 1.0)
    fitted_accuracy = np.einsum("wkk->w", truth.confusions_of(fitted)) / 2
    live_accuracy = np.einsum("wkk->w", live.confusion) / 2
    trusted = np.argsort(fitted_accuracy)[-3:]
    assert fitted_accuracy[trusted].min() > 0.8  # the in-sample estimate flatters them
    assert live_accuracy.max() < 0.8
    three_agree = 0.75 ** 3 / (0.75 ** 3 + 0.25 ** 3)
    assert truth_live.posterior_from([0, 0, 0], truth.confusions_of(fitted)[trusted])[0] > 0.99
    assert truth_live.posterior_from([0, 0, 0], live.confusion[trusted])[0] < three_agree
    # what the periodic job stores is the live model's matrix
    _, stored = truth_live.worker_estimates(rows, answers.labels, {})
    stored_accuracy = [np.trace(np.array(matrix)) / 2 for matrix in stored.values()]
    assert max(stored_accuracy) < 0.8
    live_model = truth_live.live_model(answers)
    assert np.allclose(stored["w0"], live_model.confusion[answers.workers.index("w0")])


def test_calibrated_pools_like_the_fit_and_keeps_gold():
    answers = truth.encode([("t", "a", "x"), ("t", "b", "x"), ("u", "a", "y"), ("u", "c", "x")])
    pooled = truth.one_coin(answers, smoothing=np.inf)
    same = truth_live.calibrated(pooled, answers, pooled=True).confusion
    assert np.allclose(same, same[0])  # one matrix for everyone, as the fit had
    gold = np.array([0, 1])  # t is x, u is y: c's lone x on u is checked, and wrong
    checked = truth_live.calibrated(truth.auto(answers, gold), answers, gold).confusion
    c, a = answers.workers.index("c"), answers.workers.index("a")
    assert checked[c, 1, 1] < checked[a, 1, 1]  # a's two answers agree with gold
    assert checked[c, 1, 1] <= 0.5 + 1e-9  # c is worth no more than a coin
    with pytest.raises(ValueError, match="no worker model"):
        truth_live.calibrated(truth.majority_vote(answers), answers)


def _early_crowd(seed: int) -> tuple[list, dict]:
    """A project's first seconds (issue 13): two scripts answering "a" to every
    task they get have given most answers; eight honest volunteers (85% right)
    a few each."""
    rng = np.random.default_rng(seed)
    truth_of = {f"t{n}": "ab"[rng.integers(2)] for n in range(20)}
    rows = [(f"t{n}", script, "a") for script in ("s1", "s2")
            for n in range(int(rng.integers(4, 13)))]
    for h in range(8):
        for n in rng.choice(20, int(rng.integers(0, 4)), replace=False).tolist():
            right = truth_of[f"t{n}"]
            wrong = "b" if right == "a" else "a"
            rows.append((f"t{n}", f"h{h}", right if rng.random() < 0.85 else wrong))
    return rows, truth_of


def test_an_early_estimate_never_turns_answers_upside_down():
    """Under the stored matrices, an answer is never evidence against itself
    while the crowd is pooled: on 60 early crowds where scripts gave most
    answers, one honest "a" (or "b") leaves "a" (or "b") the likelier label.
    Before the fix about half of these crowds got an inverted crowd matrix."""
    for seed in range(60):
        rows, _ = _early_crowd(seed)
        _, confusion = truth_live.worker_estimates(rows, ["a", "b"], {})
        for worker, matrix in confusion.items():
            for label in (0, 1):
                posterior = truth_live.posterior_from([label], np.array([matrix]))
                assert posterior[label] >= 0.5, (seed, worker, matrix)


def test_a_label_nobody_could_check_yet_does_not_outweigh_a_majority():
    """The first quality run of a project (issue 13's check, over HTTP): 16
    answers, no "deer" gold and no deer task checked. A flat "deer" row with next
    to nothing in its column made one "deer" beat two "fox" at 0.97; the pooled
    crowd's one-coin matrix keeps the majority."""
    labels = ["deer", "fox", "empty"]
    rows = [(2, 3, "fox"), (31, 1, "empty"), (4, 6, "empty"), (1, 2, "fox"), (5, 7, "deer"),
            (31, 8, "empty"), (31, 5, "empty"), (3, 4, "empty"), (31, 3, "empty"),
            (3, 2, "empty"), (6, 7, "empty"), (1, 1, "fox"), (31, 6, "empty"),
            (32, 8, "fox"), (31, 4, "empty"), (7, 5, "deer")]
    rows = [(str(t), str(v), label) for t, v, label in rows]
    _, confusion = truth_live.worker_estimates(rows, labels, {"31": "empty", "32": "fox"})
    matrices = np.array([confusion["1"], confusion["2"], confusion["3"]])
    posterior = truth_live.posterior_from([1, 1, 0], matrices)  # fox, fox, deer
    assert posterior.argmax() == 1 and posterior[1] > 0.9
    assert np.allclose(matrices[0], matrices[0].T)  # one accuracy, no per-label noise


def test_a_first_estimate_on_a_few_gold_answers_does_not_outweigh_two_newcomers():
    """A project's first quality run (issue 13's check over HTTP, quick form): 24
    answers, no plain task with two, seven gold answers all right. The pooled
    crowd came out 0.994 accurate, so until the next run one answer of a
    volunteer seen then outweighed two of volunteers held at a newcomer's 0.7,
    and 2-to-1 majorities were overturned at 0.94. Seven right of seven checked
    is now worth a moderate accuracy, and the majority holds."""
    labels = ["deer", "fox", "empty"]
    rows = [(31, 3, "empty"), (4, 1, "empty"), (5, 6, "deer"), (31, 7, "empty"),
            (1, 2, "fox"), (6, 8, "empty"), (3, 5, "empty"), (2, 4, "fox"), (7, 1, "deer"),
            (32, 3, "fox"), (31, 2, "empty"), (9, 7, "deer"), (8, 6, "empty"),
            (31, 8, "empty"), (10, 4, "deer"), (31, 5, "empty"), (11, 1, "empty"),
            (13, 2, "deer"), (14, 7, "deer"), (12, 3, "deer"), (15, 6, "deer"),
            (16, 8, "empty"), (18, 5, "empty"), (17, 4, "fox")]
    rows = [(str(t), str(v), label) for t, v, label in rows]
    _, confusion = truth_live.worker_estimates(rows, labels, {"31": "empty", "32": "fox"})
    seen = np.array(confusion["8"])
    assert np.allclose(seen, confusion["2"])  # still one pooled accuracy
    assert 0.7 <= seen[0, 0] <= 0.9
    newcomer = truth_live.one_coin_confusions([trust.NEWCOMER_RELIABILITY], 3)[0]
    posterior = truth_live.posterior_from([2, 0, 0], np.array([seen, newcomer, newcomer]))
    assert posterior.argmax() == 0  # empty from the one seen, deer from two newcomers


def test_auto_on_a_file_too_big_to_model_is_the_weighted_vote_and_says_so():
    """A robustness audit's answers file of 1,000 free-typed labels took auto past
    4 minutes and 3.6 GB (a K x K matrix per volunteer per candidate). Past the
    50 labels a project may list and 10 million cells, auto is the weighted
    vote; 120 labels and 100 volunteers are still modelled."""
    rng = np.random.default_rng(0)
    n_tasks, labels = 300, [f"species {n}" for n in range(600)]
    truth_codes = rng.integers(0, len(labels), n_tasks)
    rows = []
    for task in range(n_tasks):
        for worker in rng.choice(100, 3, replace=False):
            right = rng.random() < 0.8
            label = truth_codes[task] if right else rng.integers(0, len(labels))
            rows.append((f"t{task}", f"w{worker}", labels[label]))
    answers = truth.encode(rows)
    assert answers.shape[1] * answers.shape[2] ** 2 > truth.MAX_MODEL_CELLS
    fitted = truth.infer(answers, "auto")
    assert fitted.choice.chosen == "vote" and "more than 50 labels" in fitted.choice.reason
    small = truth.encode([row for row in rows if int(row[2].split()[1]) < 120])
    assert not truth.too_big_to_model(small)
    assert fitted.method == "auto"
    hits = [answers.labels[code] == labels[truth_codes[int(t[1:])]]
            for t, code in zip(answers.tasks, fitted.label.tolist(), strict=True)]
    assert np.mean(hits) > 0.9


def test_a_one_coin_fit_is_cross_fitted_into_one_coin_matrices():
    """auto fits one accuracy per worker when their answers cannot fill K x K
    cells; the live model keeps that shape. Ten labels, four answers a task: the
    others' posterior is spread thin, and cross-fitted into full matrices that
    spread read as each worker's habits."""
    rng = np.random.default_rng(3)
    labels = [f"l{n}" for n in range(10)]
    skill = rng.uniform(0.5, 0.95, 30)
    rows = []
    for task in range(400):
        true = int(rng.integers(10))
        for worker in rng.choice(30, 4, replace=False):
            said = true if rng.random() < skill[worker] else int(rng.integers(10))
            rows.append((f"t{task}", f"w{worker}", labels[said]))
    answers = truth.encode(rows, labels)
    fitted = truth.one_coin(answers)
    live = truth_live.calibrated(fitted, answers).confusion
    off = live * (1 - np.eye(10))
    # every row of every matrix: one accuracy, the rest spread evenly
    assert np.allclose(off.sum(axis=2), 9 * off.max(axis=2))
    assert np.allclose(np.einsum("wkk->wk", live), np.einsum("wkk->wk", live)[:, :1])
    accuracy = live[:, 0, 0]
    workers = [int(name[1:]) for name in answers.workers]
    assert np.corrcoef(accuracy, skill[workers])[0, 1] > 0.8  # and it tracks real skill
