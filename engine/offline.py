"""Offline merging: an answers CSV in, a results CSV out.

What `bitesize consensus` runs, for a charity that collected answers
elsewhere (a spreadsheet, another platform) or wants to re-merge an export.
It calls engine.truth, the same code the live path uses, so a result merged
offline is the result the engine would have given.

ANSWERS.csv has the columns ``task,worker,answer``; GOLD.csv ``task,answer``;
RESULTS.csv gets ``task,answer,confidence``, one row per task in the order
tasks first appear in ANSWERS.csv. Other columns are ignored, blanks around
values are stripped (" Deer" is "Deer"), header names ignore case, and when a
worker answered a task twice the later row counts (engine.truth.encode).
"""
from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from engine import truth
from engine.errors import InvalidError

ANSWER_COLUMNS = ("task", "worker", "answer")
GOLD_COLUMNS = ("task", "answer")
SUPPORTED_TYPES = ("classify",)  # types whose answer is one label of a list


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

    def line(self) -> str:
        text = (f"{self.tasks} tasks, {self.answers} answers, {self.workers} workers, "
                f"method {self.method}, {self.seconds:.2f} s")
        if self.accuracy is not None:
            text += (f", accuracy {100 * self.accuracy:.2f}% on {self.gold} gold tasks"
                     " (scored by a run without gold)")
        return text


def read_answers(path: Path | str) -> list[tuple[str, str, str]]:
    """(task, worker, answer) rows of an answers CSV; InvalidError names the line."""
    return [tuple(values) for _line, values in _rows(Path(path), ANSWER_COLUMNS)]


def read_gold(path: Path | str) -> dict[str, str]:
    """task -> gold answer; a task given two different gold answers is an error."""
    gold: dict[str, str] = {}
    for line, (task, answer) in _rows(Path(path), GOLD_COLUMNS):
        if gold.setdefault(task, answer) != answer:
            raise InvalidError(f"{Path(path).name}: line {line}: task {task!r} has two gold "
                               f"answers, {gold[task]!r} and {answer!r}")
    return gold


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """(line number, the named columns) of each data row, checked: none missing,
    none empty."""
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.reader(stream, strict=True)  # an unclosed quote must not eat the file
        try:
            yield from _checked(reader, path.name, columns)
        except UnicodeDecodeError as exc:
            raise InvalidError(f"{path.name}: not UTF-8 text ({exc.reason})") from exc
        except csv.Error as exc:
            raise InvalidError(f"{path.name}: line {reader.line_num}: not readable as CSV "
                               f"({exc})") from exc


def _checked(reader, name: str, columns: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise InvalidError(f"{name} is empty: expected a header line {','.join(columns)}")
    where = _positions(header, name, columns)
    count = 0
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines, as spreadsheets leave at the end
        values = [row[i].strip() if i < len(row) else "" for i in where]
        for column, value in zip(columns, values, strict=True):
            if not value:
                raise InvalidError(f"{name}: line {reader.line_num}: empty {column!r}")
        count += 1
        yield reader.line_num, values
    if not count:
        raise InvalidError(f"{name} has a header but no rows")


def _positions(header: list[str], name: str, columns: tuple[str, ...]) -> list[int]:
    names = [cell.strip().lower() for cell in header]
    missing = [column for column in columns if column not in names]
    if missing:
        raise InvalidError(f"{name}: line 1: missing column(s) {', '.join(missing)}; "
                           f"expected {','.join(columns)}, found {','.join(header)}")
    return [names.index(column) for column in columns]


def merge(rows: list[tuple[str, str, str]], gold: dict[str, str] | None = None,
          method: str = "auto") -> tuple[truth.Answers, truth.Inference]:
    """Encode the answers (labels: every answer and gold label) and run a method."""
    if method not in truth.METHODS:
        raise InvalidError(f"unknown method {method!r}; use one of {', '.join(truth.METHODS)}")
    gold = gold or {}
    labels = truth.natural_sort([row[2] for row in rows] + list(gold.values()))
    answers = truth.encode(rows, labels)
    return answers, truth.infer(answers, method, answers.gold_codes(gold) if gold else None)


def write_results(stream: TextIO, answers: truth.Answers, inference: truth.Inference) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(("task", "answer", "confidence"))
    for task, label, confidence in zip(answers.tasks, inference.label.tolist(),
                                       inference.confidence.tolist(), strict=True):
        writer.writerow((task, answers.labels[label], f"{confidence:.6f}"))


def run(answers_path: Path | str, output: TextIO, gold_path: Path | str | None = None,
        method: str = "auto") -> Summary:
    """Read, merge, write; the summary's accuracy compares a run *without* the
    gold to the gold (a run with it would just echo it back on those tasks)."""
    rows = read_answers(answers_path)
    gold = read_gold(gold_path) if gold_path else {}
    started = time.perf_counter()
    answers, inference = merge(rows, gold, method)
    seconds = time.perf_counter() - started
    write_results(output, answers, inference)
    summary = Summary(tasks=len(answers.tasks), answers=len(answers.task),
                      workers=len(answers.workers), method=method, seconds=seconds)
    return _scored(summary, answers, gold) if gold else summary


def _scored(summary: Summary, answers: truth.Answers, gold: dict[str, str]) -> Summary:
    codes = answers.gold_codes(gold)
    known = codes >= 0
    blind = truth.infer(answers, summary.method)
    accuracy = float(np.mean(blind.label[known] == codes[known])) if known.any() else None
    return Summary(summary.tasks, summary.answers, summary.workers, summary.method,
                   summary.seconds, int(known.sum()), accuracy)
