"""A project's states, edits and deletion (engine.lifecycle), on real SQL and Redis."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine import lifecycle
from engine.delivery.webhooks import set_webhook
from engine.errors import ConflictError, InvalidError, NotFoundError
from engine.identity import Identity, create_user
from engine.projects import create_project, get_project, list_projects
from engine.store import models
from engine.store.models import Project, User
from engine.volunteering import next_tasks, submit_answer

CLASSIFY = {"name": "owls", "task_type": "classify", "min_answers": 1, "max_answers": 2,
            "confidence": 0.5, "config": {"question": "Owl?", "labels": ["a", "b"]},
            "quality": {"trusted_after_minutes": 0}}  # its volunteers are minutes old


@pytest.fixture
def draft(services, owner, make_project):
    view = create_project(services, owner, {**CLASSIFY, "state": "draft"})
    make_project.add_items(view.project, [{"text": "t1"}, {"text": "t2"}])
    return view.project


@pytest.fixture
def stranger(services) -> Identity:
    user_id, _ = create_user(services, "Bats Trust", "charity")
    with services.db.session() as session:
        org_id = session.get(User, user_id).organisation_id
    return Identity("user", user_id, org_id, "charity")


def state_of(services, project_id: int) -> str:
    with services.db.session() as session:
        return session.get(Project, project_id).state


def answer_one(services, volunteer, project_id: int, label: str = "a"):
    person = volunteer()
    handout = next_tasks(services, person, project_id)[0]
    submit_answer(services, person, handout.task_id, handout.lease, {"label": label})
    return person


def test_a_draft_is_seen_only_by_its_organisation_and_gets_no_volunteers(
        services, draft, owner, volunteer):
    assert state_of(services, draft.id) == "draft"
    with pytest.raises(NotFoundError):
        get_project(services, None, draft.id)
    assert get_project(services, owner, draft.id).id == draft.id
    meta = services.dispatcher.meta(draft.id)
    assert (meta.active, meta.hidden) == (False, True)
    with pytest.raises(NotFoundError, match=f"project {draft.id} does not exist"):
        next_tasks(services, volunteer(), draft.id)
    lifecycle.move(services, owner, draft.id, "publish")
    lifecycle.move(services, owner, draft.id, "pause")  # known now: closed, not hidden
    assert services.dispatcher.meta(draft.id).hidden is False
    with pytest.raises(ConflictError):
        next_tasks(services, volunteer(), draft.id)


def test_the_api_default_stays_active_and_other_start_states_are_refused(services, owner):
    assert create_project(services, owner, CLASSIFY).project.state == "active"
    with pytest.raises(InvalidError, match="draft or active"):
        create_project(services, owner, {**CLASSIFY, "state": "paused"})


def test_publish_pause_complete_archive_follow_the_table(services, draft, owner, volunteer):
    move = lifecycle.move
    assert move(services, owner, draft.id, "publish").project.state == "active"
    assert services.dispatcher.meta(draft.id).active is True
    assert next_tasks(services, volunteer(), draft.id)  # active projects hand out tasks
    assert move(services, owner, draft.id, "pause").project.state == "paused"
    assert services.dispatcher.meta(draft.id).active is False
    with pytest.raises(ConflictError):
        next_tasks(services, volunteer(), draft.id)
    assert move(services, owner, draft.id, "publish").project.state == "active"
    assert move(services, owner, draft.id, "complete").project.state == "completed"
    assert services.dispatcher.meta(draft.id).active is False
    assert move(services, owner, draft.id, "publish").project.state == "active"
    assert move(services, owner, draft.id, "archive").project.state == "archived"
    assert services.dispatcher.meta(draft.id).active is False


@pytest.mark.parametrize(("start", "action", "says"), [
    ([], "pause", "it is a draft"),
    ([], "complete", "it is a draft"),
    ([], "archive", "it is a draft"),
    (["publish"], "publish", "it is active"),
    (["publish", "pause"], "pause", "it is paused"),
    (["publish", "archive"], "publish", "archiving is final"),
    (["publish", "archive"], "archive", "it is archived"),
    (["publish", "complete"], "complete", "it is completed"),
])
def test_an_illegal_move_is_a_conflict_naming_the_current_state(
        services, draft, owner, start, action, says):
    for step in start:
        lifecycle.move(services, owner, draft.id, step)
    before = state_of(services, draft.id)
    with pytest.raises(ConflictError, match=says) as caught:
        lifecycle.move(services, owner, draft.id, action)
    assert caught.value.fields == {"state": before}
    assert state_of(services, draft.id) == before


def test_actions_lists_what_each_state_allows():
    assert lifecycle.actions("draft") == ["publish", "delete"]
    assert lifecycle.actions("active") == ["pause", "complete", "archive"]
    assert lifecycle.actions("paused") == ["publish", "complete", "archive"]
    assert lifecycle.actions("completed") == ["publish", "archive"]
    assert lifecycle.actions("archived") == []


def test_another_organisation_can_neither_move_edit_nor_delete(services, draft, stranger):
    for call in (lambda: lifecycle.move(services, stranger, draft.id, "publish"),
                 lambda: lifecycle.update_project(services, stranger, draft.id, {"name": "x"}),
                 lambda: lifecycle.delete_draft(services, stranger, draft.id)):
        with pytest.raises(NotFoundError):
            call()
    assert state_of(services, draft.id) == "draft"


def test_edits_change_wording_and_settings_and_reach_redis(services, draft, owner):
    view = lifecycle.update_project(services, owner, draft.id, {
        "name": "Owls at night", "description": "Owls need counting", "min_answers": 2,
        "max_answers": 4, "strategy": "depth", "config": {"question": "Is it an owl?"}})
    assert view.project.name == "Owls at night"
    assert view.project.config == {"question": "Is it an owl?", "labels": ["a", "b"],
                                   "instructions": ""}
    meta = services.dispatcher.meta(draft.id)
    assert meta.config["question"] == "Is it an owl?" and meta.strategy == "depth"
    with services.db.session() as session:
        stored = session.get(Project, draft.id)
        assert (stored.min_answers, stored.max_answers) == (2, 4)


def test_an_invalid_edit_is_refused_by_field(services, draft, owner):
    with pytest.raises(InvalidError) as caught:
        lifecycle.update_project(services, owner, draft.id, {"config": {"labels": ["a"]}})
    assert "labels" in caught.value.fields["config"]
    with pytest.raises(InvalidError) as caught:
        lifecycle.update_project(services, owner, draft.id, {"max_answers": 1,
                                                             "min_answers": 2})
    assert "max_answers" in caught.value.fields
    with pytest.raises(InvalidError) as caught:
        lifecycle.update_project(services, owner, draft.id, {"task_type": "tag"})
    assert "task_type" in caught.value.fields


def test_before_any_answer_labels_may_be_removed(services, draft, owner):
    view = lifecycle.update_project(services, owner, draft.id,
                                    {"config": {"labels": ["yes", "no"]}})
    assert view.project.config["labels"] == ["yes", "no"]


def test_once_answered_labels_may_be_added_but_not_removed_or_renamed(
        services, draft, owner, volunteer):
    lifecycle.move(services, owner, draft.id, "publish")
    answer_one(services, volunteer, draft.id)
    grown = lifecycle.update_project(services, owner, draft.id,
                                     {"config": {"labels": ["a", "b", "c"],
                                                 "question": "Which owl?",
                                                 "instructions": "Look *closely*."}})
    assert grown.project.config["labels"] == ["a", "b", "c"]
    for labels, gone in ((["a", "c"], "'b'"), (["a", "B2", "c"], "'b'")):
        with pytest.raises(InvalidError, match="cannot lose") as caught:
            lifecycle.update_project(services, owner, draft.id, {"config": {"labels": labels}})
        message = caught.value.fields["config"]["labels"][0]
        assert gone in message and "Labels cannot lose" in message
    with services.db.session() as session:
        assert session.get(Project, draft.id).config["labels"] == ["a", "b", "c"]


def test_once_answered_a_setting_that_changes_how_answers_read_is_refused(
        services, owner, make_project, volunteer):
    view = create_project(services, owner, {
        "name": "penguins", "task_type": "number", "min_answers": 1, "max_answers": 2,
        "confidence": 0.5, "config": {"question": "How many?", "unit": "birds", "min": 0}})
    make_project.add_items(view.project, [{"text": "colony 1"}])
    person = volunteer()
    handout = next_tasks(services, person, view.project.id)[0]
    submit_answer(services, person, handout.task_id, handout.lease, {"value": 3})
    ok = lifecycle.update_project(services, owner, view.project.id,
                                  {"config": {"unit": "penguins", "question": "Count them"}})
    assert ok.project.config["unit"] == "penguins"  # wording
    for change, field in (({"min": 1}, "min"), ({"integer": True}, "integer"),
                          ({"method": "trimmed_mean"}, "method")):
        with pytest.raises(InvalidError, match="cannot change once volunteers have answered"
                           ) as caught:
            lifecycle.update_project(services, owner, view.project.id, {"config": change})
        assert "how their answers are read" in caught.value.fields["config"][field][0]


def test_a_choice_string_is_not_wording(services, owner):
    from task_types.locate import LocateConfigSchema

    schema = LocateConfigSchema()
    old = schema.load({"question": "Mark penguins", "shape": "box"})
    refused = lifecycle.answer_breaking_changes(schema, old, {**old, "shape": "point",
                                                              "question": "Mark birds"})
    assert set(refused) == {"shape"}
    assert refused["shape"][0].startswith("Shape cannot change")


def test_a_stored_config_missing_a_new_default_does_not_look_changed(
        services, draft, owner, volunteer):
    lifecycle.move(services, owner, draft.id, "publish")
    answer_one(services, volunteer, draft.id)
    with services.db.writing() as session:  # as stored before "instructions" existed
        session.get(Project, draft.id).config = {"question": "Owl?", "labels": ["a", "b"]}
    view = lifecycle.update_project(services, owner, draft.id, {"config": {"question": "Owl??"}})
    assert view.project.config["question"] == "Owl??"


def test_deleting_a_draft_leaves_no_row_and_no_redis_key_behind(
        services, owner, draft, volunteer, make_project):
    set_webhook(services, owner, draft.id, {"url": "https://example.org/hook",
                                            "secret": "s" * 20})
    # Volunteers never answer a draft; to prove that every table is cleared, give
    # this one answers, handouts, stats, a result, an event and a delivery, then
    # make it a draft again by hand.
    lifecycle.move(services, owner, draft.id, "publish")
    answer_one(services, volunteer, draft.id)
    with services.db.writing() as session:
        session.get(Project, draft.id).state = "draft"
        event = session.scalars(select(models.WebhookEvent)
                                .where(models.WebhookEvent.project_id == draft.id)).first()
        assert event is not None  # the retired task's event, in the outbox
        session.add(models.WebhookDelivery(project_id=draft.id, event_id=event.id, attempt=1,
                                           at=models.utcnow(), status_code=500,
                                           duration_ms=1.0))
    keep = create_project(services, owner, CLASSIFY).project
    make_project.add_items(keep, [{"text": "kept"}])
    assert services.redis.keys(f"bs:{{p:{draft.id}}}:*")
    lifecycle.delete_draft(services, owner, draft.id)
    with services.db.session() as session:
        for model in (models.Item, models.Task, models.Job, models.Result, models.Handout,
                      models.Answer, models.VolunteerStat, models.Webhook,
                      models.WebhookEvent, models.WebhookDelivery):
            left = session.scalar(select(func.count()).select_from(model)
                                  .where(model.project_id == draft.id))
            assert left == 0, model.__name__
        assert session.get(Project, draft.id) is None
        assert session.scalar(select(func.count()).select_from(models.Task)
                              .where(models.Task.project_id == keep.id)) == 1
    assert services.redis.keys(f"bs:{{p:{draft.id}}}:*") == []
    assert services.dispatcher.meta(keep.id) is not None


def test_deleting_a_draft_keeps_its_audit_entries(services, draft, owner, admin, make_project,
                                                  volunteer):
    """The audit log is kept for good: an organisation-wide block wrote an entry
    in the draft too, and deleting the draft must not erase it. It stays (no
    project, no task: both are gone) naming the draft, and who deleted it is
    written down."""
    from engine.quality import audit, moderation

    live = make_project(tasks=1, min_answers=1, max_answers=1)
    who = answer_one(services, volunteer, live.id)
    moderation.block(services, admin, live.id, who.id, "organisation", "a script")
    lifecycle.delete_draft(services, owner, draft.id)
    entries = audit.audit_log(services, admin)["entries"]
    deleted = entries[0]
    assert (deleted["action"], deleted["user"], deleted["project"], deleted["project_name"]) \
        == ("delete_draft", owner.id, None, "owls")
    blocks = {e["project"]: e for e in entries if e["action"] == "block"}
    assert set(blocks) == {live.id, None}
    kept = blocks[None]
    assert (kept["volunteer"], kept["reason"], kept["project_name"]) == (who.id, "a script",
                                                                         "owls")
    assert kept["detail"]["deleted_project"] == {"id": draft.id, "name": "owls"}
    assert [e["action"] for e in audit.audit_log(services, admin, live.id)["entries"]] \
        == ["block"]


def test_a_draft_deleted_while_its_import_splits_stops_the_split(services, draft, owner):
    """Deleting a draft deletes its jobs: a split under way stops at its next
    batch, adding nothing (it used to fail on the foreign key and then crash
    recording the failure of a job that no longer existed); one still waiting
    finds nothing to do."""
    from engine.intake.jobs import BATCH, create_job, run_job

    items = [{"text": f"letter {n}"} for n in range(BATCH * 2 + 100)]
    running = create_job(services, owner, draft.id, items=items, enqueue=False)
    waiting = create_job(services, owner, draft.id, items=items[:3], enqueue=False)
    deleted = []

    def progress(done: int, total: int) -> None:
        if done == BATCH + 1 and not deleted:  # the first batch is stored
            lifecycle.delete_draft(services, owner, draft.id)
            deleted.append(done)

    assert run_job(services, running.id, progress=progress) is None
    assert deleted == [BATCH + 1]
    assert run_job(services, waiting.id) is None
    with services.db.session() as session:
        for model in (models.Item, models.Task, models.Job):
            assert session.scalar(select(func.count()).select_from(model)
                                  .where(model.project_id == draft.id)) == 0, model.__name__
    assert services.redis.keys(f"bs:{{p:{draft.id}}}:*") == []


@pytest.mark.parametrize("change", ["pause", "edit"])
def test_a_change_waiting_on_an_archive_leaves_it_archived(services, owner, make_project,
                                                           change):
    """Archiving is final, also against a change made at the same moment: a move
    or an edit reads the project's row locked, so it waits for the archive and
    then sees it (PostgreSQL: it read "active" unlocked, and its pause or edit
    was written over the archive once the archive committed)."""
    import threading

    project = make_project(tasks=1)
    outcome: list = []

    def other_admin() -> None:
        try:
            if change == "pause":
                outcome.append(lifecycle.move(services, owner, project.id, "pause"))
            else:
                outcome.append(lifecycle.update_project(services, owner, project.id,
                                                        {"name": "renamed"}))
        except ConflictError as exc:
            outcome.append(exc)

    with services.db.writing() as session:  # an archive, not yet committed
        session.get(Project, project.id, with_for_update=True).state = "archived"
        session.flush()
        other = threading.Thread(target=other_admin)
        other.start()
        other.join(0.5)
        assert other.is_alive()  # the change waits for the archive
    other.join(30)
    assert [type(o) for o in outcome] == [ConflictError]
    assert "archived" in str(outcome[0])
    with services.db.session() as session:
        kept = session.get(Project, project.id)
        assert (kept.state, kept.name) == ("archived", project.name)


def test_only_a_draft_can_be_deleted(services, draft, owner):
    lifecycle.move(services, owner, draft.id, "publish")
    with pytest.raises(ConflictError, match="only a draft can be deleted"):
        lifecycle.delete_draft(services, owner, draft.id)
    assert state_of(services, draft.id) == "active"


def test_the_home_page_list_shows_only_active_projects_with_work_left(
        services, owner, make_project, draft, volunteer):
    empty = create_project(services, owner, {**CLASSIFY, "name": "empty"}).project
    busy = make_project(tasks=1, min_answers=1, max_answers=1)
    shown = {v.project.id for v in list_projects(services, None, with_work=True)}
    assert shown == {busy.id}  # not the draft, not the one without tasks
    assert {v.project.id for v in list_projects(services, None)} == {empty.id, busy.id}
    answer_one(services, volunteer, busy.id)  # its only task is done now
    assert list_projects(services, None, with_work=True) == []
    lifecycle.move(services, owner, draft.id, "publish")
    assert [v.project.id for v in list_projects(services, None, with_work=True)] == [draft.id]
    lifecycle.move(services, owner, draft.id, "pause")
    assert list_projects(services, None, with_work=True) == []


def test_a_project_whose_stored_label_breaks_todays_rule_can_still_be_edited(
        services, owner, make_project, volunteer):
    """Labels refuse what breaks an export (controls, line breaks, direction
    overrides), a rule that came after some were stored: such a label, a tab
    pasted from a spreadsheet say, does not stop an edit of the question (its
    labels cannot change once answered); a new label is still held to it."""
    from sqlalchemy import update

    project = make_project(tasks=1, min_answers=1, max_answers=1)
    with services.db.writing() as session:
        session.execute(update(Project).where(Project.id == project.id).values(
            config={"question": "Owl?", "labels": ["a", "Red\tDeer"],
                    "instructions": ""}))
    answer_one(services, volunteer, project.id)
    view = lifecycle.update_project(services, owner, project.id,
                                    {"config": {"question": "Which owl?"}})
    assert view.project.config["labels"] == ["a", "Red\tDeer"]
    with pytest.raises(InvalidError):
        lifecycle.update_project(services, owner, project.id,
                                 {"config": {"labels": ["a", "Red\tDeer", "Roe\tDeer"]}})
