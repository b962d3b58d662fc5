"""The quality desk's contested task: every answer the crowd gave, drawn on the
task's picture or text, and an admin settling it.

What decides a contested task is seeing the answers side by side, so the page
shows them the way each task type is judged: label counts (classify), tag
counts (tag), every answer's boxes on the photo (locate), transcriptions
aligned word by word (transcribe), the numbers with their spread (number).
Each answer names its volunteer, their reliability and whether it counts.

Settling picks one of the distinct answers given, or takes an answer typed in
the type's text form (``answer_from_text``, as in an answers CSV), and calls
engine.quality.review.resolve, which writes the audit log with the admin's
note. Then the desk moves on to the next contested task of the project, so an
admin can clear a queue from the keyboard (web/static/console/desk_task.js:
number keys, Enter, J/K; the page works without it).
"""
from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from marshmallow import Schema, fields, validate

from engine.errors import ConflictError, InvalidError
from engine.quality import reports, review
from engine.store.models import Project
from task_types.base import TaskType
from task_types.number import number_text
from task_types.text_align import choose_backbone, columns, pair_distances, words
from web.console import bp, staff_identity
from web.console.charts import _svg_open
from web.console.forms import flatten, load_form
from web.services import services

MAX_KEYED = 9  # number keys 1-9 pick an answer; more are still listed
NOTE_MAX = 2000  # as the API's resolution note


class SettleForm(Schema):
    """The settle form: a distinct answer picked, or one typed; and why."""

    choice = fields.String(load_default="", validate=validate.Length(max=100_000))
    answer = fields.String(load_default="", validate=validate.Length(max=100_000))
    note = fields.String(load_default="", validate=validate.Length(max=NOTE_MAX))


@dataclass
class Given:
    """One volunteer's answer to the task."""

    volunteer: int
    reliability: float | None
    counted: bool
    value: Any
    text: str  # the type's text form (what answer_from_text reads back)
    choice: int = 0  # the number of the distinct answer it is


@dataclass
class Choice:
    """One distinct answer and who gave it; its number is its key (1-9)."""

    number: int
    text: str
    label: str  # what a person reads
    value: Any
    given: list[Given] = field(default_factory=list)

    @property
    def counted(self) -> int:
        return sum(1 for g in self.given if g.counted)


@bp.route("/desk/tasks/<int:task_id>", methods=["GET", "POST"], endpoint="contested_task")
def contested_task(task_id: int):
    found = review.task_under_review(services(), staff_identity(), task_id)
    project, task = found["project"], found["task"]
    task_type = services().registry.get(project.task_type)
    judged = judge(task_type, project, task)
    values, errors, status = {}, {}, 200
    if request.method == "POST":
        if not settleable(task):
            flash(f"Task {task_id} is {task['state']} now: there is nothing to settle.",
                  "error")
            return redirect(url_for("console.contested_task", task_id=task_id))
        values, errors = settle(task_type, project, task_id, judged["choices"])
        if not errors:
            return redirect(_after(project, task_id))
        status = 400
    return render_template("console/desk/task.html", project=project, task=task,
                           task_type=task_type, settleable=settleable(task),
                           values=values, errors=errors, max_keyed=MAX_KEYED,
                           report_reasons=reports.REASONS, **judged), status


@bp.post("/desk/tasks/<int:task_id>/reports/dismiss", endpoint="dismiss_task_reports")
def dismiss_task_reports(task_id: int):
    """The reports were unfounded: the task goes back (engine.quality.reports)."""
    try:
        done = reports.dismiss_reports(services(), staff_identity(), task_id)
    except ConflictError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Dismissed {done['dismissed']} report{'s' if done['dismissed'] != 1 else ''}:"
              f" task {task_id} is {done['state']} now.", "info")
    return redirect(url_for("console.contested_task", task_id=task_id))


def settleable(task: dict) -> bool:
    """Only a contested task is settled from the desk (results of open and
    retired ones are the crowd's to finish, gold is the charity's)."""
    return task["state"] == "contested" and not task["is_gold"]


