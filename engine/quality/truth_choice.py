"""Choosing a crowd model from the answers alone: held-out answer likelihood.

No single model wins on every crowd. A pooled accuracy (the vote, calibrated)
is right for a crowd of one-off volunteers; one accuracy per volunteer wins when
a few give most of the answers; class-by-class confusion matrices win on
imbalanced labels and on crowds with "schools of thought", but only where
volunteers gave enough answers to fill them. Which crowd a project has is a
property of its data, and charities rarely have gold to check against, so
``auto`` asks each candidate model to predict answers it did not see: in each
of FOLDS rounds, one answer per task (of the tasks with MIN_PER_TASK or more) is hidden,
every candidate is fitted on the rest, and scored by the mean log probability
it gives the hidden answers (the task's posterior from its other answers times
the answering volunteer's confusion row). The best mean over the rounds is
refitted on every answer. A model that fits noise predicts held-out answers
badly, so this needs no gold and no tuning per data set; gold, where a charity
gave some, stays clamped in every fit.

The same held-out answers then set how sure the chosen model may be. Its
posterior multiplies every answer's likelihood as if answers were independent
given the truth; real volunteers are not (they miss the same hard items, and
schools of thought share their mistakes), so it is overconfident: the dev sets'
calibration error was 0.06-0.18 on four of seven sets. The posterior is
*tempered*, P ∝ (prior · Π M)^τ, with the τ in TEMPERATURES whose posteriors
best predict the held-out answers; τ = 1 leaves the model as it was, and the
winning label never changes.

Held-out answers cannot see a mistake the whole crowd shares: the hidden
answer agrees with the others, wrong or right. Gold can. Where a project has
MIN_GOLD_TASKS answered gold tasks or more, ``gold_calibration`` lowers τ and
sets a lapse (a share of firm mistakes the reported confidence allows for):
the pair whose posteriors from the gold tasks' answers (as many as an
ordinary task has: ``gold_sample``) best predict their gold labels (never
raising τ: gold is scarce, and held-out answers are many).

Without gold there is one more source of overconfidence that can be
measured: a task's posterior comes from volunteers' matrices learnt from
that same task's answers, so the model has already agreed with them once.
``cross_fitted_evidence`` judges each task by the model refitted without
its fold of tasks (CROSS_FOLDS), and auto reports the lower of the two
confidences (``capped``: the winner never changes). On the calibration bench it
took the sets over 0.05 from 17 of 46 to 12, pushing none over (crowds that
behave as the model assumes come out a little unsure). What is left is
mostly mistakes a crowd makes firmly and together: even the best τ per set,
chosen by looking at the truth, leaves five sets over 0.05, so only gold can
reach them.

Pure numpy on engine.quality.truth's encoded answers; no SQL or Flask.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

FOLDS = 3  # rounds of hiding one answer per task; their mean steadies the choice
MIN_HIDDEN = 50  # fewer hidden answers per round than this: too little to choose on
# Answers are hidden only on tasks with this many: the rest of the task must say
# something about the hidden answer. With one answer left, a model is scored on
# how well it knows the labels' frequencies, not the volunteers: on a tenth of a
# dev set's answers (1-2 a task) that chose per-worker models that lost to the vote.
MIN_PER_TASK = 3
FLOOR = 1e-6  # the least probability a model may give a hidden answer (log of 0)
TEMPERATURES = np.round(np.arange(0.1, 1.0001, 0.05), 2)  # τ tried; 1: untempered
# Fewer answered gold tasks than this say too little about how sure to be: with
# τ alone, fitted on 20 of a tenth of the dev sets' tasks, the calibration error
# moved both ways by chance. With the lapse beside it and gold judged out of
# fold, 20 rather than 30 changed only the two smallest synthetic sets, which
# had 20-29: schools_2 0.054 -> 0.029, schools 0.054 -> 0.072 (auto).
MIN_GOLD_TASKS = 20
GOLD_FOLDS = 2  # refits that each hide a share of the gold, to judge it out of sample
# The share of gold tasks the posterior may miss at no more than a flat guess's
# cost: a gold label the charity got wrong, or an item nobody could get right,
# must not make every result of the project unsure.
GOLD_SLIP = 0.02
# Lapses gold may find (gold_calibration): shares of tasks the crowd gets firmly
# wrong, up to one in four (none up to GOLD_SLIP, which the fit allows anyway).
LAPSES = (0.0, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25)
CROSS_FOLDS = 5  # folds of tasks, each judged by a refit that did not see it
# Fewer tasks than this: a refit without a fifth of them has too little to learn
# from, and the in-sample posterior stands.
MIN_CROSS_TASKS = 50


@dataclass(frozen=True)
class Choice:
    """Which model auto fitted and why: each candidate's mean log probability of
    the held-out answers (higher is better), or no scores when there were too
    few answers to hold out and ``fallback`` decided."""

    chosen: str
    scores: Mapping[str, float]
    hidden: int  # answers held out per round
    reason: str
    temperature: float = 1.0  # τ of the chosen model's posterior (1: as fitted)
    tempered_by: str = "held-out answers"  # or "gold" (gold_calibration lowered τ)
    lapse: float = 0.0  # gold's share of firm mistakes (GoldFit), reported confidence mixes in

    def as_dict(self) -> dict:
        return {"chosen": self.chosen, "reason": self.reason, "hidden": self.hidden,
                "temperature": self.temperature, "tempered_by": self.tempered_by,
                "lapse": self.lapse,
                "scores": {name: round(score, 4) for name, score in self.scores.items()}}


Fit = Callable  # (answers, gold) -> truth.Inference


def choose(answers, gold: np.ndarray, candidates: Mapping[str, Fit], fallback: str,
           matrices: Callable) -> Choice:
    """The candidate that best predicts held-out answers; ``matrices(inference)``
    gives a fit's (workers, K, K) confusion matrices."""
    rounds = [_hide(answers, fold) for fold in range(FOLDS)]
    hidden = min(len(h) for _, h in rounds)
    if hidden < MIN_HIDDEN:
        return Choice(fallback, {}, hidden, f"fewer than {MIN_HIDDEN} answers to hold out")
    scores = {name: 0.0 for name in candidates}
    fits: dict[str, list] = {name: [] for name in candidates}
    for kept, held in rounds:
        train = subset(answers, kept)
        for name, fit in candidates.items():
            fits[name].append(inference := fit(train, gold))
            scores[name] += _score(answers, inference, held, matrices) / FOLDS
    best = max(scores, key=lambda name: scores[name])
    temperature = _temperature(answers, gold, rounds, fits[best], matrices)
    return Choice(best, scores, hidden, "best held-out answer likelihood", temperature)


