"""engine.quality.report: the quality page's numbers, checked exactly.

Tasks are made by a real upload; answers, results and volunteer stats are
written by hand, each answer on a chosen day, so every count, share and daily
mean below is known in advance.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.delivery.insight import confidence_histogram
from engine.errors import NotFoundError, PermissionDeniedError
from engine.identity import Identity, create_user, create_volunteer
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.quality.report import DayScore, quality_report
from engine.store.models import Answer, Result, Task, User, VolunteerStat

NOW = datetime(2024, 5, 10, 15, 0, tzinfo=UTC)
TODAY = NOW.date()
LABELS = ["penguin", "seal", "empty"]


def day(n: int, hour: int = 10) -> datetime:
    """`n` days before NOW's day, at `hour` UTC."""
    return datetime.combine(TODAY - timedelta(days=n), datetime.min.time(), UTC) \
        + timedelta(hours=hour)


def staff(services, role: str, org: str = "Penguin Watch") -> Identity:
    user_id, _ = create_user(services, org, role)
    with services.db.session() as session:
        return Identity("user", user_id, session.get(User, user_id).organisation_id, role)


@pytest.fixture
def admin(services) -> Identity:
    return staff(services, "admin")


def make(services, who, items, task_type="classify", config=None):
    """A project with these items uploaded and split; its tasks in upload order."""
    project = create_project(services, who, {
        "name": "Seal cams", "task_type": task_type,
        "config": config or {"question": "What is it?", "labels": LABELS},
        "min_answers": 3, "max_answers": 5,
        "quality": {"quarantine": False, "trusted_after_minutes": 0}}).project
    run_job(services, create_job(services, who, project.id, items=items).id)
    with services.db.session() as session:
        tasks = list(session.scalars(select(Task).where(Task.project_id == project.id)
                                     .order_by(Task.id)))
    return project, tasks


class Crowd:
    """Volunteers made on demand: the n-th is the same person every time."""

    def __init__(self, services) -> None:
        self.services, self.ids = services, []

    def __getitem__(self, n: int) -> int:
        while len(self.ids) <= n:
            self.ids.append(create_volunteer(self.services)[0])
        return self.ids[n]


def answers(services, crowd, task, values, when, counted=True, first=0):
    """One answer per value on `task`, by volunteers first, first + 1, ..."""
    with services.db.session() as session:
        for n, value in enumerate(values):
            session.add(Answer(task_id=task.id, project_id=task.project_id,
                               volunteer_id=crowd[first + n], value=value,
                               counted=counted, created_at=when))


def labels(*names):
    return [{"label": name} for name in names]


def settle(services, task, value, state="settled"):
    with services.db.session() as session:
        row = session.get(Task, task.id)
        row.state, row.gold = state, value


def result(services, task, value, confidence=1.0):
    with services.db.session() as session:
        session.add(Result(task_id=task.id, project_id=task.project_id, value=value,
                           confidence=confidence))


@pytest.fixture
def seals(services, admin):
    """Two gold items (penguin, seal), then four plain ones."""
    return make(services, admin, [{"text": "g1", "gold": "penguin"},
                                  {"text": "g2", "gold": "seal"},
                                  *({"text": f"t{n}"} for n in range(4))])


def test_the_confusion_matrix_counts_counted_answers_on_gold_and_settled_tasks(
        services, admin, seals):
    project, (penguin, seal, settled, plain, *_) = seals
    crowd = Crowd(services)
    answers(services, crowd, penguin, labels("penguin", "penguin", "penguin", "seal"), day(1))
    # "walrus": a label the project no longer has (its labels were edited)
    answers(services, crowd, penguin, labels("walrus"), day(40), first=4)
    answers(services, crowd, seal, labels("seal", "seal", "penguin"), day(2))
    answers(services, crowd, seal, labels("empty", "empty"), day(2), counted=False, first=3)
    settle(services, settled, "empty")  # an admin's answer is gold from then on
    answers(services, crowd, settled, labels("empty", "penguin"), day(0))
    answers(services, crowd, plain, labels("seal", "seal", "seal"), day(0))  # no gold

    found = quality_report(services, admin, project.id, now=NOW)

    assert found.labelled
    matrix = found.confusion
    assert matrix.labels == ("penguin", "seal", "empty", "walrus")
    assert [(row.gold, row.counts) for row in matrix.rows] == [
        ("penguin", (3, 1, 0, 1)), ("seal", (1, 2, 0, 0)), ("empty", (1, 0, 1, 0))]
    assert [row.accuracy for row in matrix.rows] == [3 / 5, 2 / 3, 1 / 2]
    assert (matrix.total, matrix.correct) == (10, 6)
    assert matrix.mistakes()[0] == ("empty", "penguin", 1)
    assert found.gold_answers == 10 and found.gold_mean == pytest.approx(0.6)
    assert found.summary.gold_tasks == 3
    assert found.summary.answers_counted == 13 and found.summary.answers_not_counted == 2


def test_a_class_without_gold_answers_has_no_accuracy_and_nothing_is_said_without_gold(
        services, admin):
    project, _ = make(services, admin, [{"text": "t"}])
    found = quality_report(services, admin, project.id, now=NOW)
    assert [(row.gold, row.counts, row.accuracy) for row in found.confusion.rows] == [
        (label, (0, 0, 0), None) for label in LABELS]
    assert found.confusion.accuracy is None and found.gold_answers == 0
    assert found.gold_mean is None and found.summary.gold_tasks == 0
    assert [point.answers for point in found.gold_daily] == [0] * 30


