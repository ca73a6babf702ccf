"""SQLAlchemy rows of the log (append-only), of its projections (rebuilt from the log) and of
the few mutable side tables that are neither (consumer scan counts)."""

# (No ``from __future__ import annotations`` here: SQLAlchemy would have to turn the 144
# ``Mapped[...]`` annotations back from strings, 7 ms of every command that loads this.)

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

APPEND_ONLY_TABLES = ("entries", "nodes", "checkpoints", "cosignatures")
"""Tables whose rows are never updated or deleted (triggers refuse it)."""


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "pk": "pk_%(table_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        }
    )


class Meta(Base):
    """Settings fixed at init: origin, log verifier key, registrar name."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Head(Base):
    """The one row writers lock to take turns; size and last leaf hash of the log."""

    __tablename__ = "log_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class EntryRow(Base):
    """An entry: ``leaf`` is exactly the bytes hashed into the tree."""

    __tablename__ = "entries"
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    prev: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    actor: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(48))
    __table_args__ = (
        UniqueConstraint("nonce", "actor"),
        Index("ix_entries_kind", "kind"),
    )


class NodeRow(Base):
    """Hash of the complete subtree over leaves [idx << level, (idx + 1) << level)."""

    __tablename__ = "nodes"
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class CheckpointRow(Base):
    """A checkpoint signed by the log key (the note text holds only the log's signature)."""

    __tablename__ = "checkpoints"
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))


class WitnessRow(Base):
    """A witness known to this log, by its cosignature verifier key."""

    __tablename__ = "witnesses"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    vkey: Mapped[str] = mapped_column(Text)
    added_at: Mapped[str] = mapped_column(String(32))


class CosignatureRow(Base):
    """A witness's tlog-cosignature line over a stored checkpoint."""

    __tablename__ = "cosignatures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, ForeignKey("checkpoints.size"))
    witness: Mapped[str] = mapped_column(String(200), ForeignKey("witnesses.name"))
    timestamp: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[str] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("size", "witness"),)


class ActorRow(Base):
    """Projection: registered actors."""

    __tablename__ = "actors"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    registered_at: Mapped[int] = mapped_column(BigInteger)
    display_name: Mapped[str | None] = mapped_column(Text)
    org_id: Mapped[str | None] = mapped_column(String(64))
    info: Mapped[str] = mapped_column(Text, default="{}")


class ActorKeyRow(Base):
    """Projection: actor keys with the log span in which they may sign."""

    __tablename__ = "actor_keys"
    actor: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    added_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


metadata = Base.metadata


# --- supply-chain projections (rebuilt from the log by `suyuan rebuild`) ---------------------

PROJECTION_TABLES = (
    "yield_limits", "cold_chain_limits", "limits", "alerts", "serials", "applications", "lot_events", "lineage", "shipment_lots", "shipments",
    "holdings", "lots", "locations", "products", "actors", "actor_keys",
)
"""Derived tables, in an order safe for deleting."""


class ProductRow(Base):
    __tablename__ = "products"
    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    commodity: Mapped[str] = mapped_column(String(64))
    variety: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(String(8))
    food_category: Mapped[str | None] = mapped_column(String(64))
    ftl: Mapped[bool] = mapped_column(default=False)
    net_kg: Mapped[str | None] = mapped_column(String(32))
    """Net mass of one unit (box, piece, …) in kg, for products counted in units."""
    owner: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[int] = mapped_column(BigInteger)


class LocationRow(Base):
    __tablename__ = "locations"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(64))
    gln: Mapped[str | None] = mapped_column(String(64))
    admin_code: Mapped[str | None] = mapped_column(String(6))
    address: Mapped[str | None] = mapped_column(Text)
    lat: Mapped[str | None] = mapped_column(String(32))
    lon: Mapped[str | None] = mapped_column(String(32))
    fao_area: Mapped[str | None] = mapped_column(String(64))
    registered_at: Mapped[int] = mapped_column(BigInteger)


class LotRow(Base):
    """A lot (traceability lot code): what it is, who made it, its state."""

    __tablename__ = "lots"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14), index=True)
    owner: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[str] = mapped_column(String(32))
    location: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_kind: Mapped[str] = mapped_column(String(48))
    created_time: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="active")
    recalled_at: Mapped[int | None] = mapped_column(BigInteger)
    changed_at: Mapped[int | None] = mapped_column(BigInteger)
    """Entry of the latest statement that changed this lot's history as its page shows it: an
    event or alert of the lot or of any lot it was made from."""


class HoldingRow(Base):
    """How much of a lot an actor holds now (custody)."""

    __tablename__ = "holdings"
    lot: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[str] = mapped_column(String(32))


class ShipmentRow(Base):
    __tablename__ = "shipments"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sender: Mapped[str] = mapped_column(String(64), index=True)
    receiver: Mapped[str] = mapped_column(String(64), index=True)
    from_location: Mapped[str] = mapped_column(String(64))
    to_location: Mapped[str | None] = mapped_column(String(64))
    carrier: Mapped[str | None] = mapped_column(String(64))
    shipped_at: Mapped[int] = mapped_column(BigInteger)
    shipped_time: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[int | None] = mapped_column(BigInteger)
    received_time: Mapped[str | None] = mapped_column(String(40))
    last_reading_time: Mapped[str | None] = mapped_column(String(40))
    """Time of the latest temperature reading recorded for the shipment in transit."""