def settle(task_type: TaskType, project: Project, task_id: int,
           choices: list[Choice]) -> tuple[dict, dict]:
    """Settle with the typed answer, else the picked one; (values, errors by
    field). Success flashes what the task was settled with."""
    values, errors = load_form(SettleForm())
    if errors:
        return values, errors
    if values["answer"].strip():
        where, text = "answer", values["answer"]
    elif "choice" in request.form:  # "" is an answer too: tag's "none of these"
        where, text = "choice", values["choice"]
    else:
        return values, {"choice": "Pick one of the answers given, or type the right one."}
    try:
        raw = task_type.answer_from_text(text, project.config)
        review.resolve(services(), staff_identity(), task_id, raw, values["note"].strip())
    except ValueError as exc:
        return values, {where: f"This cannot be read as an answer: {exc}."}
    except InvalidError as exc:
        return values, {where: _answer_problem(exc)}
    except ConflictError as exc:  # settled by someone else meanwhile
        return values, {"choice": exc.message[:1].upper() + exc.message[1:] + "."}
    shown = next((c.label for c in choices if c.text == text), text.strip())
    flash(f"Task {task_id} is settled: {_shorten(shown)}.", "info")
    return values, {}


def _answer_problem(exc: InvalidError) -> str:
    """The answer schema's messages in one sentence, without field names."""
    detail = (exc.fields or {}).get("answer")
    parts = list(flatten(detail).values()) if isinstance(detail, dict | list) else []
    return " ".join(parts) or "This is not a valid answer for this project."


def _after(project: Project, task_id: int) -> str:
    """Where the desk goes after settling: the next contested task, else the inbox."""
    following = review.next_contested(services(), staff_identity(), project.id, task_id)
    if following is None:
        return url_for("console.desk")
    return url_for("console.contested_task", task_id=following)


def _shorten(text: str, most: int = 120) -> str:
    return text if len(text) <= most else text[:most - 1] + "…"


# -- the answers, judged per task type ---------------------------------------


def judge(task_type: TaskType, project: Project, task: dict) -> dict[str, Any]:
    """Everything the page shows of the answers: each volunteer's, the distinct
    ones to settle on, and the evidence the task's type is judged by."""
    given = [Given(a["volunteer"], a["reliability"], a["counted"], a["value"],
                   answer_text(task_type, a["value"])) for a in task["answers"]]
    choices = distinct(task_type, project, given)
    evidence = EVIDENCE.get(task_type.name, lambda *args: {})(project, task, given, choices)
    return {"given": given, "choices": choices, "evidence": evidence,
            "result_text": _result_text(task_type, task),
            "typed": typed_field(task_type, project)}


def answer_text(task_type: TaskType, value: Any) -> str:
    """An answer in its type's text form; an answer no longer readable (its
    config was edited since) as its JSON, so it is still shown."""
    try:
        return task_type.answer_to_text(value)
    except (KeyError, TypeError, ValueError, AttributeError):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)


def distinct(task_type: TaskType, project: Project, given: list[Given]) -> list[Choice]:
    """The distinct answers, most given first (the first given first among
    equals), each with the volunteers who gave it."""
    by_text: dict[str, Choice] = {}
    for g in given:
        if g.text not in by_text:
            by_text[g.text] = Choice(0, g.text, answer_label(task_type, project, g.value,
                                                             g.text), g.value)
        by_text[g.text].given.append(g)
    order = list(by_text.values())
    order.sort(key=lambda c: -len(c.given))  # stable: first given first among equals
    for number, choice in enumerate(order, 1):
        choice.number = number
        for g in choice.given:
            g.choice = number
    return order


def answer_label(task_type: TaskType, project: Project, value: Any, text: str) -> str:
    """An answer as a person reads it in the list of answers to settle on."""
    if not isinstance(value, dict):
        return text
    if task_type.name == "tag" and isinstance(value.get("tags"), list):
        return "; ".join(map(str, value["tags"])) or "No tag fits (none of these)"
    if task_type.name == "number" and "value" in value:
        unit = (project.config or {}).get("unit") or ""
        return f"{text} {unit}".strip()
    if task_type.name == "locate":
        marks = value.get("boxes", value.get("points"))
        if isinstance(marks, list):
            kind = "box" if "boxes" in value else "point"
            return (f"{len(marks)} {kind}{'es' if kind == 'box' else 's'}"
                    if len(marks) != 1 else f"1 {kind}") if marks else "Nothing marked"
    return text


def _result_text(task_type: TaskType, task: dict) -> str:
    result = task.get("result")
    if not result or result.get("value") is None:
        return ""
    try:
        return task_type.value_to_text(result["value"])
    except (KeyError, TypeError, ValueError):
        return json.dumps(result["value"], ensure_ascii=False)


