"""project translations: a charity's project texts in several languages

Volunteer pages come in several languages (web.i18n); a charity may give its
own words (name, description, question, instructions, label names, tutorial,
field guide) in each of them. Null (none) for existing projects.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable, no batch mode): safe on SQLite, as in 0014.
    op.add_column('project', sa.Column('translations', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('project', 'translations')
