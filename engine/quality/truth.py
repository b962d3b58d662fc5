"""Truth inference: from redundant single-label answers to each task's likely label.

A majority vote counts a spammer's click like an expert's. The methods here
learn from the answers themselves (and from gold tasks, where a project has
some) how far each worker can be trusted, and weigh their answers by it:

- ``majority_vote`` and ``weighted_vote``: counting, the baseline;
- ``dawid_skene``: a confusion matrix per worker and class priors, by EM
  (Dawid & Skene, 1979), so "says rock whenever it is metal" is learnt too;
- ``one_coin``: the same EM with one accuracy per worker, which a handful of
  answers is enough to estimate;
- ``hierarchical``: Dawid-Skene with each worker's matrix shrunk towards the
  crowd's own, class by class;
- ``auto``: whichever of these best predicts answers it did not see
  (engine.quality.truth_choice): the default.

Integer codes, numpy and scipy.sparse (the EM core is engine.quality.truth_em), no
Python loop per answer: re-estimating a project takes a fraction of a second.
Pure functions of plain data: no SQL, Redis or Flask. The offline command
(engine.quality.offline) and the live path use these same functions.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from engine.quality import truth_choice
from engine.quality import truth_em as em

UNKNOWN = -1  # the code of "no gold" and of a worker the model has not seen
METHODS = ("mv", "wmv", "ds", "onecoin", "auto")
# Below this many checkable answers for the median worker, the live merge pools
# the crowd into one accuracy (and auto does, when there are too few answers to
# choose a model on): on random 2.5-20% samples of the dev sets' answers,
# per-worker models fitted on less did worse than the plain vote.
MIN_CHECKED = 5


@dataclass(frozen=True)
class Answers:
    """One answer per row as codes into the vocabularies ``tasks``, ``workers``
    and ``labels``; a (task, worker) pair occurs at most once."""

    task: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    tasks: tuple[str, ...]
    workers: tuple[str, ...]
    labels: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int, int]:  # (tasks, workers, labels)
        return len(self.tasks), len(self.workers), len(self.labels)

    def gold_codes(self, gold: Mapping[str, str]) -> np.ndarray:
        """Gold as one label code per task, UNKNOWN where a task has none. Gold
        for tasks nobody answered is ignored: there is nothing to infer there."""
        unknown = set(gold.values()) - set(self.labels)
        if unknown:
            raise ValueError(f"gold uses labels that are not listed: {sorted(unknown)}")
        labels = {name: i for i, name in enumerate(self.labels)}
        return np.array([labels[gold[t]] if t in gold else UNKNOWN for t in self.tasks], np.int64)


def encode(triples: Iterable[tuple[str, str, str]], labels: Sequence[str] | None = None) -> Answers:
    """Encode (task, worker, label) triples. Tasks and workers keep their order of
    first appearance, so results come out in input order; labels default to a
    natural sort ("2" before "10"), which also breaks vote ties. When a worker
    answered a task twice the last answer counts, as if they had corrected it."""
    rows = list(triples)
    tasks, task = _vocabulary(row[0] for row in rows)
    workers, worker = _vocabulary(row[1] for row in rows)
    vocabulary = tuple(labels) if labels is not None else natural_sort(r[2] for r in rows)
    index = {name: i for i, name in enumerate(vocabulary)}
    unknown = {row[2] for row in rows} - index.keys()
    if unknown:
        raise ValueError(f"answers use labels that are not listed: {sorted(unknown)}")
    label = np.fromiter((index[row[2]] for row in rows), dtype=np.int64, count=len(rows))
    keep = _last_per_pair(task, worker, len(workers))
    return Answers(task[keep], worker[keep], label[keep], tasks, workers, vocabulary)


def _vocabulary(values: Iterable[str]) -> tuple[tuple[str, ...], np.ndarray]:
    index: dict[str, int] = {}  # names in order of first appearance
    codes = [index.setdefault(value, len(index)) for value in values]
    return tuple(index), np.asarray(codes, dtype=np.int64)


def natural_sort(values: Iterable[str]) -> tuple[str, ...]:
    """Distinct labels with digit runs compared as numbers: "2" < "10", "a9" < "a10"."""
    def key(value: str) -> tuple:
        parts = re.split(r"(\d+)", value)
        # isdecimal, as \d matches: "①" and "²" are digits to isdigit, not to int()
        return [(0, int(p), "") if p.isdecimal() else (1, 0, p) for p in parts], value

    return tuple(sorted(set(values), key=key))


def _last_per_pair(task: np.ndarray, worker: np.ndarray, n_workers: int) -> np.ndarray:
    """Row indices keeping the last answer of each (task, worker) pair, in order."""
    key = task * max(n_workers, 1) + worker
    _, first_from_end = np.unique(key[::-1], return_index=True)
    if len(first_from_end) == len(key):
        return np.arange(len(key))
    return np.sort(len(key) - 1 - first_from_end)


@dataclass(frozen=True)
class Inference:
    """What a method concluded. ``confusion[w, true, answered]`` is a worker's
    probability of giving ``answered`` when ``true`` is right (Dawid-Skene only);
    ``population`` is that matrix for a worker the model has not seen."""

    method: str
    posterior: np.ndarray
    reliability: np.ndarray
    prior: np.ndarray
    confusion: np.ndarray | None = None
    population: np.ndarray | None = None
    iterations: int = 0
    choice: truth_choice.Choice | None = None  # auto's: which model, and why
    temperature: float = 1.0  # τ the posteriors are tempered by (truth_choice.temper)
    tempered_by: str = "held-out answers"  # or "gold" (truth_choice.gold_calibration)
    lapse: float = 0.0  # gold's share of firm mistakes, mixed into posterior (GoldFit)

    @cached_property
    def label(self) -> np.ndarray:
        """The winning label code per task; of equal posteriors the first label wins."""
        return self.posterior.argmax(axis=1)

    @cached_property
    def confidence(self) -> np.ndarray:
        """The posterior probability of the winning label."""
        return self.posterior.max(axis=1)


def majority_vote(answers: Answers) -> Inference:
    """One vote per answer; confidence is the winner's share, as in classify's aggregate."""
    return _vote(answers, np.ones(len(answers.workers)), "mv")


def weighted_vote(answers: Answers, weights: np.ndarray) -> Inference:
    """Each answer weighs its worker's weight (e.g. a reliability learnt on gold)."""
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (len(answers.workers),) or (weights < 0).any():
        raise ValueError("weights must be one non-negative number per worker")
    return _vote(answers, weights, "wmv")


