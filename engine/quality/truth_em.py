"""EM for truth inference: the loop, and the two steps of each worker model.

engine.quality.truth is the public side (encoding, methods, results); this module is
the numerical core it calls. Posteriors here are a labels x tasks "belief"
matrix, not tasks x labels: numpy reduces along the long axis of a C-ordered
array tens of times faster than across a few columns, and the E-step's
normalisation is most of an iteration's cost.

A model has ``answers`` (an engine.quality.truth.Answers), ``m_step(belief) -> params``
with params ``(prior, per-worker array, ...)``, ``e_step(params) -> log joint``
(labels x tasks) and ``fitted(params) -> dict`` of Inference fields.
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

# Gold answers per label a worker needs before their first estimate trusts
# gold alone over the clamped start: fewer, and a couple of gold answers would
# set an extreme matrix that EM then cannot leave.
GOLD_PER_LABEL = 5


def run(model, belief: np.ndarray, gold: np.ndarray, max_iter: int,
        tol: float) -> tuple[np.ndarray, tuple, int]:
    """Alternate M and E steps until the log-likelihood changes by less than
    ``tol`` (relative), as crowd-kit stops. Returns the last belief with the
    parameters of the M-step that produced it, so one task's posterior can be
    recomputed from them exactly; and the number of iterations."""
    if max_iter < 1:
        raise ValueError("max_iter must be at least 1")
    belief = clamp(belief, gold)
    learn = checkable(model.answers, gold)
    previous = -np.inf
    for iteration in range(1, max_iter + 1):
        taught = belief if learn is None else belief * learn
        params = model.m_step(taught) if iteration > 1 else first_step(model, taught, gold)
        belief, loglik = normalise(model.e_step(params))
        belief = clamp(belief, gold)
        if abs(loglik - previous) <= tol * abs(loglik) or iteration == max_iter:
            return belief, params, iteration
        previous = loglik
    raise AssertionError("unreachable: max_iter >= 1")


def checkable(answers, gold: np.ndarray) -> np.ndarray | None:
    """Which tasks the M-steps learn from: those with two answers or more, or
    gold. A lone answer cannot be checked against anything, and early in a
    project, when most tasks have one, it lets EM settle on "every task is the
    commonest label, and each worker is as accurate as their share of it"
    (which explains lone answers better than the truth does). None: all tasks."""
    per_task = np.bincount(answers.task, minlength=answers.shape[0])
    learn = (per_task >= 2) | (gold >= 0)
    return None if learn.all() or not learn.any() else learn.astype(float)


def first_step(model, belief: np.ndarray, gold: np.ndarray) -> tuple:
    """The first M-step, initialised from gold where gold exists: a worker with
    enough gold answers starts from what those alone say (so a majority that
    errs the same way cannot talk EM into its mistake); the others start from
    the clamped start (the vote, or a coarser model's posteriors)."""
    params = model.m_step(belief)
    if not (gold >= 0).any():
        return params
    answers = model.answers
    from_gold = model.m_step(np.where(gold >= 0, belief, 0.0))
    on_gold = np.bincount(answers.worker, weights=gold[answers.task] >= 0,
                          minlength=answers.shape[1])
    tested = on_gold >= GOLD_PER_LABEL * answers.shape[2]
    tested = tested.reshape(-1, *[1] * (params[1].ndim - 1))
    return params[0], np.where(tested, from_gold[1], params[1]), *params[2:]


def normalise(log_joint: np.ndarray) -> tuple[np.ndarray, float]:
    """Columns of log joint probabilities -> posteriors (in place), in log space so
    that tasks with many confident answers do not underflow; and the log-likelihood."""
    top = log_joint.max(axis=0)
    weights = np.exp(log_joint - top, out=log_joint)
    total = weights.sum(axis=0)
    weights /= total
    return weights, float(top.sum() + np.log(total).sum())


def clamp(belief: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Gold tasks are certain: their column becomes one-hot on the gold label."""
    known = np.flatnonzero(gold >= 0)
    if len(known):
        belief[:, known] = 0.0
        belief[gold[known], known] = 1.0
    return belief


def label_prior(belief: np.ndarray) -> np.ndarray:
    """Class priors with a Laplace pseudo-count, so no label is ever impossible."""
    counts = belief.sum(axis=1)
    return (counts + 1) / (counts.sum() + len(counts))


def at_least_chance(accuracy: np.ndarray, n_labels: int) -> np.ndarray:
    """Accuracies below chance (1/K) raised to it. A one-coin model can only
    explain a worker's leaning to one label by calling them adversarial, and on
    sparse answers EM then drifts to "every task has the commonest label"; a
    worker no better than chance is simply uninformative."""
    return np.maximum(accuracy, 1.0 / n_labels) if n_labels > 1 else accuracy


def one_coin_matrices(accuracy: np.ndarray, n_labels: int) -> np.ndarray:
    """(n, K, K) confusion matrices: right with ``accuracy``, wrong evenly otherwise."""
    eye = np.eye(n_labels)
    spread = (1 - eye) / max(n_labels - 1, 1) if n_labels > 1 else eye
    return accuracy[:, None, None] * eye + (1 - accuracy)[:, None, None] * spread


CENTRES = ("uniform", "one_coin", "population")  # DawidSkene's smoothing centres


class DawidSkene:
    """Dawid-Skene's two steps on the (tasks, workers x labels) one-hot matrix,
    column ``worker * K + label``: each step is K sparse products."""

    def __init__(self, answers, smoothing: float, centre: str) -> None:
        if smoothing <= 0 or centre not in CENTRES:
            raise ValueError(f"smoothing must be > 0 and centre one of {', '.join(CENTRES)}")
        self.answers, self.smoothing, self.centre = answers, smoothing, centre
        n_tasks, n_workers, n_labels = answers.shape
        columns = answers.worker * n_labels + answers.label
        self.onehot = sparse.csr_matrix((np.ones(len(columns)), (answers.task, columns)),
                                        shape=(n_tasks, n_workers * n_labels))

    def m_step(self, belief: np.ndarray) -> tuple:
        _, n_workers, n_labels = self.answers.shape
        # one sparse product per label (not per answer) keeps every array C-ordered
        counts = np.stack([self.onehot.T @ row for row in belief])
        counts = counts.reshape(n_labels, n_workers, n_labels).transpose(1, 0, 2)
        population = counts.sum(axis=0) + 1.0
        population /= population.sum(axis=1, keepdims=True)
        mass = self.smoothing * n_labels
        centre = self._centre(counts, population, mass)
        confusion = (counts + mass * centre) / (counts.sum(axis=2, keepdims=True) + mass)
        return label_prior(belief), confusion, population

    def _centre(self, counts: np.ndarray, population: np.ndarray, mass: float) -> np.ndarray:
        """Where the smoothing mass goes: evenly, on the crowd's own confusion
        matrix (a hierarchical model: a sparse worker is the crowd, class by
        class, until their answers say otherwise), or on the worker's one-coin
        matrix (own accuracy shrunk to the crowd's, and the crowd's pattern of
        errors)."""
        n_labels = self.answers.shape[2]
        if self.centre == "uniform":
            return np.full((1, n_labels, n_labels), 1.0 / n_labels)
        if self.centre == "population":
            return population[None]
        eye = np.eye(n_labels)
        right = np.trace(counts, axis1=1, axis2=2)
        seen = counts.sum(axis=(1, 2))
        accuracy = (right + mass * np.trace(population) / n_labels) / (seen + mass)
        accuracy = at_least_chance(accuracy, n_labels)
        errors = population * (1 - eye)
        errors /= np.maximum(errors.sum(axis=1, keepdims=True), np.finfo(float).tiny)
        accuracy = accuracy[:, None, None]
        return accuracy * eye + (1 - accuracy) * (errors if n_labels > 1 else eye)

    def e_step(self, params: tuple) -> np.ndarray:
        prior, confusion, _ = params
        stacked = np.log(confusion).transpose(1, 0, 2).reshape(len(prior), -1)
        log_joint = np.stack([self.onehot @ row for row in stacked])
        log_joint += np.log(prior)[:, None]
        return log_joint

    def fitted(self, params: tuple) -> dict:
        prior, confusion, population = params
        reliability = np.einsum("k,wkk->w", prior, confusion)  # P(a random answer is right)
        return {"prior": prior, "confusion": confusion, "population": population,
                "reliability": reliability}


class OneCoin:
    """The one-coin model's two steps, by bincount over the answers."""

    def __init__(self, answers, smoothing: float) -> None:
        if smoothing <= 0:
            raise ValueError("smoothing must be > 0")
        self.answers, self.smoothing = answers, smoothing

    def m_step(self, belief: np.ndarray) -> tuple:
        a = self.answers
        right = np.bincount(a.worker, weights=belief[a.label, a.task], minlength=a.shape[1])
        seen = np.bincount(a.worker, weights=belief.sum(axis=0)[a.task], minlength=a.shape[1])
        mean = (right.sum() + 1) / (seen.sum() + 2)
        if np.isinf(self.smoothing):
            # pooled: one accuracy for the whole crowd and even class priors,
            # so the labels are the vote's and only the confidence is learnt
            n_labels = a.shape[2]
            accuracy = at_least_chance(np.full(a.shape[1], mean), n_labels)
            return np.full(n_labels, 1.0 / n_labels), accuracy, mean
        accuracy = (right + self.smoothing * mean) / (seen + self.smoothing)
        return label_prior(belief), at_least_chance(accuracy, a.shape[2]), mean

    def e_step(self, params: tuple) -> np.ndarray:
        (prior, accuracy, _), a = params, self.answers
        n_tasks, _, n_labels = a.shape
        wrong = np.log1p(-accuracy) - np.log(max(n_labels - 1, 1))
        gain = np.log(accuracy) - wrong
        base = np.bincount(a.task, weights=wrong[a.worker], minlength=n_tasks)
        hits = np.bincount(a.label * n_tasks + a.task, weights=gain[a.worker],
                           minlength=n_tasks * n_labels).reshape(n_labels, n_tasks)
        return hits + base + np.log(prior)[:, None]

    def fitted(self, params: tuple) -> dict:
        prior, accuracy, mean = params
        population = one_coin_matrices(np.array([mean]), len(prior))[0]
        return {"prior": prior, "population": population, "reliability": accuracy}