def _temperature(answers, gold: np.ndarray, rounds, fits, matrices: Callable) -> float:
    """The τ whose tempered posteriors, fitted without the held-out answers,
    predict them best (summed over the rounds); ties go to the larger τ. Only
    the hidden answers' tasks are tempered: their rows are all the score reads."""
    totals = np.zeros(len(TEMPERATURES))
    for (kept, held), inference in zip(rounds, fits, strict=True):
        tasks = answers.task[held]
        evidence = log_evidence(subset(answers, kept), inference, matrices)[tasks]
        predicted = _predicted(answers, inference, held, matrices)
        for i, tau in enumerate(TEMPERATURES):
            posterior = temper(evidence, tau, inference.posterior[tasks], gold[tasks])
            totals[i] += _mean_log(np.einsum("hk,hk->h", posterior, predicted))
    best = np.flatnonzero(totals >= totals.max() - 1e-12)[-1]
    return float(TEMPERATURES[best])


def live_temperature(answers, gold: np.ndarray, matrices_of: Callable) -> float:
    """τ for the live merge, which multiplies each answering volunteer's stored
    (cross-fitted) matrix with every label equally likely beforehand: the τ
    whose tempered posteriors from a task's other answers best predict the
    answer hidden from it, over FOLDS rounds; 1 with too few to hide.
    ``matrices_of(kept)`` gives the matrices fitted on the kept answers alone
    (the model refitted and cross-fitted without the hidden ones): matrices
    that had counted the hidden answer predicted it as if they knew it, and
    chose τ 1 where results were overconfident (rte: reported 0.997, right 95%
    of the time)."""
    rounds = [_hide(answers, fold) for fold in range(FOLDS)]
    if min(len(held) for _, held in rounds) < MIN_HIDDEN:
        return 1.0
    totals = np.zeros(len(TEMPERATURES))
    for kept, held in rounds:
        train = subset(answers, kept)
        confusion = matrices_of(train)
        evidence = answer_evidence(train, confusion)
        tasks = answers.task[held]
        predicted = confusion[answers.worker[held], :, answers.label[held]]
        flat = np.zeros_like(evidence[tasks])
        for i, tau in enumerate(TEMPERATURES):
            posterior = temper(evidence[tasks], tau, flat, gold[tasks])
            totals[i] += _mean_log(np.einsum("hk,hk->h", posterior, predicted))
    best = np.flatnonzero(totals >= totals.max() - 1e-12)[-1]
    return float(TEMPERATURES[best])


