"""Reading a charity's CSV: one item per data row, columns mapped to item fields.

Spreadsheets export CSV in many shapes; this accepts one, stated plainly:
UTF-8 (the byte-order mark Excel writes is fine), commas (or the semicolons
Excel writes where the comma is the decimal mark, or tabs: found from the first
line), a first line naming the columns, and strict quoting, so that a stray quote is a reported row
instead of a silently merged one. What can be checked without reading the
rows (the encoding, the header, the mapping) is checked at upload time, while
the charity is there to read why; the rows are read by the job, streamed, so
a file of any size costs one row of memory at a time.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Collection, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from engine.delivery.csv_records import records, resumer
from engine.errors import InvalidError

CHUNK = 1024 * 1024
MAX_LISTED = 20
DELIMITERS = (",", ";", "\t")  # on a tie, the first


@dataclass(frozen=True)
class Row:
    """One data row: its cells by item field, or why it cannot be read."""

    line: int  # where the row starts in the file, counting the header as line 1
    values: dict[str, str] | None
    problem: str | None = None


def parse_mapping(text: str | None) -> dict[str, str] | None:
    """The ``mapping`` form field (JSON: item field -> column name), or None."""
    if text is None or not text.strip():
        return None
    try:
        mapping = json.loads(text)
    except (ValueError, RecursionError) as exc:  # a few KB of "[[[[" recurse too deep
        raise InvalidError(f"the mapping is not JSON: {exc}", {"mapping": "not JSON"}) from exc
    if not isinstance(mapping, dict) or not mapping or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in mapping.items()):
        raise InvalidError('the mapping must be a JSON object of item field -> column name, '
                           'e.g. {"image": "photo_url"}', {"mapping": "not an object of names"})
    return mapping


def check_csv(upload: IO[bytes], fields: Collection[str],
              mapping: dict[str, str] | None) -> dict[str, int]:
    """Check the file's encoding and header and return the column of each mapped
    item field; ``upload`` is left at its start. Without a mapping, columns
    named like item fields are taken and the others ignored."""
    _check_utf8(upload)
    upload.seek(0)
    header = _header(upload)
    upload.seek(0)
    columns = _columns([name.strip() for name in header], list(fields), mapping)
    if not preview(upload, rows=1, checked=True)[1]:
        raise InvalidError("the CSV has a header but no rows: nothing would become an item",
                           {"file": "no rows"})
    return columns


def preview(upload: IO[bytes], rows: int = 5,
            checked: bool = False) -> tuple[list[str], list[list[str]]]:
    """The column names and the first ``rows`` data rows, for a person to map the
    columns by eye; the file's encoding and header are checked as at upload
    (``upload`` is left at its start). A row the CSV reader refuses shows empty.
    ``checked``: the whole file's encoding was checked already (a staged CSV),
    so ``upload`` may be its first whole lines only."""
    if not checked:
        _check_utf8(upload)
    upload.seek(0)
    header = [name.strip() for name in _header(upload)]
    upload.seek(0)
    text = io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text, strict=True, delimiter=_delimiter(text))
        next(reader, None)
        first = []
        for _, cells, _ in _records(reader):
            first.append(cells or [])
            if len(first) >= rows:
                break
    finally:
        text.detach()
        upload.seek(0)
    return header, first


def count_rows(path: Path) -> int:
    """How many data rows ``read_rows`` will yield (a pass over the file)."""
    with _open(path) as text, ExitStack() as reopened:
        delimiter = _delimiter(text)
        reader = csv.reader(text, strict=True, delimiter=delimiter)
        next(reader, None)  # the header
        return sum(1 for _ in _records(
            reader, resumer(lambda: _open(path), reopened, delimiter=delimiter)))


def read_rows(path: Path, columns: dict[str, int]) -> Iterator[Row]:
    """The data rows as item fields; an empty cell is a field left out, so a CSV
    can give some rows an image and others a text."""
    with _open(path) as text, ExitStack() as reopened:
        delimiter = _delimiter(text)
        reader = csv.reader(text, strict=True, delimiter=delimiter)
        width = len(next(reader, []))
        for line, cells, error in _records(
                reader, resumer(lambda: _open(path), reopened, delimiter=delimiter)):
            yield _row(line, cells, error, width, columns)


def _open(path: Path) -> IO[str]:
    return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by callers


def _delimiter(text: IO[str]) -> str:
    """The file's separator, read from its first line (``text`` is left at its
    start): of DELIMITERS, the one that splits the column names into the most
    columns, commas when none splits them. Excel's "CSV" in French or German
    settings is separated by semicolons; read with commas, each line would be
    one column and the mapping page would offer it as one."""
    first = text.readline()
    text.seek(0)
    widths = {d: len(next(csv.reader([first], delimiter=d), [])) for d in DELIMITERS}
    best = max(DELIMITERS, key=widths.__getitem__)
    return best if widths[best] > 1 else ","




def _records(reader: Any, resume=None) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(line, cells, None) per data row after the header, or (line, None, why) for
    a row the CSV reader refused; blank lines are skipped. Counting and reading
    both go through here, so they agree on what a row is; one stray quote costs
    one row, not the rest of the file (``records``)."""
    for line, end, cells, error in records(reader, resume):
        if error is not None:
            to = f" (lines {line}-{end}: a quote never closed?)" if end > line else ""
            yield line, None, f"not valid CSV: {error}{to}"
        elif cells:
            yield line, cells, None


