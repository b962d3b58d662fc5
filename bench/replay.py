"""Adaptive redundancy on real answers: how many answers retirement saves, and at what cost.

    python bench/replay.py            # every set with >= 10 answers per task, 3 seeds
    python bench/replay.py --quick    # one small set, one seed
    python bench/replay.py --targets 0.8,0.95,0.98 --methods auto --crowds hard
                                      # those targets, auto only, dev sets and hard crowds

Each categorical set in shared/data/dev whose tasks all have at least 10 answers
is replayed: its answers arrive in a seeded random order (so each task also sees
its own answers in a random order), and an answer for a task that has already
retired is never asked for, so it is not counted as used. After each answer the
task's result is merged and engine.quality.retirement.decide says retire, contest or ask
for more, as the live path does: min_answers 3, max_answers = every answer the
task has in the data, and several confidence targets.

Confidence is computed as the live path computes it, with periodic
re-estimation: truth_live.live_model (what engine.quality.reliability stores: auto, its
confusion matrices cross-fitted by truth_live.calibrated) is re-fitted on every
answer used so far after each 2.5% of the set's answers; between fits a task's
confidence is engine.quality.consensus.merge over its answers and each worker's stored
estimate (a worker the last fit has not seen has none, as a new volunteer).
Before the first fit no task can retire. The model never sees a future answer or
any gold. Beside it, "mv" replays with the vote share as confidence (classify's
aggregate, the live path before consensus used the model).

Reported per set and target: accuracy on gold of the results as retired, share
of the answers used, contested tasks; against accuracy with all answers (auto);
and ECE, the calibration error of the confidence retired results report (what a
charity reads on them; bench/calibration.py's measure, on the answers they
retired with rather than on every answer).
Table to stdout, figures to bench/results/replay.json.

``--crowds`` adds the hard crowds of bench/consensus_hard.py, replayed alike and
scored on their truth: synthetic scenarios by name (bench/crowds.py), dev cuts as
SET/CUT (bench/crowd_cuts.py), or ``hard`` for all of both, at ``--crowd-seed``;
those whose median task has fewer than ``--min-per-task`` answers are left out
(with 3 answers the least a task retires on, a crowd of 5 a task cannot get
under 60%), and named in the output.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import crowd_cuts
import crowds
import numpy as np
from calibration import reliability
from crowd_data import DATA_DIR, categorical_sets, require
from reporting import write_report

from engine.quality import consensus, offline, truth, truth_live
from engine.quality.retirement import CONTEST, MORE, Policy, decide
from task_types.classify import ClassifyType

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results" / "replay.json"
TARGETS = (0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999)
METHODS = ("auto", "mv")  # mv: the vote share as confidence, beside the live model
MIN_ANSWERS = 3
MIN_PER_TASK = 10  # sets with fewer answers per task leave little to save
REFIT_SHARE = 0.025  # re-estimate after each 2.5% of the set's answers
CLASSIFY = ClassifyType()


@dataclass
class Replay:
    """The state of one replay: which answers were used, and each task's fate."""

    answers: truth.Answers
    used: list[int] = field(default_factory=list)
    per_task: dict[int, list[int]] = field(default_factory=dict)
    outcome: dict[int, tuple[str, int]] = field(default_factory=dict)  # task -> (state, label)
    model: truth.Inference | None = None
    fits: int = 0
    stats: dict[int, tuple[float, list]] = field(default_factory=dict)  # worker -> stored
    calibration: dict = field(default_factory=dict)  # as the quality job stores it

    def refit(self) -> None:
        """The periodic re-estimation: truth_live.live_model on every answer used so
        far, stored per worker who has answered (as engine.quality.reliability stores it)."""
        a, used = self.answers, np.asarray(self.used)
        subset = truth.Answers(a.task[used], a.worker[used], a.label[used], a.tasks,
                               a.workers, a.labels)
        self.model = truth_live.live_model(subset)
        prior = truth_live.reported_prior(self.model, subset)
        self.calibration = {"temperature": self.model.temperature,  # as Project.calibration
                            "prior": dict(zip(a.labels, prior.tolist(), strict=True))}
        self.stats = {int(w): (float(self.model.reliability[w]), self.model.confusion[w])
                      for w in np.unique(subset.worker)}
        self.fits += 1

    def merged(self, task: int, method: str) -> tuple[float, int, float]:
        """(confidence retirement weighs, label, confidence the result reports) of
        one task from the answers it has so far."""
        rows = np.asarray(self.per_task[task])
        a = self.answers
        if method == "mv":
            votes = np.bincount(a.label[rows], minlength=len(a.labels))
            share = votes.max() / votes.sum()
            return share, int(votes.argmax()), share
        if self.model is None:
            return 0.0, int(np.bincount(a.label[rows]).argmax()), 0.0
        # the live merge, on the stored estimates (a worker without any: None)
        answers = [({"label": a.labels[a.label[r]]},
                    *self.stats.get(int(a.worker[r]), (None, None))) for r in rows]
        merged = consensus.merge(CLASSIFY, {"labels": list(a.labels)}, answers,
                                 self.calibration)
        return (merged.deciding_confidence, a.labels.index(merged.aggregate.value),
                merged.aggregate.confidence)