@dataclass(frozen=True)
class GoldFit:
    """How sure gold says a project's results may be: the posterior's τ, and the
    lapse, the share of tasks on which the crowd's answers point firmly the
    wrong way (reported confidences are mixed with a flat guess by it)."""

    temperature: float
    lapse: float = 0.0


def gold_calibration(evidence: np.ndarray, gold: np.ndarray, answered: np.ndarray,
                     ceiling: float) -> GoldFit:
    """τ at most ``ceiling`` and a lapse in LAPSES whose posteriors,
    (1 - lapse) · softmax(τ · evidence) + lapse / K, best predict the gold
    labels of the answered gold tasks (ties: the larger τ, then the smaller
    lapse); ``ceiling`` and no lapse with fewer than MIN_GOLD_TASKS of them.

    Two parameters because gold shows two different faults. A τ below 1
    undoes evidence counted twice (answers that are not independent), which
    matters most where a few answers decide; it cannot say that a task on
    which all ten volunteers agree is still wrong one time in ten, the mistake
    a whole crowd shares (dog breeds that look alike), unless it flattens every
    result. The lapse says exactly that. The lapse is at least GOLD_SLIP in
    the fit, so that one wrong gold label cannot drag τ to the floor."""
    tasks = np.flatnonzero((gold >= 0) & answered)
    if len(tasks) < MIN_GOLD_TASKS:
        return GoldFit(ceiling)
    rows, labels = evidence[tasks], gold[tasks]
    tried = TEMPERATURES[TEMPERATURES <= ceiling + 1e-9]
    if len(tried) == 0:
        return GoldFit(ceiling)
    picked, flat = (np.arange(len(tasks)), labels), 1.0 / rows.shape[1]
    best, fit = -np.inf, GoldFit(ceiling)
    for tau in tried[::-1]:  # larger τ first, smaller lapse first: they win ties
        right = softmax(tau * rows)[picked]
        for lapse in LAPSES:
            slip = max(lapse, GOLD_SLIP)
            total = np.log((1 - slip) * right + slip * flat).sum()
            if total > best + 1e-9:
                best, fit = total, GoldFit(float(min(tau, ceiling)), float(lapse))
    return fit


def lapsed(posterior: np.ndarray, lapse: float) -> np.ndarray:
    """Posteriors (rows) mixed with a flat guess by ``lapse`` (GoldFit): the
    winning label stays, its confidence no higher than 1 - lapse · (K - 1) / K."""
    if lapse <= 0:
        return posterior
    return (1 - lapse) * posterior + lapse / posterior.shape[-1]


