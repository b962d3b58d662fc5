"""Reading the CSV files `bitesize consensus` merges, row by row.

Real answers files are messy: a volunteer's blank cell, a box drawn with no
width, a rating typed on the wrong scale, a cell a spreadsheet mangled. One such
row must not cost the charity the merge of the other thirty thousand, so a row
the merge cannot use is *skipped*: noted in a ``Skipped`` collector with its
line (the header is line 1), its column and a short reason (the task type's own
validation message where it has one), and the rest are read. A strict collector
(``--strict``, and every caller that passes none) stops at the first such row
instead, with an InvalidError naming its line.

A row the type reads *in part* is kept: locate leaves a box with no width out
of an answer whose other boxes are good. What it left out comes back on the
answer (a ``left_out`` tuple of reasons, as task_types.locate.PartlyRead has)
and is noted as the row's *part* in the same collector: counted, listed and
reported beside the skipped rows, and, when strict, an error like them.

What no row can survive stays an error in both modes: a file that is not UTF-8,
a header without the needed columns, a file with no rows at all. Gold files are
the charity's own short lists and are always read strictly.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from marshmallow import ValidationError

from engine.delivery.csv_records import RUNS_OVER, records, resumer
from engine.delivery.exports import unescape_cell
from engine.errors import InvalidError
from task_types import TaskType

ANSWER_COLUMNS = ("task", "worker", "answer")
COUNTED_COLUMN = "counted"  # optional: an export's; "False" marks an answer that does not count
# what a counted cell may say (empty: counted, as when the column is missing)
NOT_COUNTED_WORDS = frozenset({"false", "0", "no"})
COUNTED_WORDS = frozenset({"", "true", "1", "yes"}) | NOT_COUNTED_WORDS
GOLD_COLUMNS = ("task", "answer")
REPORT_ROWS = 10_000  # skipped rows kept for the report; the count goes on past it
SHOWN = 50  # characters of a cell quoted in a reason


@dataclass(frozen=True)
class SkippedRow:
    """One row left out of the merge: where it is and why."""

    line: int  # of its first physical line, the header being line 1
    column: str | None  # None: the whole row (the csv module could not parse it)
    reason: str

    def text(self) -> str:
        where = f"line {self.line}: " + (f"{self.column}: " if self.column else "")
        return where + self.reason


class Skipped:
    """The rows one read left out; strict, it raises at the first instead."""

    def __init__(self, strict: bool = False, keep: int = REPORT_ROWS) -> None:
        self.strict = strict
        self.keep = keep
        self.rows: list[SkippedRow] = []
        self.total = 0
        self.parts: list[SkippedRow] = []  # parts of rows that were kept
        self.parts_total = 0
        self.replaced: list[SkippedRow] = []  # rows a later answer of the same pair replaced
        self.replaced_total = 0
        self._seen: dict[tuple[str, str, str], int] = {}  # (file, task, worker) -> line

    def note(self, name: str, line: int, column: str | None, reason: str) -> None:
        """Count a row the merge cannot use (raise, when strict: ``name`` is the file's)."""
        row = SkippedRow(line, column, reason)
        if self.strict:
            raise InvalidError(f"{name}: {row.text()}")
        self.total += 1
        if len(self.rows) < self.keep:
            self.rows.append(row)

    def note_part(self, name: str, line: int, column: str, reason: str) -> None:
        """Count a part of a kept row's cell that the merge leaves out (a box with
        no width among good boxes); raise, when strict, as ``note`` does."""
        part = SkippedRow(line, column, reason)
        if self.strict:
            raise InvalidError(f"{name}: {part.text()}")
        self.parts_total += 1
        if len(self.parts) < self.keep:
            self.parts.append(part)

    def note_answer(self, name: str, line: int, task: str, worker: str) -> None:
        """A kept row's (task, worker): a row before it with the same pair is
        replaced by it (the later answer counts, as the README says). Counted and
        listed, never an error, even when strict: the file is readable."""
        earlier = self._seen.get((name, task, worker))
        self._seen[(name, task, worker)] = line
        if earlier is not None:
            self.replaced_total += 1
            if len(self.replaced) < self.keep:
                self.replaced.append(SkippedRow(earlier, None, f"replaced by line {line}: "
                                                "the same worker answered this task again"))

    @property
    def truncated(self) -> bool:
        return (self.total > len(self.rows) or self.parts_total > len(self.parts)
                or self.replaced_total > len(self.replaced))

    def lines(self, first: int = 20) -> list[str]:
        """What a person reads: the count, then the first rows by line; then the
        same for the parts left out of kept rows, if any."""
        out = _listed(f"skipped {self.total} {_rows_noun(self.total)} it could not read",
                      self.rows, self.total, first) if self.total else []
        if self.parts_total:
            out += _listed(f"left out {self.parts_total} "
                           f"{'part' if self.parts_total == 1 else 'parts'} of rows it kept",
                           self.parts, self.parts_total, first)
        if self.replaced_total:
            out += _listed(f"{self.replaced_total} {_rows_noun(self.replaced_total)} "
                           "replaced by the same worker's later answer to the task",
                           self.replaced, self.replaced_total, first)
        return out

    def report(self) -> dict[str, Any]:
        """The skipped rows as JSON-ready data (the first ``keep`` of them), and
        the parts left out of kept rows (``left_out``, ``left_out_rows``)."""
        return {"skipped": self.total, "truncated": self.truncated,
                "rows": [asdict(row) for row in self.rows],
                "left_out": self.parts_total,
                "left_out_rows": [asdict(part) for part in self.parts],
                "replaced": self.replaced_total,
                "replaced_rows": [asdict(row) for row in self.replaced]}


def _rows_noun(count: int) -> str:
    return "row" if count == 1 else "rows"


def _listed(title: str, rows: list[SkippedRow], total: int, first: int) -> list[str]:
    shown = [f"  {row.text()}" for row in rows[:first]]
    more = [f"  ...and {total - len(shown)} more"] if total > len(shown) else []
    return [title, *shown, *more]


def _strict_unless(skipped: Skipped | None) -> Skipped:
    return Skipped(strict=True) if skipped is None else skipped


# -- label types: the cells as text ---------------------------------------------------


def read_answers(path: Path | str, skipped: Skipped | None = None,
                 labels: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(task, worker, answer) rows of an answers CSV. A row with an empty cell,
    or (given ``labels``) an answer not among them, is skipped into ``skipped``;
    with no collector the first one is an InvalidError naming its line."""
    return [tuple(values[:3]) for values in
            _label_rows(Path(path), _strict_unless(skipped), labels, ANSWER_COLUMNS)]


def read_counted(path: Path | str, skipped: Skipped | None = None,
                 labels: list[str] | None = None
                 ) -> tuple[list[tuple[str, str, str]], list[bool]]:
    """The rows of ``read_answers`` and whether each counts: its ``counted`` cell
    is not false (``False``, ``false``, ``0``, ``no``), or the file has no such
    column (every row counts)."""
    rows, counted = [], []
    for task, worker, answer, flag in _label_rows(Path(path), _strict_unless(skipped), labels,
                                                  (*ANSWER_COLUMNS, COUNTED_COLUMN)):
        rows.append((task, worker, answer))
        counted.append(flag.strip().lower() not in NOT_COUNTED_WORDS)
    return rows, counted


def _label_rows(path: Path, skipped: Skipped, labels: list[str] | None,
                columns: tuple[str, ...]) -> Iterator[list[str]]:
    """Rows whose answer is a usable label: any non-empty one, or one of ``labels``."""
    listed = None if labels is None else set(labels)
    for line, values in _rows(path, columns, skipped, (COUNTED_COLUMN,), (COUNTED_COLUMN,),
                              one_line=True):
        if listed is not None and values[2] not in listed:
            skipped.note(path.name, line, "answer", f"{values[2][:SHOWN]!r} is not listed; "
                         f"the labels are {', '.join(labels)}")
            continue
        if len(values) > 3 and values[3].strip().lower() not in COUNTED_WORDS:
            skipped.note(path.name, line, COUNTED_COLUMN, f"{values[3][:SHOWN]!r} is neither "
                         "true nor false")
            continue
        skipped.note_answer(path.name, line, values[0], values[1])
        yield values


def read_gold(path: Path | str) -> dict[str, str]:
    """task -> gold answer; a task given two different gold answers is an error."""
    return {task: answer for _, task, answer in _gold_rows(Path(path))}


def answered_gold(path: Path | str, rows: list[tuple[str, str, str]],
                  skipped: Skipped | None = None) -> dict[str, str]:
    """``read_gold`` without the gold whose label no answer gives, each skipped into
    ``skipped`` (strict: an error): with the labels read off the answers (no
    config), such a label (a typo, another case) became a class of its own,
    and a robustness audit saw it turn a hundred other tasks' results to it."""
    path = Path(path)
    given = {label for _, _, label in rows}
    skipped, gold = _strict_unless(skipped), {}
    for line, task, answer in _gold_rows(path):
        if answer in given:
            gold[task] = answer
        else:
            skipped.note(path.name, line, "answer",
                         f"{path.name}: gold label {answer!r} is no answer's (a typo? a "
                         "--config listing it makes a label nobody chose gold)")
    return gold


def _gold_rows(path: Path, may_be_empty: tuple[str, ...] = ()
               ) -> Iterator[tuple[int, str, str]]:
    """(line, task, answer) of each task's gold, once; a task given two different
    gold answers is an error (for label and typed gold alike)."""
    seen: dict[str, str] = {}
    for line, (task, answer) in _rows(path, GOLD_COLUMNS, Skipped(strict=True),
                                      may_be_empty):
        if task not in seen:
            seen[task] = answer
            yield line, task, answer
        elif seen[task] != answer:  # a repeat of the same gold is ignored
            raise InvalidError(f"{path.name}: line {line}: task {task!r} has two gold "
                               f"answers, {seen[task]!r} and {answer!r}")


# -- every other type: the cells read by the type -------------------------------------


def read_typed(path: Path | str, task_type: TaskType, config: dict,
               skipped: Skipped | None = None) -> list[tuple[str, str, dict]]:
    """(task, worker, answer) rows with each answer read and validated by the type;
    a row it cannot read is skipped into ``skipped`` (with no collector, an
    InvalidError names the line of the first)."""
    path, skipped = Path(path), _strict_unless(skipped)
    schema = task_type.answer_schema(config)
    rows = []
    # an empty cell is an answer for some types: no tags apply, nothing to mark
    for line, (task, worker, text) in _rows(path, ANSWER_COLUMNS, skipped, ("answer",),
                                            one_line=not task_type.multiline_text):
        try:
            read = task_type.answer_from_text(text, config)
            rows.append((task, worker, schema.load(read)))
        except (ValueError, ValidationError) as exc:
            skipped.note(path.name, line, "answer", _unreadable(task_type, exc))
            continue
        skipped.note_answer(path.name, line, task, worker)
        for reason in _left_out(read):
            skipped.note_part(path.name, line, "answer", reason)
    return rows


def read_typed_gold(path: Path | str, task_type: TaskType, config: dict) -> dict[str, Any]:
    """task -> the gold result value, read as an answer and merged alone (as an
    admin's settlement is)."""
    path = Path(path)
    schema = task_type.answer_schema(config)
    gold, strict = {}, Skipped(strict=True)
    for line, task, text in _gold_rows(path, ("answer",)):
        try:
            read = task_type.answer_from_text(text, config)
            answer = schema.load(read)
        except (ValueError, ValidationError) as exc:
            row = SkippedRow(line, "answer", _unreadable(task_type, exc))
            raise InvalidError(f"{path.name}: {row.text()}") from exc
        for reason in _left_out(read):  # gold is read whole or not at all
            strict.note_part(path.name, line, "answer", reason)
        gold[task] = task_type.aggregate([answer], None, config).value
    return gold


def _left_out(read: dict) -> tuple[str, ...]:
    """What the type left out of a cell it read in part (see the module's doc)."""
    return tuple(getattr(read, "left_out", ()))


def _unreadable(task_type: TaskType, exc: ValueError | ValidationError) -> str:
    """The type's own words for why a cell is not an answer, flattened to one line."""
    if isinstance(exc, ValidationError):
        detail = "; ".join(dict.fromkeys(_leaves(exc.messages)))
    else:
        detail = str(exc)
    return f"not a {task_type.name} answer: {detail[:200]}"


def _leaves(messages: Any) -> Iterator[str]:
    if isinstance(messages, dict):
        for value in messages.values():
            yield from _leaves(value)
    elif isinstance(messages, list | tuple):
        for value in messages:
            yield from _leaves(value)
    else:
        yield str(messages)


# -- the CSV itself ---------------------------------------------------------------


def _rows(path: Path, columns: tuple[str, ...], skipped: Skipped,
          may_be_empty: tuple[str, ...] = (), optional: tuple[str, ...] = (),
          one_line: bool = False) -> Iterator[tuple[int, list[str]]]:
    """(line number, the named columns) of each data row that has them all
    (``optional`` ones may be missing, then empty) and none empty but
    ``may_be_empty``; other rows are noted in ``skipped``. With ``one_line``
    no cell may hold a line break (see _records)."""
    with _opened(path) as stream, ExitStack() as reopened:
        reader = csv.reader(stream, strict=True)
        resume = resumer(lambda: _opened(path), reopened)
        try:
            yield from _checked(reader, path.name, columns, skipped, may_be_empty, optional,
                                resume, one_line)
        except csv.Error as exc:  # the header's: without it no row means anything
            raise InvalidError(f"{path.name}: line {reader.line_num}: not readable as CSV "
                               f"({exc})") from exc


def _opened(path: Path):
    """The file as text: UTF-8 (a BOM dropped), bytes that are not UTF-8 kept as
    lone surrogates for ``_utf8`` to find row by row."""
    return path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")


def _checked(reader, name: str, columns: tuple[str, ...], skipped: Skipped,
             may_be_empty: tuple[str, ...], optional: tuple[str, ...], resume=None,
             one_line: bool = False) -> Iterator[tuple[int, list[str]]]:
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise InvalidError(f"{name} is empty: expected a header line {','.join(columns)}")
    where = _positions(header, name, columns, optional)
    heading = [cell.strip().lower() for cell in header]
    records = 0
    for line, row in _records(reader, name, skipped, resume,
                              [i for i in where if i >= 0] if one_line else None):
        if row is not None and not any(cell.strip() for cell in row):
            continue  # blank lines, as spreadsheets leave at the end
        records += 1
        if row is None:
            continue  # the csv module could not parse it; noted
        if not _utf8(row):
            skipped.note(name, line, None, "not UTF-8 text (another encoding's bytes)")
            continue
        if [cell.strip().lstrip("\ufeff").lower() for cell in row] == heading:
            skipped.note(name, line, None, "the header again (files joined together?)")
            continue
        # a cell that may be empty (a transcription's "no text") but is left out
        # altogether: the row is broken, not an answer (the others say "empty")
        short = next((column for column, i in zip(columns, where, strict=True)
                      if i >= len(row) and column in may_be_empty
                      and column not in optional), None)
        if short is not None:
            skipped.note(name, line, short, "missing (the row has fewer cells than the header)")
            continue
        if any(cell.strip() for cell in row[len(header):]):
            # "Dear Sir, I write" unquoted: its answer would be cut at the comma
            skipped.note(name, line, None, f"the row has {len(row)} cells but the header "
                         f"has {len(header)} (a comma in an answer that is not quoted?)")
            continue
        values = [_unescaped(row[i].strip()) if 0 <= i < len(row) else "" for i in where]
        empty = next((column for column, value in zip(columns, values, strict=True)
                      if not value and column not in may_be_empty), None)
        if empty is not None:
            skipped.note(name, line, empty, "empty")
            continue
        yield line, values
    if not records:
        raise InvalidError(f"{name} has a header but no rows")


def _records(reader, name: str, skipped: Skipped, resume=None,
             one_line: list[int] | None = None) -> Iterator[tuple[int, list[str] | None]]:
    """(first line, cells) of each record after the header; None for one the csv
    module cannot parse (noted in ``skipped``); one stray quote costs one row,
    not the rest of the file (engine.intake.csv_rows.records). A stray quote
    that a later one happens to close reads fine but swallows the rows between
    into one cell; where ``one_line`` names the cells read (the task, the worker
    and an answer that never breaks lines: a label, a number, boxes), a line
    break in one of them is that mistake, and the rows it swallowed are read
    again one by one. Other columns (an export's item ref) may hold line breaks."""
    def runs_over(row: list[str]) -> bool:
        return any("\n" in row[i] or "\r" in row[i] for i in one_line if i < len(row))

    for line, end, row, error in records(reader, resume, runs_over if one_line else None):
        if error == RUNS_OVER:
            skipped.note(name, line, None, f"a cell runs over lines {line}-{end} (a quote "
                         "never closed?): the rows in it are read on their own")
            row = None
        elif error is not None:
            to = f" (lines {line}-{end}: a quote never closed?)" if end > line else ""
            skipped.note(name, line, None, f"not readable as CSV ({error}){to}")
        yield line, row


def _utf8(row: list[str]) -> bool:
    """Whether a row read with errors="surrogateescape" was UTF-8: a byte that is
    not comes in as a lone surrogate. One such row (a Latin-1 name pasted in) is
    skipped like any unreadable row, instead of the whole file refused."""
    text = "".join(row)
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unescaped(cell: str) -> str:
    """Undo the exports' formula escaping ("'=x" -> "=x", "'-3" -> "-3",
    "' =x" -> "=x", "'＝x" -> "＝x"), by the very rule that escaped it, so an
    exported answers CSV merges to what was answered; stripped like any cell."""
    return unescape_cell(cell).strip()


def _header_hint(header: list[str]) -> str:
    """What a header that names no expected column most likely is."""
    text = ",".join(header)
    if "\x00" in text or any("\udc80" <= ch <= "\udcff" for ch in text):
        return " (the file is not UTF-8 text: UTF-16 or another encoding? save it as CSV UTF-8)"
    for mark, what in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
        if len(header) == 1 and mark in text:
            return f" (the columns seem separated by {what}: save it as CSV with commas)"
    return ""


def _positions(header: list[str], name: str, columns: tuple[str, ...],
               optional: tuple[str, ...] = ()) -> list[int]:
    """Each column's index in the header; -1 for an optional column it lacks."""
    names = [cell.strip().lower() for cell in header]
    missing = [column for column in columns if column not in names and column not in optional]
    if missing:
        expected = [column for column in columns if column not in optional]
        raise InvalidError(f"{name}: line 1: missing column(s) {', '.join(missing)}; "
                           f"expected {','.join(expected)}, found "
                           f"{','.join(header).encode('unicode_escape').decode()[:200]}"
                           f"{_header_hint(header)}")
    return [names.index(column) if column in names else -1 for column in columns]