def _vote(answers: Answers, weights: np.ndarray, method: str) -> Inference:
    n_tasks, _, n_labels = answers.shape
    votes = np.bincount(answers.label * n_tasks + answers.task, weights=weights[answers.worker],
                        minlength=n_tasks * n_labels).reshape(n_labels, n_tasks)
    total = votes.sum(axis=0)
    belief = np.where(total > 0, votes / np.where(total > 0, total, 1), 1 / max(n_labels, 1))
    agree = belief.argmax(axis=0)[answers.task] == answers.label
    return Inference(method, belief.T, _share(answers.worker, agree, len(answers.workers)),
                     em.label_prior(belief))


def _share(groups: np.ndarray, hits: np.ndarray, size: int) -> np.ndarray:
    """Laplace-smoothed share of hits per group: (hits + 1) / (n + 2)."""
    hit = np.bincount(groups, weights=hits, minlength=size)
    return (hit + 1) / (np.bincount(groups, minlength=size) + 2)


def dawid_skene(answers: Answers, gold: np.ndarray | None = None, *, smoothing: float = 0.01,
                centre: str = "uniform", start: np.ndarray | None = None,
                max_iter: int = 100, tol: float = 1e-6) -> Inference:
    """Dawid-Skene EM. Each worker's confusion rows get ``smoothing`` pseudo-answers
    per cell (additive smoothing), spread evenly (``centre="uniform"``, the
    classic model) or as the worker's one-coin matrix (``centre="one_coin"``).
    The default is light: a full +1 per cell would drown a worker with 16
    answers in a 10-label matrix (music_genre falls to 54%). EM starts from
    ``start`` (a posterior matrix), else from the majority vote. Gold (a label
    code per task, UNKNOWN where none) stays clamped, and a worker with enough
    gold answers starts from what those alone say (engine.quality.truth_em.first_step)."""
    model = em.DawidSkene(answers, smoothing, centre)
    return _fit(model, "ds", answers, start, gold, max_iter, tol)