def tempered_by_gold(answers, gold: np.ndarray, evidence_of: Callable,
                     ceiling: float) -> GoldFit:
    """``gold_calibration`` for a fit, worked out only when there are
    MIN_GOLD_TASKS answered gold tasks (most projects have no gold, and the
    refits cost a pass over every answer each). ``evidence_of(sample, kept)``
    is the evidence on ``sample`` (``gold_sample``'s cut of the answers) of the
    model refitted with only the ``kept`` gold: each gold task is judged by a
    fit that did not see its gold label (``GOLD_FOLDS`` folds). Judged by the
    fit that saw it, the volunteers' matrices had learnt that very task, and
    gold looked far surer than ordinary tasks are (music_genre, live merge:
    gold tasks reported at 0.997 were right 95% of the time, the others 87%)."""
    answered = np.bincount(answers.task, minlength=answers.shape[0]) > 0
    usable = np.flatnonzero((gold >= 0) & answered)
    if len(usable) < MIN_GOLD_TASKS:
        return GoldFit(ceiling)
    sample = gold_sample(answers, gold)
    evidence = np.zeros((answers.shape[0], answers.shape[2]))
    for held in np.array_split(np.random.default_rng(0).permutation(usable), GOLD_FOLDS):
        kept = gold.copy()
        kept[held] = -1
        evidence[held] = evidence_of(sample, kept)[held]
    return gold_calibration(evidence, gold, answered, ceiling)


def log_evidence(answers, inference, matrices: Callable) -> np.ndarray:
    """(tasks, K): log prior + the sum of log likelihoods of each task's answers
    under a fit; its softmax is the fit's posterior."""
    confusion = np.clip(matrices(inference), FLOOR, 1.0)
    evidence = np.tile(np.log(np.clip(inference.prior, FLOOR, 1.0)), (answers.shape[0], 1))
    np.add.at(evidence, answers.task, np.log(confusion[answers.worker, :, answers.label]))
    return evidence


def temper(evidence: np.ndarray, tau: float, posterior: np.ndarray,
           gold: np.ndarray) -> np.ndarray:
    """softmax(τ · evidence) per task; gold tasks keep their clamped posterior."""
    out = softmax(tau * evidence)
    clamped = gold >= 0
    out[clamped] = posterior[clamped]
    return out


def gold_sample(answers, gold: np.ndarray):
    """The answers with each gold task's cut to as many as an ordinary task has
    (the median over answered tasks without gold), drawn with a fixed seed.
    Gold is handed to every volunteer and never retires, so a gold task
    gathers far more answers than the tasks τ is for; its evidence, a sum over
    them, would ask for a τ that leaves 5-answer tasks far too unsure."""
    n = len(answers.task)
    per_task = np.bincount(answers.task, minlength=answers.shape[0])
    is_gold = gold >= 0
    ordinary = per_task[~is_gold & (per_task > 0)]
    if n == 0 or len(ordinary) == 0:
        return answers
    cap = max(1, int(np.median(ordinary)))
    order = np.random.default_rng(0).permutation(n)
    by_task = order[np.argsort(answers.task[order], kind="stable")]
    tasks = answers.task[by_task]
    rank = np.arange(n) - np.searchsorted(tasks, tasks, side="left")
    return subset(answers, np.sort(by_task[~is_gold[tasks] | (rank < cap)]))


def answer_evidence(answers, confusion: np.ndarray) -> np.ndarray:
    """(tasks, K): the sum of log likelihoods of each task's answers under these
    matrices, every label equally likely beforehand (the live merge's product)."""
    evidence = np.zeros((answers.shape[0], answers.shape[2]))
    np.add.at(evidence, answers.task,
              np.log(np.clip(confusion, FLOOR, 1.0))[answers.worker, :, answers.label])
    return evidence


