"""console: staff sign-in, organisation API tokens, one-time links, job heartbeats

Users gain an email, an argon2 password hash and a session version (bumped
to sign out everywhere). API tokens made in the console get their own table.
Jobs remember the uploaded file's name, how far reading got, and a heartbeat
that tells a dead worker's job from a slow one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: SQLite's batch mode would copy the tables, and dropping
    # the old ones fails while other tables' rows refer to them.
    op.add_column('user', sa.Column('email', sa.String(length=320), nullable=True))
    op.add_column('user', sa.Column('password_hash', sa.String(length=200), nullable=True))
    op.add_column('user', sa.Column('session_version', sa.Integer(), server_default='0',
                                    nullable=False))
    op.create_index('ix_user_email', 'user', ['email'], unique=True)
    op.create_table(
        'api_token',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id']),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'))
    op.create_index('ix_api_token_organisation_id', 'api_token', ['organisation_id'])
    op.create_table(
        'account_link',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('purpose', sa.String(length=20), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'))
    op.create_index('ix_account_link_user_id', 'account_link', ['user_id'])
    op.add_column('job', sa.Column('filename', sa.String(length=300), server_default='',
                                   nullable=False))
    op.add_column('job', sa.Column('items_read', sa.Integer(), server_default='0',
                                   nullable=False))
    op.add_column('job', sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('job', sa.Column('resumed', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    # Plain DROP COLUMNs (SQLite 3.35+), for the same reason as the ADDs above.
    for column in ('resumed', 'heartbeat_at', 'items_read', 'filename'):
        op.drop_column('job', column)
    op.drop_index('ix_account_link_user_id', 'account_link')
    op.drop_table('account_link')
    op.drop_index('ix_api_token_organisation_id', 'api_token')
    op.drop_table('api_token')
    op.drop_index('ix_user_email', 'user')
    for column in ('session_version', 'password_hash', 'email'):
        op.drop_column('user', column)
