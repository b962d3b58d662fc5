"""Synthetic crowds with known truth, for the traits that made ``auto`` lose to a
plain vote on real charity-like data (issue 15), so anyone can rerun them:

- heavy-tailed participation: three volunteers give ~8-9% of all answers each
  and most give under 20 (Zooniverse projects look like this);
- strong class imbalance: 78/22, or four classes with one holding 56%;
- "schools of thought": dense binary data (240 items, 53 volunteers who each
  saw every item, ~40 answers per item) where a group of volunteers reads an
  ambiguous part of one class the other way;
- and their mixtures, beside a plain control.

Every crowd has a realistic spread of volunteers: near-perfect ones, good and
fair ones, class-dependent confusers, lazy ones who click the commonest label,
and spammers. Answers come out as engine.quality.truth.Answers, as truth.encode
makes them, with the truth as one label code per task. The same traits cut out
of the real dev sets are in bench/crowd_cuts.py; the schools are added here by
``add_schools``, which both use. Everything is a pure function of a seed.

    python bench/crowds.py            # the scenarios' measured traits, seed 0
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from engine.quality import truth, truth_live

# Kinds of volunteer and how common they are. Accuracies are drawn per volunteer
# in these ranges; a confuser reads one class as another part of the time, a
# lazy volunteer clicks the commonest label, a spammer answers at random.
MIX = {"expert": 0.15, "good": 0.40, "fair": 0.20, "confuser": 0.10, "lazy": 0.05,
       "spammer": 0.10}
# The few who give a large share: committed, mostly good, some with a bias.
PROLIFIC_MIX = {"expert": 0.35, "good": 0.35, "confuser": 0.20, "lazy": 0.10}
ACCURACY = {"expert": (0.93, 0.99), "good": (0.75, 0.92), "fair": (0.55, 0.75),
            "confuser": (0.80, 0.92), "lazy": (0.75, 0.92)}
CONFUSED = (0.35, 0.60)  # share of a confuser's answers on their class given to another
LAZY = 0.5  # share of a lazy volunteer's answers that are the commonest label
FLIP = 0.9  # how often a school member reads an ambiguous item the other way


@dataclass(frozen=True)
class Scenario:
    """How one synthetic crowd is made. ``per_task`` (low, high) answers per task
    drawn uniformly, from ``prolific`` volunteers with those answer shares and
    ``workers`` others of lognormal activity (``tail_sigma``: 1.5 is a long
    tail, 0.5 fairly even); or, with ``coverage``, dense: each of ``workers``
    volunteers answers each task with that probability. ``schools``: answer
    shares of groups that each read an ambiguous ``ambiguous`` share of one class
    the other way (the minority class first); ``doubt``: how often the rest of
    the crowd reads those items that way too (ambiguous items are hard for
    everyone; without it, Dawid-Skene sees a school as plain confusers and gets
    every item right, which no real crowd allows)."""

    tasks: int
    labels: int
    workers: int
    prior: tuple[float, ...] = ()
    per_task: tuple[int, int] = (5, 5)
    prolific: tuple[float, ...] = ()
    tail_sigma: float = 0.5
    coverage: float = 0.0
    schools: tuple[float, ...] = ()
    ambiguous: float = 0.3
    doubt: float = 0.1


@dataclass(frozen=True)
class Crowd:
    """Answers with the truth behind them (a label code per task, truth.UNKNOWN
    where a dev set has no gold); ``schools`` lists (worker codes, task codes)
    of each school and the items it reads the other way."""

    name: str
    seed: int
    answers: truth.Answers
    truth: np.ndarray
    schools: tuple[tuple[np.ndarray, np.ndarray], ...] = field(default=())


HEAVY = {"prolific": (0.09, 0.08, 0.08), "tail_sigma": 1.5, "per_task": (4, 8)}
DENSE = {"tasks": 240, "labels": 2, "workers": 53, "coverage": 0.75}
SCENARIOS = {
    "control": Scenario(2000, 3, 200),
    "heavy_tail": Scenario(3000, 3, 1500, **HEAVY),
    "heavy_tail_mid": Scenario(3000, 3, 600, **HEAVY),
    "imbalance": Scenario(2000, 2, 200, prior=(0.78, 0.22)),
    "imbalance_4": Scenario(2000, 4, 200, prior=(0.56, 0.20, 0.14, 0.10)),
    "schools": Scenario(**DENSE, schools=(0.35,)),
    "schools_2": Scenario(**DENSE, schools=(0.30, 0.25)),
    "heavy_tail+imbalance": Scenario(3000, 2, 1500, prior=(0.78, 0.22), **HEAVY),
    "heavy_tail+imbalance_4": Scenario(3000, 4, 1500, prior=(0.56, 0.20, 0.14, 0.10), **HEAVY),
    "schools+imbalance": Scenario(**DENSE, prior=(0.78, 0.22), schools=(0.35,)),
    "heavy_tail+schools": Scenario(3000, 2, 1500, schools=(0.35,), **HEAVY),
    "heavy_tail+imbalance+schools": Scenario(3000, 2, 1500, prior=(0.78, 0.22),
                                             schools=(0.35,), **HEAVY),
}


def generate(scenario: str | Scenario, seed: int = 0, scale: float = 1.0) -> Crowd:
    """The scenario (a name in SCENARIOS, or a Scenario) made with ``seed``;
    ``scale`` shrinks tasks and volunteers alike (not a dense scenario's
    volunteers, who see every item)."""
    name = scenario if isinstance(scenario, str) else "custom"
    spec = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])  # scenarios apart
    n_tasks = max(int(spec.tasks * scale), 10)
    n_workers = spec.workers if spec.coverage else max(int(spec.workers * scale), 10)
    prior = np.asarray(spec.prior or np.full(spec.labels, 1 / spec.labels))
    truths = rng.choice(spec.labels, n_tasks, p=prior)
    if spec.coverage:
        task, worker = assign_dense(rng, n_tasks, n_workers, spec.coverage)
    else:
        task, worker = assign(rng, n_tasks, spec.per_task, spec.prolific,
                              n_workers, spec.tail_sigma)
    n_all = int(worker.max()) + 1
    kinds = volunteer_kinds(rng, n_all, len(spec.prolific))
    matrices = confusions(rng, kinds, np.bincount(truths, minlength=spec.labels))
    label = answer(rng, matrices, worker, truths[task])
    crowd = Crowd(name, seed, encoded(task, worker, label, n_tasks, n_all, spec.labels),
                  truths)
    if not spec.schools:
        return crowd
    return add_schools(crowd, rng, spec.schools, spec.ambiguous, doubt=spec.doubt)


def encoded(task: np.ndarray, worker: np.ndarray, label: np.ndarray, n_tasks: int,
            n_workers: int, n_labels: int) -> truth.Answers:
    """Codes as truth.Answers, with names "t0".., "w0".., "0".. (no pair twice)."""
    return truth.Answers(task, worker, label, tuple(f"t{i}" for i in range(n_tasks)),
                         tuple(f"w{i}" for i in range(n_workers)),
                         tuple(str(i) for i in range(n_labels)))


def assign(rng, n_tasks: int, per_task: tuple[int, int], prolific: tuple[float, ...],
           n_others: int, tail_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(task, worker) pairs: each prolific volunteer (codes 0..) answers a random
    ``share`` of all the answers (as whole tasks), and each task's remaining
    answers come from the others (codes after them)."""
    sizes = rng.integers(per_task[0], per_task[1] + 1, size=n_tasks)
    counts = [min(int(share * sizes.sum()), n_tasks) for share in prolific]
    pairs = [(rng.choice(n_tasks, count, replace=False), np.full(count, code))
             for code, count in enumerate(counts)]
    taken = np.bincount(np.concatenate([t for t, _ in pairs] or [np.zeros(0, int)]),
                        minlength=n_tasks)
    task, other = _draw_others(rng, np.clip(sizes - taken, 0, n_others), n_others, tail_sigma)
    pairs.append((task, other + len(prolific)))
    task = np.concatenate([t for t, _ in pairs])
    worker = np.concatenate([w for _, w in pairs]).astype(np.int64)
    order = rng.permutation(len(task))
    return task[order], _compact(worker[order])