def cross_fitted_evidence(answers, fit_without: Callable,
                          matrices: Callable) -> np.ndarray:
    """(tasks, K): each task's log evidence under the model refitted without its
    fold of tasks, ``fit_without(kept answer rows)``; a volunteer seen only in
    the fold counts as the population. Tasks go to folds by a fixed shuffle, so
    the same file gives the same confidences."""
    tasks = answers.shape[0]
    fold = np.random.default_rng(0).permutation(tasks) % CROSS_FOLDS
    rows = np.arange(len(answers.task))
    evidence = np.zeros((tasks, answers.shape[2]))
    for part in range(CROSS_FOLDS):
        held = rows[fold[answers.task] == part]
        fit = fit_without(np.setdiff1d(rows, held))
        evidence[fold == part] = np.log(np.clip(fit.prior, FLOOR, 1.0))
        likely = np.clip(_predicted(answers, fit, held, matrices), FLOOR, 1.0)
        np.add.at(evidence, answers.task[held], np.log(likely))
    return evidence


def capped(posterior: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Posteriors (rows) whose winning label's probability is lowered to ``cap``
    where that is lower, the others scaled up to fill the rest; never so far
    that another label ties the winner, so the result does not change."""
    labels = posterior.shape[1]
    if labels < 2:
        return posterior
    rows = np.arange(len(posterior))
    winner = posterior.argmax(axis=1)
    top = posterior[rows, winner]
    others = posterior.copy()
    others[rows, winner] = 0.0
    rest = others.sum(axis=1)
    # how the rest is shared: as the other labels had it, or evenly if they had none
    even = (np.arange(labels)[None, :] != winner[:, None]) / (labels - 1)
    shares = np.where((rest > 0)[:, None], others / np.where(rest > 0, rest, 1.0)[:, None],
                      even)
    runner = shares.max(axis=1)
    tie = runner / (1.0 + runner)  # the winner's probability that the runner-up would equal
    target = np.minimum(top, np.maximum(np.where(np.isfinite(cap), cap, 1.0), tie + 1e-9))
    out = shares * (1.0 - target)[:, None]
    out[rows, winner] = target
    return out


def softmax(scaled: np.ndarray) -> np.ndarray:
    """Each row's softmax (a task's posterior from its log evidence, scaled by τ)."""
    weights = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def _hide(answers, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, hidden) answer indices: one random answer hidden per task that has
    MIN_PER_TASK or more, seeded by the fold so that a re-run chooses the same."""
    order = np.random.default_rng(fold).permutation(len(answers.task))
    _, first = np.unique(answers.task[order], return_index=True)
    hidden = order[first]
    per_task = np.bincount(answers.task, minlength=answers.shape[0])
    hidden = np.sort(hidden[per_task[answers.task[hidden]] >= MIN_PER_TASK])
    kept = np.ones(len(answers.task), dtype=bool)
    kept[hidden] = False
    return np.flatnonzero(kept), hidden


def subset(answers, rows: np.ndarray):
    """The same vocabularies, only these answers."""
    return replace(answers, task=answers.task[rows], worker=answers.worker[rows],
                   label=answers.label[rows])


def _score(answers, inference, held: np.ndarray, matrices: Callable) -> float:
    """Mean log probability of the held-out answers under a fit that did not see
    them."""
    predicted = _predicted(answers, inference, held, matrices)
    return _mean_log(np.einsum("hk,hk->h", inference.posterior[answers.task[held]], predicted))


def _predicted(answers, inference, held: np.ndarray, matrices: Callable) -> np.ndarray:
    """(hidden, K): for each held-out answer, the probability of its label given
    each true label, under its volunteer's confusion row; a volunteer all of
    whose answers were hidden is the population's."""
    confusion = matrices(inference)
    seen = np.bincount(answers.worker[np.setdiff1d(np.arange(len(answers.task)), held)],
                       minlength=answers.shape[1]) > 0
    workers = answers.worker[held]
    own = confusion[workers, :, answers.label[held]]  # (hidden, K)
    crowd = inference.population[:, answers.label[held]].T  # (hidden, K)
    return np.where(seen[workers][:, None], own, crowd)


def _mean_log(p: np.ndarray) -> float:
    return float(np.log(np.clip(p, FLOOR, 1.0)).mean())
