"""tag: a volunteer picks every tag that fits an image or a text.

Tags come from the project's vocabulary and, when the project allows it, in
the volunteer's own words. Typed tags are brought to one form before they
are counted (case, blanks, simple plurals, the project's synonyms), so
"Foxes" and "fox" vote together. Each tag is voted on separately: it is in
the result when its weighted share of the answers reaches the threshold.
"""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validates_schema
from marshmallow.validate import Length, Range

from task_types.base import Aggregate, Media, Microtask, TaskType
from task_types.classify import (
    ClassifyItemSchema,
    StrippedString,
    classify,
    plain_characters,
    unique_labels,
)
from task_types.weighting import answer_weights

SEPARATOR = ";"  # between tags in a CSV cell, so no tag may contain it
MAX_VOCABULARY = 200
MAX_TAG = 50  # any tag: listed, a synonym's meaning, or a volunteer's own once normalised
MAX_TYPED = 200  # a tag or a synonym as sent, before normalisation trims it
MAX_TAGS = 200  # the most max_tags may allow
MAX_SYNONYMS = 1000
EPSILON = 1e-9  # float sums of weights must not flip a share sitting on the threshold

# Words that look plural but are not, or whose singular is the same word.
INVARIANT = frozenset({"species", "series", "news", "lens", "rhinoceros"})
NOT_PLURAL = ("ss", "us", "is")  # glass, cactus, ibis
PLURAL_ES = ("ches", "shes", "sses", "xes", "zzes")  # churches, bushes, glasses, foxes


def plain(text: str) -> str:
    """Case and blanks ignored: how a typed tag is matched to the vocabulary."""
    return " ".join(text.casefold().split())


def singular(word: str) -> str:
    """English plural to singular for the regular forms only ("foxes",
    "penguins", "berries"); words that merely end in s ("glass", "bus") stay.
    A wrong guess costs little: it splits or merges two free tags' votes, and
    the project's synonyms can set it right."""
    if len(word) <= 3 or word in INVARIANT or word.endswith(NOT_PLURAL) or not word.endswith("s"):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(PLURAL_ES):
        return word[:-2]
    return word[:-1]


def normal_form(text: str) -> str:
    """A free tag's one form: casefolded, blanks collapsed, the last word made
    singular ("Red  Foxes" -> "red fox")."""
    words = plain(text).split(" ")
    words[-1] = singular(words[-1])
    return " ".join(words)


def split_cell(text: str) -> list[str]:
    """The tags in one CSV cell: the parts between separators, blanks around
    them and empty parts dropped ("fox; Deer;;grass" -> three). An answers CSV
    (`bitesize consensus`) and an imported CSV's gold cell are read alike."""
    return [part.strip() for part in text.split(SEPARATOR) if part.strip()]


def tag_characters(text: str) -> None:
    """Refuse what would break the CSV cell (the separator) or hide in it
    (control and direction-changing characters)."""
    if SEPARATOR in text:
        raise ValidationError(f"Tags cannot contain {SEPARATOR!r}: it separates tags in CSV files.")
    plain_characters(text)


