"""Numbers benchmark: bitesize's `number` merge against the plain mean and median.

    python bench/task_types_numbers.py            # every affect_* set in shared/data/dev
    python bench/task_types_numbers.py --quick    # the same: the full run takes about a second

On every ``affect_*`` set (Snow et al. 2008: ten crowd ratings per headline,
gold = the experts' score), the mean absolute error against gold of:

- ``bitesize``: engine.quality.offline.merge_typed, what `bitesize consensus --type
  number` runs (an unweighted merge, each worker's agreement with it, a merge
  weighted by agreement), under the config a charity would give a rating
  project: the scale's bounds (0..100, valence -100..100) and a trimmed mean
  cutting 10% of the weight at each end (RATING, chosen on this dev data);
- ``unweighted``: the type's aggregate under RATING, without the weights;
- ``defaults``: merge_typed under the type's offline config (weighted median,
  no bounds), as `bitesize consensus --type number` runs without a config;
- ``mean`` and ``median``: of each task's answers, nothing set aside.

Per set and overall (the mean over sets). The target: bitesize's overall MAE
no worse than the better of mean and median.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from crowd_data import DATA_DIR, require

from engine.quality import offline
from task_types.number import number

BENCH_DIR = Path(__file__).resolve().parent
METHODS = ("bitesize", "unweighted", "defaults", "mean", "median")
# A rating project's config. trim 0.1 and tolerance 0.2 (a fifth of the scale
# counts as agreeing, for weighting) were chosen on these dev sets: subjective
# ratings differ widely between honest raters.
RATING = {"question": "How strongly does this headline express the emotion?",
          "method": "trimmed_mean", "trim": 0.1, "tolerance": 0.2}
BOUNDS = {"affect_valence": (-100, 100)}  # the others rate 0..100


def numeric_sets(data_dir: Path) -> list[Path]:
    return sorted(path for path in data_dir.glob("affect_*") if (path / "answers.csv").exists())


def rating_config(name: str) -> dict:
    low, high = BOUNDS.get(name, (0, 100))
    return number.load_config({**RATING, "min": low, "max": high})


def merged(config: dict, rows: list[tuple[str, str, dict]]) -> dict[str, float]:
    return {task: result.value
            for task, result in offline.merge_typed(number, config, rows).results.items()}


def estimates(config: dict, rows: list[tuple[str, str, dict]]) -> dict[str, dict[str, float]]:
    """method -> task -> merged value."""
    by_task: dict[str, list[float]] = {}
    for task, _worker, answer in rows:
        by_task.setdefault(task, []).append(answer["value"])
    return {
        "bitesize": merged(config, rows),
        "unweighted": {task: number.aggregate([{"value": v} for v in values], None, config).value
                       for task, values in by_task.items()},
        "defaults": merged(number.offline_config(), rows),
        "mean": {task: statistics.fmean(values) for task, values in by_task.items()},
        "median": {task: statistics.median(values) for task, values in by_task.items()},
    }


def mean_absolute_error(values: dict[str, float], gold: dict[str, float]) -> float:
    return statistics.fmean(abs(values[task] - truth) for task, truth in gold.items()
                            if task in values)


def measure_set(path: Path, config: dict) -> dict[str, float]:
    rows = offline.read_typed(path / "answers.csv", number, number.offline_config())
    gold = {task: float(text) for task, text in offline.read_gold(path / "gold.csv").items()}
    found = estimates(config, rows)
    return {method: mean_absolute_error(found[method], gold) for method in METHODS}


def verdict(per_set: dict[str, dict[str, float]], overall: dict[str, float]) -> dict:
    best = min(overall["mean"], overall["median"])
    lines = [f"{name}: bitesize {row['bitesize']:.2f} vs best plain "
             f"{min(row['mean'], row['median']):.2f}" for name, row in per_set.items()]
    return {"met": overall["bitesize"] <= best,
            "detail": (f"overall MAE bitesize {overall['bitesize']:.3f} vs mean "
                       f"{overall['mean']:.3f}, median {overall['median']:.3f}; "
                       + "; ".join(lines))}


def run(data_dir: Path = DATA_DIR, quick: bool = False) -> dict:
    """Rows [set, method, "mae", value], figures and the target. ``quick`` changes
    nothing: seven sets of 1,000 answers merge in about a second."""
    per_set = {path.name: measure_set(path, rating_config(path.name))
               for path in numeric_sets(data_dir)}
    require(per_set, data_dir, "affect_* sets")
    overall = {m: statistics.fmean(row[m] for row in per_set.values()) for m in METHODS}
    rows = [[f"numbers/{name}", method, "mae", row[method]] for name, row in per_set.items()
            for method in METHODS]
    rows += [["numbers/overall", method, "mae", overall[method]] for method in METHODS]
    return {"rows": rows,
            "figures": {"mae": per_set, "overall_mae": overall, "config": RATING,
                        "bounds": {name: BOUNDS.get(name, (0, 100)) for name in per_set}},
            "targets": {"numbers_mae": verdict(per_set, overall)}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="accepted; the run is short anyway")
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    report = run(args.data, args.quick)
    print(f"{'set':18}" + "".join(f"{m:>12}" for m in METHODS) + "   (MAE against gold)")
    for name, row in {**report["figures"]["mae"], "overall": report["figures"]["overall_mae"]
                      }.items():
        print(f"{name:18}" + "".join(f"{row[m]:>12.3f}" for m in METHODS))
    target = report["targets"]["numbers_mae"]
    print(f"\ntarget numbers_mae: {'ok' if target['met'] else 'MISSED'}: {target['detail']}")


if __name__ == "__main__":
    main()