def replay(answers: truth.Answers, target: float, method: str, seed: int) -> Replay:
    available = np.bincount(answers.task, minlength=len(answers.tasks))
    refit_every = max(1, int(REFIT_SHARE * len(answers.task)))
    state = Replay(answers)
    for row in np.random.default_rng(seed).permutation(len(answers.task)).tolist():
        task = int(answers.task[row])
        if task in state.outcome:
            continue  # retired or contested: nobody is asked for this answer
        state.used.append(row)
        state.per_task.setdefault(task, []).append(row)
        if method == "auto" and len(state.used) % refit_every == 0:
            state.refit()
        confidence, label, reported = state.merged(task, method)
        # a task with fewer answers in the data than min_answers decides on all it has
        policy = Policy(min(MIN_ANSWERS, int(available[task])), int(available[task]), target)
        decision = decide(policy, confidence, len(state.per_task[task]))
        if decision != MORE:
            state.outcome[task] = (decision, label, reported)
    return state


def summarise(state: Replay, gold: np.ndarray, total: int) -> dict:
    labels = np.array([state.outcome[t][1] for t in range(len(state.answers.tasks))])
    known = gold >= 0
    contested = sum(1 for decision, *_ in state.outcome.values() if decision == CONTEST)
    # what a charity reads on each retired result: is it as often right as it says?
    retired = np.array([state.outcome[t][0] != CONTEST for t in range(len(labels))]) & known
    reported = np.array([state.outcome[t][2] for t in range(len(labels))])
    calibration = reliability(reported[retired], labels[retired] == gold[retired])
    state.refit()  # a last re-estimation over every answer used, re-merging retired tasks
    remerged = state.model.label  # auto's labels: calibration leaves them alone
    return {"accuracy": 100 * float((labels[known] == gold[known]).mean()),
            "remerged": 100 * float((remerged[known] == gold[known]).mean()),
            "used": len(state.used) / total, "contested": contested, "fits": state.fits,
            "reported_ece": calibration["ece"], "reported_signed": calibration["signed"]}


def eligible(data_dir: Path) -> list[str]:
    names = []
    for meta in sorted(data_dir.glob("*/meta.json")):
        if json.loads(meta.read_text())["kind"] != "categorical":
            continue
        rows = offline.read_answers(meta.parent / "answers.csv")
        per_task = np.unique([r[0] for r in rows], return_counts=True)[1]
        if per_task.min() >= MIN_PER_TASK:
            names.append(meta.parent.name)
    return names


def run_set(data_dir: Path, name: str, seeds: list[int], targets: tuple[float, ...] = TARGETS,
            methods: tuple[str, ...] = METHODS) -> dict:
    rows = offline.read_answers(data_dir / name / "answers.csv")
    gold_map = offline.read_gold(data_dir / name / "gold.csv")
    answers = truth.encode(rows, truth.natural_sort([r[2] for r in rows] + list(gold_map.values())))
    return run_answers(answers, answers.gold_codes(gold_map), seeds, targets, methods)


