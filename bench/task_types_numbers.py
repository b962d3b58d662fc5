"""Numbers benchmark: bitesize's `number` merge against the plain mean and median.

    python bench/task_types_numbers.py            # every affect_* set in shared/data/dev
    python bench/task_types_numbers.py --quick    # the same: the full run takes about a second

On every ``affect_*`` set (Snow et al. 2008: ten crowd ratings per headline,
gold = the experts' score), the mean absolute error against gold of:

- ``no_config``: what `bitesize consensus --type number` runs without a config
  (engine.quality.offline.fitted_config, then merge_typed): the scale read off
  the answers (number.detected_scale: 0..100, valence -100..100) and the mean;
- ``bitesize``: merge_typed (an unweighted merge, each worker's agreement with
  it, a merge weighted by agreement) under the config a charity would give a
  rating project: the scale's bounds and a trimmed mean cutting 10% of the
  weight at each end (RATING, chosen on this dev data);
- ``scale_only``: merge_typed under the scale's bounds and the type's other
  defaults (the weighted median);
- ``unweighted``: the type's aggregate under RATING, without the weights;
- ``mean`` and ``median``: of each task's answers, nothing set aside.

Per set and overall (the mean over sets). The target: the no-config merge no
worse than the plain mean on every set, and bitesize's overall MAE no worse
than the better of mean and median.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from crowd_data import DATA_DIR, require

from engine.quality import offline
from task_types.number import number

BENCH_DIR = Path(__file__).resolve().parent
METHODS = ("no_config", "bitesize", "scale_only", "unweighted", "mean", "median")
SAME = 1e-9  # MAE: equal up to float rounding (the no-config merge of ratings is the mean)
# A rating project's config. trim 0.1 and tolerance 0.2 (a fifth of the scale
# counts as agreeing, for weighting) were chosen on these dev sets: subjective
# ratings differ widely between honest raters.
RATING = {"question": "How strongly does this headline express the emotion?",
          "method": "trimmed_mean", "trim": 0.1, "tolerance": 0.2}
SIGNED = "affect_valence"  # rates -100..100 (and its samples, affect_valence_*); the others 0..100


def numeric_sets(data_dir: Path) -> list[Path]:
    return sorted(path for path in data_dir.glob("affect_*") if (path / "answers.csv").exists())


def bounds(name: str) -> tuple[int, int]:
    return (-100, 100) if name.startswith(SIGNED) else (0, 100)


def rating_config(name: str, **config) -> dict:
    low, high = bounds(name)
    return number.load_config({"question": RATING["question"], **config, "min": low,
                               "max": high})


def merged(config: dict, rows: list[tuple[str, str, dict]]) -> dict[str, float]:
    return {task: result.value
            for task, result in offline.merge_typed(number, config, rows).results.items()}


def estimates(name: str, rows: list[tuple[str, str, dict]]) -> dict[str, dict[str, float]]:
    """method -> task -> merged value."""
    config = rating_config(name, **RATING)
    by_task: dict[str, list[float]] = {}
    for task, _worker, answer in rows:
        by_task.setdefault(task, []).append(answer["value"])
    return {
        "no_config": merged(offline.fitted_config(number, rows), rows),
        "bitesize": merged(config, rows),
        "scale_only": merged(rating_config(name), rows),
        "unweighted": {task: number.aggregate([{"value": v} for v in values], None, config).value
                       for task, values in by_task.items()},
        "mean": {task: statistics.fmean(values) for task, values in by_task.items()},
        "median": {task: statistics.median(values) for task, values in by_task.items()},
    }


def mean_absolute_error(values: dict[str, float], gold: dict[str, float]) -> float:
    return statistics.fmean(abs(values[task] - truth) for task, truth in gold.items()
                            if task in values)


def measure_set(path: Path) -> dict[str, float]:
    rows = offline.read_typed(path / "answers.csv", number, number.offline_config())
    gold = {task: float(text) for task, text in offline.read_gold(path / "gold.csv").items()}
    found = estimates(path.name, rows)
    return {method: mean_absolute_error(found[method], gold) for method in METHODS}


def verdict(per_set: dict[str, dict[str, float]], overall: dict[str, float]) -> dict:
    """No-config merge <= mean on every set; bitesize overall <= the better plain one."""
    worse = [name for name, row in per_set.items() if row["no_config"] > row["mean"] + SAME]
    best = min(overall["mean"], overall["median"])
    lines = [f"{name}: no config {row['no_config']:.2f}, bitesize {row['bitesize']:.2f} vs "
             f"mean {row['mean']:.2f}, median {row['median']:.2f}"
             for name, row in per_set.items()]
    return {"met": not worse and overall["bitesize"] <= best,
            "detail": (f"no-config merge worse than the mean on {len(worse)} of {len(per_set)} "
                       f"sets{': ' + ', '.join(worse) if worse else ''}; overall MAE no config "
                       f"{overall['no_config']:.3f}, bitesize {overall['bitesize']:.3f} vs mean "
                       f"{overall['mean']:.3f}, median {overall['median']:.3f}; "
                       + "; ".join(lines))}


def run(data_dir: Path = DATA_DIR, quick: bool = False) -> dict:
    """Rows [set, method, "mae", value], figures and the target. ``quick`` changes
    nothing: seven sets of 1,000 answers merge in about a second."""
    per_set = {path.name: measure_set(path) for path in numeric_sets(data_dir)}
    require(per_set, data_dir, "affect_* sets")
    overall = {m: statistics.fmean(row[m] for row in per_set.values()) for m in METHODS}
    rows = [[f"numbers/{name}", method, "mae", row[method]] for name, row in per_set.items()
            for method in METHODS]
    rows += [["numbers/overall", method, "mae", overall[method]] for method in METHODS]
    return {"rows": rows,
            "figures": {"mae": per_set, "overall_mae": overall, "config": RATING,
                        "bounds": {name: bounds(name) for name in per_set}},
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
