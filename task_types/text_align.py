"""Merging several volunteers' transcriptions of one line into one text.

Volunteers type the same line differently: a word missed, one misread, a comma
more, "Dear" against "dear". A character-level vote would mix letters from
different words, so the merge works on words:

1. Each text is cut into words at whitespace; words are compared under a
   normal form (case folded, surrounding punctuation stripped), so "Sir," and
   "sir" vote together, while the text keeps the spelling typed most.
2. The transcriptions are put into columns by a centre-star multiple alignment:
   the one closest to all the others (least weighted word edit distance) is the
   backbone, and every other is aligned to it by word edit distance. Words a
   volunteer typed where the backbone has none get columns of their own,
   between the backbone's words.
3. Each column is a weighted vote among its words and "nothing here" (a gap).
   A volunteer of reliability r votes with the log-odds log(r / (1 - r)), the
   weight under which a vote of independent voters is most often right, so
   one careful volunteer can outvote two careless ones where a plain r would
   not. The winner's share of the weight is that column's agreement; the
   merged text's confidence is the mean agreement over its columns.

When the answers agree little word for word (free wording: translations,
descriptions), text_medoid changes two things: the vote's weights, and a
check of the vote's text against the best whole answer, the one nearer to
what volunteers typed being kept; each merged text says which merge made it.

``[unclear]``, the mark volunteers type for a word they cannot read, is a word
of its own in the vote: when most of the weight says a word is unreadable, the
text keeps the mark, so the charity sees where it is.

Distances and alignments run on whole batches of sequences with numpy (one
row of the edit-distance table at a time, for every pair at once), so ten
forty-word transcriptions merge in about a millisecond; character edit
distance, for scoring, uses the bit-parallel algorithm on Python integers.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from task_types import text_medoid

UNCLEAR = "[unclear]"
_MARK = re.compile(re.escape(UNCLEAR), re.IGNORECASE)
# Full edit tables are kept for aligning to the backbone; batches are cut so one
# table never holds more cells than this (10 answers of 1,000 words would
# otherwise take tens of megabytes).
MAX_TABLE_CELLS = 4_000_000
# Vote weights: reliabilities are capped here (a volunteer is never certain), and
# one at or below chance keeps this small weight, so that a line answered only by
# new or weak volunteers is still merged; a reliability of 0 (blocked) counts nil.
MAX_RELIABILITY = 0.99
MIN_VOTE = 0.01


@dataclass(frozen=True)
class Word:
    """One typed word: ``key`` is what the vote compares, ``surface`` what was typed."""

    key: str
    surface: str


@dataclass(frozen=True)
class MergedText:
    """The merged text and the evidence behind it."""

    text: str
    confidence: float
    columns: int
    unanimous: int  # columns where every vote went one way
    unclear: int  # [unclear] marks in the merged text
    merge: str = "words"  # or "medoid": one whole answer, kept as typed
    similarity: float = 1.0  # the answers' word agreement that decided the merge
    free: bool = False  # judged free wording (text_medoid): the medoid was weighed
    chosen: int | None = None  # with "medoid", the index of the answer kept


def strip_punctuation(token: str) -> str:
    """``token`` without the punctuation around it (quotes, commas, brackets)."""
    start, end = 0, len(token)
    while start < end and unicodedata.category(token[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(token[end - 1]).startswith("P"):
        end -= 1
    return token[start:end]


@lru_cache(maxsize=65_536)  # the same words come back in every answer
def normal_form(token: str) -> str:
    """The form words are compared in. A token that is only punctuation ("--",
    "&") keeps it, so it is still a word; "[unclear]" with punctuation around
    it ("[unclear],") is the mark."""
    folded = token.casefold()
    if UNCLEAR in folded and not strip_punctuation(folded.replace(UNCLEAR, "")):
        return UNCLEAR
    return strip_punctuation(folded) or folded


def words(text: str) -> list[Word]:
    """The words of a transcription, the [unclear] mark always spelt one way."""
    out = []
    for token in text.split():
        key = normal_form(token)
        out.append(Word(key, _MARK.sub(UNCLEAR, token) if key == UNCLEAR else token))
    return out


def clean_text(text: str) -> str:
    """Whitespace collapsed to single spaces and the mark in one spelling: a line's
    layout carries nothing, and "[Unclear]" is the same mark as "[unclear]"."""
    return " ".join(word.surface for word in words(text))


# -- edit distances ---------------------------------------------------------


def char_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings, bit-parallel (Myers 1999, in
    Hyyro's form): one pass over ``b`` with ``a``'s rows packed in an integer."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    m = len(b)
    full = (1 << m) - 1
    top = 1 << (m - 1)
    peq: dict[str, int] = {}
    for i, ch in enumerate(b):
        peq[ch] = peq.get(ch, 0) | (1 << i)
    pv, mv, score = full, 0, m
    for ch in a:
        eq = peq.get(ch, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & full)
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = mh | (~(xv | ph) & full)
        mv = ph & xv
    return score


def _padded(seqs: list[list[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Sequences as one (n, longest) array, padded with ``pad``, and their lengths."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    out = np.full((len(seqs), max(1, int(lengths.max(initial=0)))), pad, dtype=np.int64)
    for row, seq in zip(out, seqs, strict=True):
        row[: len(seq)] = seq
    return out, lengths


def _edit_rows(rows_seq: np.ndarray, cols_seq: np.ndarray):
    """Yield each row of the edit table of every pair, shifted: row ``i`` of pair
    ``p`` holds D[i][j] - j, where D[i][j] is the distance between
    rows_seq[p, :i] and cols_seq[p, :j].

    In the shifted form the insertions along a row, which chain left to right
    (D[j] = min over k <= j of c[k] + j - k), become one running minimum, so a
    row is a few numpy operations for all pairs at once, in memory of one row.
    Pads never match (rows pad -1, columns -2), and a pair's distance is read
    at its own lengths, which pads do not reach.
    """
    pairs, width = cols_seq.shape[0], cols_seq.shape[1] + 1
    row = np.zeros((pairs, width), dtype=np.int32)
    yield 0, row
    for i in range(1, rows_seq.shape[1] + 1):
        cand = np.empty_like(row)
        cand[:, 0] = i
        differ = rows_seq[:, i - 1, None] != cols_seq
        np.minimum(row[:, :-1] + differ, row[:, 1:] + 2, out=cand[:, 1:])
        cand[:, 1:] -= 1
        row = np.minimum.accumulate(cand, axis=1, out=cand)
        yield i, row


def pair_distances(seqs: list[list[int]]) -> np.ndarray:
    """Word edit distance between every two sequences, as an (n, n) matrix."""
    n = len(seqs)
    dist = np.zeros((n, n), dtype=np.int64)
    first, second = np.triu_indices(n, k=1)
    if not first.size:
        return dist
    found = _distances([seqs[i] for i in first], [seqs[j] for j in second])
    dist[first, second] = found
    dist[second, first] = found
    return dist


def distances_to(seq: list[int], seqs: list[list[int]]) -> np.ndarray:
    """Word edit distance from ``seq`` to each of ``seqs``."""
    if not seqs:
        return np.zeros(0, dtype=np.int64)
    return _distances([seq] * len(seqs), seqs)


def _distances(firsts: list[list[int]], seconds: list[list[int]]) -> np.ndarray:
    """Word edit distance of each pair (firsts[p], seconds[p]), all pairs at once."""
    rows_seq, rows_len = _padded(firsts, -1)
    cols_seq, cols_len = _padded(seconds, -2)
    found = cols_len.copy()  # a pair whose first sequence is empty: all insertions
    for i, row in _edit_rows(rows_seq, cols_seq):
        done = rows_len == i
        if i and done.any():
            found[done] = row[done, cols_len[done]] + cols_len[done]
    return found


def align_to(backbone: list[int], others: list[list[int]]) -> list[list[tuple]]:
    """Each of ``others`` aligned to ``backbone`` by word edit distance: a list of
    (other's word index or None, backbone word index or None) steps, in order."""
    longest = max((len(o) for o in others), default=0) + 1
    step = max(1, MAX_TABLE_CELLS // (longest * (len(backbone) + 1)))
    out: list[list[tuple]] = []
    for start in range(0, len(others), step):
        out.extend(_align_batch(backbone, others[start: start + step]))
    return out


def _align_batch(backbone: list[int], others: list[list[int]]) -> list[list[tuple]]:
    rows_seq, rows_len = _padded(others, -1)
    cols_seq = np.broadcast_to(np.array(backbone or [-2], dtype=np.int64),
                               (len(others), max(1, len(backbone))))
    shifted = np.stack([row for _, row in _edit_rows(rows_seq, cols_seq)], axis=1)
    table = shifted + np.arange(shifted.shape[2], dtype=np.int32)
    return [_trace(table[p], others[p], backbone, int(rows_len[p]))
            for p in range(len(others))]


def _trace(table: np.ndarray, other: list[int], backbone: list[int], rows: int) -> list[tuple]:
    """Walk one pair's table back from the end. Where paths tie, a word pairs
    with the backbone's word (substitution) before it is made a gap, so a
    misread word stays in its column."""
    d = table[: rows + 1, : len(backbone) + 1].tolist()
    i, j, steps = rows, len(backbone), []
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (other[i - 1] != backbone[j - 1]):
            i, j = i - 1, j - 1
            steps.append((i, j))
        elif j and d[i][j] == d[i][j - 1] + 1:
            j -= 1
            steps.append((None, j))
        else:
            i -= 1
            steps.append((i, None))
    return steps[::-1]


# -- columns and the vote ---------------------------------------------------


@dataclass
class _Column:
    """Who typed what in one column; answers absent from ``votes`` typed nothing."""

    votes: dict[int, Word]
    backbone: bool  # a column of the backbone's own words (else inserted)


def columns(texts: list[list[Word]], backbone: int, ids: dict[str, int]) -> list[_Column]:
    """Centre-star alignment of all texts around ``texts[backbone]``."""
    spine = texts[backbone]
    others = [n for n in range(len(texts)) if n != backbone]
    spine_cols = [_Column({backbone: word}, True) for word in spine]
    inserted: list[dict[int, list[Word]]] = [{} for _ in range(len(spine) + 1)]
    encoded = [[ids[w.key] for w in texts[n]] for n in others]
    alignments = align_to([ids[w.key] for w in spine], encoded)
    for n, steps in zip(others, alignments, strict=True):
        slot = 0
        for mine, theirs in steps:
            if theirs is not None:
                slot = theirs + 1
                if mine is not None:
                    spine_cols[theirs].votes[n] = texts[n][mine]
            else:
                inserted[slot].setdefault(n, []).append(texts[n][mine])
    out: list[_Column] = []
    for slot, column in enumerate(spine_cols):
        out.extend(_insertion_columns(inserted[slot]))
        out.append(column)
    out.extend(_insertion_columns(inserted[len(spine)]))
    return out


def _insertion_columns(runs: dict[int, list[Word]]) -> list[_Column]:
    """Columns for the words several answers typed between two backbone words,
    aligned progressively (longest run first): such runs are a word or two."""
    cols: list[_Column] = []
    for n, run in sorted(runs.items(), key=lambda item: (-len(item[1]), item[0])):
        cols = _merge_run(cols, n, run)
    return cols


def _merge_run(cols: list[_Column], n: int, run: list[Word]) -> list[_Column]:
    """Align one run of words to existing columns (a word matches a column that
    already holds its form) and return the new column list."""
    rows, width = len(run) + 1, len(cols) + 1
    d = [[i + j for j in range(width)] for i in range(rows)]
    for i in range(1, rows):
        for j in range(1, width):
            d[i][j] = min(d[i - 1][j - 1] + _misses(cols[j - 1], run[i - 1]),
                          d[i - 1][j] + 1, d[i][j - 1] + 1)
    merged: list[_Column] = []
    i, j = rows - 1, width - 1
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + _misses(cols[j - 1], run[i - 1]):
            cols[j - 1].votes[n] = run[i - 1]
            merged.append(cols[j - 1])
            i, j = i - 1, j - 1
        elif j and d[i][j] == d[i][j - 1] + 1:
            merged.append(cols[j - 1])
            j -= 1
        else:
            merged.append(_Column({n: run[i - 1]}, False))
            i -= 1
    return merged[::-1]


def _misses(column: _Column, word: Word) -> int:
    """0 when the column already holds the word's form, else 1 (a substitution)."""
    return 0 if any(w.key == word.key for w in column.votes.values()) else 1


def vote(column: _Column, weights: list[float], backbone: int) -> tuple[Word | None, float]:
    """The column's winning word (None: the gap wins) and its share of the weight.

    Ties are settled the same way every time: in a backbone column the
    backbone's word wins them, in an inserted column the gap does (a word only
    one side typed is left out); among other words, the earliest answer's wins.
    """
    total = sum(weights)
    by_key: dict[str, float] = {}
    spellings: dict[str, dict[str, float]] = {}
    order = sorted(column.votes, key=lambda n: (n != backbone, n))
    for n in order:
        word = column.votes[n]
        by_key[word.key] = by_key.get(word.key, 0.0) + weights[n]
        spelt = spellings.setdefault(word.key, {})
        spelt[word.surface] = spelt.get(word.surface, 0.0) + weights[n]
    gap = total - sum(by_key.values())
    best_key = max(by_key, key=by_key.__getitem__)  # first of equals wins
    if gap > by_key[best_key] or (gap == by_key[best_key] and not column.backbone):
        return None, gap / total
    spelt = spellings[best_key]
    return Word(best_key, max(spelt, key=spelt.__getitem__)), by_key[best_key] / total


def choose_backbone(dist: np.ndarray, weights: list[float]) -> int:
    """The transcription with the least weighted edit distance to all the others
    (the earliest of equals): the medoid, a text most others largely agree with."""
    cost = dist @ np.asarray(weights, dtype=np.float64)
    return int(np.argmin(cost))


def vote_weight(reliability: float) -> float:
    """A volunteer's vote: the log-odds of their reliability, at least MIN_VOTE;
    nil for a reliability of 0 (or not a number)."""
    if not reliability > 0:
        return 0.0
    r = min(reliability, MAX_RELIABILITY)
    return max(MIN_VOTE, math.log(r / (1.0 - r)))


def merge(texts: list[str], reliabilities: list[float] | None) -> MergedText | None:
    """Merge transcriptions of one line, each answered by a volunteer of the given
    reliability (None: all alike); None when no answer counts. Answers are
    voted on column by column; on free wording (text_medoid) the vote weighs
    volunteers by reliability as it is, and one whole answer, the medoid, is
    kept instead when it is nearer to all the answers. An empty vote (every
    column lost to the gap) falls back to the backbone's own text."""
    weights = ([1.0] * len(texts) if reliabilities is None
               else [vote_weight(r) for r in reliabilities])
    live = [n for n, w in enumerate(weights) if w > 0]
    if not live:
        return None
    split = [words(texts[n]) for n in live]
    kept = [weights[n] for n in live]
    ids: dict[str, int] = {}
    for seq in split:
        for word in seq:
            ids.setdefault(word.key, len(ids))
    seqs = [[ids[w.key] for w in seq] for seq in split]
    dist = pair_distances(seqs)
    sim = text_medoid.similarities(dist, [len(seq) for seq in seqs])
    # "no text" answers (only the mark) say nothing of how freely a line is worded
    wording = [w if any(word.key != UNCLEAR for word in seq) else 0.0
               for w, seq in zip(kept, split, strict=True)]
    agreement = text_medoid.agreement(sim, wording)
    if not text_medoid.may_be_free(agreement, wording):
        return _word_vote(split, kept, ids, dist, agreement)[0]
    trust = [1.0 if reliabilities is None else float(reliabilities[n]) for n in live]
    voted, voted_words = _word_vote(split, text_medoid.free_vote_weights(trust, kept), ids,
                                    dist, agreement, free=True)
    best = text_medoid.medoid(dist, sim, trust)
    vote_edits = distances_to([ids[w.key] for w in voted_words], seqs)
    if not text_medoid.nearer_than_vote(best.index, dist[best.index], vote_edits, trust):
        return voted
    return _whole_answer(split[best.index], best, agreement, live[best.index])


def _word_vote(split: list[list[Word]], kept: list[float], ids: dict[str, int],
               dist: np.ndarray, agreement: float, free: bool = False
               ) -> tuple[MergedText, list[Word]]:
    backbone = choose_backbone(dist, kept)
    cols = columns(split, backbone, ids)
    chosen, shares = [], []
    for column in cols:
        word, share = vote(column, kept, backbone)
        shares.append(share)
        if word is not None:
            chosen.append(word)
    if not chosen:
        chosen = split[backbone]
    return MergedText(
        text=" ".join(word.surface for word in chosen),
        confidence=float(np.mean(shares)) if shares else 0.0,
        columns=len(cols),
        unanimous=sum(1 for share in shares if share >= 1.0 - 1e-9),
        unclear=sum(1 for word in chosen if word.key == UNCLEAR),
        similarity=agreement,
        free=free,
    ), chosen


def _whole_answer(answer: list[Word], best: text_medoid.WholeAnswer, agreement: float,
                  index: int) -> MergedText:
    return MergedText(
        text=" ".join(word.surface for word in answer),
        confidence=best.confidence,
        columns=0,
        unanimous=0,
        unclear=sum(1 for word in answer if word.key == UNCLEAR),
        merge="medoid",
        similarity=agreement,
        free=True,
        chosen=index,
    )