def typed_field(task_type: TaskType, project: Project) -> dict[str, Any]:
    """How the right answer is typed for this type: a choice of the project's
    labels where answers are labels, else a text field in the text form."""
    labels = task_type.labels(project.config or {})
    if labels is not None:
        return {"kind": "select", "labels": labels, "label": "Or settle on any label",
                "hint": "Used instead of the answer picked above, when one is chosen."}
    hints = {
        "tag": "Tags separated by semicolons, e.g. “Fox; Deer”. Leave it empty to use the "
               "answer picked above.",
        "number": "A number" + (f" (in {project.config['unit']})"
                                if (project.config or {}).get("unit") else "")
                  + ". Leave it empty to use the answer picked above.",
        "locate": "The marks as a JSON list in the picture's pixels, e.g. "
                  "[[10, 20, 50, 80]] for one box (x1, y1, x2, y2); [] when there is "
                  "nothing. Leave it empty to use the answer picked above.",
        "transcribe": "The line as it is written; [unclear] for a word nobody can read. "
                      "Leave it empty to use the answer picked above.",
    }
    return {"kind": "textarea" if task_type.name in ("transcribe", "locate") else "text",
            "label": "Or type the right answer",
            "hint": hints.get(task_type.name, "In the form of an answers CSV. Leave it empty "
                                              "to use the answer picked above.")}


# -- evidence per type ---------------------------------------------------------


def label_counts(project: Project, task: dict, given: list[Given],
                 choices: list[Choice]) -> dict[str, Any]:
    """classify: how many answers chose each of the project's labels (every
    label listed, 0 included: the right one may be one nobody chose), and each
    label's share of the merge: the result's support made to sum to 1, since a
    model's support is a probability but a weighted vote's is a sum of weights
    (2.00 beside a newcomer's 1.00 read as a reliability)."""
    support = task.get("distribution") or {}
    total = sum(support.values())
    support = {label: weight / total for label, weight in support.items()} if total else {}
    labels = list((project.config or {}).get("labels") or [])
    chosen = Counter(g.value.get("label") for g in given if isinstance(g.value, dict))
    counted = Counter(g.value.get("label") for g in given
                      if isinstance(g.value, dict) and g.counted)
    extra = [label for label in chosen if label not in labels]  # labels since removed
    return {"rows": [{"name": label, "answers": chosen.get(label, 0),
                      "counted": counted.get(label, 0), "share": support.get(label)}
                     for label in labels + extra]}


def tag_counts(project: Project, task: dict, given: list[Given],
               choices: list[Choice]) -> dict[str, Any]:
    """tag: how many answers chose each tag, most chosen first, with its
    weighted share (the vote that decided whether it is in the result)."""
    shares = task.get("distribution") or {}
    chosen: Counter = Counter()
    counted: Counter = Counter()
    for g in given:
        tags = g.value.get("tags") if isinstance(g.value, dict) else None
        for tag in dict.fromkeys(tags or ()):
            chosen[tag] += 1
            counted[tag] += g.counted
    order = sorted(chosen, key=lambda tag: (-chosen[tag], str(tag)))
    return {"rows": [{"name": tag, "answers": chosen[tag], "counted": counted[tag],
                      "share": shares.get(tag)} for tag in order],
            "threshold": (project.config or {}).get("threshold")}


def number_spread(project: Project, task: dict, given: list[Given],
                  choices: list[Choice]) -> dict[str, Any]:
    """number: every value given, lowest first, and how far apart they lie."""
    values = sorted(float(g.value["value"]) for g in given
                    if isinstance(g.value, dict) and isinstance(g.value.get("value"), int | float))
    if not values:
        return {"numbers": []}
    low, high = values[0], values[-1]
    return {"numbers": [number_text(v) for v in values], "low": number_text(low),
            "high": number_text(high), "range": number_text(high - low),
            "median": number_text(statistics.median(values)),
            "unit": (project.config or {}).get("unit") or ""}


def aligned(project: Project, task: dict, given: list[Given],
            choices: list[Choice]) -> dict[str, Any]:
    """transcribe: the answers aligned word by word (text_align's centre-star
    alignment around the answer closest to all others), one row per answer,
    one column per word position; a word differing from what most answers
    have there is marked."""
    texts = [g.value.get("text", "") if isinstance(g.value, dict) else "" for g in given]
    if not texts:
        return {"columns": 0, "rows": [], "common": []}
    split = [words(str(text)) for text in texts]
    ids: dict[str, int] = {}
    for seq in split:
        for word in seq:
            ids.setdefault(word.key, len(ids))
    dist = pair_distances([[ids[w.key] for w in seq] for seq in split])
    cols = columns(split, choose_backbone(dist, [1.0] * len(split)), ids)
    common = [_most_common(col.votes, len(split)) for col in cols]
    rows = []
    for n, g in enumerate(given):
        cells = []
        for col, usual in zip(cols, common, strict=True):
            word = col.votes.get(n)
            cells.append({"word": word.surface if word else None,
                          "differs": (word.key if word else None) != usual[0]})
        rows.append({"given": g, "cells": cells, "differs": sum(c["differs"] for c in cells)})
    return {"columns": len(cols), "rows": rows, "common": [surface for _, surface in common]}


