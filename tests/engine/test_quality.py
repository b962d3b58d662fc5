"""Volunteer quality: the periodic estimates, the flags, and the live merge using them."""
from __future__ import annotations

import random

from sqlalchemy import select

from engine.dispatch.dispatcher import keys
from engine.projects import _config_only_version, config_version
from engine.quality.consensus import merge
from engine.quality.reliability import estimate_changed, estimate_project
from engine.store.models import VolunteerStat
from engine.volunteering import next_task, submit_answer
from task_types.classify import classify
from workers.schedule import ensure_scheduled

CONFIG = {"question": "Owl?", "labels": ["a", "b"]}


def crowd_answers(services, project, volunteers, answer_of):
    """Each volunteer answers until nothing is left for them."""
    for v in volunteers:
        while (handout := next_task(services, v, project.id)) is not None:
            label = answer_of(v, handout)
            submit_answer(services, v, handout.task_id, handout.lease, {"label": label})


def test_spammer_is_flagged_and_trusted_less(services, make_project, volunteer):
    random.seed(5)
    truth_of = {}
    items = [{"text": f"t{n}"} for n in range(30)] + [
        {"text": f"g{n}", "gold": "a" if n % 2 else "b"} for n in range(12)]
    project = make_project(items=items, min_answers=7, max_answers=7, gold_start=0.5)
    honest = [volunteer() for _ in range(6)]
    spammer = volunteer()
    for n, item in enumerate(items):
        truth_of[item["text"]] = item.get("gold", "a" if n % 3 else "b")

    def answer_of(v, handout):
        if v == spammer:
            return "b"
        right = truth_of[handout.payload["text"]]
        return right if random.random() < 0.9 else ("a" if right == "b" else "b")

    crowd_answers(services, project, [spammer, *honest], answer_of)
    assert estimate_project(services, project.id) == 7
    with services.db.session() as session:
        stats = {s.volunteer_id: s for s in session.scalars(select(VolunteerStat))}
    bad = stats[spammer.id]
    assert "same_answer" in bad.flags
    assert bad.reliability < min(stats[v.id].reliability for v in honest)
    assert all("same_answer" not in stats[v.id].flags for v in honest)
    assert bad.median_seconds is not None and bad.median_seconds >= 0
    assert bad.confusion is not None and len(bad.confusion) == 2


def test_merge_weighs_answers_by_what_is_known_of_volunteers():
    trusted = (0.95, None)
    doubtful = (0.55, None)
    rows = [({"label": "a"}, *trusted), ({"label": "b"}, *doubtful), ({"label": "b"}, *doubtful)]
    merged = merge(classify, CONFIG, rows)
    assert merged.method == "posterior" and merged.aggregate.value == "a"
    plain = merge(classify, CONFIG, [(value, None, None) for value, _, _ in rows])
    assert plain.method == "majority" and plain.aggregate.value == "b"
    assert abs(sum(merged.aggregate.support.values()) - 1.0) < 1e-9


def test_merge_uses_confusion_matrices_when_stored():
    # this volunteer answers "b" whatever the truth: their "b" says nothing
    flipper = [[0.0001, 0.9999], [0.0001, 0.9999]]
    rows = [({"label": "b"}, 0.5, flipper), ({"label": "a"}, 0.7, None)]
    assert merge(classify, CONFIG, rows).aggregate.value == "a"


def test_a_reliability_below_chance_is_no_evidence_against_the_volunteers_own_answer():
    """A volunteer known only by a reliability under chance (after an unblock:
    their agreement with results their answers were not counted in, near 0)
    says nothing, as in the quality job's own one-coin fits
    (truth_em.at_least_chance). Read as a one-coin matrix, 0 made their answer
    certain evidence for another label: results retired at 100% against what
    they said, and on three labels a label nobody gave won."""
    unblocked = ({"label": "b"}, 0.0, None)
    two = merge(classify, CONFIG, [({"label": "b"}, 0.7, None), unblocked,
                                   ({"label": "a"}, 0.6, None)]).aggregate
    assert two.value == "b" and abs(two.confidence - 0.14 / 0.23) < 1e-9  # as if unsaid
    shapes = {"question": "Which shape?", "labels": ["circle", "square", "triangle"]}
    three = merge(classify, shapes, [({"label": "circle"}, 0.6, None),
                                     ({"label": "square"}, 0.6, None),
                                     ({"label": "square"}, 0.05, None)]).aggregate
    assert three.value in ("circle", "square")
    assert three.support.get("triangle", 0.0) < 0.25


def test_periodic_estimation_runs_in_the_worker(services, make_project, volunteer, work):
    project = make_project(tasks=3, min_answers=3, max_answers=3)
    crowd_answers(services, project, [volunteer(), volunteer()], lambda v, h: "a")
    assert ensure_scheduled(services, "quality", delay=0) is True
    assert ensure_scheduled(services, "quality", delay=0) is False  # one chain at a time
    meta = keys(project.id)["meta"]  # a version in its older form (engine.projects)
    services.redis.hset(meta, "version", _config_only_version(project.config))
    services.queue("high").enqueue("workers.jobs.estimate_quality")
    work()
    assert services.redis.hget(meta, "version").decode() == config_version(project)
    with services.db.session() as session:
        assert len(session.scalars(select(VolunteerStat)).all()) == 2
    assert services.redis.exists("bs:periodic:quality")  # the chain renewed itself
    assert estimate_changed(services) == {}  # nothing new since: nothing re-estimated
    crowd_answers(services, project, [volunteer()], lambda v, h: "b")
    assert estimate_changed(services) == {project.id: 3}


