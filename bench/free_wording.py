"""Synthetic crowd translations: answers that agree in meaning, not in words.

shared/data/dev has transcripts only (speech, where volunteers type the same
words); crowd translations and descriptions are free wording, each volunteer
phrasing the same content their own way. This makes such a crowd, with known
truth, so the text merge can be measured on it (bench/task_types_text.py):

- a source sentence is a few slots (when, who, what they did, how, where),
  each a concept from the vendored list below; every concept has several
  renderings, the first the most usual (a translator picks rendering k with
  weight 1 / (k + 1));
- two kinds of crowd: "synonyms", where translators keep one sentence shape
  (the when-phrase first or last, how and where either way round), and
  "moved", where each of the when-, how- and where-phrases goes to the front
  or the back as each translator likes (as in the real crowd translations
  the issue describes, where a word vote lost to ROVER by about 5 points of
  WER, as it does here);
- volunteers come from a heavy-tailed pool (a few give many answers), most
  careful, some sloppy (a phrase left out, typing slips), a few spammers
  (words at random);
- the reference is one more careful translator's wording: as with real
  translation sets, a merge is scored against one valid wording of several,
  so no method gets near 0% WER.

The phrasings are a small hand-made list, not real translations; the figures
are a check that the merge takes the right road on free wording, not a
forecast for a real set.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

SEED = 15
ANSWERS_PER_TASK = 7
WORKERS = 80
SKILLS = {"careful": (0.02, 0.01), "sloppy": (0.15, 0.06)}  # (drop a phrase, slip a word)
SHARES = (("careful", 0.7), ("sloppy", 0.2), ("spammer", 0.1))
Shape = Callable[[random.Random], list[str]]  # a translator's order of the slots

# slot -> concepts -> renderings, the most usual first
PHRASES: dict[str, list[list[str]]] = {
    "when": [
        ["in the morning", "this morning", "early in the day", "at dawn"],
        ["last night", "yesterday evening", "during the night", "late last night"],
        ["on sunday", "last sunday", "on sunday afternoon"],
        ["after lunch", "after the midday meal", "once lunch was over"],
        ["every winter", "each winter", "in winter every year", "winter after winter"],
    ],
    "who": [
        ["the old man", "the elderly man", "an old man", "the aged gentleman"],
        ["the children", "the kids", "the little ones", "the young children"],
        ["my sister", "my older sister", "my big sister"],
        ["the farmer", "the peasant", "the old farmer", "our farmer"],
        ["the teacher", "our teacher", "the schoolmaster", "the schoolteacher"],
        ["the doctor", "the physician", "the village doctor"],
    ],
    "did": [
        ["walked to the market", "went to the market", "strolled to the bazaar",
         "made his way to the market"],
        ["bought fresh bread", "purchased fresh bread", "got some fresh bread",
         "bought new bread"],
        ["read the newspaper", "read the paper", "looked through the newspaper"],
        ["repaired the fence", "fixed the fence", "mended the old fence"],
        ["visited their grandmother", "went to see their grandmother",
         "called on their grandma"],
        ["cooked dinner for everyone", "made dinner for all", "prepared supper for everybody"],
        ["wrote a long letter", "wrote a lengthy letter", "penned a long letter"],
    ],
    "how": [
        ["without a word", "silently", "in silence", "without saying anything"],
        ["despite the cold", "even though it was cold", "in spite of the cold weather"],
        ["with great care", "carefully", "very carefully", "with much care"],
        ["because it was raining", "since it was raining", "as it rained", "due to the rain"],
        ["in a hurry", "hurriedly", "in great haste", "quickly"],
    ],
    "where": [
        ["near the river", "by the river", "close to the river", "at the riverside"],
        ["in the village", "in the small village", "in our village"],
        ["behind the church", "at the back of the church", "behind the old church"],
        ["at home", "in the house", "inside the house"],
    ],
}


@dataclass(frozen=True)
class Crowd:
    answers: list[tuple[str, str, str]]  # (task, worker, answer)
    gold: dict[str, str]


def crowd(tasks: int, moved: bool = False, seed: int = SEED) -> Crowd:
    """``tasks`` sentences, ANSWERS_PER_TASK answers each, and their references;
    ``moved``: translators place the when-, how- and where-phrases freely."""
    rng = random.Random(seed)
    shape = _moved if moved else _kept
    kinds = rng.choices([kind for kind, _ in SHARES], [share for _, share in SHARES],
                        k=WORKERS)
    participation = [1.0 / (n + 1) for n in range(WORKERS)]  # heavy-tailed, Zipf
    answers, gold = [], {}
    for t in range(tasks):
        task = f"free{t:04d}"
        source = _source(rng)
        gold[task] = _sentence(rng, source, shape, drop=0.0, slip=0.0)
        for worker in _distinct(rng, participation, ANSWERS_PER_TASK):
            answers.append((task, f"v{worker:02d}",
                            _answer(rng, source, shape, kinds[worker])))
    return Crowd(answers, gold)


def _source(rng: random.Random) -> dict[str, int]:
    """One concept per slot; who and did always, the others often."""
    return {slot: rng.randrange(len(concepts)) for slot, concepts in PHRASES.items()
            if slot in ("who", "did") or rng.random() < 0.7}


def _distinct(rng: random.Random, weights: list[float], k: int) -> list[int]:
    chosen: list[int] = []
    while len(chosen) < k:
        worker = rng.choices(range(len(weights)), weights)[0]
        if worker not in chosen:
            chosen.append(worker)
    return chosen


def _answer(rng: random.Random, source: dict[str, int], shape: Shape, kind: str) -> str:
    if kind == "spammer":
        vocabulary = [w for concepts in PHRASES.values() for c in concepts for r in c
                      for w in r.split()]
        return " ".join(rng.choices(vocabulary, k=rng.randint(4, 10)))
    drop, slip = SKILLS[kind]
    return _sentence(rng, source, shape, drop, slip)


def _sentence(rng: random.Random, source: dict[str, int], shape: Shape, drop: float,
              slip: float) -> str:
    phrases = {slot: _rendering(rng, PHRASES[slot][concept]) for slot, concept in source.items()
               if slot in ("who", "did") or rng.random() >= drop}
    text = " ".join(phrases[slot] for slot in shape(rng) if slot in phrases)
    words = [_slip(rng, word) if rng.random() < slip else word for word in text.split()]
    text = " ".join(words)
    return text[:1].upper() + text[1:] + ("." if rng.random() < 0.7 else "")


def _kept(rng: random.Random) -> list[str]:
    """One sentence shape: when first or last, how and where either way round."""
    tail = ["how", "where"] if rng.random() >= 0.4 else ["where", "how"]
    core = ["who", "did", *tail]
    return ["when", *core] if rng.random() < 0.5 else [*core, "when"]


def _moved(rng: random.Random) -> list[str]:
    """Each of when, how and where at the front or the back, in any order."""
    order = ["who", "did"]
    for slot in rng.sample(["when", "how", "where"], 3):
        order.insert(rng.choice([0, len(order)]), slot)
    return order


def _rendering(rng: random.Random, renderings: list[str]) -> str:
    return rng.choices(renderings, [1.0 / (k + 1) for k in range(len(renderings))])[0]


def _slip(rng: random.Random, word: str) -> str:
    """One typing slip: a letter dropped, doubled or swapped with the next."""
    at = rng.randrange(len(word))
    how = rng.randrange(3)
    if how == 0 and len(word) > 1:
        return word[:at] + word[at + 1:]
    if how == 1 or at + 1 >= len(word):
        return word[:at] + word[at] + word[at:]
    return word[:at] + word[at + 1] + word[at] + word[at + 2:]
