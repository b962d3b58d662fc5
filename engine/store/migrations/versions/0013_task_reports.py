"""task reports: volunteers tell the charity that something is wrong with a task

A blank or broken picture, upsetting content, text nobody can read: each
report reaches the quality desk's inbox, and enough of them (the project's
quality setting reports_to_withdraw) take the task out of circulation until
staff dismiss the reports or settle the task.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'task_report',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('volunteer_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=20), nullable=False),
        sa.Column('note', sa.String(length=300), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['project_id'], ['project.id']),
        sa.ForeignKeyConstraint(['task_id'], ['task.id']),
        sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('task_id', 'volunteer_id', name='uq_task_report_task_volunteer'),
    )
    op.create_index('ix_task_report_project_open', 'task_report',
                    ['project_id', 'resolved_at'])


def downgrade() -> None:
    op.drop_index('ix_task_report_project_open', table_name='task_report')
    op.drop_table('task_report')
