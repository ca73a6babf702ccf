"""The log tables read through a plain DBAPI query, with no SQLAlchemy loaded.

A *query* is a function ``(sql, params) -> rows`` where ``sql`` uses ``?`` for parameters:
the session-bound one of :mod:`suyuan.storage.repo` (the driver beneath SQLAlchemy, in the
session's transaction), or :meth:`SqliteFile.reading`'s (the standard library's ``sqlite3``
on a ledger file, read only). The audit's fast pass reads through it, so ``suyuan verify`` on
a SQLite ledger can set its workers going before (and without) loading the database layer;
``repo`` builds its own reads of the same tables on these functions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

from suyuan.errors import DamagedRecord
from suyuan.registry import ActorRecord, KeyRecord, Registry

Query = Callable[[str, Sequence[Any]], list[Sequence[Any]]]

SCHEMA_REVISION = "0004"
"""The newest Alembic revision; a test checks it against the migration scripts."""

META_ORIGIN = "origin"
META_LOG_VKEY = "log_vkey"


class CheckpointRecord(NamedTuple):
    """A checkpoint row as stored (the audit compares it with its signed note)."""

    size: Any
    root: Any
    note: Any


class WitnessRecord(NamedTuple):
    name: str
    vkey: str


class CosignatureRecord(NamedTuple):
    """A cosignature row as stored (the audit compares it with the signed line)."""

    size: Any
    witness: Any
    timestamp: Any
    line: Any


# --- values as stored --------------------------------------------------------------------------


class Undecodable:
    """A TEXT value that is not UTF-8, as :func:`lenient_text` gives it: equal to nothing but
    itself, and neither ``str`` nor ``bytes``, so taken for no stored text, hash or leaf."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"<text that is not UTF-8: {self.data[:40]!r}>"


def lenient_text(data: bytes) -> str | Undecodable:
    """A ``sqlite3`` text factory for reading a database that may have been changed by hand:
    SQLite keeps whatever bytes a TEXT value is given, and the default factory fails the
    whole query on one that is not UTF-8 (PostgreSQL checks its text on the way in)."""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return Undecodable(data)


def stored_bytes(value: Any) -> bytes | None:
    """A BLOB column's value as ``bytes``, or ``None`` when it holds anything else: SQLite
    keeps whatever value a column is given (text, a number, NULL)."""
    if type(value) is bytes:
        return value
    if type(value) in (memoryview, bytearray):
        return bytes(value)
    return None


def _whole(value: Any) -> int:
    """An INTEGER column's value, refused (``TypeError``) when it is stored as anything else:
    1.5 must not pass for 1."""
    if type(value) is not int:
        raise TypeError(f"a whole number is stored as {stored_as(value)} ({value!r})")
    return value


def _text(value: Any, nullable: bool = False) -> Any:
    """A TEXT column's value, refused (``TypeError``) when it is stored as anything else."""
    if type(value) is not str and not (nullable and value is None):
        raise TypeError(f"a text column holds {stored_as(value)} ({value!r})")
    return value


def stray_entry(query: Query, size: int) -> Any:
    """The index of an entry row that is no entry ``0 <= idx < size`` (a fraction, text, a
    negative number, or beyond the log), or ``None``."""
    rows = query("SELECT idx FROM entries WHERE NOT (idx >= 0 AND idx < ? AND "
                 "idx = CAST(idx AS BIGINT)) ORDER BY idx LIMIT 1", (size,))
    return rows[0][0] if rows else None


def stored_as(value: Any) -> str:
    """What a column holds, in words, for a message about a value of the wrong type."""
    if value is None:
        return "NULL"
    if isinstance(value, Undecodable):
        return "text that is not UTF-8"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


# --- SQLite files, without the database layer ------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (as SQLAlchemy reads it), or ``None`` for any
    other URL: another database, an in-memory one, a ``file:`` URI or query parameters."""
    prefix = next((p for p in ("sqlite:///", "sqlite+pysqlite:///") if url.startswith(p)), None)
    if prefix is None:
        return None
    path = unquote(url[len(prefix):])
    if not path or "?" in path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


class SqliteFile:
    """A ledger in a SQLite file, opened read only with the standard library."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None

    def connect(self) -> sqlite3.Connection:
        """The connection (opened once). Raises :class:`sqlite3.Error` when there is no
        such file or it cannot be read; never creates one."""
        if self._connection is None:
            if not self.path.is_file():
                raise sqlite3.OperationalError(f"no database file {self.path}")
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self._connection = sqlite3.connect(uri, uri=True, isolation_level=None,
                                               check_same_thread=False)
        return self._connection

    @contextmanager
    def reading(self) -> Iterator[Query]:
        """A query function inside one read transaction (one snapshot of the file)."""
        connection = self.connect()
        connection.execute("BEGIN")
        try:
            yield lambda sql, params: connection.execute(sql, tuple(params)).fetchall()
        finally:
            connection.execute("ROLLBACK")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# --- reads of the log tables -----------------------------------------------------------------


def schema_revisions(query: Query) -> set[str]:
    return {str(version) for (version,) in query("SELECT version_num FROM alembic_version", ())}


def meta(query: Query, key: str) -> str | None:
    rows = query('SELECT value FROM meta WHERE "key" = ?', (key,))
    return rows[0][0] if rows else None


def head(query: Query, lock: str = "") -> tuple[int, bytes] | None:
    """(size, last hash) of the log head, or ``None`` when there is no head row."""
    rows = query(f"SELECT size, last_hash FROM log_head WHERE id = 1{lock}", ())
    if not rows:
        return None
    size, stored = rows[0]
    if type(size) is not int:
        raise DamagedRecord(f"the log head's size is stored as {stored_as(size)}, not as a "
                            "whole number")
    last_hash = stored_bytes(stored)
    if last_hash is None:
        raise DamagedRecord(f"the log head's last hash is stored as {stored_as(stored)}, not "
                            "as bytes")
    return size, last_hash


