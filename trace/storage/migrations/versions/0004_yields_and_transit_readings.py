"""Published yield tolerances, products' net mass per unit, the latest transit reading of a
shipment, and when a lot's history last changed (projections: `suyuan rebuild` fills them
from the log; the upgrade fills ``lots.changed_at`` from each lot's own latest event, and a
rebuild adds its ancestors' events).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "yield_limits",
        sa.Column("commodity", sa.String(length=64), nullable=False),
        sa.Column("process", sa.String(length=16), nullable=False),
        sa.Column("min_ratio", sa.String(length=16), nullable=False),
        sa.Column("max_ratio", sa.String(length=16), nullable=False),
        sa.Column("entry", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("commodity", "process", name=op.f("pk_yield_limits")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("net_kg", sa.String(length=32), nullable=True))
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_reading_time", sa.String(length=40), nullable=True))
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("changed_at", sa.BigInteger(), nullable=True))
    op.execute("UPDATE lots SET changed_at = (SELECT max(entry) FROM lot_events"
               " WHERE lot_events.lot = lots.code)")


def downgrade() -> None:
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_column("changed_at")
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_column("last_reading_time")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("net_kg")
    op.drop_table("yield_limits")
