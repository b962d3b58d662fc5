"""The demo's sample projects go through the real upload path, one per task type:
the letter is cut into its lines and the colony photo into overlapping tiles."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.errors import AuthenticationError
from engine.identity import authenticate
from engine.intake import samples
from engine.store.models import Job, Project, User


def test_every_sample_project_splits_into_tasks(services, work):
    _, project_ids = samples.create_demo(services)
    work()
    with services.db.session() as session:
        projects = {p.id: p for p in session.scalars(select(Project))}
        jobs = {j.project_id: j for j in session.scalars(select(Job))}
    by_type = {projects[pid].task_type: jobs[pid] for pid in project_ids}
    assert set(by_type) == {"classify", "tag", "number", "transcribe", "locate"}
    assert all(job.state == "done" and not job.problems for job in jobs.values())
    assert by_type["transcribe"].tasks_made == len(samples.LETTER)  # one task per line
    assert by_type["locate"].tasks_made == 12  # 1600x1100 in 512-px tiles overlapping 64
    assert by_type["tag"].tasks_made == 12 and by_type["number"].tasks_made == 8


def test_demo_is_made_once(services, work):
    _, first = samples.create_demo(services)
    _, again = samples.create_demo(services)
    assert first == again


def test_each_demo_start_gives_the_one_demo_admin_a_new_token_and_ends_the_last(services):
    """Not another admin per start, each with a token that never ends."""
    old, _ = samples.create_demo(services)
    new, _ = samples.create_demo(services)
    assert new != old
    with pytest.raises(AuthenticationError):
        authenticate(services, old)
    assert authenticate(services, new).role == "admin"
    with services.db.session() as session:
        admins = session.scalars(select(User.name).where(User.role == "admin")).all()
    assert admins == [samples.DEMO_ADMIN]
