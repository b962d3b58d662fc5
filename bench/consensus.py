"""Consensus benchmark: bitesize's truth inference against crowd-kit, in one process and one run.

    python bench/consensus.py                 # everything; GLAD and MACE take most of it
    python bench/consensus.py --quick         # small sets, no GLAD/MACE, 10,000 generated tasks
    python bench/consensus.py --parts hard    # part (iv) alone, a minute or so, no crowd-kit
    python bench/consensus.py --parts calibration  # part (v) alone, a minute or two

(i)   Unsupervised, on every categorical set in shared/data/dev: bitesize's mv, wmv,
      ds, onecoin and auto against crowd-kit's MajorityVote, Wawa, DawidSkene, GLAD
      and MACE; no method sees any gold. Accuracy on the tasks that have gold, and
      seconds. The targets are about this part.
(ii)  Semi-supervised: bitesize given 10% of the gold (seeded) as gold tasks, scored
      on the other 90%, beside its unsupervised score on the same 90% (crowd-kit's
      DawidSkene takes true_labels too, so it is shown as well).
(iii) Dawid-Skene on generated 100,000 tasks x 5 answers x 5 labels (workers with
      random confusion matrices, a few spammers): seconds of bitesize and crowd-kit
      (median of alternating runs), the speed ratio, and how often their labels agree.
(iv)  Hard crowds (bench/consensus_hard.py): bitesize's methods on synthetic crowds with
      heavy-tailed participation, class imbalance, schools of thought and their
      mixtures (bench/crowds.py), and on cuts of the dev sets reproducing them
      (bench/crowd_cuts.py); targets: auto >= MV - 0.5 pt and within 0.5 pt of the
      best model on every set. --synthetic-only leaves the dev cuts out.
(v)   Calibration (bench/calibration.py): expected calibration error and reliability
      diagrams of auto's posteriors and of the live merge's confidences, on every
      categorical dev set and the hard crowds of (iv) (fewer seeds); target: ECE
      < 0.05 on every set. --synthetic-only leaves the dev sets and cuts out.

--parts picks among dev (i and ii), speed (iii), hard (iv) and calibration (v); parts
dev and speed need crowd-kit (pip install -e '.[bench]'), parts hard and calibration
only the engine's own packages.

Every method gets its own native input already built (bitesize: encoded integer
arrays; crowd-kit: a pandas DataFrame); encoding from strings is timed apart.
A crowd-kit method still running after --limit seconds on a set is stopped there
(SIGALRM) and shown as "skip". Table to stdout, figures to bench/results/consensus.json.
"""
from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # the repository, when it is not installed

import calibration  # noqa: E402  (after the path set-up above)
import consensus_hard  # noqa: E402
import numpy as np  # noqa: E402
from crowd_data import DATA_DIR, categorical_sets, read_categorical, require  # noqa: E402
from reporting import machine, write_report  # noqa: E402

from engine.quality import truth  # noqa: E402

try:  # the bench extra: parts dev and speed need it, part hard does not
    import pandas as pd
    from crowdkit.aggregation import GLAD, MACE, DawidSkene, MajorityVote, Wawa
except ImportError:
    pd = None

RESULTS_PATH = BENCH_DIR / "results" / "consensus.json"
OURS = truth.METHODS
THEIRS = ("MajorityVote", "Wawa", "DawidSkene", "GLAD", "MACE")
SLOW = ("GLAD", "MACE")
SHORT = {"MajorityVote": "MV", "DawidSkene": "DS"}
PARTS = ("dev", "speed", "hard", "calibration")


class TooSlowError(Exception):
    """A crowd-kit method ran past the time limit on one set."""


def load(data_dir: Path, name: str) -> dict:
    rows, gold, answers, encode_s = read_categorical(data_dir, name)
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    frame = frame.drop_duplicates(["task", "worker"], keep="last")  # as truth.encode does
    return {"answers": answers, "frame": frame, "gold": gold, "encode_s": encode_s,
            "codes": answers.gold_codes(gold)}


