"""Offline merging: an answers CSV in, a results CSV out.

What `bitesize consensus` runs, for a charity that collected answers
elsewhere (a spreadsheet, another platform) or wants to re-merge an export.
It calls engine.quality.truth, the same code the live path uses, so a result merged
offline is the result the engine would have given.

ANSWERS.csv has the columns ``task,worker,answer``; GOLD.csv ``task,answer``;
RESULTS.csv gets ``task,answer,confidence``, one row per task in the order
tasks first appear in ANSWERS.csv. Other columns are ignored, blanks around
values are stripped (" Deer" is "Deer"), header names ignore case, and when a
worker answered a task twice the later row counts (engine.quality.truth.encode).

Label types (classify) go through engine.quality.truth's EM. ``live`` is the
method that gives what the live merge gives (engine.quality.consensus.merge)
once the volunteers' estimates are fresh: the estimates the periodic quality
job would store, fitted on the counted answers (truth_live.live_model), then each task's
posterior from its *counted* answers (an export's ``counted`` column; every
row counts without one) under those estimates, from the class prior the job
stores, tempered by τ. The
default ``auto`` is the project-wide EM itself: its posteriors use the in-sample
matrices of the fit, tempered by auto's own τ (engine.quality.truth_choice),
not the live merge's cross-fitted ones (README, "Live and offline results"),
so its confidences differ.
With ``labels`` (the project's, from ``--config``) the label list and its order
(which breaks ties) are the project's, as live.

Every other type goes
through its own ``aggregate``, as live: the answer cell is read by the type
(``answer_from_text``: text, a number, ``;``-separated tags, a JSON list of
boxes), a first unweighted merge gives each worker an agreement score, and a
second merge weights each answer by it, as the periodic quality job's
reliabilities weight live merges. Without a config, a type may make one of
the answers it read (``fitted_config``: number reads the scale off the values).

Reading lives in engine.quality.offline_rows: given a ``Skipped`` collector,
``run`` and ``run_typed`` leave out the rows they cannot read, note them by
line, and merge the rest (what `bitesize consensus` does); without one they
stop at the first (``--strict``).
"""
from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import numpy as np

from engine.delivery.exports import escape_cell
from engine.errors import InvalidError
from engine.quality import truth, truth_choice, truth_live
from engine.quality.consensus import UNKNOWN_RELIABILITY
from engine.quality.offline_rows import (
    ANSWER_COLUMNS,
    COUNTED_COLUMN,
    GOLD_COLUMNS,
    Skipped,
    SkippedRow,
    answered_gold,
    read_answers,
    read_counted,
    read_gold,
    read_typed,
    read_typed_gold,
)
from task_types import Aggregate, TaskType

__all__ = [  # the readers and the skip collector live in offline_rows; callers import here
    "ANSWER_COLUMNS", "COUNTED_COLUMN", "GOLD_COLUMNS", "METHODS", "Skipped", "SkippedRow",
    "Summary", "TypedMerge", "agreement", "fitted_config", "live", "merge", "merge_typed",
    "read_answers", "read_counted", "read_gold", "read_typed", "read_typed_gold", "run",
    "run_typed", "write_results", "write_typed",
]
METHODS = (*truth.METHODS, "live")
PRIOR_ANSWERS = 3  # a worker's agreement is shrunk towards UNKNOWN_RELIABILITY by this many


@dataclass(frozen=True)
class Summary:
    """What one merge did, for the one-line report on stderr."""

    tasks: int
    answers: int
    workers: int
    method: str
    seconds: float
    gold: int = 0
    accuracy: float | None = None  # on gold tasks, by a run that did not see their gold
    measure: str = "accuracy"  # or the type's mean score, for types without labels
    model: str | None = None  # the crowd model auto chose (engine.quality.truth_choice)

    def line(self) -> str:
        text = (f"{self.tasks} tasks, {self.answers} answers, {self.workers} workers, "
                f"method {self.method}{f' ({self.model})' if self.model else ''}, "
                f"{self.seconds:.2f} s")
        if self.accuracy is not None:
            text += (f", {self.measure} {100 * self.accuracy:.2f}% on {self.gold} gold tasks"
                     " (scored by a run without gold)")
        return text


def _model_of(choice) -> str | None:
    """auto's choice as the summary line names it: the model, and its τ and gold's
    lapse when it has them."""
    if choice is None:
        return None
    if choice.temperature == 1.0 and not choice.lapse:
        return choice.chosen
    parts = [f"confidence tempered by {choice.temperature:g}"] if choice.temperature != 1.0 else []
    if choice.lapse:  # truth_choice.GoldFit
        parts.append(f"allowing for {100 * choice.lapse:g}% shared mistakes")
    by = " (by gold)" if choice.tempered_by == "gold" else ""
    return f"{choice.chosen}, {', '.join(parts)}{by}"