def one_coin(answers: Answers, gold: np.ndarray | None = None, *, smoothing: float = 2.0,
             start: np.ndarray | None = None, max_iter: int = 100, tol: float = 1e-6) -> Inference:
    """EM with one accuracy per worker, errors spread evenly over the other labels.
    Accuracies get ``smoothing`` pseudo-answers at the crowd's mean accuracy, so a
    worker with three answers is not declared perfect (or useless) on so little;
    ``smoothing=np.inf`` pools the crowd: one accuracy, even class priors."""
    return _fit(em.OneCoin(answers, smoothing), "onecoin", answers, start, gold, max_iter, tol)


def _fit(model, method: str, answers: Answers, start: np.ndarray | None,
         gold: np.ndarray | None, max_iter: int, tol: float) -> Inference:
    """Run EM from ``start`` (tasks x labels) or the vote; keep the parameters of
    the last M-step, so that ``truth_live.task_posterior`` reproduces the result exactly."""
    first = majority_vote(answers).posterior if start is None else np.asarray(start, float)
    if first.shape != answers.shape[::2]:
        raise ValueError(f"start must be a {answers.shape[0]} x {answers.shape[2]} matrix")
    belief = np.array(first.T, order="C")  # a copy: the caller's start is left alone
    belief, params, iterations = em.run(model, belief, checked_gold(answers, gold),
                                        max_iter, tol)
    return Inference(method, belief.T, iterations=iterations, **model.fitted(params))


def hierarchical(answers: Answers, gold: np.ndarray | None = None) -> Inference:
    """Dawid-Skene from the vote with one pseudo-answer per cell at the crowd's
    own confusion matrix: a worker with a handful of answers is the crowd, class
    by class (so "the crowd misses the rare class" is learnt even from sparse
    workers), and a prolific one earns their own matrix. A tighter tol: with
    many labels and sparse workers EM still gains after 1e-6."""
    fitted = dawid_skene(answers, gold, smoothing=1.0, centre="population", tol=1e-7,
                         max_iter=200)
    return replace(fitted, method="hierarchical")


def smoothed(answers: Answers, gold: np.ndarray | None = None) -> Inference:
    """One-coin EM, then Dawid-Skene from its posteriors with one pseudo-answer
    per cell centred on each worker's one-coin matrix: a sparse worker stays
    near their own accuracy while a prolific one earns a full matrix. auto's
    model before it chose among models, and still its choice when there are
    too few answers to choose on: on the dev sets it is the steadiest single
    model (within 0.5 pt of the best one on each)."""
    coarse = one_coin(answers, gold)
    fine = dawid_skene(answers, gold, smoothing=1.0, centre="one_coin",
                       start=coarse.posterior, tol=1e-7, max_iter=200)
    return replace(fine, method="smoothed", iterations=coarse.iterations + fine.iterations)


# auto's candidates: the pooled vote, one accuracy per worker, full and
# hierarchical Dawid-Skene
CANDIDATES = {
    "pooled": lambda answers, gold: one_coin(answers, gold, smoothing=np.inf),
    "onecoin": lambda answers, gold: one_coin(answers, gold),
    "ds": lambda answers, gold: dawid_skene(answers, gold),
    "hierarchical": hierarchical,
}


