"""project guides: a tutorial shown before a volunteer's first task, and a field guide

Training on real tasks raises volunteers' accuracy and how much they give
(peers.md: Gravity Spy). The tutorial is a few screens of Markdown, with
pictures; the field guide one Markdown text reachable from every task. Both
null (none) for existing projects.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (nullable, no batch mode): safe on SQLite, as in 0008.
    op.add_column('project', sa.Column('tutorial', sa.JSON(), nullable=True))
    op.add_column('project', sa.Column('field_guide', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('project', 'field_guide')
    op.drop_column('project', 'tutorial')
