"""Scans of serialised units' consumer pages: a mutable side table, neither part of the log
nor a projection of it (`suyuan rebuild` leaves it alone).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("scanned_at", sa.BigInteger(), nullable=False),
        sa.Column("visitor", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scans")),
    )
    with op.batch_alter_table("scans", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scans_gtin_serial_scanned_at", ["gtin", "serial", "scanned_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("scans", schema=None) as batch_op:
        batch_op.drop_index("ix_scans_gtin_serial_scanned_at")
    op.drop_table("scans")
