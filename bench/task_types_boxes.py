"""Boxes part of the task-type benchmark: locate's merge on real crowd boxes, and
the cost of cutting a big photo into tiles.

    python bench/task_types_boxes.py [--quick]

(a) Branson, Van Horn & Perona's pedestrians (469 images, 7 workers each, one
    expert's boxes as gold): precision, recall and F1 at IoU 0.5, micro-averaged
    over all images, of bitesize's merge (engine.quality.offline.merge_typed: an
    unweighted pass, each worker's agreement, a weighted pass) with locate's
    default config, next to one random worker per image (mean of 5 seeds) and
    Zooniverse's panoptes-aggregation shape reducer (DBSCAN), when a Python
    with it installed is found (this one, $BITESIZE_PANOPTES_PYTHON, or
    /tmp/venv-panoptes/bin/python). Each worker's boxes are read as `bitesize
    consensus` reads an answer cell (locate.answer_from_text): a box under 1 px
    wide or tall among good ones is left out, an answer of nothing else is
    skipped; in answers and gold alike, their count is reported.
(b) A generated 6000 x 4000 JPEG (q90) into 512-px tiles with the default
    overlap: locate.split storing tiles in an engine MediaStore, next to Pillow
    alone decoding, cropping the same tiles and saving each as a JPEG file of
    the same quality; medians of alternating runs, each into a fresh folder.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from crowd_data import DATA_DIR, require
from marshmallow import ValidationError
from PIL import Image

from engine.intake.media import MediaStore
from engine.quality import offline
from task_types import geometry, tiling
from task_types.locate import locate

BENCH_DIR = Path(__file__).resolve().parent
SEEDS = 5
PANOPTES_SCRIPT = BENCH_DIR / "panoptes_boxes.py"
PANOPTES_PYTHONS = (os.environ.get("BITESIZE_PANOPTES_PYTHON", ""),
                    "/tmp/venv-panoptes/bin/python")
# Their shape reducer with the IoU metric for rectangles (eps = 1 - IoU, so 0.5 is
# IoU >= 0.5, as scored) at their default min_samples (3) and at a majority of
# the 7 workers (4), each cluster's box estimated as its most representative one
# (estimate_average; the exact IoU average takes ~2 s per image); and their
# defaults (euclidean distance on x, y, width, height, eps 5 px, min_samples 3).
IOU = {"metric_type": "IoU", "eps": 0.5, "estimate_average": True}
PANOPTES_VARIANTS = {
    "panoptes IoU eps=0.5 min_samples=3": {**IOU, "min_samples": 3},
    "panoptes IoU eps=0.5 min_samples=4": {**IOU, "min_samples": 4},
    "panoptes defaults (euclidean eps=5)": {},
}
PHOTO = (6000, 4000)
TILE = 512
PHOTO_QUALITY = 90


# -- (a) boxes ------------------------------------------------------------------


def read_boxes(path: Path, config: dict) -> tuple[dict[str, dict[str, list]], int]:
    """image -> worker -> boxes (box_idx -1: the worker drew none), each worker's
    boxes read by locate as one answer cell, and how many boxes it left out."""
    drawn: dict[str, dict[str, list]] = {}
    with path.open(newline="") as stream:
        for row in csv.DictReader(stream):
            boxes = drawn.setdefault(row["image"], {}).setdefault(row["worker"], [])
            if row["box_idx"] != "-1":
                boxes.append([float(row[key]) for key in ("x1", "y1", "x2", "y2")])
    schema = locate.answer_schema(config)
    marks: dict[str, dict[str, list]] = {}
    dropped = 0
    for image, by_worker in drawn.items():
        for worker, boxes in by_worker.items():
            read = locate.answer_from_text(json.dumps(boxes), config)
            try:
                marks.setdefault(image, {})[worker] = schema.load(read)["boxes"]
            except ValidationError:  # nothing but degenerate boxes: the row is skipped
                dropped += len(boxes)
                continue
            dropped += len(getattr(read, "left_out", ()))
    return marks, dropped


def gold_boxes(path: Path, config: dict) -> tuple[dict[str, list], int]:
    marks, dropped = read_boxes(path, config)
    return {image: [box for boxes in by_worker.values() for box in boxes]
            for image, by_worker in marks.items()}, dropped


def scored(results: dict[str, list], gold: dict[str, list]) -> geometry.Detection:
    """Micro-averaged counts of each image's boxes against its gold."""
    total = geometry.Detection()
    for image, expected in gold.items():
        total += locate.detection({"boxes": results.get(image, [])}, expected)
    return total


