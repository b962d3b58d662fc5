"""A label task's result under the crowd model: the posterior over its labels
from each counted answer's volunteer matrix, tempered by the project's learnt
τ, with the class prior and gold's lapse the quality job stored
(Project.calibration). engine.quality.consensus merges with it."""
from __future__ import annotations

from engine.quality import trust, truth_choice, truth_live
from task_types import Aggregate, TaskType

UNKNOWN_RELIABILITY = trust.NEWCOMER_RELIABILITY  # no estimate yet: better than chance
MOST_RELIABLE = 0.99  # no volunteer known only by a reliability is certain


def label_posterior(task_type: TaskType, labels: list[str], rows,
                    calibration: dict | None) -> tuple[Aggregate, float | None]:
    """The task's posterior over labels under each volunteer's confusion matrix,
    tempered by the project's τ, and the confidence retirement weighs.

    Two priors, two jobs. Retirement asks how strongly the answers alone point
    to a label (labels equally likely beforehand): with the class prior a
    common label's tasks retired on fewer answers and more of them wrongly
    (truth_live.live_model). The result reports how likely its label is right,
    which also depends on how common each label is: from the project's class
    prior (Project.calibration's "prior", stored by the quality job) when there
    is one. Without it, on an imbalanced set, reported confidence was far too
    low (product_match: tasks reported at 0.55 were right 77% of the time)."""
    index = {label: n for n, label in enumerate(labels)}
    codes, matrices = [], []
    for value, reliability, confusion in rows:
        label = task_type.label_of(value)
        if label not in index:
            continue
        codes.append(index[label])
        matrices.append(_matrix(confusion, reliability, len(labels)))
    if not codes:
        return Aggregate(None, 0.0, {}), None
    tau = _temperature(calibration)
    evidence = truth_live.evidence_from(codes, matrices)
    even = truth_live.tempered(evidence, None, tau)
    prior = _prior(calibration, labels)
    reported = even if prior is None else truth_live.tempered(evidence, prior, tau)
    # the answers alone must carry the label reported (a prior that turned a close
    # call asks for more answers), and gold's lapse caps what is reported, not
    # what retires (else a lapse of 0.05 would never let a task reach 0.98)
    return (_aggregate(labels, truth_choice.lapsed(reported, _lapse(calibration))),
            float(even[int(reported.argmax())]))


def _aggregate(labels: list[str], posterior) -> Aggregate:
    best = int(posterior.argmax())
    support = {label: float(p) for label, p in zip(labels, posterior, strict=True) if p > 1e-6}
    return Aggregate(labels[best], float(posterior[best]), support)


def _prior(calibration: dict | None, labels: list[str]):
    """The stored class prior over these labels; None before any, or when the labels
    changed since it was fitted (a label it does not know)."""
    stored = (calibration or {}).get("prior")
    if not stored or any(label not in stored for label in labels):
        return None
    return truth_live.normalised([float(stored[label]) for label in labels])


def _temperature(calibration: dict | None) -> float:
    """The project's τ as the last quality run stored it; 1 before any."""
    return float((calibration or {}).get("temperature") or 1.0)


def _lapse(calibration: dict | None) -> float:
    """The share of firm mistakes the last quality run found on gold (truth_choice.
    GoldFit); 0 before any, or without enough gold."""
    return float((calibration or {}).get("lapse") or 0.0)


def _matrix(confusion, reliability: float | None, n_labels: int):
    """A volunteer's stored matrix, else the one-coin matrix of their reliability,
    kept below certainty: a fallback reliability (a gold score of 1.0 on a few
    gold answers) must not make one answer final, nor two that differ a 0/0.
    And at least chance: one under it (a fallback agreement near 0, say, of a
    volunteer unblocked since, measured against results their answers were not
    counted in) says nothing, as in the model's own one-coin fits
    (truth_em.at_least_chance), rather than making each of their answers
    certain evidence for another label."""
    if confusion is not None and len(confusion) == n_labels:
        return confusion
    r = reliability if reliability is not None else UNKNOWN_RELIABILITY
    r = min(max(r, 1.0 / n_labels), MOST_RELIABLE)
    return truth_live.one_coin_confusions([r], n_labels)[0]
