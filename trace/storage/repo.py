"""Queries and inserts on the log tables. Functions take a Session and never commit."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from suyuan.errors import ConfigError, DamagedRecord, NotFound
from suyuan.registry import Registry
from suyuan.storage import plain
from suyuan.storage.schema import (
    ActorKeyRow,
    ActorRow,
    CheckpointRow,
    CosignatureRow,
    EntryRow,
    Head,
    Meta,
    NodeRow,
    WitnessRow,
)

NodeId = tuple[int, int]
_IN_CHUNK = 400  # bound the number of bound parameters per IN (...) query


def get_meta(session: Session, key: str) -> str | None:
    return plain.meta(query(session), key)


def require_meta(session: Session, key: str) -> str:
    value = get_meta(session, key)
    if value is None:
        raise ConfigError("the ledger is not initialised: run `suyuan init --origin ORIGIN`")
    return value


def set_meta(session: Session, key: str, value: str) -> None:
    session.merge(Meta(key=key, value=value))


def create_head(session: Session, last_hash: bytes) -> None:
    session.add(Head(id=1, size=0, last_hash=last_hash))


def lock_head(session: Session) -> tuple[int, bytes]:
    """Take the writers' lock (row lock on PostgreSQL; SQLite already holds BEGIN IMMEDIATE)."""
    lock = " FOR UPDATE" if session.connection().dialect.name == "postgresql" else ""
    return _head(session, lock)


def read_head(session: Session) -> tuple[int, bytes]:
    return _head(session, "")


def _head(session: Session, lock: str) -> tuple[int, bytes]:
    # Plain SQL for these and the other queries every append makes: SQLAlchemy's handling of
    # them was a third of the cost of appending a few hundred statements.
    found = plain.head(query(session), lock)
    if found is None:
        raise ConfigError("the ledger is not initialised: run `suyuan init --origin ORIGIN`")
    return found


def set_head(session: Session, size: int, last_hash: bytes) -> None:
    _raw_rows(session, "UPDATE log_head SET size = ?, last_hash = ? WHERE id = 1",
              (size, last_hash), fetch=False)