class TagString(fields.String):
    """A tag as the project writes it: blanks around it dropped and runs of
    blanks inside made one space, so "Red  fox" and "Red fox" are one tag."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return " ".join(super()._deserialize(value, attr, data, **kwargs).split())


def synonym_map(raw: dict[str, str], tags: list[str], free_tags: bool) -> dict[str, str]:
    """The config's synonyms in normal form on both sides, checked so that
    applying them once is enough and never leads outside what is allowed."""
    forms = {normal_form(tag) for tag in tags}
    result: dict[str, str] = {}
    for variant, canonical in raw.items():
        key, value = normal_form(variant), normal_form(canonical)
        if not key or not value:
            raise ValidationError("A synonym and the word it stands for cannot be blank.")
        if key == value:
            continue  # "foxes": "fox" says what normalising already does
        if key in forms:
            raise ValidationError(f"{variant!r} is one of the tags; it cannot stand for another.")
        if value not in forms and not free_tags:
            raise ValidationError(f"{canonical!r} is not one of the tags, and free tags are off.")
        if len(value) > MAX_TAG:
            raise ValidationError(f"{canonical!r} is longer than a tag may be "
                                  f"({MAX_TAG} characters).")
        if result.setdefault(key, value) != value:
            raise ValidationError(f"{variant!r} is given two meanings.")
    for key, value in result.items():
        if value in result:
            raise ValidationError(f"{value!r} is itself a synonym: map {key!r} straight to "
                                  f"{result[value]!r}.")
    return result


class TagConfigSchema(Schema):
    question = StrippedString(required=True, validate=Length(1, 500))
    instructions = fields.String(load_default="", validate=Length(max=5000))
    tags = fields.List(
        TagString(validate=[Length(1, MAX_TAG), tag_characters]),
        load_default=list,
        validate=[Length(max=MAX_VOCABULARY), unique_labels],
    )
    free_tags = fields.Boolean(load_default=False)
    synonyms = fields.Dict(
        keys=fields.String(validate=[Length(1, MAX_TYPED), tag_characters]),
        values=fields.String(validate=[Length(1, MAX_TYPED), tag_characters]),
        load_default=dict,
        validate=Length(max=MAX_SYNONYMS),
    )
    threshold = fields.Float(
        load_default=0.5, allow_nan=False, validate=Range(0, 1, min_inclusive=False),
        metadata={"label": "Share of volunteers needed for a tag",
                  "description": "A tag is in the result when at least this share of the "
                                 "volunteers chose it (0.5: half of them)."},
    )
    max_tags = fields.Integer(load_default=20, strict=True, validate=Range(1, MAX_TAGS))

    @validates_schema
    def check_vocabulary(self, data: dict, **kwargs: Any) -> None:
        if not data.get("tags") and not data.get("free_tags"):
            raise ValidationError("Give at least one tag, or allow free tags.", "tags")

    @post_load
    def normalise_synonyms(self, data: dict, **kwargs: Any) -> dict:
        try:
            data["synonyms"] = synonym_map(data["synonyms"], data["tags"], data["free_tags"])
        except ValidationError as exc:
            raise ValidationError(exc.messages, "synonyms") from exc
        return data


class Vocabulary:
    """A project's tags, and how a typed tag becomes one of them or, where free
    tags are allowed, a free tag in normal form."""

    def __init__(self, config: dict) -> None:
        self.tags = list(config["tags"])
        self.free = bool(config["free_tags"])
        self.synonyms = dict(config["synonyms"])
        self.order = {tag: i for i, tag in enumerate(self.tags)}
        self._by_plain = {plain(tag): tag for tag in self.tags}
        self._by_form: dict[str, str] = {}
        for tag in self.tags:
            self._by_form.setdefault(normal_form(tag), tag)  # the first listed wins

    def canonical(self, text: str) -> str:
        """The tag ``text`` stands for, in the vocabulary's spelling when it is
        one of the tags; raises ValidationError when it is not allowed."""
        exact = self._by_plain.get(plain(text))
        if exact is not None:
            return exact  # before plurals: "Glasses" and "Glass" may both be tags
        form = normal_form(text)
        form = self.synonyms.get(form, form)
        known = self._by_form.get(form)
        if known is not None:
            return known
        if not self.free:
            raise ValidationError(f"{text[:MAX_TAG]!r} is not one of the project's tags.")
        if not form or len(form) > MAX_TAG:
            raise ValidationError(f"A tag has 1 to {MAX_TAG} characters.")
        tag_characters(form)
        return form

    def canonical_tags(self, texts: list[str], limit: int, field_name: str) -> list[str]:
        """Each text's tag, duplicates dropped, in the order given."""
        try:
            tags = list(dict.fromkeys(self.canonical(text) for text in texts))
        except ValidationError as exc:
            raise ValidationError(exc.messages, field_name) from exc
        if len(tags) > limit:
            raise ValidationError(f"At most {limit} tags.", field_name)
        return tags

    def counts(self, tag: str) -> bool:
        """Whether a stored answer's tag still counts after the config was edited."""
        return self.free or tag in self.order

    def rank(self, tag: str) -> int:
        return self.order.get(tag, len(self.tags))


class TagItemSchema(ClassifyItemSchema):
    """classify's item (an image or a text, a thumb, an id), with a set of tags
    as its gold."""

    gold = fields.List(fields.String(validate=Length(1, MAX_TYPED)))

    def __init__(self, vocabulary: Vocabulary, max_tags: int, **kwargs: Any) -> None:
        super().__init__(vocabulary.tags, **kwargs)
        self.vocabulary = vocabulary
        self.max_tags = max_tags

    def check_label(self, value: list[str], field_name: str) -> None:
        """Gold must be a set of tags an answer could give."""
        self.vocabulary.canonical_tags(value, self.max_tags, field_name)

    @post_load
    def normalise_gold(self, data: dict, **kwargs: Any) -> dict:
        if "gold" in data:
            data["gold"] = self.vocabulary.canonical_tags(data["gold"], self.max_tags, "gold")
        return data


