"""volunteer_account.email_set_at: an unconfirmed email lapses for its owner

A volunteer could keep their work under someone else's address and never
confirm it: the owner then met 409 "already in use" for good (a security
review). An address not confirmed within the confirmation link's 7 days of
being kept now goes to the next volunteer who keeps it; this column says when
it was kept. Addresses kept before this revision count from the upgrade, so
none lapses sooner than 7 days after it.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('volunteer_account') as batch:
        batch.add_column(sa.Column('email_set_at', sa.DateTime(timezone=True), nullable=True))
    account = sa.table('volunteer_account', sa.column('email', sa.String),
                       sa.column('email_set_at', sa.DateTime(timezone=True)))
    op.execute(account.update().where(account.c.email.is_not(None))
               .values(email_set_at=datetime.now(UTC)))


def downgrade() -> None:
    with op.batch_alter_table('volunteer_account') as batch:
        batch.drop_column('email_set_at')
