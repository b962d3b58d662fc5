"""handout keyed by (task, volunteer): one B-tree per checkout's insert

The handout row is written on every checkout. Keyed by its natural key, as a
WITHOUT ROWID table on SQLite, an insert updates one B-tree instead of three
(the rowid table, the unique (task, volunteer) index and the project index).
The table is rebuilt beside the old one and the rows copied over; nothing
refers to it. Its constraints are named, so the names survive the rename.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_COLUMNS = "project_id, task_id, volunteer_id, created_at"


def _columns() -> list:
    return [sa.Column('project_id', sa.Integer(), nullable=False),
            sa.Column('task_id', sa.Integer(), nullable=False),
            sa.Column('volunteer_id', sa.Integer(), nullable=False),
            sa.Column('created_at', sa.DateTime(timezone=True), nullable=False)]


def _replace_handout(*parts, **options) -> None:
    """A new handout table built as handout_new, filled from the old, renamed in."""
    op.create_table('handout_new', *_columns(), *parts, **options)
    op.execute(f"INSERT INTO handout_new ({_COLUMNS}) SELECT {_COLUMNS} FROM handout")
    op.drop_table('handout')
    op.rename_table('handout_new', 'handout')


def upgrade() -> None:
    _replace_handout(
        sa.PrimaryKeyConstraint('task_id', 'volunteer_id', name='pk_handout'),
        sa.ForeignKeyConstraint(['task_id'], ['task.id'], name='fk_handout_task'),
        sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id'],
                                name='fk_handout_volunteer'),
        sa.ForeignKeyConstraint(['project_id'], ['project.id'], name='fk_handout_project'),
        sqlite_with_rowid=False)


def downgrade() -> None:
    _replace_handout(
        sa.Column('id', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
        sa.ForeignKeyConstraint(['task_id'], ['task.id'], ),
        sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id'], ),
        sa.UniqueConstraint('task_id', 'volunteer_id', name='uq_handout_task_volunteer'))
    op.create_index('ix_handout_project', 'handout', ['project_id'], unique=False)