class TagAnswerSchema(Schema):
    """``{"tags": [...]}``; an empty list means "none of these". Loading
    normalises: vocabulary spelling, free tags in normal form, no repeats."""

    tags = fields.List(
        fields.String(validate=Length(1, MAX_TYPED)), required=True, validate=Length(max=MAX_TAGS)
    )

    def __init__(self, vocabulary: Vocabulary, max_tags: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocabulary = vocabulary
        self.max_tags = max_tags

    @post_load
    def normalise(self, data: dict, **kwargs: Any) -> dict:
        return {"tags": self.vocabulary.canonical_tags(data["tags"], self.max_tags, "tags")}


class TagType(TaskType):
    name = "tag"
    title = "Tag"
    description = ("Volunteers pick every tag that fits an image or a text, from the "
                   "project's list or in their own words.")
    lease_seconds = 90
    config_schema = TagConfigSchema

    def item_schema(self, config: dict) -> Schema:
        return TagItemSchema(Vocabulary(config), config["max_tags"])

    def split(self, item: dict, config: dict, media: Media | None = None) -> list[Microtask]:
        """One task per item, with the payload classify would show."""
        return classify.split(item, config, media)

    def answer_schema(self, config: dict) -> Schema:
        return TagAnswerSchema(Vocabulary(config), config["max_tags"])

    def aggregate(
        self, answers: list[dict], weights: list[float] | None, config: dict
    ) -> Aggregate:
        """Each tag's weighted share of all answers; the tags reaching the
        threshold, most agreed first (then vocabulary order, then name).

        The confidence is the weakest agreement with any decision taken: for a
        tag put in, its share; for a tag left out, the share that left it out.
        One contested tag makes the whole set unsure, which is what asking
        more volunteers can fix. When every answer was "none of these" the
        crowd agrees on the empty set: confidence 1.
        """
        weights = answer_weights(answers, weights)
        total = sum(weights)
        if total <= 0:
            return Aggregate(None, 0.0, {})
        vocabulary = Vocabulary(config)
        shares = {tag: min(vote / total, 1.0)
                  for tag, vote in tag_votes(answers, weights, vocabulary).items()}
        ranked = sorted(shares, key=lambda tag: (-shares[tag], vocabulary.rank(tag), tag))
        chosen = [tag for tag in ranked if shares[tag] >= config["threshold"] - EPSILON]
        kept = set(chosen)
        confidence = min((shares[tag] if tag in kept else 1.0 - shares[tag] for tag in ranked),
                         default=1.0)
        return Aggregate(chosen, max(0.0, confidence), {tag: shares[tag] for tag in ranked})

    def score(self, answer: dict, gold: Any, config: dict | None = None) -> float:
        """Jaccard similarity of the two tag sets (1 when both are empty), so a
        missed tag and an extra tag cost alike."""
        given = tag_set(answer.get("tags") if isinstance(answer, dict) else None)
        truth = tag_set(gold)
        if given is None or truth is None:
            return 0.0
        if not given and not truth:
            return 1.0
        return len(given & truth) / len(given | truth)

    def offline_config(self) -> dict:
        """Any tag goes: an answers CSV has no vocabulary to check against."""
        return self.load_config({"question": "Which tags fit?", "free_tags": True})

    def answer_from_text(self, text: str, config: dict) -> dict:
        """``"fox; Deer;grass"`` -> three tags; blanks between separators are dropped."""
        return {"tags": split_cell(text)}

    def value_to_text(self, value: Any) -> str:
        return "" if value is None else SEPARATOR.join(value)

    def answer_to_text(self, answer: dict) -> str:
        """The tags in normal form, which an answers CSV merged offline (no
        vocabulary, free tags) reads back unchanged; "none of these" is ""."""
        return SEPARATOR.join(dict.fromkeys(normal_form(tag) for tag in answer.get("tags", ())))

    def example(self) -> dict:
        return {
            "config": {
                "question": "What can you see in this photo?",
                "tags": ["Deer", "Fox", "Badger", "Bird", "Person"],
                "free_tags": True,
                "synonyms": {"reynard": "Fox"},
                "instructions": "Tag every animal you see; add your own tags for anything else.",
            },
            "item": {"image": "https://example.org/trap/0001.jpg", "id": "0001", "gold": ["Deer"]},
            "answers": [{"tags": ["Deer"]}, {"tags": ["deer", "grass"]}, {"tags": ["Deer", "Fox"]}],
        }


def tag_votes(answers: list[dict], weights: list[float], vocabulary: Vocabulary) -> dict:
    """Weight per tag; a tag the config no longer allows (it was edited) is
    ignored rather than counted."""
    votes: dict[str, float] = {}
    for answer, weight in zip(answers, weights, strict=True):
        for tag in dict.fromkeys(answer.get("tags") or ()):
            if vocabulary.counts(tag):
                votes[tag] = votes.get(tag, 0.0) + weight
    return votes


def tag_set(tags: Any) -> set[str] | None:
    """Tags compared in normal form, so gold written "Foxes" still matches
    "Fox"; None when ``tags`` is not a list of strings (a malformed gold)."""
    if not isinstance(tags, list | tuple) or not all(isinstance(tag, str) for tag in tags):
        return None
    return {normal_form(tag) for tag in tags}


tag = TagType()
