"""Issue 13's worst case: eight honest volunteers (85% right, human pace) and two
scripts answering "a" to everything from the start. The first estimate is made
while most answers are the scripts'; with quarantine (the default) the scripts
stop counting by their 5th answer, and the final results are as accurate as the
honest volunteers' own vote (before: 16-24% in three runs of four).

Without quarantine the two scripts agree with each other on every task and
Dawid-Skene takes them for experts: 0.76 and 0.65 against the honest vote's
0.97 and 0.93 in two of these four runs. That is issue 15's (robust consensus);
tests/engine/test_truth.py checks the early estimate itself never inverts."""
from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from sqlalchemy import select, update

from engine.quality import consensus
from engine.quality.reliability import estimate_project
from engine.store.models import Answer, Handout, Project, Result, Task, utcnow
from engine.volunteering import next_task, submit_answer

TASKS = 40


def _answer(services, who, project, label_of, pace: float) -> bool:
    handout = next_task(services, who, project.id)
    if handout is None:
        return False
    if pace:  # handed out `pace` seconds ago: a person looked at it
        with services.db.writing() as session:
            session.execute(update(Handout).where(
                Handout.task_id == handout.task_id, Handout.volunteer_id == who.id)
                .values(created_at=utcnow() - timedelta(seconds=pace)))
    submit_answer(services, who, handout.task_id, handout.lease,
                  {"label": label_of(handout.payload["text"])})
    return True


def _run(services, make_project, volunteer, seed: int, quarantine: bool):
    rng = random.Random(seed)
    truth = {f"t{n}": "ab"[rng.random() < 0.5] for n in range(TASKS)}
    project = make_project(items=[{"text": t} for t in truth], min_answers=3, max_answers=5,
                           confidence=0.95, quality={"quarantine": quarantine})
    scripts = [volunteer() for _ in range(2)]
    honest = [volunteer() for _ in range(8)]

    def honest_label(text):
        right = truth[text]
        return right if rng.random() < 0.85 else ("b" if right == "a" else "a")

    for _ in range(12):  # the scripts rush in first: most early answers are theirs
        for script in scripts:
            _answer(services, script, project, lambda _t: "a", 0)
    for who in honest[:3]:
        _answer(services, who, project, honest_label, 6)
    estimate_project(services, project.id)  # the early estimate of the issue
    given, busy = 0, True
    while busy:
        busy = False
        for who in honest + scripts:
            label_of = honest_label if who in honest else (lambda _t: "a")
            busy |= _answer(services, who, project, label_of, 6 if who in honest else 0)
            given += 1
            if given % 40 == 0:
                estimate_project(services, project.id)
    estimate_project(services, project.id)
    with services.db.writing() as session:
        fresh = session.get(Project, project.id)
        task_ids = list(session.scalars(select(Task.id).where(Task.project_id == project.id)))
        remerged = consensus.remerge(session, services.registry.get("classify"), fresh,
                                     task_ids)
    consensus.sync_dispatch(services, project.id, remerged)
    return truth, {s.id for s in scripts}, project


def _accuracy(services, truth, scripts, project):
    """The results' accuracy, and the honest volunteers' own majority vote's."""
    with services.db.session() as session:
        rows = session.execute(select(Task.payload, Result.value)
                               .join(Result, Result.task_id == Task.id)
                               .where(Task.project_id == project.id)).all()
        answers = session.execute(select(Task.payload, Answer.value, Answer.volunteer_id)
                                  .join(Task, Task.id == Answer.task_id)
                                  .where(Answer.project_id == project.id)).all()
    results = {payload["text"]: value for payload, value in rows}
    honest: dict[str, Counter] = {}
    for payload, value, who in answers:
        if who not in scripts:
            honest.setdefault(payload["text"], Counter())[value["label"]] += 1
    vote = {t: c.most_common(1)[0][0] for t, c in honest.items()
            if len(c) == 1 or c.most_common(2)[0][1] > c.most_common(2)[1][1]}  # no ties
    on = [t for t in vote if t in results]
    right = sum(results[t] == truth[t] for t in on) / len(on)
    voted = sum(vote[t] == truth[t] for t in on) / len(on)
    return right, voted


def test_scripts_from_the_start_do_not_turn_the_results(services, make_project, volunteer):
    worse = []
    for seed in range(4):  # the issue saw three bad runs in four
        truth, scripts, project = _run(services, make_project, volunteer, seed, True)
        right, voted = _accuracy(services, truth, scripts, project)
        assert right >= 0.75, (seed, right, voted)  # never upside down (was 0.16-0.24)
        worse.append(voted - right)
    # as good as the honest vote, within one task in forty on average (a weighted
    # merge and a plain vote part ways on a close task now and then)
    assert sum(worse) / len(worse) <= 0.026, worse