def timed(run: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = run()
    return result, time.perf_counter() - started


def crowdkit(method: str, frame: pd.DataFrame) -> pd.Series:
    if method == "Wawa":
        # Wawa.predict calls sklearn's check_is_fitted, which refuses non-sklearn
        # objects since scikit-learn 1.6; this is its _apply without that check.
        skills = Wawa().fit(frame).skills_
        return MajorityVote().fit(frame, skills=skills).labels_
    model = {"MajorityVote": MajorityVote, "DawidSkene": DawidSkene, "GLAD": GLAD,
             "MACE": MACE}[method]()
    return model.fit_predict(frame)


def with_limit(seconds: int, run: Callable[[], object]) -> object:
    def stop(signum, frame):
        raise TooSlowError

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        return run()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def score_ours(data: dict, method: str, gold: np.ndarray | None, scored: np.ndarray) -> dict:
    result, seconds = timed(lambda: truth.infer(data["answers"], method, gold))
    right = result.label[scored] == data["codes"][scored]
    return {"accuracy": 100 * float(right.mean()), "seconds": seconds}


def score_theirs(data: dict, method: str, limit: int) -> dict:
    try:
        labels, seconds = timed(lambda: with_limit(limit, lambda: crowdkit(method, data["frame"])))
    except TooSlowError:
        return {"accuracy": None, "seconds": None, "skipped": f"over {limit} s"}
    gold = pd.Series(data["gold"])
    gold = gold[gold.index.isin(data["answers"].tasks)]
    right = labels.reindex(gold.index).astype(str) == gold
    return {"accuracy": 100 * float(right.mean()), "seconds": seconds}


def unsupervised(data: dict, theirs: tuple[str, ...], limit: int) -> dict:
    scored = data["codes"] >= 0
    row = {m: score_ours(data, m, None, scored) for m in OURS}
    for method in theirs:
        row[method] = score_theirs(data, method, limit)
    return row


def semi_supervised(data: dict, share: float = 0.1, seed: int = 0) -> dict:
    """bitesize with a seeded ``share`` of the gold given, scored on the rest."""
    codes = data["codes"]
    known = np.flatnonzero(codes >= 0)
    given = np.random.default_rng(seed).choice(known, int(share * len(known)), replace=False)
    gold = np.full_like(codes, truth.UNKNOWN)
    gold[given] = codes[given]
    scored = (codes >= 0) & (gold < 0)
    row = {m: {"without": score_ours(data, m, None, scored)["accuracy"],
               "with": score_ours(data, m, gold, scored)["accuracy"]} for m in OURS}
    names = [data["answers"].tasks[i] for i in given]
    true_labels = pd.Series({t: data["gold"][t] for t in names})
    labels = DawidSkene().fit(data["frame"], true_labels=true_labels).labels_
    evaluated = [data["answers"].tasks[i] for i in np.flatnonzero(scored)]
    expected = pd.Series({t: data["gold"][t] for t in evaluated})
    ck = 100 * float((labels.reindex(expected.index).astype(str) == expected).mean())
    row["crowd-kit DawidSkene"] = {"with": ck}
    return {"given": int(len(given)), "scored": int(scored.sum()), "methods": row}


def generate(n_tasks: int, per_task: int, n_labels: int, n_workers: int, seed: int = 0):
    """Workers with random diagonal-heavy confusion matrices, 5% uniform spammers
    and 1% who always give one label; ``per_task`` distinct workers per task."""
    rng = np.random.default_rng(seed)
    strength = rng.uniform(1, 10, size=(n_workers, n_labels, 1))
    confusion = rng.gamma(np.full((n_workers, n_labels, n_labels), 0.5) + strength
                          * np.eye(n_labels))
    spammers = rng.choice(n_workers, n_workers // 20 + n_workers // 100, replace=False)
    confusion[spammers[: n_workers // 20]] = 1.0
    confusion[spammers[n_workers // 20:]] = np.eye(n_labels)[rng.integers(n_labels)]
    confusion /= confusion.sum(axis=2, keepdims=True)
    truths = rng.choice(n_labels, n_tasks, p=rng.dirichlet(np.full(n_labels, 5.0)))
    workers = distinct_workers(rng, n_tasks, per_task, n_workers)
    task = np.repeat(np.arange(n_tasks), per_task)
    worker = workers.ravel()
    cumulative = confusion[worker, truths[task]].cumsum(axis=1)
    label = (rng.random(len(task))[:, None] > cumulative).sum(axis=1).clip(max=n_labels - 1)
    return task, worker, label, truths


def distinct_workers(rng, n_tasks: int, per_task: int, n_workers: int) -> np.ndarray:
    workers = rng.integers(n_workers, size=(n_tasks, per_task))
    while True:
        ordered = np.sort(workers, axis=1)
        clash = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if not clash.any():
            return workers
        workers[clash] = rng.integers(n_workers, size=(int(clash.sum()), per_task))


def synthetic(n_tasks: int, rounds: int) -> dict:
    per_task, n_labels, n_workers = 5, 5, 1000
    task, worker, label, truths = generate(n_tasks, per_task, n_labels, n_workers)
    names = [tuple(map(str, range(n))) for n in (n_tasks, n_workers, n_labels)]
    answers = truth.Answers(task, worker, label, *names)
    frame = pd.DataFrame({"task": task, "worker": worker, "label": label})
    ours, theirs = [], []
    for _ in range(rounds):  # alternating, so a noisy neighbour slows both alike
        theirs.append(timed(lambda: DawidSkene().fit_predict(frame)))
        ours.append(timed(lambda: truth.dawid_skene(answers)))
    mine, their = ours[-1][0], theirs[-1][0].sort_index().to_numpy()
    ours_s = statistics.median(s for _, s in ours)
    theirs_s = statistics.median(s for _, s in theirs)
    return {"tasks": n_tasks, "answers_per_task": per_task, "labels": n_labels,
            "workers": n_workers, "rounds": rounds, "bitesize_s": ours_s,
            "crowdkit_s": theirs_s, "speedup": theirs_s / ours_s,
            "agreement": float((mine.label == their).mean()),
            "bitesize_accuracy": float((mine.label == truths).mean()),
            "crowdkit_accuracy": float((their == truths).mean()),
            "mv_accuracy": float((truth.majority_vote(answers).label == truths).mean()),
            "bitesize_iterations": mine.iterations}


def verdicts(sets: dict | None, theirs: tuple[str, ...], synth: dict | None) -> dict:
    """The issue's targets, measured on part (i) and part (iii), of those that ran."""
    targets = dev_verdicts(sets, theirs) if sets else {}
    if synth:
        targets["ds_10x_faster_same_labels"] = {
            "met": synth["speedup"] >= 10 and synth["agreement"] >= 0.999,
            "speedup": synth["speedup"], "agreement": synth["agreement"]}
    return targets


def dev_verdicts(sets: dict, theirs: tuple[str, ...]) -> dict:
    complete = [m for m in theirs if all(row[m]["accuracy"] is not None for row in sets.values())]
    per_set = {}
    for name, row in sets.items():
        best = max((row[m]["accuracy"], m) for m in theirs if row[m]["accuracy"] is not None)
        gap = row["auto"]["accuracy"] - best[0]
        per_set[name] = {"auto": row["auto"]["accuracy"], "best_crowdkit": best[1],
                         "best_accuracy": best[0], "gap": gap, "met": gap >= -0.5}
    means = {m: statistics.mean(row[m]["accuracy"] for row in sets.values())
             for m in (*OURS, *complete)}
    return {"auto_within_half_point_of_best_everywhere": {
                "met": all(v["met"] for v in per_set.values()), "sets": per_set},
            "auto_mean_above_every_crowdkit_mean": {
                "met": all(means["auto"] > means[m] for m in complete), "means": means,
                "compared_with": complete}}


def cell(entry: dict, key: str) -> str:
    if entry.get("skipped"):
        return "skip"
    value = entry[key]
    return f"{value:.2f}" if key == "accuracy" else f"{value:.3f}"


def print_part_i(sets: dict, theirs: tuple[str, ...], meta: dict) -> None:
    methods = (*OURS, *theirs)
    heads = [*OURS, *("ck:" + SHORT.get(m, m) for m in theirs)]
    for key, title in (("accuracy", "accuracy % on gold tasks"), ("seconds", "seconds")):
        print(f"\n(i) unsupervised, {title} (bitesize | crowd-kit)")
        print(f"{'set':16}{'tasks':>7}{'answers':>8} " + "".join(f"{h:>10}" for h in heads))
        for name, row in sets.items():
            print(f"{name:16}{meta[name][0]:>7}{meta[name][1]:>8} "
                  + "".join(f"{cell(row[m], key):>10}" for m in methods))
        if key == "accuracy":
            means = [statistics.mean(r[m]["accuracy"] for r in sets.values())
                     if all(r[m]["accuracy"] is not None for r in sets.values()) else None
                     for m in methods]
            print(f"{'mean':31} " + "".join(f"{'-' if v is None else f'{v:.2f}':>10}"
                                           for v in means))


def print_part_ii(semi: dict) -> None:
    print("\n(ii) bitesize given 10% of the gold, accuracy % on the other 90% "
          "(without -> with gold)")
    print(f"{'set':16}{'given':>6} " + "".join(f"{m:>15}" for m in OURS) + f"{'ck:DS+gold':>12}")
    for name, part in semi.items():
        rows = part["methods"]
        print(f"{name:16}{part['given']:>6} "
              + "".join(f"{rows[m]['without']:>7.2f}->{rows[m]['with']:<6.2f}" for m in OURS)
              + f"{rows['crowd-kit DawidSkene']['with']:>12.2f}")


def print_synthetic(synth: dict) -> None:
    print(f"\n(iii) Dawid-Skene on {synth['tasks']:,} generated tasks x "
          f"{synth['answers_per_task']} answers x {synth['labels']} labels, "
          f"{synth['workers']} workers, median of {synth['rounds']} alternating runs")
    for who, key in (("bitesize", "bitesize"), ("crowd-kit", "crowdkit")):
        print(f"  {who:9} {synth[key + '_s']:7.3f} s  "
              f"accuracy {100 * synth[key + '_accuracy']:.2f}%")
    print(f"  bitesize took {synth['bitesize_iterations']} EM iterations")
    print(f"  speed-up {synth['speedup']:.1f}x, same label on {100 * synth['agreement']:.3f}% "
          f"of tasks (majority vote: {100 * synth['mv_accuracy']:.2f}%)")


def print_verdicts(targets: dict) -> None:
    print("\ntargets (part i and iii):")
    if "auto_within_half_point_of_best_everywhere" in targets:
        print_dev_verdicts(targets)
    if "ds_10x_faster_same_labels" not in targets:
        return
    speed = targets["ds_10x_faster_same_labels"]
    print(f"  DS speed-up {speed['speedup']:.1f}x (>= 10), agreement "
          f"{100 * speed['agreement']:.3f}%: {'ok' if speed['met'] else 'MISSED'}")


def print_dev_verdicts(targets: dict) -> None:
    within = targets["auto_within_half_point_of_best_everywhere"]
    for name, v in within["sets"].items():
        print(f"  {name:16} auto {v['auto']:.2f} vs best crowd-kit {v['best_crowdkit']} "
              f"{v['best_accuracy']:.2f}: {v['gap']:+.2f} {'ok' if v['met'] else 'MISSED'}")
    mean = targets["auto_mean_above_every_crowdkit_mean"]
    listed = ", ".join(f"{m} {mean['means'][m]:.2f}" for m in mean["compared_with"])
    print(f"  mean: auto {mean['means']['auto']:.2f} vs {listed}: "
          f"{'ok' if mean['met'] else 'MISSED'}")


def versioned() -> tuple[str, ...]:
    """The packages whose versions the report records, of those installed (part
    hard runs without the bench extra)."""
    found = []
    for package in ("numpy", "scipy", "pandas", "crowd-kit", "scikit-learn"):
        try:
            version(package)
        except PackageNotFoundError:
            continue
        found.append(package)
    return tuple(found)


def run_sets(data_dir: Path, names: list[str], theirs: tuple[str, ...], limit: int) -> tuple:
    """Parts (i) and (ii) on every set: results, sizes and encoding seconds."""
    sets, semi, meta, encode = {}, {}, {}, {}
    for name in names:
        data = load(data_dir, name)
        meta[name] = (len(data["answers"].tasks), len(data["answers"].task))
        encode[name] = data["encode_s"]
        sets[name] = unsupervised(data, theirs, limit)
        semi[name] = semi_supervised(data)
        print(f"  {name}: done", flush=True)
    return sets, semi, meta, encode


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, a few seconds")
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--limit", type=int, default=300, help="seconds per crowd-kit method")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of {','.join(PARTS)}")
    parser.add_argument("--synthetic-only", action="store_true",
                        help="parts hard and calibration without dev data (none needed)")
    args = parser.parse_args(argv)
    args.parts = [name.strip() for name in args.parts.split(",") if name.strip()]
    unknown = [name for name in args.parts if name not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; use {', '.join(PARTS)}")
    if pd is None and {"dev", "speed"} & set(args.parts):
        parser.error("parts dev and speed need crowd-kit: pip install -e '.[bench]' "
                     "(or run --parts hard,calibration)")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    theirs = tuple(m for m in THEIRS if not (args.quick and m in SLOW))
    report: dict = {"machine": machine(versioned()), "quick": args.quick, "parts": args.parts}
    sets = synth = None
    if "dev" in args.parts:
        names = categorical_sets(args.data)
        require(names, args.data, "categorical sets (NAME/meta.json)")
        if args.quick:
            names = [n for n in names if n in ("word_sense", "temporal")] or names[:2]
        sets, semi, meta, encode = run_sets(args.data, names, theirs, args.limit)
        report.update(encode_seconds=encode, unsupervised=sets, semi_supervised=semi)
        print_part_i(sets, theirs, meta)
        print_part_ii(semi)
    if "speed" in args.parts:
        synth = report["synthetic"] = synthetic(10_000 if args.quick else 100_000,
                                                3 if args.quick else 5)
        print_synthetic(synth)
    targets = verdicts(sets, theirs, synth)
    if targets:
        print_verdicts(targets)
    if "hard" in args.parts:
        report["hard"] = consensus_hard.run(None if args.synthetic_only else args.data,
                                            args.quick)
        targets.update(report["hard"]["targets"])
        consensus_hard.print_part(report["hard"])
    if "calibration" in args.parts:
        report["calibration"] = calibration.run(None if args.synthetic_only else args.data,
                                                args.quick)
        targets.update(report["calibration"]["targets"])
        calibration.print_part(report["calibration"])
    report["targets"] = targets
    write_report(args.output, report)
    print(f"\nwritten to {args.output}")
    return report


if __name__ == "__main__":
    main()
