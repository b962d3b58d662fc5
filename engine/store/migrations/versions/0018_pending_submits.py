"""pending submits: answers stored while Redis was out of reach

When Redis cannot be reached, volunteers' answers are still stored in SQL
(their lease tokens prove what was handed out); each one is noted here so
that its lease is closed and its task counted once Redis answers again.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'pending_submit',
        sa.Column('answer_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('volunteer_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('answer_id'),
    )


def downgrade() -> None:
    op.drop_table('pending_submit')
