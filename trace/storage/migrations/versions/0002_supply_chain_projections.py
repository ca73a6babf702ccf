"""Supply-chain projections: products, locations, lots, custody, shipments, lineage, alerts,
published limits.

All derived from the log; `suyuan rebuild` empties and refills them.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry", sa.BigInteger(), nullable=False),
        sa.Column("lot", sa.String(length=64), nullable=True),
        sa.Column("rule", sa.String(length=48), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_entry"), ["entry"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_lot"), ["lot"], unique=False)

    op.create_table(
        "applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry", sa.BigInteger(), nullable=False),
        sa.Column("lot", sa.String(length=64), nullable=True),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("input_type", sa.String(length=32), nullable=False),
        sa.Column("active_ingredient", sa.Text(), nullable=True),
        sa.Column("product_name", sa.Text(), nullable=False),
        sa.Column("event_time", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
    )
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_applications_location"), ["location"], unique=False)
        batch_op.create_index(batch_op.f("ix_applications_lot"), ["lot"], unique=False)

    op.create_table(
        "cold_chain_limits",
        sa.Column("commodity", sa.String(length=64), nullable=False),
        sa.Column("max_celsius", sa.String(length=16), nullable=False),
        sa.Column("max_gap_minutes", sa.Integer(), nullable=False),
        sa.Column("entry", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("commodity", name=op.f("pk_cold_chain_limits")),
    )
    op.create_table(
        "holdings",
        sa.Column("lot", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("lot", "actor", name=op.f("pk_holdings")),
    )
    op.create_table(
        "limits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry", sa.BigInteger(), nullable=False),
        sa.Column("standard", sa.String(length=64), nullable=False),
        sa.Column("effective_from", sa.String(length=10), nullable=False),
        sa.Column("effective_to", sa.String(length=10), nullable=True),
        sa.Column("active_ingredient", sa.String(length=100), nullable=False),
        sa.Column("food_category", sa.String(length=64), nullable=False),
        sa.Column("phi_days", sa.Integer(), nullable=True),
        sa.Column("mrl", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_limits")),
    )
    with op.batch_alter_table("limits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_limits_active_ingredient"), ["active_ingredient"], unique=False
        )

    op.create_table(
        "lineage",
        sa.Column("parent", sa.String(length=64), nullable=False),
        sa.Column("child", sa.String(length=64), nullable=False),
        sa.Column("entry", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("parent", "child", "entry", name=op.f("pk_lineage")),
    )
    with op.batch_alter_table("lineage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lineage_child"), ["child"], unique=False)

    op.create_table(
        "locations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("gln", sa.String(length=64), nullable=True),
        sa.Column("admin_code", sa.String(length=6), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("lat", sa.String(length=32), nullable=True),
        sa.Column("lon", sa.String(length=32), nullable=True),
        sa.Column("fao_area", sa.String(length=64), nullable=True),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
    )
    op.create_table(
        "lot_events",
        sa.Column("lot", sa.String(length=64), nullable=False),
        sa.Column("entry", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("event_time", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("lot", "entry", name=op.f("pk_lot_events")),
    )
    op.create_table(
        "lots",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("quantity", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_kind", sa.String(length=48), nullable=False),
        sa.Column("created_time", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recalled_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_lots")),
    )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lots_gtin"), ["gtin"], unique=False)

    op.create_table(
        "products",
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("name_zh", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column("commodity", sa.String(length=64), nullable=False),
        sa.Column("variety", sa.Text(), nullable=True),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("food_category", sa.String(length=64), nullable=True),
        sa.Column("ftl", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("gtin", name=op.f("pk_products")),
    )
    op.create_table(
        "serials",
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("lot", sa.String(length=64), nullable=False),
        sa.Column("packed_at", sa.BigInteger(), nullable=False),
        sa.Column("sold_at", sa.BigInteger(), nullable=True),
        sa.Column("sold_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("gtin", "serial", name=op.f("pk_serials")),
    )
    with op.batch_alter_table("serials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_serials_lot"), ["lot"], unique=False)

    op.create_table(
        "shipment_lots",
        sa.Column("shipment", sa.String(length=64), nullable=False),
        sa.Column("lot", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=32), nullable=False),
        sa.Column("received_quantity", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("shipment", "lot", name=op.f("pk_shipment_lots")),
    )
    with op.batch_alter_table("shipment_lots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shipment_lots_lot"), ["lot"], unique=False)

    op.create_table(
        "shipments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("receiver", sa.String(length=64), nullable=False),
        sa.Column("from_location", sa.String(length=64), nullable=False),
        sa.Column("to_location", sa.String(length=64), nullable=True),
        sa.Column("carrier", sa.String(length=64), nullable=True),
        sa.Column("shipped_at", sa.BigInteger(), nullable=False),
        sa.Column("shipped_time", sa.String(length=40), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=True),
        sa.Column("received_time", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
    )
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shipments_receiver"), ["receiver"], unique=False)
        batch_op.create_index(batch_op.f("ix_shipments_sender"), ["sender"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipments_sender"))
        batch_op.drop_index(batch_op.f("ix_shipments_receiver"))

    op.drop_table("shipments")
    with op.batch_alter_table("shipment_lots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipment_lots_lot"))

    op.drop_table("shipment_lots")
    with op.batch_alter_table("serials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_serials_lot"))

    op.drop_table("serials")
    op.drop_table("products")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lots_gtin"))

    op.drop_table("lots")
    op.drop_table("lot_events")
    op.drop_table("locations")
    with op.batch_alter_table("lineage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_child"))

    op.drop_table("lineage")
    with op.batch_alter_table("limits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_limits_active_ingredient"))

    op.drop_table("limits")
    op.drop_table("holdings")
    op.drop_table("cold_chain_limits")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_applications_lot"))
        batch_op.drop_index(batch_op.f("ix_applications_location"))

    op.drop_table("applications")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_lot"))
        batch_op.drop_index(batch_op.f("ix_alerts_entry"))

    op.drop_table("alerts")