def entry_rows(query: Query, start: int, stop: int) -> list[Sequence[Any]]:
    """(idx, leaf, leaf_hash, prev, actor, nonce, kind) of the entries ``start <= idx < stop``
    in index order, as the driver returns them (no ORM, no result processing)."""
    return query("SELECT idx, leaf, leaf_hash, prev, actor, nonce, kind "
                 "FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, stop))


def node_hashes(query: Query, ranges: Sequence[tuple[int, int, int]], *, one_query: bool
                ) -> dict[int, list[Any]]:
    """Stored hashes by level for ``(level, start, stop)`` ranges of node indexes, each list
    in index order, straight from the primary key: one query per range (cheapest on SQLite,
    in process) or ``one_query`` for all (on a server, where a round trip each costs more)."""
    found: dict[int, list[Any]] = {level: [] for level, _, _ in ranges}
    if not ranges:
        return found
    if not one_query:
        for level, start, stop in ranges:
            found[level] += [digest for (digest,) in query(
                "SELECT hash FROM nodes WHERE level = ? AND idx >= ? AND idx < ? "
                "ORDER BY idx", (level, start, stop))]
        return found
    terms = " OR ".join(["(level = ? AND idx >= ? AND idx < ?)"] * len(ranges))
    for level, digest in query(
        f"SELECT level, hash FROM nodes WHERE {terms} ORDER BY level, idx",
        [value for triple in ranges for value in triple],
    ):
        found[int(level)].append(digest)
    return found


def entries_of_kinds(query: Query, kinds: Collection[str]) -> list[tuple[int, bytes]]:
    """(idx, leaf) of the entries whose ``kind`` column is one of ``kinds``, in index order
    (through the kind index: registry statements are a handful among millions)."""
    ordered = sorted(kinds)
    if not ordered:
        return []
    marks = ", ".join("?" * len(ordered))
    found = []
    for idx, stored in query(f"SELECT idx, leaf FROM entries WHERE kind IN ({marks}) "
                             "ORDER BY idx", ordered):
        leaf = stored_bytes(stored)
        if leaf is None:
            raise DamagedRecord(f"entry {idx}: its leaf is stored as {stored_as(stored)}, "
                                "not as bytes", index=idx)
        found.append((int(idx), leaf))
    return found


def has_entries_outside(query: Query, size: int) -> bool:
    """Whether any entry row has an index outside ``0 <= idx < size`` (two index probes)."""
    return bool(query("SELECT idx FROM entries WHERE idx >= ? LIMIT 1", (size,))
                or query("SELECT idx FROM entries WHERE idx < 0 LIMIT 1", ()))


def has_nodes_outside(query: Query, widths: Sequence[int]) -> bool:
    """Whether any node row lies outside ``0 <= idx < widths[level]`` for the levels
    ``0 <= level < len(widths)``, or at any other level (index probes, two per level)."""
    probes: list[tuple[str, tuple[int, ...]]] = [
        ("SELECT level FROM nodes WHERE level >= ? LIMIT 1", (len(widths),)),
        ("SELECT level FROM nodes WHERE level < 0 LIMIT 1", ()),
    ]
    for level, width in enumerate(widths):
        probes.append(("SELECT idx FROM nodes WHERE level = ? AND idx >= ? LIMIT 1",
                       (level, width)))
        probes.append(("SELECT idx FROM nodes WHERE level = ? AND idx < 0 LIMIT 1", (level,)))
    return any(query(sql, params) for sql, params in probes)


def load_registry(query: Query) -> Registry:
    """The actor and key tables (the projection appends trust) as a :class:`Registry`."""
    registry = Registry()
    for name, role, registered_at, display_name, org_id, info in query(
        "SELECT name, role, registered_at, display_name, org_id, info FROM actors", ()
    ):
        try:
            registry.actors[name] = ActorRecord(
                _text(name), _text(role), _whole(registered_at), _text(display_name, True),
                _text(org_id, True), json.loads(info or "{}"))
        except (TypeError, ValueError) as exc:
            raise DamagedRecord(f"the actors table's row for {name!r} is damaged: {exc}"
                                ) from exc
    for actor, key_id, public_key, added_at, revoked_at in query(
        "SELECT actor, key_id, public_key, added_at, revoked_at FROM actor_keys", ()
    ):
        key = stored_bytes(public_key)
        try:
            if key is None:
                raise TypeError(f"its public key is stored as {stored_as(public_key)}")
            registry.keys[(actor, key_id)] = KeyRecord(
                _text(actor), _text(key_id), key, _whole(added_at),
                None if revoked_at is None else _whole(revoked_at))
        except (TypeError, ValueError) as exc:
            raise DamagedRecord(f"the actor_keys table's row for {actor!r}/{key_id!r} is "
                                f"damaged: {exc}") from exc
    return registry


def witnesses(query: Query) -> list[WitnessRecord]:
    return [WitnessRecord(name, vkey)
            for name, vkey in query("SELECT name, vkey FROM witnesses ORDER BY name", ())]


def checkpoints(query: Query) -> list[CheckpointRecord]:
    return [CheckpointRecord(size, root, note) for size, root, note in query(
        "SELECT size, root, note FROM checkpoints ORDER BY size", ())]


def cosignatures(query: Query) -> list[CosignatureRecord]:
    return [CosignatureRecord(size, witness, timestamp, line)
            for size, witness, timestamp, line in query(
                "SELECT size, witness, timestamp, line FROM cosignatures "
                "ORDER BY size, witness", ())]
