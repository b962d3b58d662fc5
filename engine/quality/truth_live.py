"""The live merge's model: what the periodic re-estimation stores for a project
(``fit_workers``: each volunteer's reliability and cross-fitted confusion
matrix, the crowd model auto chose, the merge's τ) and the one-task posterior
the hot path computes from them between two re-estimations (``posterior_from``,
``task_posterior``).

Kept apart from engine.quality.truth, whose methods answer the offline
question (the project-wide EM's own posteriors): here the matrices are
re-estimated so that a task's few answers never vouch for their own
volunteers (``calibrated``), because these confidences decide retirement.
Pure numpy, as truth is: no SQL, Redis or Flask.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from engine.quality import trust, truth_choice
from engine.quality import truth_em as em
from engine.quality.truth import (
    MIN_CHECKED,
    Answers,
    Inference,
    auto,
    checked_gold,
    checked_per_worker,
    encode,
    refit,
)


def task_posterior(inference: Inference, workers: Sequence[int],
                   labels: Sequence[int]) -> np.ndarray:
    """One task's posterior from its answers (worker and label codes) under a fitted
    model: the live path's merge between two re-estimations. A worker the model
    has not seen (UNKNOWN, or a code past its end) counts as the population's
    average worker. Vote methods have no worker model and are refused."""
    if inference.population is None:
        raise ValueError(f"{inference.method} has no worker model; use ds, onecoin or auto")
    matrices = _worker_matrices(inference, np.asarray(workers, np.int64))
    return posterior_from(labels, matrices, inference.prior, inference.temperature)


def posterior_from(labels: Sequence[int], confusions: np.ndarray,
                   prior: np.ndarray | None = None, temperature: float = 1.0) -> np.ndarray:
    """One task's posterior from its answers' label codes and the answering
    workers' confusion matrices, (n, K, K) with rows the true label (e.g. the
    stored ones; ``one_coin_confusions`` makes them from reliabilities). Without
    a prior, labels are equally likely. ``temperature`` (auto's τ,
    engine.quality.truth_choice) scales the log odds. Summed in log space, so a
    task with hundreds of answers does not underflow."""
    return tempered(evidence_from(labels, confusions), prior, temperature)


def evidence_from(labels: Sequence[int], confusions: np.ndarray) -> np.ndarray:
    """A task's log likelihood of its answers under each true label (K,)."""
    labels = np.asarray(labels, np.int64)
    confusions = np.clip(np.asarray(confusions, dtype=float), truth_choice.FLOOR, 1.0)
    return np.log(confusions[np.arange(len(labels)), :, labels]).sum(axis=0)


def tempered(evidence: np.ndarray, prior: np.ndarray | None = None,
             temperature: float = 1.0) -> np.ndarray:
    """The posterior from a task's evidence (``evidence_from``) and a prior (None:
    labels equally likely), its log odds scaled by τ."""
    log_joint = evidence if prior is None else evidence + np.log(
        np.clip(prior, truth_choice.FLOOR, 1.0))
    return truth_choice.softmax(temperature * log_joint[None])[0]


# Pseudo-tasks per label that pull the class prior the live merge reports with
# toward labels equally likely, so that a young project's few tasks, or a label
# no task has won yet, cannot make a label near certain or impossible.
PRIOR_PSEUDO_TASKS = 10


def reported_prior(inference: Inference, answers: Answers) -> np.ndarray:
    """The class prior a result's reported confidence starts from (engine.quality.
    posterior.label_posterior): auto's, fitted on these answers, shrunk toward labels
    equally likely by PRIOR_PSEUDO_TASKS a label (against the tasks answered)."""
    prior = np.asarray(inference.prior, dtype=float)
    tasks = len(np.unique(answers.task))
    return (tasks * prior + PRIOR_PSEUDO_TASKS) / (tasks + PRIOR_PSEUDO_TASKS * len(prior))


def normalised(weights: Sequence[float]) -> np.ndarray:
    """Weights as probabilities (each kept above the floor posteriors use)."""
    weights = np.clip(np.asarray(weights, dtype=float), truth_choice.FLOOR, None)
    return weights / weights.sum()


