"""Text part of the task-type benchmark: transcribe's merge and line cutting.

    python bench/task_types_text.py            # all 2,703 CrowdSpeech tasks
    python bench/task_types_text.py --quick    # the first 300 (and 2 x 150 synthetic)

(a) Merge quality on CrowdSpeech dev-clean (7 transcriptions of each spoken
    sentence, lower-case reference without punctuation): word error rate of
    bitesize's merged text -- ``engine.quality.offline.merge_typed`` with the
    transcribe type, i.e. an unweighted merge, each worker's agreement with it,
    a weighted merge, as live -- next to crowd-kit's ROVER and the plain medoid
    (the answer with the least word edit distance to the others). ROVER gets
    the texts already lower-cased and without punctuation (its best input);
    bitesize gets them as typed. WER is the total of word edits over the total
    of reference words, both sides lower-cased and without punctuation. No
    method sees the reference. Also shown: bitesize as it merged before free
    wording was told apart ("words only"), and on how many tasks the merge
    found free wording and kept a medoid answer (task_types/text_medoid.py).
(c) Free wording: the same figures on synthetic crowd translations
    (free_wording.py): volunteers word each sentence their own way, and the
    reference is one more translator's wording; "synonyms" keeps one
    sentence shape, "moved" lets phrases move about. The held-out crowd
    translation set is not in shared/data/dev, so these stand in for it;
    their phrasings are a small vendored list, not real translations.
(b) Line cutting: a generated 40-line A4 page at 300 dpi (JPEG q90) cut by
    ``transcribe.split`` into an ``engine.intake.media.MediaStore``, against Pillow
    alone decoding it, cropping the same boxes and saving each as a JPEG file;
    medians of alternating runs, and the ratio.

``run(data_dir, quick)`` returns rows, figures and targets for
bench/task_types.py, which writes the results file; this module writes
nothing but temporary files.
"""
from __future__ import annotations

import argparse
import io
import re
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from unittest.mock import patch

import crowd_data
import free_wording
from PIL import Image, ImageDraw, ImageFont

from engine.intake.media import MediaStore
from engine.quality import offline
from task_types import text_medoid
from task_types.text_align import char_distance, pair_distances
from task_types.transcribe import transcribe

if TYPE_CHECKING:
    import pandas as pd

QUICK_TASKS = 300
FREE_TASKS = 600  # synthetic translation tasks (a quarter with --quick)
PAGE_SIZE = (2480, 3508)  # A4 at 300 dpi
PAGE_LINES = 40
SPLIT_RUNS = 11
_NOT_WORD = re.compile(r"[^\w\s']|_")


def normalise(text: str) -> list[str]:
    """Words for WER: lower case, punctuation removed (apostrophes kept, as in the
    reference), hyphens and dashes made spaces."""
    text = re.sub(r"[-\u2010-\u2015]", " ", str(text).lower())
    return _NOT_WORD.sub("", text).split()


def word_errors(hypothesis: str, reference: str) -> int:
    """Word edit distance, via the string distance on words coded as characters."""
    codes: dict[str, str] = {}

    def coded(text: str) -> str:
        return "".join(codes.setdefault(w, chr(0x4E00 + len(codes))) for w in normalise(text))

    return char_distance(coded(hypothesis), coded(reference))


def wer(texts: dict[str, str], gold: dict[str, str]) -> float:
    edits = sum(word_errors(texts.get(task, ""), ref) for task, ref in gold.items())
    return edits / sum(len(normalise(ref)) for ref in gold.values())


def load_speech(data_dir: Path, quick: bool) -> tuple[pd.DataFrame, dict[str, str]]:
    import pandas as pd  # the bench extra's (with crowd-kit); the line cutting needs neither

    crowd_data.require((data_dir / "speech_dev_clean").is_dir(), data_dir, "speech_dev_clean/")
    answers = pd.read_csv(data_dir / "speech_dev_clean" / "answers.csv", dtype=str,
                          keep_default_na=False)
    gold = pd.read_csv(data_dir / "speech_dev_clean" / "gold.csv", dtype=str,
                       keep_default_na=False)
    answers["answer"] = answers["answer"].str.strip()
    answers = answers[answers["answer"] != ""]
    if quick:
        keep = list(dict.fromkeys(answers["task"]))[:QUICK_TASKS]
        answers = answers[answers["task"].isin(keep)]
    tasks = set(answers["task"])
    return answers, {t: a for t, a in zip(gold["task"], gold["answer"], strict=True)
                     if t in tasks}


