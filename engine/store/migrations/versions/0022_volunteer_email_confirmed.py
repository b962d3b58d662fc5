"""volunteer_account.email_confirmed_at: an email is confirmed before news goes to it

A volunteer could keep their work under any address, someone else's too, and
with a mail server set, subscribe it to a project's news (a security review).
An address is now confirmed by a link sent to it before any news goes there.
Addresses kept before this revision are not confirmed: their news stops until
the volunteer confirms (their volunteering page sends the link).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('volunteer_account') as batch:
        batch.add_column(sa.Column('email_confirmed_at', sa.DateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('volunteer_account') as batch:
        batch.drop_column('email_confirmed_at')