def fetch_nodes(session: Session, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
    """Stored node hashes by (level, index), in one query per few hundred ids.

    The condition is an OR of ``level = ? AND idx IN (…)`` per level: both SQLite and
    PostgreSQL answer each term from the primary key. (A row-value ``(level, idx) IN
    (VALUES …)`` makes SQLite 3.40 scan the whole table: 200 ms per proof at 1M entries.)
    The SQL is written directly: proofs are on the consumer page's path, and compiling a
    differently shaped SQLAlchemy expression for every proof costs more than the reads.
    """
    wanted = list(dict.fromkeys(ids))
    found: dict[NodeId, bytes] = {}
    connection = session.connection()
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    for start in range(0, len(wanted), _IN_CHUNK):
        by_level: dict[int, list[int]] = {}
        for level, idx in wanted[start : start + _IN_CHUNK]:
            by_level.setdefault(int(level), []).append(int(idx))
        terms, params = [], []
        for level, indexes in sorted(by_level.items()):
            terms.append(f"(level = {marker} AND idx IN ({', '.join([marker] * len(indexes))}))")
            params.append(level)
            params.extend(indexes)
        sql = f"SELECT level, idx, hash FROM nodes WHERE {' OR '.join(terms)}"
        for level, idx, stored in connection.exec_driver_sql(sql, tuple(params)):
            found[(int(level), int(idx))] = _node_hash(level, idx, stored)
    return found


def _insert_many(session: Session, table: str, columns: Sequence[str],
                 rows: Sequence[tuple[Any, ...]]) -> None:
    """Plain DBAPI executemany: the append hot path skips SQLAlchemy's per-value bind
    processing (a third of the append cost otherwise)."""
    connection = session.connection()
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"
    connection.exec_driver_sql(sql, list(rows))


def insert_nodes(session: Session, nodes: Sequence[tuple[NodeId, bytes]]) -> None:
    if nodes:
        _insert_many(session, "nodes", ("level", "idx", "hash"),
                     [(level, idx, digest) for (level, idx), digest in nodes])


ENTRY_COLUMNS = ("idx", "leaf", "leaf_hash", "prev", "actor", "nonce", "kind")


def insert_entries(session: Session, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert entries given as tuples in :data:`ENTRY_COLUMNS` order."""
    if rows:
        _insert_many(session, "entries", ENTRY_COLUMNS, rows)


def find_nonces(session: Session, keys: Iterable[tuple[str, str]]
                ) -> dict[tuple[str, str], tuple[int, bytes]]:
    """(index, leaf) of entries already carrying any of these (actor, nonce) pairs."""
    wanted = set(keys)
    nonces = sorted({nonce for _, nonce in wanted})
    found: dict[tuple[str, str], tuple[int, bytes]] = {}
    # Look up by nonce alone (the (nonce, actor) unique index serves it), then keep the pairs
    # asked for. Plain SQL: every append batch sends these, and rendering an expanding IN of
    # 400 values costs SQLAlchemy more than SQLite takes to answer it.
    for start in range(0, len(nonces), _IN_CHUNK):
        chunk = nonces[start : start + _IN_CHUNK]
        sql = ("SELECT actor, nonce, idx, leaf FROM entries "
               f"WHERE nonce IN ({', '.join(['?'] * len(chunk))})")
        for actor, nonce, idx, data in _raw_rows(session, sql, chunk):
            if (actor, nonce) in wanted:
                found[(actor, nonce)] = (int(idx), bytes(data))
    return found


def existing_lots(session: Session, codes: Sequence[str]) -> set[str]:
    """Which of ``codes`` are lots (plain SQL, like :func:`find_nonces`: a bulk import of
    notes asks this for every part it appends)."""
    found: set[str] = set()
    for start in range(0, len(codes), _IN_CHUNK):
        chunk = codes[start : start + _IN_CHUNK]
        sql = f"SELECT code FROM lots WHERE code IN ({', '.join(['?'] * len(chunk))})"
        found.update(code for (code,) in _raw_rows(session, sql, chunk))
    return found


def _node_hash(level: int, idx: int, stored: Any) -> bytes:
    digest = plain.stored_bytes(stored)
    if digest is None:
        first = idx << level
        raise DamagedRecord(f"stored node (level {level}, index {idx}) over entries {first}.."
                            f"{first + (1 << level) - 1} is stored as {plain.stored_as(stored)}"
                            ", not as bytes", index=first)
    return digest


def leaf(session: Session, index: int) -> bytes:
    stored = session.execute(select(EntryRow.leaf).where(EntryRow.idx == index)).first()
    if stored is None:
        raise NotFound(f"no entry {index}")
    data = plain.stored_bytes(stored[0])
    if data is None:
        raise DamagedRecord(f"entry {index} is stored as {plain.stored_as(stored[0])}, not as "
                            "bytes: the database was changed outside the log", index=index)
    return data


StoredEntry = tuple[int, bytes, bytes, bytes, str, str, str]
"""(idx, leaf, leaf_hash, prev, actor, nonce, kind) as stored."""


def iter_entries(
    session: Session, start: int = 0, stop: int | None = None, chunk: int = 5000
) -> Iterator[StoredEntry]:
    """Every stored column of the entries, in index order, read in chunks; rows whose index
    is not a whole number (SQLite keeps whatever a column is given) are passed over, and a
    leaf or hash stored as anything but bytes is a :class:`DamagedRecord`."""
    position = start
    while stop is None or position < stop:
        query = select(EntryRow.idx, EntryRow.leaf, EntryRow.leaf_hash, EntryRow.prev,
                       EntryRow.actor, EntryRow.nonce, EntryRow.kind).where(
            EntryRow.idx >= position
        )
        if stop is not None:
            query = query.where(EntryRow.idx < stop)
        rows = session.execute(query.order_by(EntryRow.idx).limit(chunk)).all()
        if not rows:
            return
        whole = False
        for idx, *stored, actor, nonce, kind in rows:
            if type(idx) is not int:  # a stray row (see plain.stray_entry): not an entry
                continue
            whole, position = True, idx + 1
            leaf, leaf_hash, prev = map(plain.stored_bytes, stored)
            if leaf is None or leaf_hash is None or prev is None:
                column, value = next((name, value) for name, value in zip(
                    ("leaf", "leaf_hash", "prev"), stored, strict=True)
                    if plain.stored_bytes(value) is None)
                raise DamagedRecord(f"entry {idx}: its {column} is stored as "
                                    f"{plain.stored_as(value)}, not as bytes", index=idx)
            yield idx, leaf, leaf_hash, prev, actor, nonce, kind
        if not whole:  # only stray rows are left (SQLite sorts text after every number)
            return


def _raw_rows(session: Session, sql: str, params: Sequence[Any], *, fetch: bool = True
              ) -> list[Sequence[Any]]:
    """Rows as the DBAPI driver returns them, in the session's transaction (after flushing
    it, as a query through the session would): for the queries every append makes and the
    bulk reads of the audit, where SQLAlchemy's handling costs more than the database's
    answer. ``sql`` uses ``?`` for parameters."""
    session.flush()
    connection = session.connection()
    if connection.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    cursor = connection.connection.cursor()
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        cursor.execute(sql, tuple(params))
        return cursor.fetchall() if fetch else []
    except dbapi_error as exc:
        # What a query through SQLAlchemy raises, so callers handle one kind of error.
        raise DBAPIError.instance(sql, params, exc, dbapi_error,
                                  dialect=connection.dialect) from exc
    finally:
        cursor.close()


@contextmanager
def lenient_text(session: Session) -> Iterator[None]:
    """Within, a TEXT value that is not UTF-8 comes back as :class:`plain.Undecodable`
    instead of failing its query (SQLite only: PostgreSQL checks its text on the way in).
    For reading a database that may have been changed by hand, to say where."""
    connection = session.connection().connection.dbapi_connection
    if not isinstance(connection, sqlite3.Connection):
        yield
        return
    before = connection.text_factory
    connection.text_factory = plain.lenient_text
    try:
        yield
    finally:
        connection.text_factory = before


def query(session: Session) -> plain.Query:
    """:func:`_raw_rows` in ``session``: the query the :mod:`~suyuan.storage.plain` reads take."""
    return lambda sql, params: _raw_rows(session, sql, params)


def entry_rows(session: Session, start: int, stop: int) -> list[Sequence[Any]]:
    """:func:`plain.entry_rows` in ``session``."""
    return plain.entry_rows(query(session), start, stop)


def iter_nodes(session: Session, level: int, chunk: int = 20000) -> Iterator[tuple[int, bytes]]:
    """(idx, hash) of the stored nodes of one level, in index order."""
    position = -1
    while True:
        rows = session.execute(
            select(NodeRow.idx, NodeRow.hash)
            .where(NodeRow.level == level, NodeRow.idx > position)
            .order_by(NodeRow.idx)
            .limit(chunk)
        ).all()
        if not rows:
            return
        for idx, stored in rows:
            yield int(idx), _node_hash(level, int(idx), stored)
        position = int(rows[-1][0])


def node_levels(session: Session) -> list[int]:
    return [int(v) for v in session.scalars(select(NodeRow.level).distinct())]


def count_entries(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(EntryRow)) or 0)


# --- actors and keys (projection) ------------------------------------------------------------


def load_registry(session: Session) -> Registry:
    return plain.load_registry(query(session))


def save_registry_changes(session: Session, before: Registry, after: Registry) -> None:
    """Write what a batch changed in the actor and key projection."""
    for name, actor in after.actors.items():
        if name not in before.actors:
            session.add(ActorRow(
                name=name, role=actor.role, registered_at=actor.registered_at,
                display_name=actor.display_name, org_id=actor.org_id,
                info=json.dumps(actor.info, ensure_ascii=False, sort_keys=True),
            ))
    for key, record in after.keys.items():
        old = before.keys.get(key)
        if old is None:
            session.add(ActorKeyRow(
                actor=record.actor, key_id=record.key_id, public_key=record.public_key,
                added_at=record.added_at, revoked_at=record.revoked_at,
            ))
        elif old.revoked_at != record.revoked_at:
            session.execute(
                update(ActorKeyRow)
                .where(ActorKeyRow.actor == record.actor, ActorKeyRow.key_id == record.key_id)
                .values(revoked_at=record.revoked_at)
            )
    session.flush()


# --- checkpoints, witnesses, cosignatures ----------------------------------------------------


def latest_checkpoint(session: Session) -> CheckpointRow | None:
    return session.scalar(select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1))


def checkpoint_at(session: Session, size: int) -> CheckpointRow | None:
    return session.get(CheckpointRow, size)


def all_checkpoints(session: Session) -> list[CheckpointRow]:
    return list(session.scalars(select(CheckpointRow).order_by(CheckpointRow.size)))


def add_checkpoint(session: Session, size: int, root: bytes, note: str, created_at: str) -> None:
    session.add(CheckpointRow(size=size, root=root, note=note, created_at=created_at))
    session.flush()


def witnesses(session: Session) -> list[WitnessRow]:
    return list(session.scalars(select(WitnessRow).order_by(WitnessRow.name)))


def witness(session: Session, name: str) -> WitnessRow | None:
    return session.get(WitnessRow, name)


def add_witness(session: Session, name: str, vkey: str, added_at: str) -> None:
    session.add(WitnessRow(name=name, vkey=vkey, added_at=added_at))
    session.flush()


def cosignatures(session: Session, size: int) -> list[CosignatureRow]:
    return list(session.scalars(
        select(CosignatureRow).where(CosignatureRow.size == size).order_by(CosignatureRow.witness)
    ))


def add_cosignature(session: Session, size: int, witness_name: str, timestamp: int,
                    line: str) -> None:
    session.add(CosignatureRow(size=size, witness=witness_name, timestamp=timestamp, line=line))
    session.flush()
