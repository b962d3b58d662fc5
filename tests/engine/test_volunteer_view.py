"""The quality desk's views of volunteers (engine.quality.volunteer_view): one
volunteer's numbers on a project made by hand, the newcomers' spot-check list
with each one's first answers, and who may read them."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from engine.errors import NotFoundError, PermissionDeniedError
from engine.identity import Identity, create_user
from engine.quality import moderation, volunteer_view
from engine.quality.reliability import estimate_project
from engine.store.models import Answer, AuditEntry, Handout, Task, User, VolunteerStat, utcnow
from engine.volunteering import next_task, submit_answer

TRUTH = {"t0": "a", "t1": "b", "t2": "a", "t3": "b", "g0": "a", "g1": "b"}
GOLD = [{"text": "g0", "gold": "a"}, {"text": "g1", "gold": "b"}]


def identity_of(services, org: str, role: str) -> Identity:
    user_id, _ = create_user(services, org, role)
    with services.db.session() as session:
        return Identity("user", user_id, session.get(User, user_id).organisation_id, role)


@pytest.fixture
def admin(services) -> Identity:
    return identity_of(services, "Owls Trust", "admin")  # the owner's organisation


def answer_all(services, project, who, choose, seconds: float | None = None) -> list[int]:
    """`who` answers every task it is handed, `choose(text)` giving the label;
    each handout backdated `seconds` (a person's pace). Returns task ids in order."""
    done = []
    while (handout := next_task(services, who, project.id)) is not None:
        if seconds is not None:
            with services.db.writing() as session:
                session.execute(update(Handout).where(
                    Handout.task_id == handout.task_id, Handout.volunteer_id == who.id)
                    .values(created_at=utcnow() - timedelta(seconds=seconds)))
        submit_answer(services, who, handout.task_id, handout.lease,
                      {"label": choose(handout.payload["text"])})
        done.append(handout.task_id)
    return done


@pytest.fixture
def hand_made(services, make_project, volunteer):
    """Four tasks and two gold, three answers each: `subject` says "a" to all
    (right on t0, t2 and g0) at 4 s an answer; two others answer the truth.
    Gold comes first, always (else the dispatcher mixes it in at random)."""
    project = make_project(items=[{"text": t} for t in ("t0", "t1", "t2", "t3")] + GOLD,
                           gold_start=1.0, gold_floor=1.0)
    subject, others = volunteer(), [volunteer(), volunteer()]
    order = answer_all(services, project, subject, lambda text: "a", seconds=4.0)
    for other in others:
        answer_all(services, project, other, TRUTH.get)
    return project, subject, others, order


def test_profile_numbers_of_a_hand_made_project(services, hand_made, admin):
    project, subject, _others, order = hand_made
    assert len(order) == 6
    estimate_project(services, project.id)
    profile = volunteer_view.volunteer_profile(services, admin, project.id, subject.id)
    assert profile["answers"] == 6 and profile["counted"] == 6
    assert profile["gold_answers"] == 2 and profile["gold_score"] == pytest.approx(0.5)
    # results: t0 a, t1 b, t2 a, t3 b (two truthful of three); "a" agrees on half
    assert profile["agreement_answers"] == 4 and profile["agreement"] == pytest.approx(0.5)
    assert profile["median_seconds"] == pytest.approx(4.0, abs=1.0)
    assert profile["reliability"] is not None and profile["reliability"] < 0.9
    assert profile["organisation"] == "Owls Trust" and not profile["blocked"]
    assert not profile["quarantined"] and profile["contested"] == []
    recent = profile["recent"]
    assert [row["task"] for row in recent] == order[::-1]  # newest first
    by_text = {row["shown"]["text"]: row for row in recent}
    assert by_text["t1"]["answer"] == "a" and by_text["t1"]["result"] == "b"
    assert by_text["t1"]["against"] == "result" and by_text["t1"]["agrees"] is False
    assert by_text["t0"]["agrees"] is True
    assert by_text["g1"]["against"] == "gold" and by_text["g1"]["gold"] == "b"
    assert by_text["g1"]["agrees"] is False and by_text["g0"]["agrees"] is True


def test_profile_counts_answers_per_day_and_lists_contested_answers(services, hand_made,
                                                                    admin):
    project, subject, _others, order = hand_made
    today = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    with services.db.writing() as session:
        session.execute(update(Answer).where(Answer.volunteer_id == subject.id,
                                             Answer.task_id.in_(order[:2]))
                        .values(created_at=today - timedelta(days=2)))
        session.execute(update(Answer).where(Answer.volunteer_id == subject.id,
                                             Answer.task_id.in_(order[2:]))
                        .values(created_at=today))
        session.execute(update(Task).where(Task.id == order[3]).values(state="contested"))
    profile = volunteer_view.volunteer_profile(services, admin, project.id, subject.id)
    days = [(d["day"], d["count"]) for d in profile["days"]]  # a week at least, to today
    assert days == [((today - timedelta(days=n)).date(), {2: 2, 0: 4}.get(n, 0))
                    for n in range(6, -1, -1)]
    assert profile["contested_total"] == 1
    assert [row["task"] for row in profile["contested"]] == [order[3]]


def test_profile_shows_quarantine_with_its_reasons(services, hand_made, admin):
    project, subject, _others, _order = hand_made
    moderation.quarantine_volunteer(services, admin, project.id, subject.id, "looks scripted")
    profile = volunteer_view.volunteer_profile(services, admin, project.id, subject.id)
    assert profile["quarantined"] and profile["quarantine_reasons"] == ["manual"]
    assert profile["quarantined_at"] is not None and profile["counted"] == 0
    assert profile["answers"] == 6  # stored, not lost, and still counted in the numbers


def test_profile_is_for_admins_of_the_project_only(services, hand_made, admin, owner,
                                                  volunteer):
    project, subject, _others, _order = hand_made
    with pytest.raises(PermissionDeniedError):
        volunteer_view.volunteer_profile(services, owner, project.id, subject.id)  # charity
    stranger = identity_of(services, "Seal Count", "admin")
    with pytest.raises(NotFoundError):
        volunteer_view.volunteer_profile(services, stranger, project.id, subject.id)
    with pytest.raises(NotFoundError):  # a volunteer who never answered here
        volunteer_view.volunteer_profile(services, admin, project.id, volunteer().id)
    platform = identity_of(services, "Bitesize Ops", "platform-admin")
    assert volunteer_view.volunteer_profile(services, platform, project.id,
                                            subject.id)["answers"] == 6


@pytest.fixture
def arrivals(services, make_project, volunteer):
    """Eight tasks; three volunteers arrive one after another: the first answers
    all eight, the second three, the third one."""
    project = make_project(tasks=8, min_answers=3, max_answers=3)
    people = [volunteer() for _ in range(3)]
    for who, many in zip(people, (8, 3, 1), strict=True):
        for _ in range(many):
            handout = next_task(services, who, project.id)
            submit_answer(services, who, handout.task_id, handout.lease, {"label": "a"})
    return project, people


def test_newcomers_newest_first_with_their_first_five_answers(services, arrivals, admin):
    project, people = arrivals
    found = volunteer_view.newcomers(services, admin, project.id)
    assert found["total"] == 3 and not found["has_older"] and not found["has_newer"]
    assert [v["volunteer"] for v in found["volunteers"]] == [p.id for p in people[::-1]]
    first = found["volunteers"][-1]
    with services.db.session() as session:
        firsts = list(session.scalars(select(Answer.task_id).where(
            Answer.volunteer_id == people[0].id).order_by(Answer.id).limit(5)))
    assert first["answers"] == 8 and [row["task"] for row in first["sample"]] == firsts
    assert all(row["answer"] == "a" for row in first["sample"])
    assert [len(v["sample"]) for v in found["volunteers"]] == [1, 3, 5]


def test_the_desk_shows_the_items_ref_from_its_row(services, make_project, volunteer,
                                                  admin):
    """Volunteers are not sent the item's id; the desk still names the item."""
    project = make_project(items=[{"text": "t0", "id": "cam-1/owl.jpg"}], min_answers=1,
                           max_answers=1)
    who = volunteer()
    handout = next_task(services, who, project.id)
    assert handout.payload == {"text": "t0"}
    submit_answer(services, who, handout.task_id, handout.lease, {"label": "a"})
    profile = volunteer_view.volunteer_profile(services, admin, project.id, who.id)
    assert [row["shown"]["ref"] for row in profile["recent"]] == ["cam-1/owl.jpg"]
    (newcomer,) = volunteer_view.newcomers(services, admin, project.id)["volunteers"]
    assert [row["shown"]["ref"] for row in newcomer["sample"]] == ["cam-1/owl.jpg"]


def test_newcomers_include_those_with_a_stat_and_leave_out_the_blocked(services, arrivals,
                                                                       admin):
    project, people = arrivals
    estimate_project(services, project.id)  # stat rows for all three, none checked
    moderation.block(services, admin, project.id, people[1].id)
    found = volunteer_view.newcomers(services, admin, project.id)
    assert [v["volunteer"] for v in found["volunteers"]] == [people[2].id, people[0].id]


def test_newcomers_come_a_page_at_a_time(services, arrivals, admin):
    project, people = arrivals
    second = volunteer_view.newcomers(services, admin, project.id, limit=1, offset=1)
    assert [v["volunteer"] for v in second["volunteers"]] == [people[1].id]
    assert second["has_older"] and second["has_newer"] and second["total"] == 3


def test_mark_checked_takes_them_off_the_list_and_is_audited(services, arrivals, admin):
    project, people = arrivals
    volunteer_view.mark_checked(services, admin, project.id, people[1].id, " fine labels ")
    found = volunteer_view.newcomers(services, admin, project.id)
    assert [v["volunteer"] for v in found["volunteers"]] == [people[2].id, people[0].id]
    with services.db.session() as session:
        assert session.get(VolunteerStat, (project.id, people[1].id)).checked_at is not None
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "spot_check"))
        assert (entry.user_id, entry.volunteer_id, entry.project_id, entry.reason) == (
            admin.id, people[1].id, project.id, "fine labels")


def test_newcomers_and_mark_checked_for_admins_only(services, arrivals, admin, owner,
                                                    volunteer):
    project, people = arrivals
    stranger = identity_of(services, "Seal Count", "admin")
    for who, error in ((owner, PermissionDeniedError), (stranger, NotFoundError)):
        with pytest.raises(error):
            volunteer_view.newcomers(services, who, project.id)
        with pytest.raises(error):
            volunteer_view.mark_checked(services, who, project.id, people[0].id)
    with pytest.raises(NotFoundError):
        volunteer_view.mark_checked(services, admin, project.id, volunteer().id)
    with services.db.session() as session:
        assert session.scalar(select(AuditEntry.id)) is None
