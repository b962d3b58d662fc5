"""Reliability weights as the types that merge by weighted vote or weighted
statistics take them: one per answer, None meaning all equal."""
from __future__ import annotations

import math


def answer_weights(answers: list[dict], weights: list[float] | None) -> list[float]:
    """One weight per answer. A misaligned, negative or non-finite weight is a
    bug in the caller, so it fails loudly rather than skewing a result."""
    if weights is None:
        return [1.0] * len(answers)
    if len(weights) != len(answers):
        raise ValueError(f"{len(answers)} answers but {len(weights)} weights")
    for weight in weights:
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weights must be finite and not negative, not {weight}")
    return [float(weight) for weight in weights]
