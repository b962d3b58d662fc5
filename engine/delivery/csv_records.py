"""CSV records read so that one stray quote costs one row, not the rest of the file.

Shared by the item imports (engine.intake.csv_rows) and the offline merge's
answers files (engine.quality.offline_rows): both read files people made in
spreadsheets and by hand, where a quote opened and never closed is the
commonest mistake, and the csv module then reads every row after it as one
cell, or refuses them all as one record.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any


def resumer(open_again, reopened: ExitStack, delimiter: str = ","):
    """``resume(after)``: a csv reader of the file ``open_again()`` opens (kept
    open by ``reopened``), from the line after physical line ``after``."""
    def resume(after: int):
        again = reopened.enter_context(open_again())
        for _ in range(after):
            again.readline()
        return csv.reader(again, strict=True, delimiter=delimiter)

    return resume


def records(reader: Any, resume=None, runs_over=None
            ) -> Iterator[tuple[int, int, list[str] | None, str | None]]:
    """(first line, last line, cells, None) per record after the header, or
    (first line, last line, None, why) for one the csv module refused; after a
    refusal it reads on from the next line. A record refused over several lines
    (a quote never closed that read to the end of the file, or into a field past
    the csv module's size limit, or that a later quote closed with text behind
    it) would cost every row it ran over: with ``resume(line)`` (a reader from
    the line after the record's first) the rows after its first line are read
    on their own. ``runs_over(cells)`` says a record that read fine is such a
    mistake all the same (an answer that never breaks lines, broken): it comes
    as (line, last, cells, RUNS_OVER) and is read again the same way."""
    offset = 0  # physical lines before the current reader's first
    while True:
        line = offset + reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = offset + reader.line_num
            yield line, end, None, str(exc)
            if end > line and resume is not None:
                reader, offset = resume(line), line
            continue
        end = offset + reader.line_num
        if end > line and resume is not None and runs_over is not None and runs_over(cells):
            yield line, end, cells, RUNS_OVER
            reader, offset = resume(line), line
            continue
        yield line, end, cells, None


RUNS_OVER = "runs over lines"
