"""audit log: every admin action on quality, and the newcomers' spot-check

A new table keeps who did what, when and why (block, clear, settle, ...; the
engine's own quarantines too, with no user). A volunteer's row in a project
gains when an admin looked at their first answers.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_entry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('volunteer_id', sa.Integer(), nullable=True),
        sa.Column('task_id', sa.Integer(), nullable=True),
        sa.Column('scope', sa.String(length=20), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id']),
        sa.ForeignKeyConstraint(['project_id'], ['project.id']),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id']),
        sa.ForeignKeyConstraint(['task_id'], ['task.id']),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_audit_entry_organisation', 'audit_entry', ['organisation_id', 'id'])
    op.create_index('ix_audit_entry_project_id', 'audit_entry', ['project_id'])
    op.add_column('volunteer_stat', sa.Column('checked_at', sa.DateTime(timezone=True),
                                              nullable=True))


def downgrade() -> None:
    op.drop_column('volunteer_stat', 'checked_at')
    op.drop_index('ix_audit_entry_project_id', table_name='audit_entry')
    op.drop_index('ix_audit_entry_organisation', table_name='audit_entry')
    op.drop_table('audit_entry')