def _row(line: int, cells: list[str] | None, error: str | None, width: int,
         columns: dict[str, int]) -> Row:
    """A row with as many cells as the header has columns; any other count means
    an unquoted comma or line break, and its cells would land in wrong fields."""
    if cells is None:
        return Row(line, None, error)
    if len(cells) != width:
        return Row(line, None, f"the row has {len(cells)} cells but the header has {width} "
                               "columns (an unquoted comma or line break?)")
    values = {field: cells[index].strip() for field, index in columns.items()
              if cells[index].strip()}
    if any("\x00" in value for value in values.values()):
        return Row(line, None, "a cell holds a NUL character: not text")
    return Row(line, values)


def _header(upload: IO[bytes]) -> list[str]:
    text = io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")
    try:
        header = next(csv.reader(text, strict=True, delimiter=_delimiter(text)), None)
    except UnicodeDecodeError as exc:
        raise _not_utf8(1) from exc
    except csv.Error as exc:
        raise InvalidError(f"the CSV header is not valid CSV: {exc}",
                           {"file": "unreadable header"}) from exc
    finally:
        text.detach()  # leave the upload open for storing
    if not header or not any(name.strip() for name in header):
        raise InvalidError("the CSV is empty: its first line must name the columns",
                           {"file": "no header"})
    return header


def _check_utf8(upload: IO[bytes]) -> None:
    """Decode the whole file once, in chunks: an encoding error is refused now
    rather than half-way through the job."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    while chunk := upload.read(CHUNK):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise _not_utf8(line + chunk[:max(exc.start, 0)].count(b"\n")) from exc
        line += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise _not_utf8(line) from exc


def _not_utf8(line: int) -> InvalidError:
    return InvalidError(f"line {line} of the CSV is not UTF-8 text: save it as "
                        "\"CSV UTF-8\"", {"file": "not UTF-8"})


def _columns(names: list[str], fields: list[str],
             mapping: dict[str, str] | None) -> dict[str, int]:
    if mapping is None:
        mapping = {name: name for name in names if name in fields}
        if not mapping:
            raise InvalidError(_no_fields_message(names, fields), {"file": "no item columns"})
    _refuse_repeated(names, mapping.values())
    errors: dict[str, Any] = {}
    for field, column in mapping.items():
        if field not in fields:
            errors[field] = f"not an item field; expected one of: {_listed(fields)}"
        elif column not in names:
            errors[field] = f"no column named {column!r}; the columns are: {_listed(names)}"
    if errors:
        raise InvalidError("the mapping does not fit the CSV", {"mapping": errors})
    return {field: names.index(column) for field, column in mapping.items()}


def _refuse_repeated(names: list[str], wanted: Collection[str]) -> None:
    """A column items are read from must be named once: which of two ``text``
    columns was meant cannot be known. That is the file's header to fix, not
    the mapping (which a CSV sent without one does not even have)."""
    repeated = [column for column in dict.fromkeys(wanted) if names.count(column) > 1]
    if repeated:
        shown = _listed(repeated)
        raise InvalidError(f"the CSV header names {shown} more than once: give each column "
                           "a name of its own", {"file": f"{shown} named more than once"})


def _no_fields_message(names: list[str], fields: list[str]) -> str:
    return (f"no CSV column is named like an item field ({_listed(fields)}): name the "
            f"columns so in the first line, or send a mapping")


def _listed(names: list[str]) -> str:
    shown = [repr(name[:50]) for name in names[:MAX_LISTED]]
    return ", ".join(shown) + (", ..." if len(names) > MAX_LISTED else "")