def test_gold_accuracy_and_agreement_per_day(services, admin, seals):
    project, (penguin, seal, plain1, plain2, plain3, late) = seals
    crowd = Crowd(services)
    answers(services, crowd, penguin, labels("penguin", "seal"), day(2, hour=0))
    answers(services, crowd, seal, labels("seal", "seal", "seal", "penguin"), day(0, hour=14))
    answers(services, crowd, penguin, labels("penguin"), day(5), first=2)  # before the window
    result(services, plain1, "seal")
    result(services, plain2, "empty", 0.4)
    answers(services, crowd, plain1, labels("seal", "seal", "penguin"), day(1))
    answers(services, crowd, plain2, labels("empty"), day(0))
    answers(services, crowd, plain2, labels("seal"), day(0), counted=False, first=1)
    answers(services, crowd, plain3, labels("seal"), day(0))  # no result yet: not scored
    result(services, late, "seal")
    answers(services, crowd, late, labels("seal"), day(3, hour=23))  # before the window

    found = quality_report(services, admin, project.id, days=3, now=NOW)

    days = [TODAY - timedelta(days=n) for n in (2, 1, 0)]
    assert found.gold_daily == [DayScore(days[0], 2, 0.5), DayScore(days[1], 0, None),
                                DayScore(days[2], 4, 0.75)]
    assert found.agreement == [DayScore(days[0], 0, None), DayScore(days[1], 3, 2 / 3),
                               DayScore(days[2], 1, 1.0)]
    assert found.gold_answers == 7  # the matrix counts gold answers of every day


def test_an_answer_after_now_is_left_out_of_the_agreement(services, admin, seals):
    project, (_, _, plain, *_) = seals
    crowd = Crowd(services)
    result(services, plain, "seal")
    answers(services, crowd, plain, labels("seal"), NOW + timedelta(hours=1))
    found = quality_report(services, admin, project.id, days=1, now=NOW)
    assert found.agreement == [DayScore(TODAY, 0, None)]


def test_reliability_histogram_and_volunteers_without_an_estimate(services, admin, seals):
    project, tasks = seals
    crowd = Crowd(services)
    for n, reliability in enumerate([0.05, 0.55, 0.95, 1.0, None, 0.2]):
        answers(services, crowd, tasks[n], labels("seal"), day(0), first=n)
        with services.db.session() as session:
            session.add(VolunteerStat(project_id=project.id, volunteer_id=crowd[n],
                                      reliability=reliability, flags=[], blocked=n == 5,
                                      quarantined_at=NOW if n in (0, 5) else None))
    answers(services, crowd, tasks[0], labels("seal"), day(0), first=6)  # not estimated yet

    found = quality_report(services, admin, project.id, now=NOW)

    assert [b.count for b in found.reliability] == [1, 0, 1, 0, 0, 1, 0, 0, 0, 2]
    assert found.estimated == 5 and found.no_estimate == 2
    summary = found.summary
    assert (summary.volunteers, summary.quarantined, summary.blocked) == (7, 1, 1)


def test_contested_tasks_and_the_dashboards_confidence_histogram(services, admin, seals):
    project, tasks = seals
    for task, confidence, state in [(tasks[2], 0.95, "retired"), (tasks[3], 1.0, "retired"),
                                    (tasks[4], 0.45, "contested"), (tasks[5], 0.3, "open")]:
        result(services, task, "seal", confidence)
        settle(services, task, None, state)
    found = quality_report(services, admin, project.id, now=NOW)
    assert found.summary.contested == 1
    assert found.confidence == confidence_histogram(services, project.id)
    assert [b.count for b in found.confidence] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 2]


def test_a_type_without_labels_has_a_gold_score_distribution_instead(services, admin):
    birds = {"question": "How many birds?", "integer": True, "min": 0}
    project, tasks = make(services, admin, [
        {"image": "https://example.org/b1.jpg", "gold": 12},
        {"image": "https://example.org/b2.jpg"}], "number", birds)
    gold, plain = tasks
    crowd = Crowd(services)
    # scores against 12 (10% tolerance, none at 4 times it): 1, 1, 0.5, 0
    answers(services, crowd, gold, [{"value": 12}, {"value": 13}, {"value": 15},
                                    {"value": 120}], day(0))
    result(services, plain, 20)
    answers(services, crowd, plain, [{"value": 20}, {"value": 40}], day(1))

    found = quality_report(services, admin, project.id, days=2, now=NOW)

    assert not found.labelled and found.confusion is None
    assert [b.count for b in found.gold_scores] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert found.gold_answers == 4 and found.gold_mean == pytest.approx(0.625)
    assert found.gold_daily == [DayScore(date(2024, 5, 9), 0, None),
                                DayScore(date(2024, 5, 10), 4, pytest.approx(0.625))]
    assert found.agreement[0] == DayScore(date(2024, 5, 9), 2, 0.5)


def test_only_the_projects_admins_see_its_quality(services, admin, seals):
    project = seals[0]
    with pytest.raises(PermissionDeniedError):
        quality_report(services, staff(services, "charity"), project.id)
    with pytest.raises(NotFoundError):
        quality_report(services, staff(services, "admin", "Seal Count"), project.id)
    platform = staff(services, "platform-admin", "bitesize")
    assert quality_report(services, platform, project.id).project.id == project.id
