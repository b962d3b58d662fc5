"""volunteer_stat.remerging_since: a moderation's re-merge under way

Blocking, quarantining, clearing or unblocking a volunteer merges the tasks
they answered again a chunk per transaction, so that no writer waits seconds
on one; this marks the volunteer until the last chunk, so that a re-merge
whose process was lost is finished by the periodic quality job.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('volunteer_stat') as batch:
        batch.add_column(sa.Column('remerging_since', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('volunteer_stat') as batch:
        batch.drop_column('remerging_since')