def test_merge_tempers_by_the_projects_tau():
    """Project.calibration, as the quality job stores it: τ 0.5 halves the log
    odds of one 0.7 volunteer's "b"; no calibration (before any quality run)
    leaves them as they are."""
    rows = [({"label": "b"}, 0.7, None)]
    even = merge(classify, CONFIG, rows).aggregate
    assert even.value == "b" and abs(even.confidence - 0.7) < 1e-9
    tempered = merge(classify, CONFIG, rows, {"temperature": 0.5}).aggregate
    odds = 0.7 / 0.3
    assert tempered.value == "b"
    assert abs(tempered.confidence - odds ** 0.5 / (1 + odds ** 0.5)) < 1e-9


def test_the_quality_job_stores_the_merges_tau(services, make_project, volunteer):
    from engine.store.models import Project

    items = [{"text": f"t{n}"} for n in range(40)]
    project = make_project(items=items, min_answers=3, max_answers=3)
    crowd = [volunteer() for _ in range(4)]
    crowd_answers(services, project, crowd,
                  lambda v, handout: "b" if int(handout.payload["text"][1:]) % 5 == 0 else "a")
    estimate_project(services, project.id)
    with services.db.session() as session:
        calibration = session.get(Project, project.id).calibration
    assert set(calibration) == {"temperature", "tempered_by", "lapse", "prior"}
    assert 0.1 <= calibration["temperature"] <= 1.0
    assert calibration["tempered_by"] == "held-out answers"  # no gold in this project
    assert calibration["lapse"] == 0.0  # nor any lapse only gold could show
    # the class prior results report from: "a" won 4 tasks in 5, shrunk toward even
    prior = calibration["prior"]
    assert set(prior) == {"a", "b"} and abs(sum(prior.values()) - 1) < 1e-9
    assert 0.6 < prior["a"] < 0.8


def test_a_result_reports_the_class_prior_but_retires_on_the_answers_alone():
    """Two volunteers alike disagree. With labels equally likely that is 0.5 each;
    in a project where "a" is four times as common as "b", "a" is right 0.8 of
    the time, and the result says so. Retirement still weighs the answers alone
    (0.5): a common label must not retire tasks on less evidence."""
    from engine.quality.consensus import judge
    from engine.quality.retirement import MORE, Policy

    rows = [({"label": "a"}, 0.7, None), ({"label": "b"}, 0.7, None)]
    calibration = {"temperature": 1.0, "prior": {"a": 0.8, "b": 0.2}}
    merged = merge(classify, CONFIG, rows, calibration)
    assert merged.aggregate.value == "a"
    assert abs(merged.aggregate.confidence - 0.8) < 1e-9
    assert abs(merged.deciding_confidence - 0.5) < 1e-9
    answers = [(value, reliability, confusion, None, None, None, None)
               for value, reliability, confusion in rows]
    everyone = {"trusted_after_minutes": 0}  # no newcomer's cap in the way
    _, decision = judge(classify, CONFIG, everyone, Policy(2, 3, 0.75), answers, calibration)
    assert decision == MORE  # at 0.8 reported it would have retired
    # where the prior turns a close call, retirement weighs what the answers alone
    # give the label reported (0.18 : 0.28 against it), never the other label's share
    turned = merge(classify, CONFIG, [({"label": "a"}, 0.6, None), ({"label": "b"}, 0.7, None)],
                   calibration)
    assert turned.aggregate.value == "a" and abs(turned.aggregate.confidence - 0.72) < 1e-9
    assert abs(turned.deciding_confidence - 0.18 / 0.46) < 1e-9
    # a prior that does not know a label (the labels were edited since) is not used
    stale = merge(classify, CONFIG, rows, {"prior": {"a": 0.8, "c": 0.2}}).aggregate
    assert abs(stale.confidence - 0.5) < 1e-9


def test_gold_s_lapse_caps_what_a_result_reports_but_not_what_retires_it():
    """Project.calibration's lapse (gold found 10% of firm results wrong): five
    agreeing 0.9 volunteers are reported at no more than 1 - 0.1 / 2 = 0.95, yet
    the task retires at 0.98 on what the answers alone say (0.99998)."""
    from engine.quality.consensus import judge
    from engine.quality.retirement import Policy

    rows = [({"label": "a"}, 0.9, None)] * 5
    calibration = {"temperature": 1.0, "lapse": 0.1}
    plain = merge(classify, CONFIG, rows, {"temperature": 1.0}).aggregate
    capped = merge(classify, CONFIG, rows, calibration)
    assert plain.confidence > 0.9999
    assert capped.aggregate.value == "a" and capped.aggregate.confidence <= 0.95 + 1e-9
    assert abs(capped.deciding_confidence - plain.confidence) < 1e-12
    assert abs(sum(capped.aggregate.support.values()) - 1.0) < 1e-9
    answers = [(value, reliability, confusion, None, None, None, None)
               for value, reliability, confusion in rows]
    everyone = {"trusted_after_minutes": 0}
    _, decision = judge(classify, CONFIG, everyone, Policy(5, 5, 0.98), answers, calibration)
    assert decision == "retired"
    # with the class prior too, the lapse caps the reported (prior-weighed) result
    both = merge(classify, CONFIG, rows, {**calibration, "prior": {"a": 0.5, "b": 0.5}})
    assert abs(both.aggregate.confidence - capped.aggregate.confidence) < 1e-12
