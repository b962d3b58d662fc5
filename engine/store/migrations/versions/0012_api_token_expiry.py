"""api token expiry: an organisation's token may be made to end by itself

Staff choose, when they make a token in the console, whether it ends after
30, 90 or 365 days or lasts until revoked; null (every existing token) is
"until revoked".

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable, no batch mode): safe on SQLite, as in 0008.
    op.add_column('api_token', sa.Column('expires_at', sa.DateTime(timezone=True),
                                         nullable=True))


def downgrade() -> None:
    op.drop_column('api_token', 'expires_at')