class ShipmentLotRow(Base):
    __tablename__ = "shipment_lots"
    shipment: Mapped[str] = mapped_column(String(64), primary_key=True)
    lot: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    quantity: Mapped[str] = mapped_column(String(32))
    received_quantity: Mapped[str | None] = mapped_column(String(32))


class LineageRow(Base):
    """parent lot → child lot, made by a packing or transformation entry."""

    __tablename__ = "lineage"
    parent: Mapped[str] = mapped_column(String(64), primary_key=True)
    child: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    entry: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    quantity: Mapped[str] = mapped_column(String(32))


class LotEventRow(Base):
    """Every entry that concerns a lot, for its history."""

    __tablename__ = "lot_events"
    lot: Mapped[str] = mapped_column(String(64), primary_key=True)
    entry: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(48))
    actor: Mapped[str] = mapped_column(String(64))
    event_time: Mapped[str | None] = mapped_column(String(40))


class ApplicationRow(Base):
    """Inputs applied (pesticides, fertiliser…) by lot or location, for interval checks."""

    __tablename__ = "applications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry: Mapped[int] = mapped_column(BigInteger)
    lot: Mapped[str | None] = mapped_column(String(64), index=True)
    location: Mapped[str] = mapped_column(String(64), index=True)
    input_type: Mapped[str] = mapped_column(String(32))
    active_ingredient: Mapped[str | None] = mapped_column(Text)
    product_name: Mapped[str] = mapped_column(Text)
    event_time: Mapped[str] = mapped_column(String(40))


class SerialRow(Base):
    __tablename__ = "serials"
    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), primary_key=True)
    lot: Mapped[str] = mapped_column(String(64), index=True)
    packed_at: Mapped[int] = mapped_column(BigInteger)
    sold_at: Mapped[int | None] = mapped_column(BigInteger)
    sold_count: Mapped[int] = mapped_column(Integer, default=0)


class AlertRow(Base):
    """A rule broken by an accepted statement: for the regulator's queue."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry: Mapped[int] = mapped_column(BigInteger, index=True)
    lot: Mapped[str | None] = mapped_column(String(64), index=True)
    rule: Mapped[str] = mapped_column(String(48))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")


class LimitRow(Base):
    """A pesticide's pre-harvest interval and maximum residue limit for a food category,
    as published in the log by a regulator, per standard edition."""

    __tablename__ = "limits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry: Mapped[int] = mapped_column(BigInteger)
    standard: Mapped[str] = mapped_column(String(64))
    effective_from: Mapped[str] = mapped_column(String(10))
    effective_to: Mapped[str | None] = mapped_column(String(10))
    active_ingredient: Mapped[str] = mapped_column(String(100), index=True)
    food_category: Mapped[str] = mapped_column(String(64))
    phi_days: Mapped[int | None] = mapped_column(Integer)
    mrl: Mapped[str | None] = mapped_column(String(32))


class ColdChainLimitRow(Base):
    """Highest temperature and longest gap between readings allowed for a commodity."""

    __tablename__ = "cold_chain_limits"
    commodity: Mapped[str] = mapped_column(String(64), primary_key=True)
    max_celsius: Mapped[str] = mapped_column(String(16))
    max_gap_minutes: Mapped[int] = mapped_column(Integer)
    entry: Mapped[int] = mapped_column(BigInteger)


class YieldLimitRow(Base):
    """Mass out over mass in allowed for a process on a commodity, as published by a regulator
    (the latest publication for a commodity and process replaces the earlier one)."""

    __tablename__ = "yield_limits"
    commodity: Mapped[str] = mapped_column(String(64), primary_key=True)
    process: Mapped[str] = mapped_column(String(16), primary_key=True)
    min_ratio: Mapped[str] = mapped_column(String(16))
    max_ratio: Mapped[str] = mapped_column(String(16))
    entry: Mapped[int] = mapped_column(BigInteger)


# --- side tables: mutable, neither log nor projection (`suyuan rebuild` leaves them alone) -------

SIDE_TABLES = ("scans",)
"""Tables written by the website that the log does not determine and a rebuild never empties."""


class ScanRow(Base):
    """A counted scan of a serialised unit's consumer page (一物一码 anti-counterfeit).

    Which scans count (people, not bots or link previews; one per visitor per half hour) is
    decided by the website; ``visitor`` is a keyed hash of the client address and user agent,
    never the address itself. ``scanned_at`` is in Unix seconds (UTC).
    """

    __tablename__ = "scans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14))
    serial: Mapped[str] = mapped_column(String(64))
    scanned_at: Mapped[int] = mapped_column(BigInteger)
    visitor: Mapped[str] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (Index("ix_scans_gtin_serial_scanned_at", "gtin", "serial", "scanned_at"),)
