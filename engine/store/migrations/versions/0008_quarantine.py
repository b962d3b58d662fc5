"""quarantine: flagged volunteers' answers stop counting until an admin decides

Projects gain per-project thresholds of the flags (`quality`, JSON, null for the
defaults). A volunteer's row in a project gains when and why they were
quarantined, and when an admin last cleared them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (nullable, no batch mode): safe on SQLite, as in 0007.
    op.add_column('project', sa.Column('quality', sa.JSON(), nullable=True))
    op.add_column('volunteer_stat', sa.Column('quarantined_at', sa.DateTime(timezone=True),
                                              nullable=True))
    op.add_column('volunteer_stat', sa.Column('quarantine_reasons', sa.JSON(), nullable=True))
    op.add_column('volunteer_stat', sa.Column('cleared_at', sa.DateTime(timezone=True),
                                              nullable=True))


def downgrade() -> None:
    op.drop_column('volunteer_stat', 'cleared_at')
    op.drop_column('volunteer_stat', 'quarantine_reasons')
    op.drop_column('volunteer_stat', 'quarantined_at')
    op.drop_column('project', 'quality')
