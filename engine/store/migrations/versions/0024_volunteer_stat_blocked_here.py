"""volunteer_stat.blocked_here: a charity's own block outlives a platform unblock

``blocked`` says a volunteer is blocked in a project at any scope. A platform
admin's unblock cleared it in every project, and ended every organisation's
block: a charity's own decision, made for reasons of its own, was undone by
another tenant's. ``blocked_here`` remembers a project's own block; a
platform unblock now leaves a project blocked while its own block or its
organisation's stands. Rows blocked before this revision are taken as the
project's own where no wider block could have made them: the volunteer not
blocked platform-wide, no organisation block of theirs in the project's
organisation. A project block made under a wider block cannot be told apart,
and is taken as the wider block's.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('volunteer_stat') as batch:
        batch.add_column(sa.Column('blocked_here', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    stat = sa.table('volunteer_stat', sa.column('project_id', sa.Integer),
                    sa.column('volunteer_id', sa.Integer), sa.column('blocked', sa.Boolean),
                    sa.column('blocked_here', sa.Boolean))
    volunteer = sa.table('volunteer', sa.column('id', sa.Integer),
                         sa.column('blocked', sa.Boolean))
    project = sa.table('project', sa.column('id', sa.Integer),
                       sa.column('organisation_id', sa.Integer))
    block = sa.table('organisation_block', sa.column('organisation_id', sa.Integer),
                     sa.column('volunteer_id', sa.Integer))
    platform = sa.exists().where(volunteer.c.id == stat.c.volunteer_id,
                                 volunteer.c.blocked.is_(True))
    organisation = sa.exists().where(project.c.id == stat.c.project_id,
                                     block.c.organisation_id == project.c.organisation_id,
                                     block.c.volunteer_id == stat.c.volunteer_id)
    op.execute(stat.update().where(stat.c.blocked.is_(True), ~platform, ~organisation)
               .values(blocked_here=True))


def downgrade() -> None:
    with op.batch_alter_table('volunteer_stat') as batch:
        batch.drop_column('blocked_here')