def auto(answers: Answers, gold: np.ndarray | None = None) -> Inference:
    """The default: the candidate model (CANDIDATES) that best predicts answers
    it did not see, refitted on all of them; ``choice`` says which and why.

    Why: no model wins on every crowd (heavy-tailed participation favours one
    accuracy per worker, class imbalance and schools of thought Dawid-Skene,
    one-off volunteers the pooled vote), and what a project's crowd is like can
    be read from its answers without gold (engine.quality.truth_choice). With
    too few answers to hold out, the pooled vote while the median worker has
    fewer than MIN_CHECKED checkable answers, else ``smoothed``."""
    gold = checked_gold(answers, gold)
    if too_big_to_model(answers):
        return _voted(answers, gold)
    fallback = "pooled" if checked_per_worker(answers, gold) < MIN_CHECKED else "smoothed"
    choice = truth_choice.choose(answers, gold, CANDIDATES, fallback, confusions_of)
    fitted = refit(choice, answers, gold)
    choice = _gold_tempered(choice, answers, gold)
    if choice.temperature != 1.0:  # as sure as held-out answers (or gold) bear out
        evidence = truth_choice.log_evidence(answers, fitted, confusions_of)
        fitted = replace(fitted, posterior=truth_choice.temper(
            evidence, choice.temperature, fitted.posterior, gold))
    # and no surer than out of sample; a τ that gold set was fitted out of sample
    # already (capping too left two dev sets unsure: dog_breeds 0.033 -> 0.052)
    if choice.tempered_by != "gold" and answers.shape[0] >= truth_choice.MIN_CROSS_TASKS:
        fitted = replace(fitted, posterior=_cross_capped(choice, answers, gold, fitted))
    if choice.lapse > 0:  # and no surer than gold's firm mistakes allow
        lapsed = truth_choice.lapsed(fitted.posterior, choice.lapse)
        fitted = replace(fitted, posterior=np.where((gold >= 0)[:, None], fitted.posterior,
                                                    lapsed))
    return replace(fitted, method="auto", choice=choice, temperature=choice.temperature,
                   tempered_by=choice.tempered_by, lapse=choice.lapse)


# Every candidate keeps a K x K matrix per volunteer, several times over while it
# chooses: a robustness audit's answers file of 1,000 free-typed labels and 50
# volunteers took auto past 4 minutes and 3.6 GB (300 labels: 22 s, 0.55 GB).
# Past both limits (more labels than a project may list, and more cells than
# this), auto is the weighted vote; a fine-grained set (120 dog breeds, a few
# hundred volunteers) stays well inside.
MAX_MODEL_LABELS = 50
MAX_MODEL_CELLS = 10_000_000  # volunteers x labels x labels


def too_big_to_model(answers: Answers) -> bool:
    _, workers, labels = answers.shape
    return labels > MAX_MODEL_LABELS and workers * labels * labels > MAX_MODEL_CELLS


def _voted(answers: Answers, gold: np.ndarray) -> Inference:
    """auto on a file too big to model (too_big_to_model): the weighted vote, and why."""
    voted = infer(answers, "wmv", gold)
    choice = truth_choice.Choice("vote", {}, 0, f"more than {MAX_MODEL_LABELS} labels and "
                                 f"{MAX_MODEL_CELLS:,} volunteer-label-label cells: the "
                                 "weighted vote (no model of each volunteer)")
    return replace(voted, method="auto", choice=choice)


def _gold_tempered(choice: truth_choice.Choice, answers: Answers,
                   gold: np.ndarray) -> truth_choice.Choice:
    """The choice with τ lowered, and a lapse, where the gold tasks' own answers
    were surer than their gold labels bear out (truth_choice.gold_calibration)."""
    found = truth_choice.tempered_by_gold(
        answers, gold, lambda sample, kept: truth_choice.log_evidence(
            sample, refit(choice, answers, kept), confusions_of), choice.temperature)
    if found.temperature >= choice.temperature and not found.lapse:
        return choice
    return replace(choice, temperature=found.temperature, tempered_by="gold",
                   lapse=found.lapse)