def one_coin_confusions(reliability: Sequence[float], n_labels: int) -> np.ndarray:
    """Confusion matrices of workers known only by a reliability (right with that
    probability, wrong evenly otherwise), for ``posterior_from``."""
    return em.one_coin_matrices(np.asarray(reliability, dtype=float), n_labels)


def _worker_matrices(inference: Inference, workers: np.ndarray) -> np.ndarray:
    """Confusion matrices of the given workers, (n, K, K)."""
    known = (workers >= 0) & (workers < len(inference.reliability))
    out = np.repeat(inference.population[None], len(workers), axis=0)
    if inference.confusion is not None:
        out[known] = inference.confusion[workers[known]]
        return out
    out[known] = em.one_coin_matrices(inference.reliability[workers[known]], len(inference.prior))
    return out


def live_model(answers: Answers, gold: np.ndarray | None = None) -> Inference:
    """What the live merge weighs answers by: ``auto`` with its matrices
    cross-fitted by ``calibrated`` (one crowd matrix while auto pools), the
    reliabilities and labels left as auto estimated them, and the τ its merges
    are tempered by (``truth_choice.live_temperature``, lowered by
    ``gold_calibration`` where the project has enough gold). Retirement weighs a
    task's answers with its labels equally likely: auto's class prior (kept in
    ``prior``) made the replayed retirements worse (dog_breeds at 0.8: 2.7 → 4.1
    pt below all answers, rte 1.6 → 3.0, at the same share of answers). The
    result reports from that prior (``reported_prior``), which on a whole
    imbalanced set is what makes its confidence mean something (product_match's
    live calibration error 0.135 → 0.008). The periodic re-estimation
    (``worker_estimates``) and the replay benchmark both use it."""
    gold = checked_gold(answers, gold)
    fitted = auto(answers, gold)
    # early in a project the merge pools whatever auto chose (issue 13's inversions)
    pooled = (fitted.choice.chosen == "pooled"
              or checked_per_worker(answers, gold) < MIN_CHECKED)
    live = calibrated(fitted, answers, gold, pooled=pooled)

    def cross_fitted(train: Answers, known: np.ndarray) -> np.ndarray:
        """The live matrices again, from these answers and this gold alone."""
        return calibrated(refit(fitted.choice, train, known), train, known,
                          pooled=pooled).confusion

    held_out = truth_choice.live_temperature(answers, gold,
                                             lambda kept: cross_fitted(kept, gold))
    # gold judges the confidence a result reports, which starts from the class prior
    log_prior = np.log(reported_prior(live, answers))

    def evidence_of(sample: Answers, kept: np.ndarray) -> np.ndarray:
        return truth_choice.answer_evidence(sample, cross_fitted(answers, kept)) + log_prior

    found = truth_choice.tempered_by_gold(answers, gold, evidence_of, held_out)
    by_gold = found.temperature < held_out or found.lapse > 0
    return replace(live, reliability=fitted.reliability, temperature=found.temperature,
                   tempered_by="gold" if by_gold else "held-out answers", lapse=found.lapse)


# Pseudo-answers per true label, at the crowd's matrix, that ``calibrated`` adds
# to each worker's cross-fitted counts: a floor that keeps every cell positive,
# not a shrinkage (the cross-fitting is what tempers the estimate).
CROSS_FIT_SMOOTHING = 0.1


