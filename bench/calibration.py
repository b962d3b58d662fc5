"""Part (v) of bench/consensus.py: does a label result's confidence mean what it says?

Of the tasks reported at confidence 0.9, about 90% should be right (issue 15).
For every categorical dev set, and the hard crowds of bench/consensus_hard.py
(synthetic, and cuts of the dev sets; fewer seeds than part iv), two
confidences are scored on the tasks that have a truth:

- ``auto``: ``truth.infer(answers, "auto")``'s posteriors, what ``bitesize
  consensus`` reports (the project-wide EM, its class priors and in-sample
  matrices);
- ``live``: each task's posterior from its answers under ``truth_live.live_model``'s
  cross-fitted matrices and τ, every label equally likely beforehand, as
  ``engine.quality.consensus.merge`` computes it (``truth_live.posterior_from``),
  when the stored estimates are fresh.

and each again with GOLD_SHARE of the tasks that have a truth given as gold
(``auto_gold``, ``live_gold``: a charity that mixed some gold in, which
``truth_choice.gold_calibration`` may temper by), scored on the other tasks.

The winning label's confidence goes into BINS equal-width bins; the expected
calibration error (ECE) is the tasks-weighted mean of |mean confidence -
accuracy| over the bins. Beside it, the signed gap (above 0: overconfident),
the largest gap of a bin with MIN_BIN tasks or more (a bin of three tasks gaps
by chance), and the reliability diagram itself (bin, tasks, mean confidence,
accuracy). A set's seeds are pooled into one diagram. Target: ECE < TARGET on
every set, for each confidence.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import consensus_hard
import crowd_cuts
import numpy as np
from crowd_data import categorical_sets, require
from crowds import Crowd

from engine.quality import truth, truth_choice, truth_live

BINS = 10
MIN_BIN = 10  # tasks a bin needs for its gap to count as the max-bin gap
TARGET = 0.05
CONFIDENCES = ("auto", "live", "auto_gold", "live_gold")
GOLD_SHARE = 0.1  # of the tasks with a truth, given as gold to the *_gold confidences
FULL = {"seeds": (0, 1, 2), "cut_seeds": (0, 1), "scale": 1.0, "sets": None}
QUICK = {"seeds": (0,), "cut_seeds": (0,), "scale": 0.25, "sets": ("temporal", "word_sense")}


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> dict:
    """ECE, signed gap, max-bin gap and the reliability diagram of one set's
    winning-label confidences and whether each was right. Bins are [i/bins,
    (i+1)/bins), the last one closed."""
    confidence = np.asarray(confidence, float)
    correct = np.asarray(correct, float)
    if len(confidence) == 0:
        return {"tasks": 0, "ece": 0.0, "signed": 0.0, "max_gap": 0.0, "diagram": []}
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    tasks = np.bincount(index, minlength=bins)
    mean = np.bincount(index, confidence, bins) / np.maximum(tasks, 1)
    accuracy = np.bincount(index, correct, bins) / np.maximum(tasks, 1)
    gap = mean - accuracy
    weight = tasks / len(confidence)
    counted = tasks >= MIN_BIN
    return {"tasks": int(len(confidence)), "ece": float((weight * np.abs(gap)).sum()),
            "signed": float((weight * gap).sum()),
            "max_gap": float(np.abs(gap[counted]).max(initial=0.0)),
            "diagram": [{"bin": [b / bins, (b + 1) / bins], "tasks": int(tasks[b]),
                         "confidence": float(mean[b]), "accuracy": float(accuracy[b])}
                        for b in np.flatnonzero(tasks)]}


def live_posterior(answers: truth.Answers, model: truth.Inference) -> np.ndarray:
    """Every task's live posterior (tasks x labels) as its result reports it: its
    answers' rows of the answering workers' matrices multiplied, from the class
    prior the quality job stores (truth_live.reported_prior), tempered by the
    model's τ; truth_live.posterior_from for all tasks at once."""
    prior = truth_live.reported_prior(model, answers)
    return truth_choice.lapsed(truth_choice.softmax(model.temperature * (
        np.log(prior) + truth_choice.answer_evidence(answers, model.confusion))), model.lapse)


def posteriors(answers: truth.Answers, gold: np.ndarray | None = None
               ) -> tuple[dict[str, np.ndarray], str]:
    """auto's and live's posteriors (tasks x labels) given this gold (None: no
    gold), and the model auto chose."""
    fitted = truth.infer(answers, "auto", gold)
    live = live_posterior(answers, truth_live.live_model(answers, gold))
    return {"auto": fitted.posterior, "live": live}, fitted.choice.chosen


def gold_of(truth_codes: np.ndarray, keep: np.ndarray, seed: int = 0) -> np.ndarray:
    """GOLD_SHARE of the kept tasks' truths as gold codes (-1 elsewhere), drawn
    with a fixed seed."""
    tasks = np.flatnonzero(keep)
    picked = np.random.default_rng(seed).choice(tasks, int(GOLD_SHARE * len(tasks)),
                                                replace=False)
    gold = np.full(len(truth_codes), -1, dtype=np.int64)
    gold[picked] = truth_codes[picked]
    return gold


def scored(crowd: Crowd) -> dict:
    """One crowd's winning-label confidences and hits per confidence, on the
    tasks that have a truth and an answer (and, for the *_gold confidences,
    are not gold); and auto's choice without gold."""
    a = crowd.answers
    keep = (crowd.truth >= 0) & (np.bincount(a.task, minlength=a.shape[0]) > 0)
    gold = gold_of(crowd.truth, keep)
    plain, chosen = posteriors(a)
    given, _ = posteriors(a, gold)
    rest = keep & (gold < 0)
    out = {name: (p.max(axis=1)[keep], p.argmax(axis=1)[keep] == crowd.truth[keep])
           for name, p in plain.items()}
    out.update({f"{name}_gold": (p.max(axis=1)[rest], p.argmax(axis=1)[rest] == crowd.truth[rest])
                for name, p in given.items()})
    return {"pairs": out, "chosen": chosen}


