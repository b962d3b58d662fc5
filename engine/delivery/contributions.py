"""What a volunteer's answers did: how many, the tasks they helped finish, the time given.

Volunteers come back when they see that their few minutes mattered (peers.md:
"your help matters" works near the moment people usually stop), and schools
and employers ask for volunteering hours. The answering page shows this
record at natural stopping points; the volunteer's own page (/me) lists it by
project with a printable certificate. It belongs to the volunteer's token,
so anonymous volunteers have one too.

Time given is measured, not guessed: from a task's hand-out to its answer,
at most TASK_SECONDS_CAP per task (a tab left open over lunch is not an hour
of volunteering). A task counts as finished once its result is final
(retired by agreement, or settled by the charity).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select

from engine.identity import Identity
from engine.services import Services
from engine.store.models import Answer, Handout, Project, Task, aware

FINISHED = ("retired", "settled")
TASK_SECONDS_CAP = 600


@dataclass(frozen=True)
class ProjectRecord:
    project_id: int
    name: str
    answers: int
    finished: int  # tasks they answered whose result is now final
    seconds: int


@dataclass(frozen=True)
class Record:
    answers: int
    seconds: int
    projects: list[ProjectRecord]
    first_at: datetime | None
    last_at: datetime | None

    def project(self, project_id: int) -> ProjectRecord | None:
        return next((p for p in self.projects if p.project_id == project_id), None)


def volunteer_record(services: Services, identity: Identity) -> Record:
    """The calling volunteer's record, projects in the order they first helped them."""
    identity.require_volunteer()
    query = (select(Answer.project_id, Project.name, Task.state, Answer.created_at,
                    Handout.created_at)
             .join(Task, Task.id == Answer.task_id)
             .join(Project, Project.id == Answer.project_id)
             .outerjoin(Handout, and_(Handout.task_id == Answer.task_id,
                                      Handout.volunteer_id == Answer.volunteer_id))
             .where(Answer.volunteer_id == identity.id)
             .order_by(Answer.id))
    with services.db.session() as session:
        rows = session.execute(query).all()
    tallies: dict[int, list] = {}  # project -> [name, answers, finished, seconds]
    for project_id, name, state, answered_at, handed_at in rows:
        tally = tallies.setdefault(project_id, [name, 0, 0, 0])
        tally[1] += 1
        tally[2] += state in FINISHED
        tally[3] += _seconds(handed_at, answered_at)
    projects = [ProjectRecord(pid, name, answers, finished, seconds)
                for pid, (name, answers, finished, seconds) in tallies.items()]
    return Record(len(rows), sum(p.seconds for p in projects), projects,
                  aware(rows[0][3]) if rows else None, aware(rows[-1][3]) if rows else None)


def _seconds(handed_at: datetime | None, answered_at: datetime) -> int:
    """The time one task took, capped; 0 where the hand-out is unknown."""
    if handed_at is None:
        return 0
    took = (aware(answered_at) - aware(handed_at)).total_seconds()
    return int(min(max(took, 0), TASK_SECONDS_CAP))
