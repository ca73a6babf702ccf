"""SQLAlchemy rows of the log (append-only) and of its projections (rebuilt from the log)."""

from __future__ import annotations

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