def bitesize_texts(answers: pd.DataFrame, words_only: bool = False
                   ) -> tuple[dict[str, str], float, int, int]:
    """The merged texts as engine.quality.offline.merge_typed gives them, its
    seconds, and on how many tasks it kept a medoid and found free wording
    (text_medoid); ``words_only`` never
    weighs a medoid against the vote (the merge before free wording was told
    apart)."""
    config = transcribe.offline_config()
    schema = transcribe.answer_schema(config)
    rows = [(task, worker, schema.load(transcribe.answer_from_text(text, config)))
            for task, worker, text in answers[["task", "worker", "answer"]].itertuples(
                index=False)]
    threshold = -1.0 if words_only else text_medoid.FREE_WORDING
    with patch.object(text_medoid, "FREE_WORDING", threshold):
        started = time.perf_counter()
        merged = offline.merge_typed(transcribe, config, rows)
        seconds = time.perf_counter() - started
    medoids = sum(1 for r in merged.results.values() if r.support.get("merge") == "medoid")
    free = sum(1 for r in merged.results.values() if r.support.get("free_wording"))
    return ({task: result.value for task, result in merged.results.items()}, seconds,
            medoids, free)


def rover_texts(answers: pd.DataFrame) -> tuple[dict[str, str], float]:
    import pandas as pd
    from crowdkit.aggregation import ROVER

    frame = pd.DataFrame({"task": answers["task"], "worker": answers["worker"],
                          "text": [" ".join(normalise(t)) for t in answers["answer"]]})
    started = time.perf_counter()
    texts = ROVER(tokenizer=lambda s: s.split(" "), detokenizer=" ".join).fit_predict(frame)
    return dict(texts.items()), time.perf_counter() - started


def medoid_texts(answers: pd.DataFrame) -> dict[str, str]:
    """Each task's answer with the least total word edit distance to the others
    (unweighted: the medoid on every task, whatever the agreement)."""
    out = {}
    for task, group in answers.groupby("task", sort=False):
        texts = list(group["answer"])
        ids: dict[str, int] = {}
        seqs = [[ids.setdefault(w, len(ids)) for w in normalise(t)] for t in texts]
        out[task] = texts[int(pair_distances(seqs).sum(axis=1).argmin())]
    return out


def text_figures(answers: pd.DataFrame, gold: dict[str, str]) -> dict:
    """Every method's WER on one set of answers (and the seconds of the two merges)."""
    ours, our_seconds, medoids, free = bitesize_texts(answers)
    words_only, *_ = bitesize_texts(answers, words_only=True)
    plain = answers.assign(answer=[" ".join(normalise(t)) or "[unclear]"
                                   for t in answers["answer"]])
    ours_plain, *_ = bitesize_texts(plain)
    theirs, their_seconds = rover_texts(answers)
    return {
        "tasks": len(gold), "answers": len(answers), "medoid_tasks": medoids,
        "free_tasks": free,
        "wer_bitesize": wer(ours, gold), "wer_rover": wer(theirs, gold),
        "wer_bitesize_rover_input": wer(ours_plain, gold),
        "wer_words_only": wer(words_only, gold),
        "wer_medoid": wer(medoid_texts(answers), gold),
        "seconds_bitesize": our_seconds, "seconds_rover": their_seconds,
    }


def text_rows(part: str, figures: dict) -> list[list]:
    return [[part, "bitesize merge_typed", "WER", figures["wer_bitesize"]],
            [part, "bitesize, ROVER's input", "WER", figures["wer_bitesize_rover_input"]],
            [part, "bitesize, words only", "WER", figures["wer_words_only"]],
            [part, "crowd-kit ROVER", "WER", figures["wer_rover"]],
            [part, "medoid answer", "WER", figures["wer_medoid"]],
            [part, "bitesize merge_typed", "free-wording tasks", figures["free_tasks"]],
            [part, "bitesize merge_typed", "medoid tasks", figures["medoid_tasks"]],
            [part, "bitesize merge_typed", "seconds", figures["seconds_bitesize"]],
            [part, "crowd-kit ROVER", "seconds", figures["seconds_rover"]]]


def wer_target(figures: dict, what: str) -> dict:
    """Met when the merge is no worse than ROVER."""
    return {"met": figures["wer_bitesize"] <= figures["wer_rover"], "detail": (
        f"WER {100 * figures['wer_bitesize']:.2f}% vs ROVER "
        f"{100 * figures['wer_rover']:.2f}% on {figures['tasks']} {what}; "
        f"{figures['free_tasks']} free wording, {figures['medoid_tasks']} kept a medoid")}


def text_part(data_dir: Path, quick: bool) -> tuple[list, dict, dict]:
    answers, gold = load_speech(data_dir, quick)
    figures = text_figures(answers, gold)
    return text_rows("text", figures), figures, wer_target(figures, "CrowdSpeech tasks")