def run_answers(answers: truth.Answers, gold: np.ndarray, seeds: list[int],
                targets: tuple[float, ...] = TARGETS, methods: tuple[str, ...] = METHODS) -> dict:
    """Every method and target replayed on one crowd, scored on ``gold`` (a
    label code per task, truth.UNKNOWN where none)."""
    known = gold >= 0
    everything = {m: 100 * float((truth.infer(answers, m).label[known] == gold[known]).mean())
                  for m in ("auto", "mv")}
    runs = {}
    for method in methods:
        for target in targets:
            started = time.perf_counter()
            per_seed = [summarise(replay(answers, target, method, seed), gold, len(answers.task))
                        for seed in seeds]
            runs[f"{method}@{target}"] = {
                "method": method, "target": target, "seeds": per_seed,
                "accuracy": statistics.mean(s["accuracy"] for s in per_seed),
                "remerged": statistics.mean(s["remerged"] for s in per_seed),
                "used": statistics.mean(s["used"] for s in per_seed),
                "contested": statistics.mean(s["contested"] for s in per_seed),
                "reported_ece": statistics.mean(s["reported_ece"] for s in per_seed),
                "seconds": time.perf_counter() - started}
    return {"tasks": len(answers.tasks), "answers": len(answers.task),
            "answers_per_task": len(answers.task) / len(answers.tasks),
            "all_answers": everything, "replays": runs}


def hard_crowds(data_dir: Path | None, names: list[str], seed: int,
                min_per_task: float) -> tuple[dict[str, crowds.Crowd], dict[str, float]]:
    """The named hard crowds (``hard``: every synthetic scenario and dev cut), and
    apart, those left out for their median answers per task."""
    if "hard" in names:
        names = [*crowds.SCENARIOS, *(f"{s}/{c}" for s in
                                      (categorical_sets(data_dir) if data_dir else [])
                                      for c in crowd_cuts.CUTS)]
    kept, left_out = {}, {}
    for name in names:
        crowd = _crowd(data_dir, name, seed)
        if crowd is None:
            continue  # a cut the set cannot carry (schools in a set that is not binary)
        per_task = np.bincount(crowd.answers.task)
        median = float(np.median(per_task[per_task > 0]))
        if median >= min_per_task:
            kept[name] = crowd
        else:
            left_out[name] = median
    return kept, left_out


def _crowd(data_dir: Path | None, name: str, seed: int) -> crowds.Crowd | None:
    if name in crowds.SCENARIOS:
        return crowds.generate(name, seed)
    set_name, _, cut = name.partition("/")
    if data_dir is None or cut not in crowd_cuts.CUTS:
        raise SystemExit(f"unknown crowd {name!r}: use a scenario of bench/crowds.py "
                         f"({', '.join(crowds.SCENARIOS)}), SET/CUT ({', '.join(crowd_cuts.CUTS)}) "
                         "or hard")
    return crowd_cuts.cut(crowd_cuts.load(data_dir, set_name), cut, seed)


def verdicts(sets: dict, targets: tuple[float, ...] = TARGETS) -> dict:
    """The target: within 1 point of all-answers accuracy on at most 60% of the answers."""
    out = {}
    for target in targets:
        per_set = {}
        for name, result in sets.items():
            run = result["replays"][f"auto@{target}"]
            drop = result["all_answers"]["auto"] - run["accuracy"]
            per_set[name] = {"drop": drop, "used": run["used"],
                             "met": drop <= 1.0 and run["used"] <= 0.60}
        out[str(target)] = {"met": all(v["met"] for v in per_set.values()), "sets": per_set}
    out["per_set"] = {name: next((t for t in targets if out[str(t)]["sets"][name]["met"]), None)
                      for name in sets}  # the lowest confidence target that meets it there
    return out


