"""Free wording (translations, descriptions): telling it apart, and merging it.

A word-by-word vote (text_align) rebuilds a text from columns of words that
line up across answers. On speech or a scanned line volunteers type the same
words, a column holds rival readings of one word, and the vote is the right
merge. When each volunteer words the text their own way, a column holds
pieces of different sentences. Which kind a task is, is measured from its
answers alone:

- Word agreement: the weighted mean, over pairs of answers, of their word
  similarity 1 - d / (longer length), d the word edit distance. At 0.5 or
  more a pair's best alignment matches more words than it edits: the columns
  are readings of one word and the vote stands as it is (97% of CrowdSpeech
  tasks). Below it, with three answers or more, the task is free wording.

On free wording two things change.

1. The vote's weights. Reliabilities come from agreement (1 - character error
   rate against the merged text). On free wording careful volunteers score
   about 0.5 on every task, and the vote's log-odds weights, which read a
   reliability as the chance of typing the right word (0.5 being chance),
   then give one volunteer just above 0.5 dozens of times the weight of
   others just below: the "merge" is that one answer. So when the answering
   volunteers' median reliability is below a newcomer's (0.7, the engine's
   prior for someone not yet scored), the reliabilities are taken as they
   are, as relative trust. A hard line on speech also agrees little, but its
   volunteers score well elsewhere, so their log-odds weights are kept.
2. A whole answer may replace the vote: the medoid, the answer with the
   least reliability-weighted word edit distance to the others. The vote's
   text and the medoid are each measured against the answers, in weighted
   word edits, leaving the medoid's own answer out of both sums (it would
   favour itself); the one nearer to what volunteers typed is kept, since a
   reference is one more wording of the same content.

Measured in bench/task_types_text.py (WER, 600 tasks each): on synthetic crowd
translations whose phrases move about, step 1 takes the merge from 69.6% to
63.0%, below crowd-kit ROVER's 63.8%; where translators keep one sentence
shape, 50.2% to 50.0% (ROVER 51.1%); on CrowdSpeech 82 tasks count as free
wording and no result changes (5.46%). On all three the vote's text was
nearer the crowd than the medoid on every task, so step 2 is a guard for
answers whose columns a vote cannot make sense of. Keeping the medoid on
every free-wording task instead reads better (one volunteer's sentence, not
phrases from several) but scores worse: 65.8% and 52.4%, above ROVER, and
5.52% on CrowdSpeech.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FREE_WORDING = 0.5  # below this word agreement a task is free wording
NEWCOMER = 0.7  # engine.quality.consensus.UNKNOWN_RELIABILITY: a volunteer not yet scored


@dataclass(frozen=True)
class WholeAnswer:
    """The medoid (an index into the answers) and the evidence."""

    index: int
    confidence: float  # the weighted share of the answers' words that agree with it


def similarities(dist: np.ndarray, lengths: list[int]) -> np.ndarray:
    """Word similarity of every two answers, 1 - d / (longer length): 1 for the
    same words, 0 for nothing in common; two empty answers are alike."""
    longest = np.maximum.outer(np.asarray(lengths), np.asarray(lengths)).astype(np.float64)
    longest[longest == 0] = 1.0
    return 1.0 - dist / longest


def agreement(sim: np.ndarray, weights: list[float]) -> float:
    """The weighted mean word similarity over pairs of answers, a pair weighing
    the product of its answers' weights, so one careless volunteer's text
    barely moves it; 1.0 with fewer than two answers (nothing disagrees)."""
    w = np.asarray(weights, dtype=np.float64)
    first, second = np.triu_indices(len(w), k=1)
    pair = w[first] * w[second]
    if not pair.sum() > 0:
        return 1.0
    return float(pair @ sim[first, second] / pair.sum())


def may_be_free(word_agreement: float, weights: list[float]) -> bool:
    """Whether a task is free wording. Two answers never are: with no majority
    either way, the vote keeps the more reliable volunteer's answer, which is
    the medoid of two."""
    answers = sum(1 for weight in weights if weight > 0)
    return answers >= 3 and word_agreement < FREE_WORDING


def free_vote_weights(reliabilities: list[float], log_odds: list[float]) -> list[float]:
    """The vote's weights on free wording: the reliabilities as they are when the
    volunteers' median is below a newcomer's (step 1 of the module docstring),
    else the usual log-odds."""
    if float(np.median(reliabilities)) < NEWCOMER:
        return list(reliabilities)
    return log_odds


def medoid(dist: np.ndarray, sim: np.ndarray, weights: list[float]) -> WholeAnswer:
    """The answer with the least weighted word edit distance to all answers (edits,
    not similarities: the error rate a merge is judged by adds edits up); the
    earliest of equals, so the same answers give the same text. An answer's
    own weight is a distance it does not pay, so between equally central
    answers the more reliable volunteer's wins."""
    w = np.asarray(weights, dtype=np.float64)
    best = int(np.argmin(dist @ w))
    return WholeAnswer(best, float(sim[best] @ w / w.sum()))


def nearer_than_vote(best: int, medoid_edits: np.ndarray, vote_edits: np.ndarray,
                     weights: list[float]) -> bool:
    """Whether the medoid answer is nearer the crowd than the vote's text: the
    weighted word edits from each to every answer but the medoid's own."""
    w = np.asarray(weights, dtype=np.float64).copy()
    w[best] = 0.0
    return float(medoid_edits @ w) < float(vote_edits @ w)