def calibrated(inference: Inference, answers: Answers, gold: np.ndarray | None = None,
               *, smoothing: float = CROSS_FIT_SMOOTHING, pooled: bool = False) -> Inference:
    """The model with each worker's confusion matrix re-estimated by cross-fitting:
    each of their answers is scored against the task's posterior from the
    *other* answers (and gold), never against a consensus their own answer is
    part of. What the live merge multiplies should be calibrated, not in-sample.

    Why: EM grades a worker against posteriors that their own answer helped to
    form, and on a task with few answers that is most of the evidence; with the
    winner's curse on top (of many workers seen on a dozen answers, the best
    looking are partly lucky), the workers auto put at 0.98 or more on replayed
    dev sets were right 0.91 (rte) to 0.95 (tweet_sentiment) of the time on
    gold, so two of them agreeing looked like odds of 10,000 to 1 instead of
    100 to 1, and the retirement policy retired tasks too early.

    The cross-fitted counts are (n, K, K): for worker w, true label z, answer
    l, the sum over w's checkable answers l (another answer or gold on the
    task) of P(z | the task's other answers) under the fitted model; rows get
    ``smoothing`` pseudo-answers at the population's matrix. A worker whose
    answers the others cannot confirm loses the credit EM gave them; a worker's
    accuracy can come out no higher than the others' confidence on the tasks
    they shared (slightly understated where that confidence is low, which errs
    on the safe side).
    Early in a project, when auto pools, ``pooled`` gives one matrix from
    everyone's counts, so a worker seen on a handful of answers cannot look
    perfect. The fit's posterior, labels and prior are left as they were."""
    if inference.population is None:
        raise ValueError(f"{inference.method} has no worker model; use ds, onecoin or auto")
    if smoothing <= 0:
        raise ValueError("smoothing must be > 0")
    gold = checked_gold(answers, gold)
    n_tasks, n_workers, n_labels = answers.shape
    matrices = inference.confusion
    if matrices is None:
        matrices = em.one_coin_matrices(inference.reliability, n_labels)
    own = np.log(matrices)[answers.worker, :, answers.label]  # (answers, K)
    task_total = np.zeros((n_tasks, n_labels))
    np.add.at(task_total, answers.task, own)
    others = task_total[answers.task] - own + np.log(inference.prior)
    others -= others.max(axis=1, keepdims=True)
    posterior = np.exp(others)
    posterior /= posterior.sum(axis=1, keepdims=True)
    on_gold = gold[answers.task]
    posterior[on_gold >= 0] = np.eye(n_labels)[on_gold[on_gold >= 0]]
    per_task = np.bincount(answers.task, minlength=n_tasks)
    checkable = (per_task[answers.task] >= 2) | (on_gold >= 0)
    counts = np.zeros((n_workers, n_labels, n_labels))
    np.add.at(counts, (answers.worker[checkable], slice(None), answers.label[checkable]),
              posterior[checkable])
    if pooled:  # one matrix for the whole crowd, as the fit had
        return replace(inference, confusion=_pooled_matrices(counts.sum(axis=0), n_workers))
    if inference.confusion is None:  # a one-coin fit: one accuracy per worker, as it had
        return replace(inference, confusion=_one_coin_matrices(counts, inference.population,
                                                               smoothing))
    shrunk = ((counts + smoothing * inference.population[None])
              / (counts.sum(axis=2, keepdims=True) + smoothing))
    return replace(inference, confusion=shrunk)


def _one_coin_matrices(counts: np.ndarray, population: np.ndarray,
                       smoothing: float) -> np.ndarray:
    """Each worker's one-coin matrix at their cross-fitted accuracy (the share of
    their checked answers the others' posterior puts on the label they gave),
    with ``smoothing`` pseudo-answers per label at the population's.

    Why: auto fits one accuracy per worker when full matrices predict held-out
    answers worse, that is when a worker's answers are too few to fill K x K
    cells. Cross-fitted into full matrices they came back worse still: with
    many labels the others' posterior is spread thin, and that spread landed in
    off-diagonal cells as if it were the worker's habit (music_genre, 10
    labels, 4 answers a task: live results 2.0 pt less accurate than auto's,
    5.6 on its imbalanced cut; the same as auto's with one accuracy each)."""
    n_labels = counts.shape[1]
    right = np.einsum("wkk->w", counts) + smoothing * np.trace(population)
    accuracy = right / (counts.sum(axis=(1, 2)) + smoothing * n_labels)
    return em.one_coin_matrices(em.at_least_chance(accuracy, n_labels), n_labels)


