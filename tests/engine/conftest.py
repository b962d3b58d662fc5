"""Engine-level helpers: a charity's project with tasks, and volunteers."""
from __future__ import annotations

import pytest

from engine.identity import Identity, create_user, create_volunteer
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.store.models import User

LABELS = ["a", "b"]


@pytest.fixture
def owner(services) -> Identity:
    user_id, _ = create_user(services, "Owls Trust", "charity")
    with services.db.session() as session:
        org_id = session.get(User, user_id).organisation_id
    return Identity("user", user_id, org_id, "charity")


@pytest.fixture
def admin(services) -> Identity:
    """An admin of the owner's organisation: the one who may block and clear."""
    user_id, _ = create_user(services, "Owls Trust", "admin")
    with services.db.session() as session:
        return Identity("user", user_id, session.get(User, user_id).organisation_id, "admin")


@pytest.fixture
def make_project(services, owner):
    """A classify project whose `items` (default: `tasks` texts) are split already."""

    def make(tasks=5, min_answers=3, max_answers=3, items=None, priority=0, **options):
        # The suite's volunteers answer in no time, often one label: flags would
        # quarantine them. Tests of quarantine pass their own `quality`.
        options.setdefault("quality", {"quarantine": False, "trusted_after_minutes": 0})
        view = create_project(services, owner, {
            "name": "owls", "task_type": "classify",
            "config": {"question": "Owl?", "labels": LABELS},
            "min_answers": min_answers, "max_answers": max_answers, "confidence": 0.5,
            **options})
        add_items(view.project, items or [{"text": f"t{n}"} for n in range(tasks)], priority)
        return view.project

    def add_items(project, items, priority=0):
        job = create_job(services, owner, project.id, items=items, priority=priority)
        run_job(services, job.id)
        return job

    make.add_items = add_items
    return make


@pytest.fixture
def volunteer(services):
    def make() -> Identity:
        return Identity("volunteer", create_volunteer(services)[0])

    return make
