"""Zooniverse's panoptes-aggregation rectangle reducer on boxes given as JSON;
run by bench/task_types_boxes.py, in whichever Python has the package.

    stdin:  {"images": {image: [[worker, [[x1, y1, x2, y2], ...]], ...]},
             "variants": {name: {reducer keyword arguments}}}
    stdout: {name: {image: [[x1, y1, x2, y2], ...]}}

It needs only the standard library and panoptes_aggregation, whose pinned
dependencies (numpy<2.3, pandas<3, scikit-learn<1.7) clash with bitesize's
venv, so it usually runs in a venv of its own.
"""
from __future__ import annotations

import json
import sys

from panoptes_aggregation.reducers.shape_reducer_dbscan import shape_reducer_dbscan

TOOL = "T0_tool0"


def extract(boxes: list[list[float]]) -> dict:
    """One volunteer's boxes as Panoptes' shape extractor writes a rectangle tool."""
    if not boxes:
        return {}
    return {"frame0": {f"{TOOL}_x": [b[0] for b in boxes], f"{TOOL}_y": [b[1] for b in boxes],
                       f"{TOOL}_width": [b[2] - b[0] for b in boxes],
                       f"{TOOL}_height": [b[3] - b[1] for b in boxes]}}


def reduce_image(answers: list, options: dict) -> list[list[float]]:
    extracts = [extract(boxes) for _, boxes in answers]
    users = [worker for worker, _ in answers]
    frame = shape_reducer_dbscan(extracts, shape="rectangle", user_id=users,
                                 no_version=True, **options).get("frame0", {})
    columns = [frame.get(f"{TOOL}_clusters_{key}", []) for key in ("x", "y", "width", "height")]
    return [[x, y, x + w, y + h] for x, y, w, h in zip(*columns, strict=True)]


def main() -> None:
    job = json.load(sys.stdin)
    out = {name: {image: reduce_image(answers, options)
                  for image, answers in job["images"].items()}
           for name, options in job["variants"].items()}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
