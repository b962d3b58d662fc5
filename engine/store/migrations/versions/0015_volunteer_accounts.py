"""volunteer accounts: keep anonymous work with an email and password or a recovery code

A volunteer stays anonymous by default; one who wants to keep their history
claims it (volunteer_account) and can then sign in on another device, which
gets a token of its own (volunteer_device).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'volunteer_account',
        sa.Column('volunteer_id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=True),
        sa.Column('password_hash', sa.String(length=200), nullable=True),
        sa.Column('recovery_hash', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id']),
        sa.PrimaryKeyConstraint('volunteer_id'),
        sa.UniqueConstraint('email'),
        sa.UniqueConstraint('recovery_hash'),
    )
    op.create_table(
        'volunteer_device',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('volunteer_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id']),
        sa.PrimaryKeyConstraint('token_hash'),
    )
    op.create_index(op.f('ix_volunteer_device_volunteer_id'), 'volunteer_device',
                    ['volunteer_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_volunteer_device_volunteer_id'), table_name='volunteer_device')
    op.drop_table('volunteer_device')
    op.drop_table('volunteer_account')
