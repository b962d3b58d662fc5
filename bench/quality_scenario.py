"""The quality check's scenario (bench/quality_check.py): its sizes, and the project
with a known truth for every item, as plain data.

It sits under the check's other parts (the actors, the verdict), which all
read the same sizes, labels and truth.
"""
from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from typing import Any

LABELS = ("deer", "fox", "empty")
PHOTO_TEXT = "camera trap photo "  # + the item's id: what a volunteer is shown
SCRIPT_LABEL = LABELS[0]  # both scripts give the same label: together they would carry votes
QUARANTINE_BEFORE = 10  # a script must be quarantined before it has given this many answers


@dataclass(frozen=True)
class Sizes:
    tasks: int  # items without gold, each one task
    gold: int  # gold items
    honest: int
    scripts: int = 2
    honest_accuracy: float = 0.85
    pace: tuple[float, float] = (1.1, 1.5)  # seconds from handout to answer, honest
    min_answers: int = 3
    max_answers: int = 5
    gold_start: float = 0.25
    poll_seconds: float = 0.25  # the admin's inbox
    deadline_seconds: float = 180  # the volunteers' part, at most
    seed: int = 13


QUICK = Sizes(tasks=30, gold=6, honest=8, deadline_seconds=120)
FULL = Sizes(tasks=150, gold=15, honest=8, deadline_seconds=600)


@dataclass(frozen=True)
class Truth:
    """What the item shows, by item id (which its text shows, see shown_ref); gold ids apart."""

    labels: dict[str, str]
    gold: frozenset[str]


def make_truth(sizes: Sizes) -> Truth:
    rng = random.Random(sizes.seed)
    labels = {f"item-{n:04d}": rng.choice(LABELS) for n in range(sizes.tasks)}
    gold = {f"gold-{n:02d}": rng.choice(LABELS) for n in range(sizes.gold)}
    return Truth({**labels, **gold}, frozenset(gold))


def project_body(sizes: Sizes) -> dict[str, Any]:
    return {"name": "Quality check: camera traps", "task_type": "classify",
            "config": {"question": "Which animal is in this photo?", "labels": list(LABELS)},
            "min_answers": sizes.min_answers, "max_answers": sizes.max_answers,
            "gold_start": sizes.gold_start,
            "quality": {"quarantine": True}}  # explicit: not the default's business


def gold_csv(truth: Truth) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "id", "gold"])
    for ref in sorted(truth.gold):
        writer.writerow([f"{PHOTO_TEXT}{ref}", ref, truth.labels[ref]])
    return out.getvalue()