def merge_bitesize(answers: dict[str, dict[str, list]], config: dict) -> dict[str, list]:
    rows = [(image, worker, {"boxes": boxes})
            for image, by_worker in answers.items() for worker, boxes in by_worker.items()]
    merged = offline.merge_typed(locate, config, rows)
    return {image: result.value or [] for image, result in merged.results.items()}


def random_worker(answers: dict[str, dict[str, list]], seed: int) -> dict[str, list]:
    rng = random.Random(seed)
    return {image: by_worker[rng.choice(sorted(by_worker))]
            for image, by_worker in answers.items()}


def panoptes_python() -> str | None:
    """A Python that can import panoptes_aggregation: this one first."""
    for python in (sys.executable, *PANOPTES_PYTHONS):
        if python and Path(python).exists() and subprocess.run(
                [python, "-c", "import panoptes_aggregation"], capture_output=True).returncode == 0:
            return python
    return None


def merge_panoptes(answers: dict[str, dict[str, list]]) -> tuple[dict[str, dict], float, str]:
    """Each variant's boxes per image, the seconds all variants took (including
    the interpreter's start), and which Python ran them ("" when none could)."""
    python = panoptes_python()
    if python is None:
        return {}, 0.0, ""
    job = {"images": {image: sorted(by_worker.items()) for image, by_worker in answers.items()},
           "variants": PANOPTES_VARIANTS}
    started = time.perf_counter()
    done = subprocess.run([python, str(PANOPTES_SCRIPT)], input=json.dumps(job),
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout), time.perf_counter() - started, python


def detection_rows(method: str, detection: geometry.Detection) -> list[list]:
    return [["boxes", method, "precision", detection.precision],
            ["boxes", method, "recall", detection.recall],
            ["boxes", method, "F1", detection.f1]]


def boxes_part(data_dir: Path) -> dict:
    folder = data_dir / "pedestrian_boxes"
    require(folder.is_dir(), data_dir, "pedestrian_boxes/")
    config = locate.offline_config()
    answers, dropped = read_boxes(folder / "answers.csv", config)
    gold, gold_dropped = gold_boxes(folder / "gold.csv", config)

    started = time.perf_counter()
    ours = scored(merge_bitesize(answers, config), gold)
    ours_seconds = time.perf_counter() - started
    singles = [scored(random_worker(answers, seed), gold) for seed in range(SEEDS)]
    single = {key: statistics.mean(getattr(d, key) for d in singles)
              for key in ("precision", "recall", "f1")}
    theirs, their_seconds, python = merge_panoptes(answers)
    their_scores = {name: scored(boxes, gold) for name, boxes in theirs.items()}

    rows = detection_rows("bitesize locate merge", ours)
    rows += [["boxes", "bitesize locate merge", "seconds", ours_seconds]]
    rows += [["boxes", f"one random worker (mean of {SEEDS} seeds)", metric, single[key]]
             for key, metric in (("precision", "precision"), ("recall", "recall"), ("f1", "F1"))]
    for name in PANOPTES_VARIANTS:
        if name in their_scores:
            rows += detection_rows(name, their_scores[name])
        else:
            rows.append(["boxes", name, "F1", "n/a"])
    best_theirs = max((d.f1 for d in their_scores.values()), default=None)
    beats = ours.f1 > single["f1"] and (best_theirs is None or ours.f1 > best_theirs)
    detail = (f"F1 {ours.f1:.4f} vs one worker {single['f1']:.4f}, panoptes best "
              + (f"{best_theirs:.4f}" if best_theirs is not None else "n/a (not installed)"))
    figures = {
        "images": len(gold), "workers": len({w for by in answers.values() for w in by}),
        "crowd_boxes": sum(len(b) for by in answers.values() for b in by.values()),
        "expert_boxes": sum(len(b) for b in gold.values()),
        "dropped_degenerate": {"answers": dropped, "gold": gold_dropped},
        "config": {key: config[key] for key in ("iou", "quorum")},
        "bitesize": _figures(ours), "one_worker": single,
        "panoptes": {name: _figures(d) for name, d in their_scores.items()},
        "panoptes_python": python or None, "panoptes_seconds": their_seconds,
    }
    return {"rows": rows, "figures": figures, "target": {"met": beats, "detail": detail}}


