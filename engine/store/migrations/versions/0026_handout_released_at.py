"""handout.released_at: a skipped or reported lease stays unanswerable after a rebuild

A skip (or a report, which gives the lease back as a skip does) was recorded
only in Redis, as a marker that lasts a day. A rebuild from SQL (Redis wiped,
a failover) forgot it, and so did the marker's expiry: an answer sent with the
skipped lease then counted, on a task the volunteer had reported as
offensive or blank. The hand-out row now records the release, and a rebuild
marks those leases skipped again. Leases released before this revision are
not known.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


RELEASED = sa.text("released_at IS NOT NULL")


def upgrade() -> None:
    # A plain ADD COLUMN: nullable, no default to fill in, so no table copy.
    op.add_column('handout', sa.Column('released_at', sa.DateTime(timezone=True),
                                       nullable=True))
    # only the few released rows: a rebuild reads them without the project's
    # every hand-out
    op.create_index('ix_handout_released', 'handout', ['project_id', 'released_at'],
                    sqlite_where=RELEASED, postgresql_where=RELEASED)


def downgrade() -> None:
    op.drop_index('ix_handout_released', table_name='handout')
    op.drop_column('handout', 'released_at')  # a plain DROP COLUMN (SQLite 3.35+), as 0007