def merge(rows: list[tuple[str, str, str]], gold: dict[str, str] | None = None,
          method: str = "auto", labels: list[str] | None = None,
          counted: list[bool] | None = None) -> tuple[truth.Answers, truth.Inference]:
    """Encode the answers (labels: ``labels``, else every answer and gold label in
    natural order) and run a method; ``counted`` (one flag per row) is used by
    ``live`` only, the other methods merge every row."""
    if method not in METHODS:
        raise InvalidError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    gold = gold or {}
    vocabulary = (tuple(labels) if labels is not None
                  else truth.natural_sort([row[2] for row in rows] + list(gold.values())))
    try:
        answers = truth.encode(rows, vocabulary)
        codes = answers.gold_codes(gold) if gold else None
    except ValueError as exc:  # a label outside the project's list
        raise InvalidError(f"{exc}; the labels are {', '.join(vocabulary)}") from exc
    if method == "live":
        return answers, live(answers, codes, _kept_flags(rows, counted, answers))
    return answers, truth.infer(answers, method, codes)


def live(answers: truth.Answers, gold: np.ndarray | None = None,
         counted: np.ndarray | None = None) -> truth.Inference:
    """What the live merge gives each task under fresh estimates: truth_live.live_model
    fitted on the counted answers (as engine.quality.reliability fits and stores it), then
    each task's posterior from its counted answers alone under each answering
    worker's matrix, from the fit's reported class prior, tempered by the fit's τ
    (truth_live.posterior_from, as engine.quality.consensus.merge calls it with
    Project.calibration). A task
    with no counted answer has an all-zero row (no result); gold tasks come out
    as their gold label with confidence 1, as a settled task does."""
    n_tasks, _, n_labels = answers.shape
    keep = np.ones(len(answers.task), bool) if counted is None else np.asarray(counted, bool)
    fitted, prior = _fitted_on_counted(answers, gold, keep)
    rows = np.flatnonzero(keep)
    rows = rows[np.argsort(answers.task[rows], kind="stable")]  # each task's in input order
    posterior = np.zeros((n_tasks, n_labels))
    tasks, starts = np.unique(answers.task[rows], return_index=True)
    parts = np.split(rows, starts[1:]) if len(rows) else []  # nothing counted: no result
    for task, part in zip(tasks.tolist(), parts, strict=True):
        posterior[task] = truth_choice.lapsed(truth_live.posterior_from(
            answers.label[part], fitted.confusion[answers.worker[part]], prior,
            fitted.temperature), fitted.lapse)
    if gold is not None:
        known = np.flatnonzero(np.asarray(gold) >= 0)
        posterior[known] = np.eye(n_labels)[np.asarray(gold)[known]]
    return replace(fitted, method="live", posterior=posterior)


def _fitted_on_counted(answers: truth.Answers, gold: np.ndarray | None,
                       keep: np.ndarray) -> tuple[truth.Inference, np.ndarray]:
    """truth_live.live_model fitted on the counted answers alone, as the quality job
    fits it (engine.quality.reliability), its matrices then indexed by the full
    answers' worker codes (a worker with no counted answer gets the crowd's); and
    the class prior it stores for results (truth_live.reported_prior)."""
    if keep.all():
        fitted = truth_live.live_model(answers, gold)
        return fitted, truth_live.reported_prior(fitted, answers)
    subset = truth.encode(((answers.tasks[t], answers.workers[w], answers.labels[label])
                           for t, w, label in zip(answers.task[keep].tolist(),
                                                  answers.worker[keep].tolist(),
                                                  answers.label[keep].tolist(), strict=True)),
                          answers.labels)
    sub_gold = None
    if gold is not None:
        kept = set(subset.tasks)
        codes = np.asarray(gold).tolist()
        sub_gold = subset.gold_codes({answers.tasks[t]: answers.labels[g]
                                      for t, g in enumerate(codes)
                                      if g >= 0 and answers.tasks[t] in kept})
    fitted = truth_live.live_model(subset, sub_gold)
    where = {name: n for n, name in enumerate(subset.workers)}
    confusion = np.repeat(fitted.population[None], len(answers.workers), axis=0)
    reliability = np.full(len(answers.workers), float(np.diag(fitted.population).mean()))
    for n, name in enumerate(answers.workers):
        if name in where:
            confusion[n] = fitted.confusion[where[name]]
            reliability[n] = fitted.reliability[where[name]]
    return (replace(fitted, confusion=confusion, reliability=reliability),
            truth_live.reported_prior(fitted, subset))


