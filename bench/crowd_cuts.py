"""Cuts of the real dev sets that reproduce the hard traits of bench/crowds.py on
real answers, with the sets' gold as the truth. Each cut is seeded:

- ``heavy_tail``: the three most prolific volunteers keep their answers (thinned
  evenly to ~8.3% of the cut each) and give a quarter of them; the others'
  answers are thinned to the other three quarters and split into casual
  volunteers of a few answers each (most under 20);
- ``imbalance``: tasks of the other classes (or of the commonest, if it is
  already over the mark) are dropped until the commonest class holds 78% of the
  gold in binary sets, 56% with more labels;
- ``schools``: binary sets with 5 answers a task or more only; a group of
  volunteers holding 35% of the answers reads the least-agreed 30% of the
  rarer class the other way (crowds.add_schools, as the synthetic crowds do);
- ``heavy_tail+imbalance`` and ``schools+imbalance``: the imbalance cut first.

Splitting volunteers is how a dense set gets a long tail without inventing
answers: each casual "volunteer" is a slice of a real one, so their answers keep
a real volunteer's quality, and what a model sees is many people with a few
answers each, as on Zooniverse.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from crowd_data import read_categorical
from crowds import Crowd, add_schools

from engine.quality import truth

CUTS = ("heavy_tail", "imbalance", "heavy_tail+imbalance", "schools", "schools+imbalance")
TOP_SHARE = 0.25  # of the cut's answers, from its three most prolific volunteers
CASUAL_MEAN = 8  # mean answers of a casual volunteer (geometric: ~7% give over 20)
COMMONEST = {2: 0.78}  # the commonest class's share of the gold by label count; else
COMMONEST_MANY = 0.56
SCHOOL_SHARE, SCHOOL_ITEMS, SCHOOL_MIN_PER_TASK = 0.35, 0.3, 5


def load(data_dir: Path, name: str) -> Crowd:
    """A dev set as a crowd, its gold as the truth."""
    _, gold, answers, _ = read_categorical(data_dir, name)
    return Crowd(name, 0, answers, answers.gold_codes(gold))


def cut(crowd: Crowd, name: str, seed: int) -> Crowd | None:
    """The cut ``name`` (in CUTS) of a dev set, or None where the set cannot
    carry that trait (schools in a set that is not binary, or sparse)."""
    rng = np.random.default_rng(seed)
    steps = name.split("+")
    if "schools" in steps and not can_hold_schools(crowd):
        return None
    out = crowd
    for step in sorted(steps, key=lambda s: s != "imbalance"):  # imbalance first
        out = {"heavy_tail": heavy_tail, "imbalance": imbalance, "schools": schools}[step](out, rng)
    return replace(out, name=f"{crowd.name}/{name}", seed=seed)


def can_hold_schools(crowd: Crowd) -> bool:
    """Binary, and enough answers per task that a school is a minority on an item."""
    per_task = np.bincount(crowd.answers.task)
    return crowd.answers.shape[2] == 2 and np.median(per_task[per_task > 0]) >= SCHOOL_MIN_PER_TASK


def schools(crowd: Crowd, rng) -> Crowd:
    return add_schools(crowd, rng, (SCHOOL_SHARE,), SCHOOL_ITEMS)


def heavy_tail(crowd: Crowd, rng, share: float = TOP_SHARE, top: int = 3) -> Crowd:
    """Three volunteers with ~share/3 of the answers each, the rest casual."""
    a = crowd.answers
    per_worker = np.bincount(a.worker, minlength=a.shape[1])
    prolific = np.argsort(-per_worker, kind="stable")[:top]
    others = np.flatnonzero(~np.isin(a.worker, prolific))
    each = min(per_worker[prolific].min(), len(others) * share / top / (1 - share))
    kept = [rng.choice(np.flatnonzero(a.worker == w), int(each), replace=False)
            for w in prolific]
    kept.append(rng.choice(others, int(round(each * top * (1 - share) / share)), replace=False))
    thinned = subset(crowd, np.sort(np.concatenate(kept)))
    return split_casual(thinned, rng, {a.workers[w] for w in prolific})


def split_casual(crowd: Crowd, rng, keep: set[str]) -> Crowd:
    """Each volunteer not in ``keep`` becomes several, "name~1", "name~2", ...,
    with a geometric number of their answers each (mean CASUAL_MEAN)."""
    a = crowd.answers
    order = rng.permutation(len(a.task))
    order = order[np.argsort(a.worker[order], kind="stable")]  # by volunteer, shuffled within
    names = []
    for code, rows in zip(*np.unique(a.worker[order], return_counts=True), strict=True):
        name = a.workers[code]
        if name in keep:
            names += [name] * rows
            continue
        sizes = rng.geometric(1 / CASUAL_MEAN, size=rows)
        slice_of = np.repeat(np.arange(rows), sizes)[:rows]
        names += [f"{name}~{i + 1}" for i in slice_of]
    renamed = np.empty(len(order), dtype=object)
    renamed[order] = names
    workers, worker = np.unique(renamed, return_inverse=True)
    return replace(crowd, answers=replace(a, worker=worker.astype(np.int64),
                                          workers=tuple(workers)))


def imbalance(crowd: Crowd, rng) -> Crowd:
    """Keep tasks with gold so that the commonest class holds its target share
    (COMMONEST), the other classes in their own proportions."""
    n_labels = crowd.answers.shape[2]
    target = COMMONEST.get(n_labels, COMMONEST_MANY)
    answered = np.bincount(crowd.answers.task, minlength=crowd.answers.shape[0]) > 0
    known = (crowd.truth >= 0) & answered
    counts = np.bincount(crowd.truth[known], minlength=n_labels)
    top = int(np.argmax(counts))
    rest = counts.sum() - counts[top]
    if rest == 0:
        return crowd
    if counts[top] >= target * counts.sum():  # over the mark already: drop the commonest
        want = np.where(np.arange(n_labels) == top, round(rest * target / (1 - target)), counts)
    else:
        scale = counts[top] * (1 - target) / target / rest
        want = np.where(np.arange(n_labels) == top, counts[top], np.round(counts * scale))
    tasks = np.concatenate([rng.choice(np.flatnonzero(known & (crowd.truth == k)), int(n),
                                       replace=False) for k, n in enumerate(want)])
    return subset(crowd, np.flatnonzero(np.isin(crowd.answers.task, tasks)))


def subset(crowd: Crowd, rows: np.ndarray) -> Crowd:
    """The crowd with only these answer rows; tasks and volunteers left without
    an answer are dropped (codes renumbered in order), labels kept."""
    a = crowd.answers
    tasks, task = np.unique(a.task[rows], return_inverse=True)
    workers, worker = np.unique(a.worker[rows], return_inverse=True)
    answers = truth.Answers(task.astype(np.int64), worker.astype(np.int64), a.label[rows],
                            tuple(a.tasks[i] for i in tasks),
                            tuple(a.workers[i] for i in workers), a.labels)
    return replace(crowd, answers=answers, truth=crowd.truth[tasks], schools=())