def _cross_capped(choice: truth_choice.Choice, answers: Answers, gold: np.ndarray,
                  fitted: Inference) -> np.ndarray:
    """The posteriors, each winner no surer than the chosen model refitted without
    the task's fold and tempered alike says it is (truth_choice.cross_fitted_evidence);
    gold tasks stay clamped."""
    honest = truth_choice.cross_fitted_evidence(
        answers, lambda kept: refit(choice, truth_choice.subset(answers, kept), gold),
        confusions_of)
    sure = truth_choice.softmax(choice.temperature * honest)
    cap = sure[np.arange(len(sure)), fitted.posterior.argmax(axis=1)]
    return np.where((gold >= 0)[:, None], fitted.posterior,
                    truth_choice.capped(fitted.posterior, cap))


def refit(choice: truth_choice.Choice, answers: Answers, gold: np.ndarray) -> Inference:
    """auto's chosen model fitted again with this gold, untempered (gold's own
    calibration judges each gold task by a fit that did not see it)."""
    return {**CANDIDATES, "smoothed": smoothed}[choice.chosen](answers, gold)


def confusions_of(inference: Inference) -> np.ndarray:
    """Every worker's (K, K) confusion matrix under a fit, one-coin ones included."""
    if inference.confusion is not None:
        return inference.confusion
    return em.one_coin_matrices(inference.reliability, len(inference.prior))


def checked_per_worker(answers: Answers, gold: np.ndarray) -> float:
    """The median worker's count of answers that can be checked against another
    answer (or gold): what per-worker estimates would rest on."""
    checked = checked_answers(answers, gold)
    active = np.bincount(answers.worker, minlength=answers.shape[1]) > 0
    return float(np.median(checked[active])) if active.any() else 0.0


def infer(answers: Answers, method: str = "auto", gold: np.ndarray | None = None) -> Inference:
    """Run a method by its name in METHODS; whatever the method, gold tasks come
    out as their gold label with confidence 1. ``wmv`` weighs each worker by
    their accuracy on gold where there is gold, else by agreement with the
    majority (as crowd-kit's Wawa does)."""
    gold = checked_gold(answers, gold)
    if method in ("ds", "onecoin", "auto"):
        return {"ds": dawid_skene, "onecoin": one_coin, "auto": auto}[method](answers, gold)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    result = majority_vote(answers)
    if method == "wmv":
        truth = np.where(gold >= 0, gold, result.label)
        agree = truth[answers.task] == answers.label
        result = weighted_vote(answers, _share(answers.worker, agree, len(answers.workers)))
    belief = em.clamp(np.ascontiguousarray(result.posterior.T), gold)
    return Inference(method, belief.T, result.reliability, result.prior)


def checked_gold(answers: Answers, gold: np.ndarray | None) -> np.ndarray:
    """Gold codes as int64, UNKNOWN everywhere when there is no gold."""
    n_tasks, _, n_labels = answers.shape
    if gold is None:
        return np.full(n_tasks, UNKNOWN, dtype=np.int64)
    gold = np.asarray(gold, dtype=np.int64)
    if gold.shape != (n_tasks,) or (gold < UNKNOWN).any() or (gold >= n_labels).any():
        raise ValueError("gold must be one label code (or UNKNOWN) per task")
    return gold


def checked_answers(answers: Answers, gold: np.ndarray) -> np.ndarray:
    """Per worker, how many of their answers another answer or gold can check."""
    per_task = np.bincount(answers.task, minlength=answers.shape[0])
    checkable = (per_task[answers.task] >= 2) | (gold[answers.task] >= 0)
    return np.bincount(answers.worker, weights=checkable, minlength=answers.shape[1])
