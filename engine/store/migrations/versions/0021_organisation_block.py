"""organisation_block: a block at organisation scope covers later projects too

A block at organisation scope blocked the volunteer in the organisation's
projects of that moment only: a project made afterwards handed them tasks
and counted their answers (a security review). The scope is now kept, and
each new project of the organisation starts with them blocked. Blocks made
before this revision are not known at this scope (their per-project rows
stand); block again at organisation scope to cover later projects.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'organisation_block',
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('volunteer_id', sa.Integer(), nullable=False),
        sa.Column('blocked_by', sa.Integer(), nullable=True),
        sa.Column('blocked_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id']),
        sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id']),
        sa.ForeignKeyConstraint(['blocked_by'], ['user.id']),
        sa.PrimaryKeyConstraint('organisation_id', 'volunteer_id'),
    )


def downgrade() -> None:
    op.drop_table('organisation_block')
