"""project calibration: the τ the live merge tempers its confidence by

The periodic quality job learns, per label project, how far its merges'
confidence must be tempered (volunteers miss the same hard items, so their
answers are not independent evidence); live merges read it with the task.
JSON, so that what else a merge learns per project can join it. Null until
the first estimate: untempered.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable, no batch mode): safe on SQLite, as in 0008.
    op.add_column('project', sa.Column('calibration', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('project', 'calibration')