def crowds_of(data_dir: Path | None, sizes: dict) -> Iterator[tuple[str, str, Crowd]]:
    """(set, source, crowd): every categorical dev set whole, then the hard
    crowds of part (iv) at ``sizes``; ``data_dir`` None: synthetic crowds only."""
    if data_dir is not None:
        names = categorical_sets(data_dir)
        require(names, data_dir, "categorical sets (NAME/meta.json)")
        if sizes["sets"]:
            names = [n for n in names if n in sizes["sets"]] or names[:2]
        for name in names:
            yield name, "dev", crowd_cuts.load(data_dir, name)
    yield from consensus_hard.hard_crowds(data_dir, sizes)


def summarise(source: str, runs: list[dict]) -> dict:
    """One set: its seeds' tasks pooled into one diagram per confidence."""
    row: dict = {"source": source, "seeds": len(runs),
                 "chosen": dict(Counter(r["chosen"] for r in runs))}
    for name in CONFIDENCES:
        confidence = np.concatenate([r["pairs"][name][0] for r in runs])
        correct = np.concatenate([r["pairs"][name][1] for r in runs])
        row[name] = reliability(confidence, correct)
    return row


def run(data_dir: Path | None, quick: bool) -> dict:
    """Part (v): every set's calibration per confidence, with the targets."""
    started = time.perf_counter()
    sizes = QUICK if quick else FULL
    runs: dict[str, list[dict]] = {}
    sources: dict[str, str] = {}
    for name, source, crowd in crowds_of(data_dir, sizes):
        runs.setdefault(name, []).append(scored(crowd))
        sources[name] = source
    sets = {name: summarise(sources[name], rows) for name, rows in runs.items()}
    return {"bins": BINS, "min_bin": MIN_BIN, "target": TARGET,
            "sizes": {k: v for k, v in sizes.items() if k != "sets"},
            "synthetic_only": data_dir is None, "sets": sets, "targets": targets(sets),
            "seconds": time.perf_counter() - started}


def targets(sets: dict) -> dict:
    """ECE < TARGET on every set, per confidence; the worst set and the misses."""
    out = {}
    for name in CONFIDENCES:
        ece = {set_name: row[name]["ece"] for set_name, row in sets.items()}
        worst = max(ece, key=ece.get, default=None)
        out[f"calibration_{name}_ece_under_{TARGET}"] = {
            "met": all(e < TARGET for e in ece.values()), "target": TARGET,
            "worst_set": worst, "worst": ece.get(worst, 0.0), "sets": len(ece),
            "missed": {s: e for s, e in ece.items() if e >= TARGET}}
    return out


def print_part(part: dict) -> None:
    sizes = part["sizes"]
    print(f"\n(v) calibration: ECE over {part['bins']} equal-width bins of the winning "
          f"label's confidence, target < {part['target']}; signed gap (+ overconfident), "
          f"max gap of a bin with >= {part['min_bin']} tasks;\n    dev sets whole, "
          f"{len(sizes['seeds'])} seed(s) per synthetic scenario, {len(sizes['cut_seeds'])} "
          "per dev cut, seeds pooled")
    print(f"{'set':38}{'source':>10}{'tasks':>7}  {'auto chose':24}"
          + "".join(f"{c + ' ECE':>10}{'signed':>8}{'max gap':>8}" for c in CONFIDENCES))
    for name, row in part["sets"].items():
        chosen = ",".join(f"{m}" + (f"x{n}" if n > 1 else "") for m, n in row["chosen"].items())
        print(f"{name:38}{row['source']:>10}{row['auto']['tasks']:>7}  {chosen:24}"
              + "".join(_cells(row[c]) for c in CONFIDENCES))
    for name, row in part["sets"].items():
        if row["source"] == "dev":
            print_diagrams(name, row)
    print_targets(part["targets"])
    print(f"  ({part['seconds']:.1f} s)")


def _cells(found: dict) -> str:
    mark = "!" if found["ece"] >= TARGET else " "
    return f"{found['ece']:>9.3f}{mark}{found['signed']:>+8.3f}{found['max_gap']:>8.3f}"


def print_diagrams(name: str, row: dict) -> None:
    """The reliability diagrams of one set, side by side per confidence."""
    print(f"\n  reliability diagram, {name}: tasks, mean confidence, accuracy per bin")
    print(f"  {'bin':>9}" + "".join(f"{c + ' tasks':>13}{'conf':>7}{'acc':>7}"
                                    for c in CONFIDENCES))
    per = {c: {tuple(b["bin"]): b for b in row[c]["diagram"]} for c in CONFIDENCES}
    for edges in sorted(set().union(*per.values())):
        cells = ""
        for c in CONFIDENCES:
            b = per[c].get(edges)
            cells += (f"{b['tasks']:>13}{b['confidence']:>7.3f}{b['accuracy']:>7.3f}"
                      if b else f"{'-':>13}{'':>14}")
        print(f"  {edges[0]:.1f}-{edges[1]:.1f}  " + cells)


def print_targets(found: dict) -> None:
    print("\ntargets (part v):")
    for name, target in found.items():
        missed = ", ".join(f"{s} {e:.3f}" for s, e in target["missed"].items())
        print(f"  {name}: {'ok' if target['met'] else 'MISSED'} on {target['sets']} sets, "
              f"worst {target['worst_set']} {target['worst']:.3f}"
              + (f"; missed on {len(target['missed'])}: {missed}" if missed else ""))
