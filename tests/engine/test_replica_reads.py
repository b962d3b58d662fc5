"""The read replica rule (BITESIZE_DATABASE_REPLICA_URL): exports and dashboards
may read a replica; counts, merges and hand-outs never do.

The "replica" here is a second database holding a copy of the primary taken
before the volunteers answered, as a replica that lags would: whatever reads
it sees no answers and no results, whatever reads the primary sees them all.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import insert, select

from engine.delivery import exports, insight
from engine.services import Services
from engine.store import migrate
from engine.store.db import Database
from engine.store.models import Base, Task
from engine.volunteering import next_task, submit_answer


def _copy(source: Database, target: Database) -> None:
    """Every row of every table, as a replica at this moment would have them."""
    with source.engine.connect() as read, target.engine.begin() as write:
        for table in Base.metadata.sorted_tables:
            rows = [dict(row._mapping) for row in read.execute(select(table))]
            if rows:
                write.execute(insert(table), rows)


@pytest.fixture
def lagging(services, tmp_path):
    """Services whose reader is a copy of the primary; copy() takes it."""
    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    replica = Services(replace(services.settings, database_replica_url=url), services.registry)
    migrate.upgrade(replica.reader, tmp_path)
    replica.copy = lambda: _copy(services.db, replica.reader)
    yield replica
    replica.close()


def _answer_everything(services, project, volunteers) -> None:
    for who in volunteers:
        while (task := next_task(services, who, project.id)) is not None:
            submit_answer(services, who, task.task_id, task.lease, {"label": "a"})


def test_without_a_replica_the_primary_is_read(services):
    assert services.reader is services.db


def test_exports_and_dashboards_read_the_replica(lagging, make_project, volunteer):
    project = make_project(tasks=3, min_answers=2, max_answers=2)
    lagging.copy()  # the replica stops here
    _answer_everything(lagging, project, [volunteer(), volunteer()])
    assert lagging.reader is not lagging.db
    # the replica's view: no answers, no results yet
    assert [row["value"] for row in exports.result_rows(lagging, project.id)] == [None] * 3
    assert list(exports.answer_rows(lagging, project.id)) == []
    assert insight.item_progress(lagging, project.id) == {"items": 3, "items_done": 0}
    assert sum(hour.count for hour in insight.answers_per_hour(lagging, project.id)) == 0
    # once it catches up, they show the work
    lagging.reader.dispose()
    with lagging.reader.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    lagging.copy()
    assert [row["value"] for row in exports.result_rows(lagging, project.id)] == ["a"] * 3
    assert len(list(exports.answer_rows(lagging, project.id))) == 6


def test_counts_and_merges_never_read_the_replica(lagging, make_project, volunteer):
    """The hand-out, the counting and the merge all saw the answers the replica
    lacks: every task got exactly its two answers and a merged result."""
    project = make_project(tasks=3, min_answers=2, max_answers=2)
    lagging.copy()
    _answer_everything(lagging, project, [volunteer(), volunteer(), volunteer()])
    with lagging.db.session() as session:
        states = session.scalars(select(Task.state).where(Task.project_id == project.id)).all()
    assert states == ["retired"] * 3  # merged from answers only the primary has
    primary = Services(replace(lagging.settings, database_replica_url=""), lagging.registry)
    try:
        answers = list(exports.answer_rows(primary, project.id))
        assert len(answers) == 6 and all(a["counted"] for a in answers)
    finally:
        primary.close()
