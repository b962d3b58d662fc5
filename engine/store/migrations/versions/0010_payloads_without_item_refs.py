"""payloads without item refs: volunteers are sent only what the task shows

Task payloads are what GET .../tasks/next hands a volunteer. Until now the
classify-like, locate and transcribe types also put the item's uploaded id
there as ``ref``: a charity's file names and ids, which can give the answer
away or mark gold items. The id stays on the item row (``item.ref``); this
drops ``ref`` from every stored payload.

Data only, read and written in Python in batches by task id, so it runs the
same on SQLite and PostgreSQL however many tasks there are. Redis holds
copies of open tasks' payloads: run ``bitesize queue rebuild`` after
upgrading a live deployment (a rebuild reads payloads from SQL).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BATCH = 1000
TASK = sa.table('task', sa.column('id', sa.Integer()), sa.column('payload', sa.JSON()))


def upgrade() -> None:
    connection = op.get_bind()
    after = 0
    while True:
        rows = connection.execute(
            sa.select(TASK.c.id, TASK.c.payload).where(TASK.c.id > after)
            .order_by(TASK.c.id).limit(BATCH)).all()
        if not rows:
            return
        changed = [{"task_id": task_id, "payload": _without_ref(payload)}
                   for task_id, payload in rows
                   if isinstance(payload, dict) and "ref" in payload]
        if changed:
            connection.execute(
                TASK.update().where(TASK.c.id == sa.bindparam("task_id"))
                .values(payload=sa.bindparam("payload")), changed)
        after = rows[-1][0]


def _without_ref(payload: dict) -> dict:
    return {key: value for key, value in payload.items() if key != "ref"}


def downgrade() -> None:
    # Nothing is put back: older code only showed it on the quality desk,
    # which falls back to a link to the item; handing it to volunteers again
    # is the leak this revision closes.
    pass
