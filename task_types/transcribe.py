"""transcribe: volunteers type the text of one line (or region) of a scanned page.

A page is cut into line images (page_lines), or into the regions the charity
drew itself; each line is one task. Answers are merged word by word
(text_align); where volunteers word the text freely and agree little word
for word, the merge adapts its weights and may keep the best whole answer
instead (text_medoid). The lines are put back together into the page's text.

Choices a charity may want to know about:
- a volunteer types ``[unclear]`` for a word they cannot read; the mark is a
  word of its own in the vote, so a word most volunteers could not read stays
  marked in the result instead of being guessed;
- an answer is never empty: a line nobody can read is ``[unclear]``, and so
  is a blank cell in an answers CSV (a volunteer who typed nothing);
- whitespace carries nothing (runs become one space), so a pasted line with
  a line break is the same answer as one typed on one line;
- scores compare text ignoring case: volunteers' capitalisation habits differ
  far more than their readings, and reliability should measure reading;
- in a page's text a line without a result shows as ``[unclear]``, so the
  page keeps its shape and the gap is visible.
"""
from __future__ import annotations

import hashlib
import io
import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load
from marshmallow.validate import Length, OneOf, Range
from PIL import Image, ImageDraw

from task_types import imaging
from task_types.base import Aggregate, Media, Microtask, Region, TaskResult, TaskType
from task_types.classify import media_ref
from task_types.errors import ItemError
from task_types.page_lines import LineCut, find_lines
from task_types.text_align import UNCLEAR, MergedText, char_distance, clean_text, merge

MAX_TEXT = 2000
MAX_REGIONS = 500
MAX_LINES = 500  # more "lines" than this on one page is noise, not writing
MAX_SIDE = 100_000  # pixels; imaging refuses pages anywhere near this anyway
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}")
EMPTY = "Type the line, or [unclear] where you cannot read it."


class TranscriptionText(fields.String):
    """A transcription: whitespace collapsed, the [unclear] mark in one spelling,
    at most MAX_TEXT characters, no control characters, never empty."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = clean_text(super()._deserialize(value, attr, data, **kwargs))
        if not text:
            raise ValidationError(EMPTY)
        if len(text) > MAX_TEXT:
            raise ValidationError(f"At most {MAX_TEXT} characters.")
        if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text):
            raise ValidationError("Control characters are not allowed.")
        return text


def language_tag(value: str) -> None:
    """A language hint is a BCP 47 tag ("en", "de-AT", "cy") or nothing: it ends
    up in the input's lang attribute, where browsers choose spell checking."""
    if value and not LANGUAGE.fullmatch(value):
        raise ValidationError('Must be a language tag such as "en" or "de-AT".')


def check_box(box: list[int]) -> None:
    """A region is [x, y, width, height] in the page's pixels, not empty."""
    if len(box) != 4:
        raise ValidationError("A region is [x, y, width, height].")
    if box[2] < 1 or box[3] < 1:
        raise ValidationError("A region's width and height must be at least 1.")


class TranscribeConfigSchema(Schema):
    instructions = fields.String(load_default="", validate=Length(max=5000))
    language = fields.String(load_default="", validate=[Length(max=35), language_tag])
    split = fields.String(load_default="lines", validate=OneOf(["lines", "none"]))
    min_line_height = fields.Integer(strict=True, load_default=12, validate=Range(2, 1000))
    merge_gap = fields.Integer(strict=True, load_default=6, validate=Range(0, 500))
    padding = fields.Integer(strict=True, load_default=8, validate=Range(0, 200))


