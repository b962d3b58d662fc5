"""Task-type benchmark: bitesize's aggregation on real crowd data, next to the
reference methods, and the cost of cutting pictures, in one run.

    python bench/tasktypes.py            # everything (a few minutes)
    python bench/tasktypes.py --quick    # subsets, a smoke run

(Not bench/task_types.py: Python puts a script's folder first on sys.path, so a
file of that name would hide the task_types package from every script in bench/.)

Parts, each in its own module next to this one:
- text (bench/task_types_text.py): word error rate of the merged transcription on
  CrowdSpeech dev-clean against the reference, and of synthetic free-wording
  crowds (bench/free_wording.py), next to crowd-kit's ROVER; and
  cutting a generated 40-line page into lines next to Pillow alone.
- boxes (bench/task_types_boxes.py): precision, recall and F1 at IoU 0.5 on
  Branson et al.'s pedestrians against the expert boxes, next to one random
  worker and Zooniverse's panoptes-aggregation (if installed); and tiling a
  6000x4000 JPEG into 512-px tiles next to Pillow alone.
- numbers (bench/task_types_numbers.py): mean absolute error on Snow et al.'s
  affect ratings against the expert score, next to the plain mean and median.

Table to stdout, figures to bench/results/task_types.json.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # the repository, when it is not installed

from crowd_data import DATA_DIR  # noqa: E402  (after the path set-up above)
from reporting import machine, write_report  # noqa: E402

RESULTS_PATH = BENCH_DIR / "results" / "task_types.json"
# part -> its module, next to this script (imported only when asked for)
PARTS = {"text": "task_types_text", "boxes": "task_types_boxes", "numbers": "task_types_numbers"}


def run_parts(names: list[str], data_dir: Path, quick: bool) -> dict:
    """Each part's rows, figures and targets, and how long it took."""
    report = {}
    for name in names:
        started = time.perf_counter()
        part = importlib.import_module(PARTS[name]).run(data_dir, quick)
        part["seconds"] = round(time.perf_counter() - started, 2)
        report[name] = part
        print(f"  {name}: done in {part['seconds']:.1f} s", file=sys.stderr, flush=True)
    return report


def format_table(rows: list[list]) -> str:
    header = ["part", "method", "metric", "value"]
    cells = [header] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(w) if i < 3 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.3f}"
    return str(value)


def targets_table(report: dict) -> str:
    lines = ["target        met  detail", "------------  ---  ------"]
    for part in report.values():
        for name, target in part["targets"].items():
            lines.append(f"{name:<12}  {'yes' if target['met'] else 'NO ':<3}  {target['detail']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="subsets: a smoke run")
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of {','.join(PARTS)}")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.parts.split(",") if name.strip()]
    unknown = [name for name in names if name not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; use {', '.join(PARTS)}")
    parts = run_parts(names, args.data, args.quick)
    print(format_table([row for part in parts.values() for row in part["rows"]]))
    print()
    print(targets_table(parts))
    report = {"machine": machine(), "quick": args.quick, "parts": parts}
    write_report(args.output, report)
    print(f"\nwritten to {args.output}")
    return report


if __name__ == "__main__":
    main()
