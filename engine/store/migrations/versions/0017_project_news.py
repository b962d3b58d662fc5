"""project news: volunteers opt in to a project's emails; the notes charities send

Optional and opt-in: a volunteer who kept their work with an email may ask a
project to tell them when it has news ("new photos are up"), only where the
site has a mail server.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'news_subscription',
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('volunteer_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['project.id']),
        sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id']),
        sa.PrimaryKeyConstraint('project_id', 'volunteer_id'),
    )
    op.create_table(
        'project_news',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('subject', sa.String(length=150), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recipients', sa.Integer(), nullable=False),
        sa.Column('sent', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['created_by'], ['user.id']),
        sa.ForeignKeyConstraint(['project_id'], ['project.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_project_news_project_id'), 'project_news', ['project_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_project_news_project_id'), table_name='project_news')
    op.drop_table('project_news')
    op.drop_table('news_subscription')