class TranscribeItemSchema(Schema):
    """One page (or, with split "none", one line) to transcribe.

    Gold needs to know the tasks in advance: a text for a one-task item, one
    text (or null) per region when regions are given; a page cut automatically
    cannot carry gold, since its lines are only known after the cut.
    """

    image = fields.String(required=True, validate=media_ref)
    id = fields.String(validate=Length(max=200))
    regions = fields.List(
        fields.List(fields.Integer(strict=True, validate=Range(0, MAX_SIDE)),
                    validate=check_box),
        validate=Length(1, MAX_REGIONS),
    )
    gold = fields.Raw()

    def __init__(self, config: dict, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.split_mode = config["split"]

    @post_load
    def check_gold(self, data: dict, **kwargs: Any) -> dict:
        if "gold" not in data:
            return data
        if "regions" in data:
            data["gold"] = self._region_gold(data["gold"], len(data["regions"]))
        elif self.split_mode == "none":
            data["gold"] = _gold_text(data["gold"])
        else:
            raise ValidationError("Gold needs regions, or split none: the lines of an "
                                  "automatic cut are not known in advance.", "gold")
        return data

    @staticmethod
    def _region_gold(gold: Any, count: int) -> list[str | None]:
        if not isinstance(gold, list) or len(gold) != count:
            raise ValidationError(f"Give a list of {count} texts (or nulls), one per region.",
                                  "gold")
        return [None if text is None else _gold_text(text) for text in gold]


def _gold_text(value: Any) -> str:
    try:
        return TranscriptionText().deserialize(value)
    except ValidationError as exc:
        raise ValidationError(exc.messages, "gold") from exc


class TranscribeAnswerSchema(Schema):
    text = TranscriptionText(required=True)


class TranscribeType(TaskType):
    name = "transcribe"
    title = "Transcribe"
    description = "Volunteers type the text of one line of a scanned page."
    lease_seconds = 300  # reading old handwriting takes minutes, not seconds
    min_seconds = 3.0
    multiline_text = True  # free wording (a translation, a description) may break lines
    config_schema = TranscribeConfigSchema

    def item_schema(self, config: dict) -> Schema:
        return TranscribeItemSchema(config)

    def split(self, item: dict, config: dict, media: Media | None = None) -> list[Microtask]:
        """One task per line: the charity's regions, else the lines found on the
        page (split "lines"), else the image as it is (split "none"). A page on
        which no line is found is one task, the whole page: a volunteer can still
        read what the cutter could not see. No item id in a payload (see
        classify's split)."""
        if "regions" not in item and config["split"] == "none":
            return [Microtask({"image": item["image"], "line": 1}, item.get("gold"))]
        if media is None:
            message = "Cutting a page into lines needs the media store; none was given."
            raise ItemError(message, {"image": [message]})
        page = imaging.read_image(media, item["image"], "the page")
        page, boxes, golds = _cut(page, item, config)
        return [Microtask({
            "image": media.store(imaging.encode_jpeg(page.crop(_corners(box))), "jpg"),
            "page": item["image"], "line": n, "box": box, "size": list(page.size)}, gold)
            for n, (box, gold) in enumerate(zip(boxes, golds, strict=True), 1)]

    def answer_schema(self, config: dict) -> Schema:
        return TranscribeAnswerSchema()

    def aggregate(
        self, answers: list[dict], weights: list[float] | None, config: dict
    ) -> Aggregate:
        """Word-by-word vote over a multiple alignment, each answer weighted by
        the log-odds of its volunteer's reliability (text_align); on free
        wording (text_medoid), reliabilities may weigh as they are, and the
        medoid answer replaces the vote when it is nearer to the answers.
        ``support`` says which merge made the text ("merge": "words" or
        "medoid"), the word agreement measured and whether it made the task
        free wording. The same answers always give the same text."""
        if weights is not None and len(weights) != len(answers):
            raise ValueError(f"{len(answers)} answers but {len(weights)} weights")
        if weights is not None and any(not weight >= 0 for weight in weights):
            raise ValueError(f"weights must be reliabilities >= 0, got {weights}")
        merged = merge([answer["text"] for answer in answers], weights) if answers else None
        if merged is None:
            return Aggregate(None, 0.0, {"answers": len(answers)})
        return Aggregate(merged.text, merged.confidence, _support(merged, len(answers)))

    def combine(self, task_results: list[TaskResult], item: dict) -> Aggregate:
        """The page's text, its lines in reading order (by top, then left), one
        per row; confidence is the mean of the lines' weighted by their length."""
        if not task_results:
            return Aggregate(None, 0.0)
        ordered = sorted(task_results, key=_reading_order)  # stable: no box keeps task order
        texts = [r.value if isinstance(r.value, str) and r.value else UNCLEAR for r in ordered]
        sizes = [len(text) for text in texts]
        confidence = sum(max(0.0, min(1.0, r.confidence)) * size
                         for r, size in zip(ordered, sizes, strict=True)) / sum(sizes)
        missing = sum(1 for r in ordered if not isinstance(r.value, str) or not r.value)
        return Aggregate("\n".join(texts), confidence,
                         {"lines": len(texts), "missing": missing})

    def regions(self, task_results: list[TaskResult], item: dict) -> list[Region]:
        """Each transcribed line where it stands on the page (lines without a box,
        or without a result yet, have no place to annotate)."""
        out = []
        for result in sorted(task_results, key=_reading_order):
            box = result.payload.get("box") if isinstance(result.payload, dict) else None
            if box and isinstance(result.value, str) and result.value:
                out.append(Region(tuple(box), result.value, result.confidence, "supplementing"))
        return out

    def score(self, answer: dict, gold: Any, config: dict | None = None) -> float:
        """1 - character error rate against ``gold``, whitespace collapsed and case
        ignored, clipped to 0..1; 0.0 for a missing or malformed gold."""
        text = answer.get("text") if isinstance(answer, dict) else None
        if not isinstance(gold, str) or not isinstance(text, str):
            return 0.0
        truth = " ".join(gold.split()).casefold()
        typed = " ".join(text.split()).casefold()
        if not truth:
            return 1.0 if not typed else 0.0
        return max(0.0, 1.0 - char_distance(typed, truth) / len(truth))

    def offline_config(self) -> dict:
        return self.load_config({})

    def answer_from_text(self, text: str, config: dict) -> dict:
        """A blank cell is a volunteer who typed nothing: no text, which an answer
        says with the mark (an answer is never empty), not an unreadable row."""
        return {"text": text if text.strip() else UNCLEAR}

    def answer_to_text(self, answer: dict) -> str:
        return answer["text"]

    def value_to_text(self, value: Any) -> str:
        return value if isinstance(value, str) else ""

    def example(self) -> dict:
        page = _example_page()
        return {
            "config": {"instructions": "Type each line as written, spelling and all.",
                       "language": "en"},
            "item": {"image": page[0], "id": "letter-12/p1"},
            "answers": [{"text": "Dear Sir, I write from the front"},
                        {"text": "Dear Sir I write from the [unclear]"},
                        {"text": "dear sir, I write from the front"}],
            "media": {page[0]: page[1]},
        }


def _support(merged: MergedText, answers: int) -> dict:
    """The evidence of a merge; "agreement" is its confidence (the mean column
    agreement, or the weighted share of words agreeing with the medoid)."""
    support = {"answers": answers, "merge": merged.merge,
               "word_agreement": round(merged.similarity, 4), "free_wording": merged.free}
    if merged.merge == "medoid":
        support["chosen"] = merged.chosen
    else:
        support.update(columns=merged.columns, unanimous=merged.unanimous)
    support.update(unclear=merged.unclear, agreement=round(merged.confidence, 4))
    return support


def _cut(page: Image.Image, item: dict, config: dict
         ) -> tuple[Image.Image, list[list[int]], list[str | None]]:
    """The page to crop from (turned upright if it was tilted), the lines' boxes
    [x, y, w, h] in its pixels, and each line's gold."""
    if "regions" in item:
        boxes = [_clip(box, page.size, n) for n, box in enumerate(item["regions"], 1)]
        return page, boxes, item.get("gold") or [None] * len(boxes)
    page, boxes = find_lines(page, _line_cut(config))
    if len(boxes) > MAX_LINES:
        message = (f"Found {len(boxes)} lines on the page, over {MAX_LINES}: "
                   "give regions, or raise min_line_height.")
        raise ItemError(message, {"image": [message]})
    if not boxes:
        boxes = [[0, 0, page.width, page.height]]
    return page, boxes, [None] * len(boxes)


def _line_cut(config: dict) -> LineCut:
    return LineCut(config["min_line_height"], config["merge_gap"], config["padding"])


def _clip(box: list[int], size: tuple[int, int], n: int) -> list[int]:
    """A region kept within the page; ItemError for one wholly off it (the
    charity's regions were probably drawn on another scan of the page)."""
    x, y, w, h = box
    x0, y0 = min(x, size[0]), min(y, size[1])
    x1, y1 = min(x + w, size[0]), min(y + h, size[1])
    if x1 <= x0 or y1 <= y0:
        message = f"Region {n} {box} lies outside the {size[0]}x{size[1]} page."
        raise ItemError(message, {"regions": [message]})
    return [x0, y0, x1 - x0, y1 - y0]


def _corners(box: list[int]) -> tuple[int, int, int, int]:
    x, y, w, h = box
    return x, y, x + w, y + h


def _reading_order(result: TaskResult) -> tuple[int, int]:
    box = result.payload.get("box") if isinstance(result.payload, dict) else None
    if isinstance(box, list) and len(box) == 4:
        return box[1], box[0]
    return 0, 0


def _example_page() -> tuple[str, bytes]:
    """A small PNG of two lines of dark "words" on paper, so the shared test
    runs the real line cutting."""
    image = Image.new("L", (360, 120), 245)
    draw = ImageDraw.Draw(image)
    for top, words in ((20, 6), (70, 4)):
        for n in range(words):
            draw.rectangle((20 + 52 * n, top, 60 + 52 * n, top + 22), fill=30)
    out = io.BytesIO()
    image.save(out, "PNG")
    data = out.getvalue()
    return f"/media/{hashlib.sha256(data).hexdigest()}.png", data


transcribe = TranscribeType()