def free_part(quick: bool, moved: bool) -> tuple[list, dict, dict]:
    import pandas as pd

    crowd = free_wording.crowd(FREE_TASKS // 4 if quick else FREE_TASKS, moved)
    answers = pd.DataFrame(crowd.answers, columns=["task", "worker", "answer"])
    figures = text_figures(answers, crowd.gold)
    kind = "moved" if moved else "synonyms"
    return (text_rows(kind, figures), figures,
            wer_target(figures, f"synthetic translation tasks ({kind})"))


# -- (b) line cutting -----------------------------------------------------------


def make_page() -> bytes:
    """A white A4 page with PAGE_LINES lines of black text, as a q90 JPEG."""
    page = Image.new("RGB", PAGE_SIZE, "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=48)
    for n in range(PAGE_LINES):
        draw.text((200, 150 + 80 * n), f"Line {n + 1}: the quick brown fox jumps over "
                  f"the lazy dog, by quay and ship {n}", fill="black", font=font)
    out = io.BytesIO()
    page.save(out, "JPEG", quality=90)
    return out.getvalue()


def pillow_alone(data: bytes, boxes: list[list[int]], folder: Path) -> None:
    """What the cut costs without bitesize: decode, crop, save each as a JPEG."""
    page = Image.open(io.BytesIO(data))
    page.load()
    for n, (x, y, w, h) in enumerate(boxes):
        page.crop((x, y, x + w, y + h)).save(folder / f"line{n}.jpg", "JPEG", quality=85)


def split_part() -> tuple[list, dict, dict]:
    data = make_page()
    config = transcribe.load_config({})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stores = [MediaStore(root / f"ours{n}") for n in range(SPLIT_RUNS + 1)]
        for store in stores:  # a fresh folder each run: stored lines are not written again
            item = {"image": "/media/" + store.put(data, "page.jpg").name}
        tasks = transcribe.split(item, config, stores[0])
        boxes = [task.payload["box"] for task in tasks]
        ours, theirs = [], []
        for n, store in enumerate(stores[1:]):
            folder = root / f"pillow{n}"
            folder.mkdir()
            timed = [(ours, partial(transcribe.split, item, config, store)),
                     (theirs, partial(pillow_alone, data, boxes, folder))]
            for times, work in timed[:: 1 if n % 2 else -1]:  # who goes first alternates
                started = time.perf_counter()
                work()
                times.append(time.perf_counter() - started)
    figures = {"lines_found": len(tasks), "lines_drawn": PAGE_LINES,
               "split_seconds": statistics.median(ours),
               "pillow_seconds": statistics.median(theirs)}
    figures["split_ratio"] = figures["split_seconds"] / figures["pillow_seconds"]
    rows = [["lines", "transcribe.split", "seconds", figures["split_seconds"]],
            ["lines", "Pillow decode+crop+save", "seconds", figures["pillow_seconds"]],
            ["lines", "transcribe.split", "ratio to Pillow", figures["split_ratio"]],
            ["lines", "transcribe.split", "lines found", len(tasks)]]
    met = len(tasks) == PAGE_LINES and figures["split_ratio"] <= 1.2
    target = {"met": met, "detail": (
        f"{len(tasks)}/{PAGE_LINES} lines, {figures['split_ratio']:.2f}x Pillow alone "
        f"({1000 * figures['split_seconds']:.0f} vs {1000 * figures['pillow_seconds']:.0f} ms)")}
    return rows, figures, target


def run(data_dir: Path, quick: bool) -> dict:
    text_rows_, text_figures_, text_target = text_part(data_dir, quick)
    synonym_rows, synonym_figures, synonym_target = free_part(quick, moved=False)
    moved_rows, moved_figures, moved_target = free_part(quick, moved=True)
    split_rows, split_figures, split_target = split_part()
    return {"rows": text_rows_ + synonym_rows + moved_rows + split_rows,
            "figures": {"text": text_figures_, "synonyms": synonym_figures,
                        "moved": moved_figures, "lines": split_figures},
            "targets": {"text_wer": text_target, "synonyms_wer": synonym_target,
                        "moved_wer": moved_target, "line_split": split_target}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"first {QUICK_TASKS} tasks")
    parser.add_argument("--data", type=Path, default=crowd_data.DATA_DIR)
    args = parser.parse_args()
    report = run(args.data, args.quick)
    for part, method, metric, value in report["rows"]:
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{part:<8} {method:<26} {metric:<18} {shown:>9}")
    for name, target in report["targets"].items():
        print(f"{name}: {'met' if target['met'] else 'NOT met'} ({target['detail']})")


if __name__ == "__main__":
    main()
