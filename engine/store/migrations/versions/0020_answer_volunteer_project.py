"""answer: index (volunteer_id, project_id, id) in place of (volunteer_id)

The answer path reads a volunteer's latest answers in a project (answers 3 to
10, then every few: engine.quality.arrivals.check_volunteer). psycopg
prepares a statement it has run five times, and PostgreSQL's generic plan for
that read walked the answer table's primary key backwards, filtering every
row, until it had found the volunteer's: on a bench project of 35,000 answers
25 ms a check, growing with the project. With this index the read is a range
scan in id order under any plan (4.7 ms a check there, nearly all of it
Python). The old index on volunteer_id alone is its prefix, so it goes.

On PostgreSQL the index is built with the table locked against writes: on a
large table, run the upgrade in a quiet moment, or build the index first with
CREATE INDEX CONCURRENTLY under the same name (this then keeps it; check that
the build succeeded: a failed one leaves an INVALID index of that name).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

NEW = 'ix_answer_volunteer_project'


def upgrade() -> None:
    # IF NOT EXISTS: built beforehand (CONCURRENTLY, under this name), it is kept
    op.create_index(NEW, 'answer', ['volunteer_id', 'project_id', 'id'], unique=False,
                    if_not_exists=True)
    op.drop_index('ix_answer_volunteer_id', table_name='answer')


def downgrade() -> None:
    op.create_index('ix_answer_volunteer_id', 'answer', ['volunteer_id'], unique=False)
    op.drop_index(NEW, table_name='answer')