# Pseudo-answers at a newcomer's reliability that the pooled crowd accuracy starts
# from: until its checked answers outnumber them, the crowd is believed about as
# much as a volunteer nobody has checked.
POOLED_PRIOR_ANSWERS = 10


def _pooled_matrices(counts: np.ndarray, n_workers: int) -> np.ndarray:
    """Early in a project (auto pools the crowd): everyone's one-coin matrix at
    the crowd's cross-fitted accuracy (right answers over checked answers, at
    least chance), not a full K x K matrix, drawn towards a newcomer's
    reliability by POOLED_PRIOR_ANSWERS.

    Why one accuracy: with a few answers per worker, most cells of a crowd
    matrix rest on a handful of answers or none. A label nobody could check yet
    gets a flat row and next to nothing in its column elsewhere, so one answer
    of it outweighs two of another (deer, fox, fox came out deer at 0.97); a few
    prolific scripts answering "a" teach it that "a" is likelier when "b" is
    true, turning honest answers upside down. One accuracy is what a few
    answers can estimate, and under it no answer counts against itself.

    Why the prior: a project's first estimate checks few answers (most tasks
    have one answer; a few gold answers), and all of them right made the crowd
    0.994 accurate. Until the next estimate, one answer of a volunteer it had
    seen then outweighed two of volunteers it had not (held at a newcomer's
    0.7), and merges overturned 2-to-1 majorities at 0.94 (the quality check's
    quick run, a task in 30 in about half the runs). Ten right of ten checked
    now make 0.85."""
    n_labels = counts.shape[0]
    prior = max(trust.NEWCOMER_RELIABILITY, 1.0 / n_labels)
    accuracy = ((np.trace(counts) + POOLED_PRIOR_ANSWERS * prior)
                / (counts.sum() + POOLED_PRIOR_ANSWERS))
    accuracy = em.at_least_chance(np.array([accuracy]), n_labels)
    return np.repeat(em.one_coin_matrices(accuracy, n_labels), n_workers, axis=0)


def worker_estimates(triples: Iterable[tuple], labels: Sequence[str],
                     gold: Mapping) -> tuple[dict, dict]:
    """Per worker, reliability and confusion matrix (rows true label, columns the
    answer, as lists for JSON) by ``live_model``: what the periodic re-estimation
    stores. The reliability is ``auto``'s, the matrix cross-fitted for the merge.
    Answers and gold outside ``labels`` (the config was edited) are left out."""
    fitted = fit_workers(triples, labels, gold)
    return fitted.reliability, fitted.confusion


@dataclass(frozen=True)
class WorkerFit:
    """What the periodic re-estimation stores for a project's live merges."""

    reliability: dict  # worker -> auto's reliability
    confusion: dict  # worker -> cross-fitted matrix, as lists
    choice: truth_choice.Choice | None  # the model auto chose (None: no answers)
    # {"temperature": τ, "tempered_by": what chose it, "lapse": gold's share of firm
    # mistakes, "prior": {label: p}} for the merge (Project.calibration)
    calibration: dict | None


def fit_workers(triples: Iterable[tuple], labels: Sequence[str], gold: Mapping) -> WorkerFit:
    """``worker_estimates``, the model auto chose for them, and the merge's τ."""
    known = set(labels)
    rows = [row for row in triples if row[2] in known]
    if not rows:
        return WorkerFit({}, {}, None, None)
    answers = encode(rows, labels)
    usable = {task: g for task, g in gold.items() if isinstance(g, str) and g in known}
    fitted = live_model(answers, answers.gold_codes(usable))
    prior = reported_prior(fitted, answers)
    calibration = {"temperature": fitted.temperature, "tempered_by": fitted.tempered_by,
                   "lapse": fitted.lapse,
                   "prior": dict(zip(answers.labels, prior.tolist(), strict=True))}
    return WorkerFit(dict(zip(answers.workers, fitted.reliability.tolist(), strict=True)),
                     dict(zip(answers.workers, fitted.confusion.tolist(), strict=True)),
                     fitted.choice, calibration)