def _figures(detection: geometry.Detection) -> dict:
    return {"matched": detection.matched, "found": detection.found,
            "expected": detection.expected, "precision": detection.precision,
            "recall": detection.recall, "f1": detection.f1}


# -- (b) tiling -----------------------------------------------------------------


def photo(size: tuple[int, int], seed: int = 0) -> bytes:
    """A photo-like JPEG: smooth random colour fields with fine grain, so the
    encoder works as on a real photo (not on flat colour, not on pure noise)."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (size[1] // 100, size[0] // 100, 3),
                                          dtype=np.uint8))
    smooth = np.asarray(coarse.resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.normal(0, 6, (size[1], size[0], 1)).astype(np.int16)
    out = io.BytesIO()
    Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)).save(
        out, "JPEG", quality=PHOTO_QUALITY)
    return out.getvalue()


def split_with_locate(source: Path, folder: Path, config: dict) -> tuple[int, float]:
    media = MediaStore(folder)
    ref = "/media/" + media.put(source.read_bytes()).name
    started = time.perf_counter()
    tasks = locate.split({"image": ref}, config, media)
    return len(tasks), time.perf_counter() - started


def split_with_pillow(source: Path, folder: Path, tiles: list[tiling.Tile]) -> tuple[int, float]:
    folder.mkdir()
    started = time.perf_counter()
    with Image.open(io.BytesIO(source.read_bytes())) as image:
        image.load()
        for n, (x, y, w, h) in enumerate(tiles):
            image.crop((x, y, x + w, y + h)).save(folder / f"{n}.jpg", "JPEG",
                                                  quality=tiling.QUALITY)
    return len(tiles), time.perf_counter() - started


def tiling_part(quick: bool) -> dict:
    config = locate.load_config({"question": "Mark every penguin", "tile_size": TILE})
    runs = 3 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "photo.jpg"
        source.write_bytes(photo(PHOTO))
        tiles = tiling.tile_grid(*PHOTO, TILE, config["overlap"])
        ours, pillow = [], []
        for n in range(runs):  # alternating, so drift hits both alike
            count, seconds = split_with_locate(source, Path(tmp) / f"ours{n}", config)
            assert count == len(tiles)
            ours.append(seconds)
            pillow.append(split_with_pillow(source, Path(tmp) / f"pillow{n}", tiles)[1])
        source_bytes = source.stat().st_size
    ratio = statistics.median(ours) / statistics.median(pillow)
    rows = [["tiling", "bitesize locate.split", "seconds", statistics.median(ours)],
            ["tiling", "Pillow alone", "seconds", statistics.median(pillow)],
            ["tiling", "bitesize / Pillow", "ratio", ratio]]
    figures = {"photo": list(PHOTO), "photo_bytes": source_bytes, "tile": TILE,
               "overlap": config["overlap"], "tiles": len(tiles), "runs": runs,
               "quality": tiling.QUALITY, "locate_seconds": ours, "pillow_seconds": pillow,
               "ratio": ratio}
    detail = (f"{len(tiles)} tiles in {statistics.median(ours):.3f} s vs Pillow "
              f"{statistics.median(pillow):.3f} s: {ratio:.2f}x (target <= 1.2x)")
    return {"rows": rows, "figures": figures, "target": {"met": ratio <= 1.2, "detail": detail}}


# -- both -----------------------------------------------------------------------


def run(data_dir: Path, quick: bool) -> dict:
    """Both parts; ``quick`` only shortens the timing (the box set takes seconds)."""
    boxes, tiles = boxes_part(data_dir), tiling_part(quick)
    return {"rows": boxes["rows"] + tiles["rows"],
            "figures": {"boxes": boxes["figures"], "tiling": tiles["figures"]},
            "targets": {"boxes_f1": boxes["target"], "tiling": tiles["target"]}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer timing runs")
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    report = run(args.data, args.quick)
    for part, method, metric, value in report["rows"]:
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{part:<7} {method:<42} {metric:<10} {shown:>9}")
    for name, target in report["targets"].items():
        print(f"target {name}: {'met' if target['met'] else 'NOT met'}: {target['detail']}")
    return report


if __name__ == "__main__":
    main()