def _kept_flags(rows: list[tuple[str, str, str]], counted: list[bool] | None,
                answers: truth.Answers) -> np.ndarray | None:
    """``counted`` for the encoded answers (a worker's last row per task, as
    truth.encode keeps it)."""
    if counted is None:
        return None
    last = {(task, worker): flag for (task, worker, _), flag in zip(rows, counted, strict=True)}
    return np.array([last[(answers.tasks[t], answers.workers[w])]
                     for t, w in zip(answers.task.tolist(), answers.worker.tolist(),
                                     strict=True)], dtype=bool)


def write_results(stream: TextIO, answers: truth.Answers, inference: truth.Inference) -> None:
    """One row per task; a task without a result (``live``: no counted answer)
    has an empty answer and confidence 0. Cells are escaped as exports' are: the
    reader took the export's escapes off, and a volunteer's "=HYPERLINK(...)"
    must not come out of the merge live."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(("task", "answer", "confidence"))
    merged = inference.posterior.any(axis=1).tolist()
    for task, label, confidence, has in zip(answers.tasks, inference.label.tolist(),
                                            inference.confidence.tolist(), merged, strict=True):
        writer.writerow((result_cell(task), result_cell(answers.labels[label]) if has else "",
                         f"{confidence:.6f}"))


def run(answers_path: Path | str, output: TextIO, gold_path: Path | str | None = None,
        method: str = "auto", labels: list[str] | None = None,
        skipped: Skipped | None = None) -> Summary:
    """Read, merge, write; the summary's accuracy compares a run *without* the
    gold to the gold (a run with it would just echo it back on those tasks).
    Rows it cannot read (an empty cell, a label not in ``labels``) go to
    ``skipped``; with none, the first is an InvalidError."""
    if method == "live":
        rows, counted = read_counted(answers_path, skipped, labels)
    else:
        rows, counted = read_answers(answers_path, skipped, labels), None
    _something_to_merge(rows, answers_path, skipped)
    gold = {} if not gold_path else read_gold(gold_path) if labels else answered_gold(
        gold_path, rows, skipped)
    started = time.perf_counter()
    answers, inference = merge(rows, gold, method, labels, counted)
    seconds = time.perf_counter() - started
    write_results(output, answers, inference)
    summary = Summary(tasks=len(answers.tasks), answers=len(answers.task),
                      workers=len(answers.workers), method=method, seconds=seconds,
                      model=_model_of(inference.choice))
    if not gold:
        return summary
    blind = merge(rows, None, method, list(answers.labels), counted)[1]
    return _scored(summary, answers, gold, blind)


def _something_to_merge(rows: list, path: Path | str, skipped: Skipped | None) -> None:
    """Every row skipped leaves nothing to merge: an error, not an empty result."""
    if not rows:
        total = skipped.total if skipped is not None else 0
        raise InvalidError(f"{Path(path).name}: none of its {total} rows could be read; "
                           "nothing to merge")


def _scored(summary: Summary, answers: truth.Answers, gold: dict[str, str],
            blind: truth.Inference) -> Summary:
    codes = answers.gold_codes(gold)
    known = codes >= 0
    # a task with no result (live: no counted answer) has no label to be right with;
    # its all-zero posterior's argmax would read as the first label
    right = (blind.label == codes) & blind.posterior.any(axis=1)
    accuracy = float(np.mean(right[known])) if known.any() else None
    return replace(summary, gold=int(known.sum()), accuracy=accuracy)


# -- every other type: the type's own aggregate, weighted by agreement -------------


@dataclass(frozen=True)
class TypedMerge:
    """Results of a typed merge, tasks in input order, and the weights used."""

    tasks: list[str]
    results: dict[str, Aggregate]
    reliability: dict[str, float]


def merge_typed(task_type: TaskType, config: dict, rows: list[tuple[str, str, dict]],
                rounds: int = 1) -> TypedMerge:
    """Merge each task's answers with the type's aggregate: unweighted first, then
    ``rounds`` times weighted by each worker's agreement with the previous results."""
    by_task: dict[str, dict[str, dict]] = {}
    for task, worker, answer in rows:
        by_task.setdefault(task, {})[worker] = answer  # a later answer replaces an earlier
    results = {task: task_type.aggregate(list(answers.values()), None, config)
               for task, answers in by_task.items()}
    reliability: dict[str, float] = {}
    for _ in range(rounds):
        reliability = agreement(task_type, by_task, results, config)
        results = {task: task_type.aggregate(
            list(answers.values()), [reliability[w] for w in answers], config)
            for task, answers in by_task.items()}
    return TypedMerge(list(by_task), results, reliability)