def _most_common(votes: dict, answers: int) -> tuple[str | None, str | None]:
    """(key, spelling) most answers have in a column; (None, None) when most
    have no word there. Ties go to the word (the first typed)."""
    keys = Counter(word.key for word in votes.values())
    gaps = answers - len(votes)
    if not keys:
        return None, None
    key, count = keys.most_common(1)[0]
    if gaps > count:
        return None, None
    spelling = Counter(word.surface for word in votes.values() if word.key == key)
    return key, spelling.most_common(1)[0][0]


def marks_on_picture(project: Project, task: dict, given: list[Given],
                     choices: list[Choice]) -> dict[str, Any]:
    """locate: every distinct answer's marks drawn on the task's picture, each
    answer with its own number and line style, and listed in a table."""
    shape = (project.config or {}).get("shape", "box")
    key = "boxes" if shape == "box" else "points"
    marks = [(c, n, mark) for c in choices
             for n, mark in enumerate((c.value.get(key) if isinstance(c.value, dict)
                                       else None) or [], 1)]
    payload = task.get("payload") or {}
    tile = payload.get("tile")
    drawing = None
    if isinstance(tile, list) and len(tile) == 4 and payload.get("image"):
        drawing = answers_overlay(f"answers-overlay-{task['id']}", payload["image"],
                                  int(tile[2]), int(tile[3]), marks, shape)
    return {"drawing": drawing, "marks": marks, "shape": shape}


def answers_overlay(chart_id: str, url: str, width: int, height: int, marks: list,
                    shape: str) -> Markup:
    """The picture with each distinct answer's marks on it, in the picture's
    pixels: answer N's marks carry its number (text, not colour alone: the
    line style differs too), and each mark has a <title> naming it."""
    stroke = max(width, height) / 300
    font = max(height / 30, 10)
    total = len({choice.number for choice, _, _ in marks})
    desc = (f"{len(marks)} mark{'s' if len(marks) != 1 else ''} of {total} "
            f"answer{'s' if total != 1 else ''}, each labelled with its answer's number; "
            "the table below lists them." if marks else "No answer marked anything.")
    parts = [_svg_open(chart_id, width, height, "Every answer's marks on the picture", desc,
                       "overlay answers-overlay", f' width="{width}" height="{height}"'),
             f'<image href="{escape(url)}" x="0" y="0" width="{width}" height="{height}" '
             f'preserveAspectRatio="none"/>']
    for choice, n, mark in marks:
        style = f"answer-{(choice.number - 1) % 6 + 1}"
        name = escape(f"Answer {choice.number}, {shape} {n}")
        x, y = float(mark[0]), float(mark[1])
        if shape == "box" and len(mark) == 4:
            parts.append(f'<g class="answer-mark {style}"><rect class="mark box" x="{x:.1f}" '
                         f'y="{y:.1f}" width="{float(mark[2]) - x:.1f}" '
                         f'height="{float(mark[3]) - y:.1f}" stroke-width="{stroke:.1f}">'
                         f'<title>{name}</title></rect>')
        else:
            parts.append(f'<g class="answer-mark {style}"><circle class="mark point" '
                         f'cx="{x:.1f}" cy="{y:.1f}" r="{font / 2:.1f}" '
                         f'stroke-width="{stroke:.1f}"><title>{name}</title></circle>')
        shift = ((choice.number - 1) % 6) * font * 0.7  # near-equal marks: labels side by side
        parts.append(f'<text class="mark-text" x="{x + stroke + shift:.1f}" '
                     f'y="{max(y - stroke, font):.1f}" font-size="{font:.1f}" '
                     f'stroke-width="{font / 6:.1f}" aria-hidden="true">{choice.number}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


EVIDENCE = {"classify": label_counts, "tag": tag_counts, "number": number_spread,
            "transcribe": aligned, "locate": marks_on_picture}
