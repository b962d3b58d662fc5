"""job.problems_count: every problem a split found, not the report's entries

A job's ``problems`` report lists the first 1,000 problems and then one line,
"N more problems not listed". The jobs API's ``problems_count`` and the
job.split event's ``problems`` counted the report's entries, so a job with
5,000 bad rows said 1,001. The split now keeps the true count beside the
report. Jobs reported before this revision get theirs from their report: its
entries, the last line's N in place of that line.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

PAGE = 200  # jobs read at a time: a report may hold 1,001 entries
MORE = " more problems not listed"  # how engine.intake.jobs ends a capped report


def upgrade() -> None:
    # A plain ADD COLUMN: SQLite's batch mode would copy the table, and dropping
    # the old one fails while items refer to it (as 0007 says).
    op.add_column('job', sa.Column('problems_count', sa.Integer(), server_default='0',
                                   nullable=False))
    job = sa.table('job', sa.column('id', sa.Integer), sa.column('problems', sa.JSON),
                   sa.column('problems_count', sa.Integer))
    connection, last = op.get_bind(), 0
    while page := connection.execute(sa.select(job.c.id, job.c.problems).where(
            job.c.id > last).order_by(job.c.id).limit(PAGE)).all():
        for job_id, problems in page:
            if problems:
                connection.execute(job.update().where(job.c.id == job_id)
                                   .values(problems_count=_count(problems)))
        last = page[-1][0]


def _count(problems: list) -> int:
    """The report's entries, its last line "N more problems not listed" as N."""
    last = problems[-1] if isinstance(problems[-1], dict) else {}
    reason = str(last.get("reason", ""))
    if set(last) == {"reason"} and reason.endswith(MORE) and reason.split(" ", 1)[0].isdigit():
        return len(problems) - 1 + int(reason.split(" ", 1)[0])
    return len(problems)


def downgrade() -> None:
    op.drop_column('job', 'problems_count')  # a plain DROP COLUMN (SQLite 3.35+), as 0007