def agreement(task_type: TaskType, by_task: dict[str, dict[str, dict]],
              results: dict[str, Aggregate], config: dict | None = None) -> dict[str, float]:
    """Each worker's mean score against the current results, shrunk towards a new
    volunteer's prior so that one lucky answer does not make a trusted worker."""
    totals: dict[str, list[float]] = {}
    for task, answers in by_task.items():
        value = results[task].value
        for worker, answer in answers.items():
            scored = task_type.score(answer, value, config) if value is not None else 0.0
            total = totals.setdefault(worker, [0.0, 0])
            total[0] += scored
            total[1] += 1
    return {worker: (score + PRIOR_ANSWERS * UNKNOWN_RELIABILITY) / (n + PRIOR_ANSWERS)
            for worker, (score, n) in totals.items()}


_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def result_cell(text: str) -> str:
    """A results cell: escaped as exports escape text (engine.delivery.exports),
    except a plain number ("-1", "+0.5"), which no spreadsheet runs and which a
    file's labels (sentiment -1/0/1) and number results must keep as they are."""
    return text if _PLAIN_NUMBER.fullmatch(text) else escape_cell(text)


def write_typed(stream: TextIO, task_type: TaskType, merged: TypedMerge) -> None:
    """As write_results, for the other types: a merged text can be a formula too."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(("task", "answer", "confidence"))
    for task in merged.tasks:
        result = merged.results[task]
        writer.writerow((result_cell(task), result_cell(task_type.value_to_text(result.value)),
                         f"{result.confidence:.6f}"))


def run_typed(answers_path: Path | str, output: TextIO, task_type: TaskType,
              config: dict | None = None, gold_path: Path | str | None = None,
              skipped: Skipped | None = None) -> Summary:
    """Read, merge, write for a type that is not one label of a list; with gold, the
    summary's accuracy is the mean score of the results against it. Answers the
    type cannot read go to ``skipped``; with none, the first is an InvalidError.

    Without ``config`` the file is read under the type's offline config and
    merged under the one the type makes of the answers read (``fitted_config``:
    number's scale); the summary's method names what it chose."""
    reading = config if config is not None else task_type.offline_config()
    rows = read_typed(answers_path, task_type, reading, skipped)
    _something_to_merge(rows, answers_path, skipped)
    # before anything is written: a bad gold file stops the run with no results
    gold = read_typed_gold(gold_path, task_type, reading) if gold_path else None
    chose = ""
    if config is None:
        config = fitted_config(task_type, rows)
        chose = _chosen(reading, config)
    started = time.perf_counter()
    merged = merge_typed(task_type, config, rows)
    seconds = time.perf_counter() - started
    write_typed(output, task_type, merged)
    summary = Summary(tasks=len(merged.tasks),  # a worker's answer given twice: the later
                      answers=len({(task, worker) for task, worker, _ in rows}),
                      workers=len({worker for _, worker, _ in rows}),
                      method=f"{task_type.name} aggregate{chose}", seconds=seconds)
    if gold is None:
        return summary
    scores = [task_type.score(task_type.answer_from_text(
        task_type.value_to_text(merged.results[task].value), config), value, config)
        for task, value in gold.items() if task in merged.results]
    return Summary(summary.tasks, summary.answers, summary.workers, summary.method,
                   summary.seconds, len(scores), sum(scores) / len(scores) if scores else None,
                   "mean score")


def fitted_config(task_type: TaskType, rows: list[tuple[str, str, dict]]) -> dict:
    """The config a file given without one is merged under: what the type makes
    of its answers (``config_from_answers``, task -> answers, a worker's later
    answer replacing an earlier as in ``merge_typed``: number detects the scale
    they are on; other types keep their offline config)."""
    by_task: dict[str, dict[str, dict]] = {}
    for task, worker, answer in rows:
        by_task.setdefault(task, {})[worker] = answer
    return task_type.config_from_answers(
        {task: list(answers.values()) for task, answers in by_task.items()})


def _chosen(reading: dict, fitted: dict) -> str:
    """What the answers changed in the offline config, for the summary: " (from
    the answers: min -100, max 100, method mean)", or nothing."""
    changed = [f"{key} {_shown(value)}" for key, value in fitted.items()
               if reading.get(key) != value]
    return f" (from the answers: {', '.join(changed)})" if changed else ""


def _shown(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).lower() if isinstance(value, bool) else str(value)
