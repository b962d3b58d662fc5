"""engine.delivery.insight: answers per hour, active volunteers, the estimated finish and
why it may be slow, the confidence histogram, and results page by page.

Answers are made through the volunteer's door (next_task, submit_answer), so
tasks retire, contest and raise their need as they really do; only the
answers' times are then moved to known hours, so rates are exact.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, update

from engine.delivery import insight, item_results
from engine.errors import NotFoundError
from engine.projects import every_project
from engine.store.models import Answer, Project, utcnow
from engine.volunteering import next_task, submit_answer


@pytest.fixture
def now():
    """Half past the current hour: answers are then moved to known hours before it."""
    return utcnow().replace(minute=30, second=0, microsecond=0)


def answer(services, volunteer, project, label="a"):
    handout = next_task(services, volunteer, project.id)
    assert handout is not None, "no task left for this volunteer"
    return submit_answer(services, volunteer, handout.task_id, handout.lease, {"label": label})


def answer_all(services, volunteer, project, labels):
    return [answer(services, volunteer, project, label) for label in labels]


def move(services, receipts, when):
    """Give these answers the time `when`."""
    with services.db.session() as session:
        session.execute(update(Answer).where(Answer.id.in_([r.answer_id for r in receipts]))
                        .values(created_at=when))


def set_state(services, project, state):
    with services.db.session() as session:
        session.execute(update(Project).where(Project.id == project.id).values(state=state))
    project.state = state


def codes(estimate):
    return [reason.code for reason in estimate.reasons]


def test_answers_per_hour_are_counted_by_hour_over_the_last_week(services, make_project,
                                                                   volunteer, now):
    project = make_project(tasks=6, min_answers=1, max_answers=1)
    receipts = answer_all(services, volunteer(), project, "aaa")
    receipts += answer_all(services, volunteer(), project, "abb")
    move(services, receipts[:2], now - timedelta(minutes=20))  # this hour
    move(services, receipts[2:3], now - timedelta(hours=2))
    move(services, receipts[3:5], now - timedelta(hours=30))
    move(services, receipts[5:], now - timedelta(days=8))  # before the chart

    hourly = insight.answers_per_hour(services, project.id, days=7, now=now)

    assert len(hourly) == 7 * 24
    assert hourly[-1].start == now.replace(minute=0)
    assert hourly[0].start == now.replace(minute=0) - timedelta(hours=7 * 24 - 1)
    assert [h.start for h in hourly] == sorted({h.start for h in hourly})
    assert (hourly[-1].count, hourly[-2].count, hourly[-3].count) == (2, 0, 1)
    assert hourly[-31].count == 2
    assert sum(h.count for h in hourly) == 5


def test_the_finish_date_is_answers_still_needed_over_the_recent_rate(services, make_project,
                                                                       volunteer, now):
    project = make_project(tasks=10, min_answers=2, max_answers=2)
    first, second = volunteer(), volunteer()
    receipts = answer_all(services, first, project, "aaaa") + answer_all(
        services, second, project, "aaaa")
    assert all(r.counted for r in receipts)
    for n, receipt in enumerate(receipts):  # one every half hour, the first 4 h ago
        move(services, [receipt], now - timedelta(hours=4) + timedelta(minutes=30 * n))

    found = insight.project_insight(services, project, now=now)

    # 10 tasks x 2 answers wanted, 8 counted so far: 12 to go, at 8 per 4 hours.
    estimate = found.estimate
    assert estimate.status == "estimated"
    assert estimate.answers_needed == 12
    assert estimate.rate_per_hour == pytest.approx(2.0)
    assert estimate.finish_at == now + timedelta(hours=6)
    assert estimate.reasons == ()
    assert (found.volunteers_day, found.volunteers_week) == (2, 2)
    assert found.progress["tasks"] == 10 and found.progress["items"] == 10
    assert found.progress["open"] + found.progress["retired"] == 10
    assert found.progress["items_done"] == found.progress["retired"]


def test_no_estimate_without_recent_answers_and_it_says_nobody_came(services, make_project,
                                                                     volunteer, now):
    project = make_project(tasks=4, min_answers=2, max_answers=2)
    receipts = answer_all(services, volunteer(), project, "aa")
    receipts += answer_all(services, volunteer(), project, "a")
    move(services, receipts, now - timedelta(days=5))

    found = insight.project_insight(services, project, now=now)

    assert found.estimate.status == "no_estimate"
    assert found.estimate.finish_at is None and found.estimate.rate_per_hour == 0.0
    assert found.estimate.answers_needed == 8 - 3
    assert codes(found.estimate) == ["no_volunteers"]
    assert "nobody answered in the last 24 hours" in found.estimate.reasons[0].text
    assert (found.volunteers_day, found.volunteers_week) == (0, 2)


def test_too_few_volunteers_for_the_answers_each_task_needs(services, make_project,
                                                             volunteer):
    project = make_project(tasks=3, min_answers=3, max_answers=3)
    answer_all(services, volunteer(), project, "aa")
    answer_all(services, volunteer(), project, "aa")

    estimate = insight.project_insight(services, project).estimate  # answers made just now

    assert estimate.status == "estimated" and estimate.finish_at is not None
    assert codes(estimate) == ["too_few_answers"]
    assert "answers from 3 different volunteers, and only 2" in estimate.reasons[0].text


def test_many_contested_tasks_slow_a_project_down(services, make_project, volunteer):
    project = make_project(tasks=4, min_answers=2, max_answers=2, confidence=0.9)
    answer_all(services, volunteer(), project, "aaaa")
    answer_all(services, volunteer(), project, "ba")  # one disagreement, one agreement

    found = insight.project_insight(services, project)

    assert (found.progress["contested"], found.progress["retired"], found.progress["open"]) \
        == (1, 1, 2)
    assert codes(found.estimate) == ["many_contested"]
    assert "1 of 2 finished tasks wait for an admin" in found.estimate.reasons[0].text


@pytest.mark.parametrize("state", ["paused", "draft"])
def test_a_project_that_is_not_active_says_so(services, make_project, state, now):
    project = make_project(tasks=2)
    set_state(services, project, state)
    estimate = insight.project_insight(services, project, now=now).estimate
    assert estimate.status == "no_estimate"
    assert codes(estimate) == ["not_active"]  # not also "no volunteers": the cause is known
    assert f"The project is {state}" in estimate.reasons[0].text


def test_all_answered_is_finished_or_waits_for_review(services, make_project, volunteer):
    done = make_project(tasks=2, min_answers=1, max_answers=1)
    answer_all(services, volunteer(), done, "ab")
    assert insight.project_insight(services, done).estimate.status == "finished"

    argued = make_project(tasks=1, min_answers=2, max_answers=2, confidence=0.9)
    answer(services, volunteer(), argued, "a")
    answer(services, volunteer(), argued, "b")
    estimate = insight.project_insight(services, argued).estimate
    assert (estimate.status, estimate.answers_needed) == ("review", 0)
    assert codes(estimate) == ["many_contested"]

    empty = make_project(items=[{"text": "x"}])
    set_state(services, empty, "archived")
    assert insight.project_insight(services, empty).estimate.status == "closed"


def test_the_confidence_histogram_counts_finished_tasks_only(services, make_project, volunteer):
    project = make_project(tasks=3, min_answers=2, max_answers=3, confidence=0.9)
    answer_all(services, volunteer(), project, "aaa")
    answer_all(services, volunteer(), project, "aab")  # two sure tasks, one asks for more
    bins = insight.confidence_histogram(services, project.id)
    assert [b.count for b in bins] == [0] * 9 + [2]  # the open one (0.5 so far) is left out

    answer(services, volunteer(), project, "a")  # 2 of 3: 0.67, and contested at max_answers
    found = insight.project_insight(services, project)
    assert [b.count for b in found.confidence] == [0] * 6 + [1, 0, 0, 2]
    assert [b.label for b in found.confidence][6] == "60–70%"
    assert (found.progress["items"], found.progress["items_done"]) == (3, 2)


def test_estimates_for_many_projects_match_each_one(services, make_project, volunteer, now):
    quick = make_project(tasks=4, min_answers=1, max_answers=1)
    move(services, answer_all(services, volunteer(), quick, "ab"), now - timedelta(hours=2))
    idle = make_project(tasks=2)
    views = every_project(services)
    found = insight.estimates(services, views, now=now)
    assert set(found) == {quick.id, idle.id}
    assert found[quick.id] == insight.project_insight(services, quick, now=now).estimate
    assert found[quick.id].finish_at == now + timedelta(hours=2)  # 2 left at 1 an hour
    assert found[idle.id].status == "no_estimate"


def test_the_numbers_cost_the_same_queries_for_any_project_size(services, make_project,
                                                                 volunteer):
    """Aggregates only: a project 15 times bigger runs the same statements."""
    statements = []

    def count(*args):
        statements.append(args[2])

    sizes = {}
    for tasks in (2, 30):
        project = make_project(tasks=tasks, min_answers=1, max_answers=1)
        answer_all(services, volunteer(), project, "a" * tasks)
        event.listen(services.db.engine, "before_cursor_execute", count)
        try:
            insight.project_insight(services, project)
            item_results.result_page(services, project)
        finally:
            event.remove(services.db.engine, "before_cursor_execute", count)
        sizes[tasks], statements[:] = len(statements), []
    assert sizes[2] == sizes[30] <= 25


def test_results_page_by_page_finished_first_and_by_state(services, make_project, volunteer):
    project = make_project(tasks=7, min_answers=1, max_answers=1)
    answered = {r.task_id for r in answer_all(services, volunteer(), project, "abaab")}
    first = item_results.result_page(services, project, size=3)
    assert first.counts == {"open": 2, "contested": 0, "settled": 0, "retired": 5}
    rows, flags = [], []
    for page in (1, 2, 3):
        shown = item_results.result_page(services, project, page=page, size=3)
        rows += shown.rows
        flags.append(shown.has_next)
    assert flags == [True, True, False]
    assert [r.state for r in rows] == ["retired"] * 5 + ["open"] * 2
    assert [r.item_id for r in rows[:5]] == sorted(r.item_id for r in rows[:5])
    assert {r.text for r in rows[:5]} == {"a", "b"} and rows[5].text == ""
    assert all(r.tasks == 1 and r.tasks_done == 1 and r.confidence == 1.0 for r in rows[:5])
    assert len(answered) == 5

    open_only = item_results.result_page(services, project, state="open")
    assert [r.item_id for r in open_only.rows] == [r.item_id for r in rows[5:]]
    assert not open_only.has_next
    assert item_results.result_page(services, project, state="contested").rows == []


def test_an_item_shows_its_tasks_answers_and_result(services, make_project, volunteer):
    project = make_project(tasks=1, min_answers=2, max_answers=2)
    ana, bo = volunteer(), volunteer()
    answer(services, ana, project, "a")
    answer(services, bo, project, "b")
    [row] = item_results.result_page(services, project).rows
    detail = item_results.item_detail(services, project, row.item_id)
    [task] = detail.tasks
    assert [(a.volunteer_id, a.text, a.counted) for a in task.answers] == [
        (ana.id, "a", True), (bo.id, "b", True)]
    assert task.state == "retired" and task.text == "a" and task.confidence == 0.5
    assert detail.result.text == "a" and detail.picture is None and detail.regions == []

    other = make_project(tasks=1)
    with pytest.raises(NotFoundError):
        item_results.item_detail(services, other, row.item_id)
    assert not insight.has_iiif_items(services, project.id)