def print_table(sets: dict, seeds: list[int]) -> None:
    print(f"\nreplay: random arrival order, seeds {seeds} (means), min_answers {MIN_ANSWERS}, "
          "max_answers = all the task has;\nlive_model re-fitted on the answers used so far after "
          f"each {100 * REFIT_SHARE:g}% of the set's answers, consensus.merge in between")
    width = max(16, *(len(name) + 1 for name in sets))
    print(f"{'set':{width}}{'ans/task':>9}{'all auto':>9}{'all mv':>8} {'method':>7}{'target':>7}"
          f"{'accuracy':>9}{'delta':>7}{'used':>7}{'contested':>10}{'re-merged':>10}"
          f"{'ECE':>7}")
    for name, result in sets.items():
        every = result["all_answers"]
        for n, run in enumerate(result["replays"].values()):
            lead = (f"{name:{width}}{result['answers_per_task']:>9.0f}{every['auto']:>9.2f}"
                    f"{every['mv']:>8.2f}") if n == 0 else " " * (width + 26)
            delta = run["accuracy"] - every["auto"]
            print(f"{lead} {run['method']:>7}{run['target']:>7}{run['accuracy']:>9.2f}"
                  f"{delta:>+7.2f}{100 * run['used']:>6.1f}%{run['contested']:>10.1f}"
                  f"{run['remerged']:>10.2f}{run['reported_ece']:>7.3f}")


def print_verdicts(targets: dict) -> None:
    print("\ntarget: within 1 point of all-answers accuracy (auto) using <= 60% of the answers")
    for target, verdict in targets.items():
        if target == "per_set":
            continue
        sets = ", ".join(f"{n} drop {v['drop']:.2f}pt, {100 * v['used']:.0f}% used"
                         f"{'' if v['met'] else ' (no)'}" for n, v in verdict["sets"].items())
        print(f"  confidence {target}: {'met' if verdict['met'] else 'missed'}: {sets}")
    lowest = ", ".join(f"{name} {target}" for name, target in targets["per_set"].items())
    print(f"  lowest target meeting it on each set alone: {lowest}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small set, one seed")
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--targets", default=",".join(map(str, TARGETS)),
                        help="comma-separated confidence targets")
    parser.add_argument("--methods", default=",".join(METHODS), help="of auto,mv")
    parser.add_argument("--crowds", default="",
                        help="comma-separated hard crowds: SCENARIO, SET/CUT or hard")
    parser.add_argument("--crowd-seed", type=int, default=0)
    parser.add_argument("--min-per-task", type=float, default=MIN_PER_TASK,
                        help="hard crowds: least median answers per task")
    parser.add_argument("--no-dev", action="store_true", help="the hard crowds alone")
    args = parser.parse_args(argv)
    args.targets = tuple(float(t) for t in args.targets.split(",") if t.strip())
    args.methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    args.crowds = [c.strip() for c in args.crowds.split(",") if c.strip()]
    if not args.targets or set(args.methods) - set(METHODS) or "auto" not in args.methods:
        parser.error("give one target or more, and methods of auto,mv including auto")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    seeds = list(range(1 if args.quick else args.seeds))
    names = [] if args.no_dev else eligible(args.data)
    if not args.no_dev:
        require(names, args.data, "categorical sets with 10 or more answers per task")
    if args.quick:
        names = [n for n in names if n == "word_sense"] or names[:1]
    sets = {}
    for name in names:
        sets[name] = run_set(args.data, name, seeds, args.targets, args.methods)
        print(f"  {name}: done", flush=True)
    hard, left_out = hard_crowds(args.data if args.data.is_dir() else None, args.crowds,
                                 args.crowd_seed, args.min_per_task)
    for name, crowd in hard.items():
        sets[name] = {"crowd": True, **run_answers(crowd.answers, crowd.truth, seeds,
                                                   args.targets, args.methods)}
        print(f"  {name}: done", flush=True)
    require(sets, args.data, "a set or crowd to replay")
    targets = verdicts(sets, args.targets)
    print_table(sets, seeds)
    print_verdicts(targets)
    if left_out:
        print(f"  crowds left out, median answers per task under {args.min_per_task:g}: "
              + ", ".join(f"{n} ({m:g})" for n, m in left_out.items()))
    report = {"quick": args.quick, "seeds": seeds, "min_answers": MIN_ANSWERS,
              "refit_share": REFIT_SHARE, "targets_replayed": list(args.targets),
              "crowd_seed": args.crowd_seed, "crowds_left_out": left_out,
              "sets": sets, "targets": targets}
    write_report(args.output, report)
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