def _draw_others(rng, slots: np.ndarray, n_others: int,
                 tail_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``slots[t]`` distinct volunteers for task t, each drawn with probability
    proportional to their lognormal activity (Gumbel top-k: the largest keys
    of log activity plus Gumbel noise are a weighted draw without repeats)."""
    width = int(slots.max(initial=0))
    if width == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    keys = rng.normal(0, tail_sigma, n_others) + rng.gumbel(size=(len(slots), n_others))
    chosen = np.argpartition(-keys, width - 1, axis=1)[:, :width]
    ranked = np.argsort(-np.take_along_axis(keys, chosen, axis=1), axis=1)
    chosen = np.take_along_axis(chosen, ranked, axis=1)  # largest keys first
    keep = (np.arange(width) < slots[:, None]).ravel()
    return np.repeat(np.arange(len(slots)), width)[keep], chosen.ravel()[keep]


def _compact(worker: np.ndarray) -> np.ndarray:
    """Worker codes without gaps (an inactive volunteer gets no code), order kept."""
    _, codes = np.unique(worker, return_inverse=True)
    return codes.astype(np.int64)


def assign_dense(rng, n_tasks: int, n_workers: int,
                 coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """Every volunteer sees every task and answers each with probability ``coverage``."""
    task, worker = np.nonzero(rng.random((n_tasks, n_workers)) < coverage)
    return task.astype(np.int64), worker.astype(np.int64)


def volunteer_kinds(rng, n_workers: int, n_prolific: int) -> np.ndarray:
    """A kind per volunteer: the first ``n_prolific`` from PROLIFIC_MIX, the rest from MIX."""
    def draw(mix: dict, size: int) -> np.ndarray:
        return rng.choice(list(mix), size, p=list(mix.values()))

    return np.concatenate([draw(PROLIFIC_MIX, n_prolific), draw(MIX, n_workers - n_prolific)])


def confusions(rng, kinds: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(workers, K, K) matrices, rows the true label, by kind: an accuracy drawn in
    the kind's range with errors spread evenly; a confuser also gives part of one
    class's answers to another (in binary data: misses the minority class), a
    lazy volunteer half their answers to the commonest label, a spammer is uniform."""
    n_labels = len(counts)
    low, high = np.array([ACCURACY.get(k, (0.0, 0.0)) for k in kinds]).T
    accuracy = rng.uniform(low, high)
    matrices = np.array(truth_live.one_coin_confusions(accuracy, n_labels))
    commonest, rarest = int(np.argmax(counts)), int(np.argmin(counts))
    for w in np.flatnonzero(kinds == "confuser"):
        read = rarest if n_labels == 2 else int(rng.integers(n_labels))
        as_ = int(rng.choice([k for k in range(n_labels) if k != read]))
        moved = rng.uniform(*CONFUSED)
        matrices[w, read] *= 1 - moved
        matrices[w, read, as_] += moved
    lazy = kinds == "lazy"
    matrices[lazy] = (1 - LAZY) * matrices[lazy] + LAZY * np.eye(n_labels)[commonest]
    matrices[kinds == "spammer"] = 1 / n_labels
    return matrices


def answer(rng, matrices: np.ndarray, worker: np.ndarray, true: np.ndarray) -> np.ndarray:
    """One label per (worker, true label) row, drawn from the worker's matrix."""
    cumulative = matrices[worker, true].cumsum(axis=1)
    n_labels = matrices.shape[-1]
    return (rng.random(len(worker))[:, None] > cumulative).sum(axis=1).clip(max=n_labels - 1)


def add_schools(crowd: Crowd, rng, shares: tuple[float, ...], ambiguous: float = 0.3,
                flip: float = FLIP, doubt: float = 0.0) -> Crowd:
    """Schools of thought: for each share, a group of volunteers holding about
    that share of the answers (picked at random, whole volunteers) reads the
    ``ambiguous`` share of one class's items the other way: the items of that
    class where the crowd agreed least, to its commonest other label, ``flip``
    of the time, and everyone else ``doubt`` of the time. School i reads the
    i-th rarest class (by truth), so two schools in binary data disagree with
    each other as well as with the truth. Volunteers already in a school are
    not drawn again. On a dev set, least-agreed items are ambiguous already:
    leave ``doubt`` at 0 there."""
    a, known = crowd.answers, crowd.truth
    n_labels = a.shape[2]
    counts = np.bincount(known[known >= 0], minlength=n_labels)
    classes = np.argsort(counts, kind="stable")
    label, schools = a.label.copy(), []
    free = rng.permutation(np.flatnonzero(np.bincount(a.worker, minlength=a.shape[1])))
    per_worker = np.bincount(a.worker, minlength=a.shape[1])
    for i, share in enumerate(shares):
        read = int(classes[i % n_labels])
        members, free = _members(free, per_worker, share * len(a.task))
        items = least_agreed(crowd, read, ambiguous)
        as_ = _other_label(a, read)
        on_items = np.isin(a.task, items)
        odds = np.where(np.isin(a.worker, members), flip, doubt)
        hit = on_items & (rng.random(len(label)) < odds)
        label[hit] = as_[a.task[hit]]
        schools.append((np.sort(members), items))
    return replace(crowd, answers=replace(a, label=label), schools=tuple(schools))


def _members(order: np.ndarray, per_worker: np.ndarray, answers: float) -> tuple:
    """The first volunteers of ``order`` holding ``answers`` answers, and the rest."""
    cumulative = per_worker[order].cumsum()
    cut = int(np.searchsorted(cumulative, answers)) + 1
    return order[:cut], order[cut:]


def least_agreed(crowd: Crowd, read: int, share: float) -> np.ndarray:
    """Task codes: the ``share`` of class ``read``'s items (by truth) where the
    fewest answers said ``read``, ties broken by task code."""
    a = crowd.answers
    per_task = np.bincount(a.task, minlength=a.shape[0])
    said = np.bincount(a.task, weights=a.label == read, minlength=a.shape[0])
    candidates = np.flatnonzero((crowd.truth == read) & (per_task > 0))
    agreement = said[candidates] / per_task[candidates]
    chosen = candidates[np.argsort(agreement, kind="stable")]
    return np.sort(chosen[: int(round(share * len(candidates)))])


def _other_label(a: truth.Answers, read: int) -> np.ndarray:
    """Per task (an array over all tasks), the label other than ``read`` that its
    answers gave most (the next label where they gave none): the reading a
    school takes."""
    n_tasks, _, n_labels = a.shape
    votes = np.zeros((n_tasks, n_labels))
    np.add.at(votes, (a.task, a.label), 1)
    votes[:, read] = -1
    fallback = (read + 1) % n_labels
    return np.where(votes.max(axis=1) > 0, votes.argmax(axis=1), fallback)


def traits(crowd: Crowd) -> dict:
    """What a crowd looks like, measured: sizes, the three most prolific
    volunteers' answer shares, how many volunteers gave under 20, the truth's
    class shares, the schools' sizes."""
    a = crowd.answers
    per_worker = np.bincount(a.worker, minlength=a.shape[1])
    active = per_worker[per_worker > 0]
    top = np.sort(active)[::-1][:3] / max(len(a.task), 1)
    known = crowd.truth[crowd.truth >= 0]
    answered = np.bincount(a.task, minlength=a.shape[0]) > 0
    return {"tasks": int(answered.sum()), "volunteers": len(active), "answers": len(a.task),
            "answers_per_task": len(a.task) / max(int(answered.sum()), 1),
            "top3_shares": [round(float(s), 4) for s in top],
            "top3_share": float(top.sum()),
            "median_per_volunteer": float(np.median(active)) if len(active) else 0.0,
            "share_under_20": float((active < 20).mean()) if len(active) else 0.0,
            "class_shares": [round(float(s), 4) for s in
                             np.bincount(known, minlength=a.shape[2]) / max(len(known), 1)],
            "schools": [{"volunteers": len(w), "items": len(t)} for w, t in crowd.schools]}


if __name__ == "__main__":
    for scenario in SCENARIOS:
        print(scenario, traits(generate(scenario)))
