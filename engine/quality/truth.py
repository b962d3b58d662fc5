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
        return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts], value

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
    tempered_by: str = "held-out answers"  # or "gold" (truth_choice.gold_temperature)

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
    the last M-step, so that ``task_posterior`` reproduces the result exactly."""
    first = majority_vote(answers).posterior if start is None else np.asarray(start, float)
    if first.shape != answers.shape[::2]:
        raise ValueError(f"start must be a {answers.shape[0]} x {answers.shape[2]} matrix")
    belief = np.array(first.T, order="C")  # a copy: the caller's start is left alone
    belief, params, iterations = em.run(model, belief, _checked_gold(answers, gold),
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
    gold = _checked_gold(answers, gold)
    fallback = "pooled" if _checked_per_worker(answers, gold) < MIN_CHECKED else "smoothed"
    choice = truth_choice.choose(answers, gold, CANDIDATES, fallback, confusions_of)
    fitted = {**CANDIDATES, "smoothed": smoothed}[choice.chosen](answers, gold)
    choice = _gold_tempered(choice, truth_choice.log_evidence(
        truth_choice.gold_sample(answers, gold), fitted, confusions_of), gold, answers)
    if choice.temperature != 1.0:  # as sure as held-out answers (or gold) bear out
        evidence = truth_choice.log_evidence(answers, fitted, confusions_of)
        fitted = replace(fitted, posterior=truth_choice.temper(
            evidence, choice.temperature, fitted.posterior, gold))
    return replace(fitted, method="auto", choice=choice, temperature=choice.temperature,
                   tempered_by=choice.tempered_by)


def _gold_tempered(choice: truth_choice.Choice, evidence: np.ndarray, gold: np.ndarray,
                   answers: Answers) -> truth_choice.Choice:
    """The choice with τ lowered where the gold tasks' own answers were surer than
    their gold labels bear out (truth_choice.gold_temperature)."""
    tau = truth_choice.gold_temperature(evidence, gold, _answered(answers), choice.temperature)
    if tau >= choice.temperature:
        return choice
    return replace(choice, temperature=tau, tempered_by="gold")


def _answered(answers: Answers) -> np.ndarray:
    return np.bincount(answers.task, minlength=answers.shape[0]) > 0


def confusions_of(inference: Inference) -> np.ndarray:
    """Every worker's (K, K) confusion matrix under a fit, one-coin ones included."""
    if inference.confusion is not None:
        return inference.confusion
    return em.one_coin_matrices(inference.reliability, len(inference.prior))


def _checked_per_worker(answers: Answers, gold: np.ndarray) -> float:
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
    gold = _checked_gold(answers, gold)
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


def _checked_gold(answers: Answers, gold: np.ndarray | None) -> np.ndarray:
    """Gold codes as int64, UNKNOWN everywhere when there is no gold."""
    n_tasks, _, n_labels = answers.shape
    if gold is None:
        return np.full(n_tasks, UNKNOWN, dtype=np.int64)
    gold = np.asarray(gold, dtype=np.int64)
    if gold.shape != (n_tasks,) or (gold < UNKNOWN).any() or (gold >= n_labels).any():
        raise ValueError("gold must be one label code (or UNKNOWN) per task")
    return gold


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
    labels = np.asarray(labels, np.int64)
    confusions = np.clip(np.asarray(confusions, dtype=float), truth_choice.FLOOR, 1.0)
    n_labels = confusions.shape[-1]
    log_joint = np.zeros(n_labels) if prior is None else np.log(
        np.clip(prior, truth_choice.FLOOR, 1.0))
    log_joint = log_joint + np.log(confusions[np.arange(len(labels)), :, labels]).sum(axis=0)
    log_joint = temperature * log_joint
    weights = np.exp(log_joint - log_joint.max())
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
    ``gold_temperature`` where the project has enough gold). The merge starts every
    task with its labels equally likely: auto's class prior (kept in ``prior``)
    made the replayed retirements worse (dog_breeds at 0.8: 2.7 → 4.1 pt below
    all answers, rte 1.6 → 3.0, at the same share of answers), though on a
    whole imbalanced set it helps (product_match 89.6% → 93.4%). The periodic
    re-estimation (``worker_estimates``) and the replay benchmark both use it."""
    gold = _checked_gold(answers, gold)
    fitted = auto(answers, gold)
    # early in a project the merge pools whatever auto chose (issue 13's inversions)
    pooled = (fitted.choice.chosen == "pooled"
              or _checked_per_worker(answers, gold) < MIN_CHECKED)
    live = calibrated(fitted, answers, gold, pooled=pooled)
    held_out = truth_choice.live_temperature(answers, live.confusion, gold)
    tau = truth_choice.gold_temperature(
        truth_choice.answer_evidence(truth_choice.gold_sample(answers, gold), live.confusion),
        gold, _answered(answers), held_out)
    return replace(live, reliability=fitted.reliability, temperature=tau,
                   tempered_by="gold" if tau < held_out else "held-out answers")


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
    gold = _checked_gold(answers, gold)
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
        return replace(inference, confusion=_pooled_matrices(counts.sum(axis=0),
                                                             inference.population,
                                                             n_workers, smoothing))
    shrunk = ((counts + smoothing * inference.population[None])
              / (counts.sum(axis=2, keepdims=True) + smoothing))
    return replace(inference, confusion=shrunk)


def _pooled_matrices(counts: np.ndarray, population: np.ndarray, n_workers: int,
                     smoothing: float) -> np.ndarray:
    """Early in a project (auto pools the crowd): everyone's one-coin matrix at
    the crowd's cross-fitted accuracy (right answers over checked answers, at
    least chance), not a full K x K matrix.

    Why: with a few answers per worker, most cells of a crowd matrix rest on a
    handful of answers or none. A label nobody could check yet gets a flat row
    and next to nothing in its column elsewhere, so one answer of it outweighs
    two of another (deer, fox, fox came out deer at 0.97); a few prolific scripts
    answering "a" teach it that "a" is likelier when "b" is true, turning honest
    answers upside down. One accuracy is what a few answers can estimate, and
    under it no answer counts against itself. ``smoothing`` pseudo-answers per
    label at the population's matrix keep it below 1 (all checked answers right
    on gold would otherwise make one answer certain, two that differ a 0/0)."""
    n_labels = counts.shape[0]
    accuracy = ((np.trace(counts) + smoothing * np.trace(population))
                / (counts.sum() + smoothing * n_labels))
    accuracy = em.at_least_chance(np.array([accuracy]), n_labels)
    return np.repeat(em.one_coin_matrices(accuracy, n_labels), n_workers, axis=0)


def checked_answers(answers: Answers, gold: np.ndarray) -> np.ndarray:
    """Per worker, how many of their answers another answer or gold can check."""
    per_task = np.bincount(answers.task, minlength=answers.shape[0])
    checkable = (per_task[answers.task] >= 2) | (gold[answers.task] >= 0)
    return np.bincount(answers.worker, weights=checkable, minlength=answers.shape[1])


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
    # {"temperature": τ, "tempered_by": what chose it} for the merge (Project.calibration)
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
    calibration = {"temperature": fitted.temperature, "tempered_by": fitted.tempered_by}
    return WorkerFit(dict(zip(answers.workers, fitted.reliability.tolist(), strict=True)),
                     dict(zip(answers.workers, fitted.confusion.tolist(), strict=True)),
                     fitted.choice, calibration)
