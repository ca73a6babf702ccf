"""An attacker with write access to the database edits the stored log; `suyuan verify` finds it.

Each test builds a real log (a registrar and three actors, a key rotation, 41 entries,
checkpoints at 23 and 41, both cosigned by a witness) on a real SQLite file and on a real
PostgreSQL database, checks that it verifies, disables the append-only triggers as an attacker
would, changes one thing, and runs the real `suyuan verify` and `verify --json`: exit status 1,
one line on stderr, and the first bad entry index (or the bad checkpoint's size) named in both.
Those command runs are marked slow (two processes per case); the same cases also run the audit
in-process for quick runs. The last tests check that the triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import cycle
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from suyuan import audit, canonical, crypto, ledger, merkle, note, witness
from suyuan.errors import NoteError, VerificationError
from suyuan.ledger import GENESIS_HASH
from suyuan.model import (
    SignedStatement,
    Statement,
    format_time,
    parse_signed_statement,
    sign_statement,
    utcnow,
)
from suyuan.storage import repo
from suyuan.storage.db import Database
from suyuan.storage.schema import APPEND_ONLY_TABLES
from tests.helpers import ORIGIN, Actor, LedgerWorld, make_signed, make_world, run_cli

ACTORS = {"coop-jinzhou": "cooperative", "carrier-sf": "carrier", "lab-dalian": "lab"}
WITNESS = "witness.example/dalian-amr"
SIZE = 41
CHECKPOINTS = (23, 41)
KEY_ADDED_AT = 15  # the cooperative gets a second key ...
KEY_REVOKED_AT = 16  # ... and its first key is revoked
TARGET = 9  # an ordinary note in the middle of the first checkpoint


# --- the log under attack --------------------------------------------------------------------


@dataclass
class Log:
    world: LedgerWorld
    url: str
    cwd: Path
    old_coop_key: crypto.SigningKey  # revoked at KEY_REVOKED_AT

    def actor(self, name: str) -> Actor:
        return self.world.actors[name]


def _notes(writers: Iterator[Actor], first: int, stop: int) -> list[SignedStatement]:
    return [
        make_signed(next(writers), body={"text": f"entry {i}: 樱桃 harvest of block {i}"})
        for i in range(first, stop)
    ]


def _checkpoint_and_cosign(world: LedgerWorld, witness_key: crypto.SigningKey,
                           state: Path) -> None:
    with world.db.writer() as session, session.begin():
        ledger.checkpoint(session, world.log_key)
    with world.db.writer() as session, session.begin():
        latest = repo.latest_checkpoint(session)
        assert latest is not None
        stamp = int(time.time())
        cp, signature = witness.cosign(
            checkpoint_note=latest.note, log_key=ledger.log_vkey(session),
            origin=ledger.origin(session), name=WITNESS, key=witness_key, state_path=state,
            proof_for=lambda a, b: ledger.consistency_proof(session, a, b), timestamp=stamp,
        )
        repo.add_cosignature(session, cp.size, WITNESS, stamp, signature.line())


def build_log(database: Database, url: str, tmp_path: Path) -> Log:
    """Entries 0-3 register the registrar and three actors; 15/16 rotate the cooperative's
    key; checkpoints at 23 and 41, each cosigned by the witness."""
    world = make_world(database, actors=ACTORS)
    coop = world.actors["coop-jinzhou"]
    old_coop_key = coop.key
    writers = cycle([world.actors[name] for name in ACTORS])
    world.append_ok(*_notes(writers, 4, KEY_ADDED_AT))
    new_coop = Actor(coop.name, crypto.SigningKey.generate())
    assert world.append_ok(make_signed(world.registrar, kind="key_added",
                                       body={"actor": coop.name, "vkey": new_coop.vkey})
                           ) == [KEY_ADDED_AT]
    assert world.append_ok(make_signed(world.registrar, kind="key_revoked",
                                       body={"actor": coop.name, "key_id": coop.key_id,
                                             "reason": "phone lost"})) == [KEY_REVOKED_AT]
    world.actors[coop.name] = new_coop
    writers = cycle([world.actors[name] for name in ACTORS])
    world.append_ok(*_notes(writers, KEY_REVOKED_AT + 1, CHECKPOINTS[0]))

    witness_key = crypto.SigningKey.generate()
    with database.writer() as session, session.begin():
        repo.add_witness(session, WITNESS,
                         str(note.witness_verifier_key(WITNESS, witness_key.public_key)),
                         format_time(utcnow()))
    state = tmp_path / "witness.state"
    _checkpoint_and_cosign(world, witness_key, state)
    world.append_ok(*_notes(writers, CHECKPOINTS[0], CHECKPOINTS[1]))
    _checkpoint_and_cosign(world, witness_key, state)

    report = audit.audit(database, jobs=1)
    assert (report.size, report.checkpoints, report.cosignatures) == (SIZE, 2, 2)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return Log(world, url, cwd, old_coop_key)


@pytest.fixture
def log(database: Database, db_url: str, tmp_path: Path) -> Log:
    return build_log(database, db_url, tmp_path)


# --- running the real command ----------------------------------------------------------------


def run_verify(log: Log) -> tuple[Any, Any]:
    """`suyuan verify` and `suyuan verify --json`, run side by side to halve the wait."""
    with ThreadPoolExecutor(2) as pool:
        plain = pool.submit(run_cli, "--db", log.url, "verify", cwd=log.cwd)
        as_json = pool.submit(run_cli, "--db", log.url, "verify", "--json", cwd=log.cwd)
        return plain.result(), as_json.result()


def assert_verifies(log: Log) -> dict[str, Any]:
    plain, as_json = run_verify(log)
    assert plain.returncode == 0, plain.stderr.decode()
    assert plain.stderr == b""
    assert plain.stdout.decode().startswith(f"OK: {SIZE} entries, ")
    assert as_json.returncode == 0, as_json.stderr.decode()
    report = json.loads(as_json.stdout)
    assert report["ok"] is True
    return report


def assert_detected(log: Log, case: Case) -> None:
    plain, as_json = run_verify(log)
    stderr = plain.stderr.decode()
    assert plain.returncode == 1, f"verify exited {plain.returncode}: {plain.stdout!r} {stderr}"
    assert plain.stdout == b""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"suyuan: error: verification FAILED at {case.where}: "), stderr
    for word in case.words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"

    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert (report["index"], report["checkpoint"]) == (case.index, case.checkpoint), report
    if case.kind is not None:
        assert report["kind"] == case.kind, report
    assert as_json.stderr.decode().splitlines() == lines


# --- the attacker's tools --------------------------------------------------------------------


@contextmanager
def attacker(url: str) -> Iterator[Connection]:
    """A connection with the append-only triggers out of the way, committed on exit."""
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            for table in APPEND_ONLY_TABLES:
                if db.is_sqlite:
                    conn.exec_driver_sql(f"DROP TRIGGER {table}_no_update")
                    conn.exec_driver_sql(f"DROP TRIGGER {table}_no_delete")
                else:
                    conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            yield conn
            if not db.is_sqlite:  # cover the tracks
                for table in APPEND_ONLY_TABLES:
                    conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    finally:
        db.dispose()


def flip(data: bytes, at: int) -> bytes:
    """``data`` with the lowest bit of byte ``at`` flipped."""
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def other(char: str, alphabet: str) -> str:
    """A different character of the same alphabet (hex or base64), so the field still parses."""
    return alphabet[(alphabet.index(char) + 1) % len(alphabet)]


HEX = "0123456789abcdef"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def replace_char(value: str, at: int, alphabet: str) -> str:
    return value[:at] + other(value[at], alphabet) + value[at + 1 :]


def get_leaf(conn: Connection, index: int) -> bytes:
    return bytes(conn.execute(text("SELECT leaf FROM entries WHERE idx = :i"),
                              {"i": index}).scalar_one())


def set_columns(conn: Connection, table: str, where: str, params: dict[str, Any],
                **values: Any) -> None:
    assignments = ", ".join(f"{column} = :v_{column}" for column in values)
    result = conn.execute(text(f"UPDATE {table} SET {assignments} WHERE {where}"),
                          {**params, **{f"v_{k}": v for k, v in values.items()}})
    assert result.rowcount == 1


def set_leaf(conn: Connection, index: int, leaf: bytes) -> None:
    set_columns(conn, "entries", "idx = :i", {"i": index}, leaf=leaf)


def edit_leaf_field(conn: Connection, index: int, field: str, at: int, alphabet: str) -> None:
    """Change one character of a string field in the head of an entry (leaf bytes only)."""
    leaf = get_leaf(conn, index)
    start = leaf.index(f'"{field}":"'.encode()) + len(field) + 4
    set_leaf(conn, index, leaf[:start + at] + other(chr(leaf[start + at]), alphabet).encode()
             + leaf[start + at + 1 :])


def hash_column(conn: Connection, table: str, column: str, where: str,
                params: dict[str, Any]) -> bytes:
    return bytes(conn.execute(text(f"SELECT {column} FROM {table} WHERE {where}"),
                              params).scalar_one())


def flip_column(conn: Connection, table: str, column: str, where: str,
                params: dict[str, Any]) -> None:
    value = hash_column(conn, table, column, where, params)
    set_columns(conn, table, where, params, **{column: flip(value, 5)})


@dataclass(frozen=True)
class Record:
    """What an entry holds apart from its position in the chain."""

    statement: bytes
    signature: str
    key_id: str
    received_at: str

    @classmethod
    def of(cls, signed: SignedStatement, received_at: str) -> Record:
        return cls(signed.data, signed.signature_b64, signed.statement.key_id, received_at)


def read_records(conn: Connection) -> list[Record]:
    rows = conn.execute(text("SELECT idx, leaf FROM entries ORDER BY idx")).all()
    assert [int(r[0]) for r in rows] == list(range(len(rows)))
    records = []
    for _, leaf in rows:
        _, key_id, _, received_at, signature, statement = canonical.split_entry(bytes(leaf))
        records.append(Record(statement, signature, key_id, received_at))
    return records


def write_log(conn: Connection, records: list[Record], start: int, *, nodes: bool = True,
              columns: dict[int, dict[str, Any]] | None = None) -> list[bytes]:
    """Rewrite entries ``start..`` as the log itself would have written them: correct
    indexes and prev chain, hash columns, head and (unless ``nodes`` is false) every tree
    node; ``columns`` overrides row columns by index. What is left to catch the change:
    signatures, key state and checkpoints."""
    hashes: list[bytes] = []
    rows = []
    prev = GENESIS_HASH
    for index, record in enumerate(records):
        leaf = canonical.entry_bytes(index=index, key_id=record.key_id, prev=prev.hex(),
                                     received_at=record.received_at,
                                     signature=record.signature,
                                     statement=canonical.StatementBytes(record.statement))
        digest = merkle.leaf_hash(leaf)
        if index < start:
            assert leaf == get_leaf(conn, index)
        else:
            statement = Statement.from_json(canonical.loads(record.statement))
            rows.append({"idx": index, "leaf": leaf, "leaf_hash": digest, "prev": prev,
                         "actor": statement.actor, "nonce": statement.nonce,
                         "kind": statement.kind, **(columns or {}).get(index, {})})
        hashes.append(digest)
        prev = digest
    conn.execute(text("DELETE FROM entries WHERE idx >= :s"), {"s": start})
    if rows:
        conn.execute(text("INSERT INTO entries (idx, leaf, leaf_hash, prev, actor, nonce, kind) "
                          "VALUES (:idx, :leaf, :leaf_hash, :prev, :actor, :nonce, :kind)"),
                     rows)
    conn.execute(text("UPDATE log_head SET size = :n, last_hash = :h WHERE id = 1"),
                 {"n": len(records), "h": prev})
    if nodes:
        tree = merkle.CompactRange()
        node_rows = [{"level": level, "idx": idx, "hash": digest}
                     for leaf_digest in hashes
                     for (level, idx), digest in tree.append(leaf_digest)]
        conn.execute(text("DELETE FROM nodes"))
        conn.execute(text("INSERT INTO nodes (level, idx, hash) VALUES (:level, :idx, :hash)"),
                     node_rows)
    return hashes


def signed_at(conn: Connection, index: int) -> SignedStatement:
    record = read_records(conn)[index]
    return parse_signed_statement(
        {"statement": canonical.loads(record.statement), "signature": record.signature})


def resign(signed: SignedStatement, key: crypto.SigningKey, **changes: Any) -> SignedStatement:
    return sign_statement(replace(signed.statement, **changes), key)


# --- the ways to tamper ----------------------------------------------------------------------


Tamper = Callable[[Connection, Log], None]


def flip_statement_byte(conn: Connection, log: Log) -> None:
    leaf = get_leaf(conn, TARGET)
    set_leaf(conn, TARGET, flip(leaf, leaf.index(b"harvest")))  # "iarvest": still valid JSON


def flip_signature_byte(conn: Connection, log: Log) -> None:
    edit_leaf_field(conn, TARGET, "signature", 30, B64)


def flip_prev_field(conn: Connection, log: Log) -> None:
    edit_leaf_field(conn, TARGET, "prev", 10, HEX)


def flip_received_at(conn: Connection, log: Log) -> None:
    leaf = get_leaf(conn, TARGET)
    millis = leaf.index(b'Z","signature"') - 1  # last digit of the milliseconds
    set_leaf(conn, TARGET, flip(leaf, millis))


def change_index_field(conn: Connection, log: Log) -> None:
    leaf = get_leaf(conn, TARGET)
    set_leaf(conn, TARGET, leaf.replace(b'{"index":9,', b'{"index":8,', 1))


def flip_key_id_field(conn: Connection, log: Log) -> None:
    edit_leaf_field(conn, TARGET, "key_id", 3, HEX)


def flip_leaf_hash_column(conn: Connection, log: Log) -> None:
    flip_column(conn, "entries", "leaf_hash", "idx = :i", {"i": TARGET})


def flip_prev_column(conn: Connection, log: Log) -> None:
    flip_column(conn, "entries", "prev", "idx = :i", {"i": TARGET})


def delete_entry(conn: Connection, log: Log) -> None:
    conn.execute(text("DELETE FROM entries WHERE idx = :i"), {"i": TARGET})


def delete_last_entry(conn: Connection, log: Log) -> None:
    conn.execute(text("DELETE FROM entries WHERE idx = :i"), {"i": SIZE - 1})


def truncate_entry_nodes_and_head(conn: Connection, log: Log) -> None:
    """Drop the last entry and everything derived from it: only the checkpoint remembers."""
    write_log(conn, read_records(conn)[: SIZE - 1], SIZE - 1)


def swap_entries(conn: Connection, log: Log) -> None:
    for old, new in ((TARGET, -1), (30, TARGET), (-1, 30)):
        conn.execute(text("UPDATE entries SET idx = :new WHERE idx = :old"),
                     {"old": old, "new": new})


def swap_entries_and_rechain(conn: Connection, log: Log) -> None:
    records = read_records(conn)
    records[TARGET], records[TARGET + 2] = records[TARGET + 2], records[TARGET]
    write_log(conn, records, TARGET)


def rewrite_entry_with_stale_nodes(conn: Connection, log: Log) -> None:
    records = read_records(conn)
    received_at = records[TARGET].received_at  # ...T05:40:10.075Z: change the last digit
    records[TARGET] = replace(records[TARGET], received_at=replace_char(
        received_at, len(received_at) - 2, "0123456789"))
    write_log(conn, records, TARGET, nodes=False)


def flip_level0_node(conn: Connection, log: Log) -> None:
    flip_column(conn, "nodes", "hash", "level = 0 AND idx = :i", {"i": TARGET})


def flip_high_node(conn: Connection, log: Log) -> None:
    flip_column(conn, "nodes", "hash", "level = 3 AND idx = 2", {})  # entries 16..23


def delete_node(conn: Connection, log: Log) -> None:
    result = conn.execute(text("DELETE FROM nodes WHERE level = 2 AND idx = 5"))  # 20..23
    assert result.rowcount == 1


def add_node_for_incomplete_subtree(conn: Connection, log: Log) -> None:
    conn.execute(text("INSERT INTO nodes (level, idx, hash) VALUES (1, 20, :h)"),
                 {"h": hashlib.sha256(b"bogus").digest()})  # would cover entries 40 and 41


def add_node_above_the_root(conn: Connection, log: Log) -> None:
    conn.execute(text("INSERT INTO nodes (level, idx, hash) VALUES (6, 0, :h)"),
                 {"h": hashlib.sha256(b"bogus").digest()})


def flip_checkpoint_root_column(conn: Connection, log: Log) -> None:
    flip_column(conn, "checkpoints", "root", "size = :s", {"s": CHECKPOINTS[0]})


def _note(conn: Connection, size: int) -> str:
    return str(conn.execute(text("SELECT note FROM checkpoints WHERE size = :s"),
                            {"s": size}).scalar_one())


def edit_checkpoint_note_root(conn: Connection, log: Log) -> None:
    text_ = _note(conn, CHECKPOINTS[0])
    origin, size, root, rest = text_.split("\n", 3)
    set_columns(conn, "checkpoints", "size = :s", {"s": CHECKPOINTS[0]},
                note="\n".join([origin, size, replace_char(root, 5, B64), rest]))


def edit_checkpoint_signature(conn: Connection, log: Log) -> None:
    body, signature = _note(conn, CHECKPOINTS[1]).rsplit(" ", 1)
    set_columns(conn, "checkpoints", "size = :s", {"s": CHECKPOINTS[1]},
                note=f"{body} {replace_char(signature, 20, B64)}")


def _cosignature(conn: Connection, size: int) -> str:
    return str(conn.execute(text("SELECT line FROM cosignatures WHERE size = :s"),
                            {"s": size}).scalar_one())


def edit_cosignature_line(conn: Connection, log: Log) -> None:
    head, blob = _cosignature(conn, CHECKPOINTS[1]).rsplit(" ", 1)
    set_columns(conn, "cosignatures", "size = :s", {"s": CHECKPOINTS[1]},
                line=f"{head} {replace_char(blob, 40, B64)}")


def change_cosignature_time(conn: Connection, log: Log) -> None:
    stamp = conn.execute(text("SELECT timestamp FROM cosignatures WHERE size = :s"),
                         {"s": CHECKPOINTS[0]}).scalar_one()
    set_columns(conn, "cosignatures", "size = :s", {"s": CHECKPOINTS[0]},
                timestamp=int(stamp) - 3600)


def resign_with_other_actors_key(conn: Connection, log: Log) -> None:
    """Keep the statement, replace its signature by a valid one of another registered actor,
    and redo chain, nodes and head: only the signature check can see it."""
    records = read_records(conn)
    original = signed_at(conn, TARGET)
    assert original.statement.actor == "lab-dalian"
    forged = log.actor("carrier-sf").key.sign(original.message)
    records[TARGET] = replace(records[TARGET], signature=base64.b64encode(forged).decode())
    write_log(conn, records, TARGET)


def forge_statement_with_fresh_key(conn: Connection, log: Log) -> None:
    records = read_records(conn)
    original = signed_at(conn, TARGET)
    forged = resign(original, crypto.SigningKey.generate(),
                    body={"text": "entry 9: residue test passed"})
    records[TARGET] = Record.of(forged, records[TARGET].received_at)
    write_log(conn, records, TARGET)


def forge_statement_under_unregistered_key(conn: Connection, log: Log) -> None:
    records = read_records(conn)
    original = signed_at(conn, TARGET)
    fresh = Actor(original.statement.actor, crypto.SigningKey.generate())
    forged = resign(original, fresh.key, key_id=fresh.key_id)
    records[TARGET] = Record.of(forged, records[TARGET].received_at)
    write_log(conn, records, TARGET)


def forge_with_revoked_key(conn: Connection, log: Log) -> None:
    """The cooperative's old key leaked after it was revoked at entry 16."""
    index = 20
    records = read_records(conn)
    old = Actor("coop-jinzhou", log.old_coop_key)
    forged = make_signed(old, time=records[index].received_at,
                         body={"text": "entry 20: harvest outside the pesticide interval"})
    records[index] = Record.of(forged, records[index].received_at)
    write_log(conn, records, index)


def replace_by_other_actor_and_rechain(conn: Connection, log: Log) -> None:
    """A genuine statement by another actor, validly signed, spliced in with everything
    recomputed: only the signed checkpoint 23 can tell."""
    records = read_records(conn)
    carrier = log.actor("carrier-sf")
    forged = make_signed(carrier, time=records[TARGET].received_at,
                         body={"text": "entry 9: picked up at 4 °C"})
    records[TARGET] = Record.of(forged, records[TARGET].received_at)
    write_log(conn, records, TARGET)


def rewrite_and_forge_checkpoints(conn: Connection, log: Log) -> None:
    """Everything above plus fresh checkpoints signed by a key the attacker made up."""
    swap_entries_and_rechain(conn, log)
    hashes = [bytes(h) for h in conn.execute(
        text("SELECT leaf_hash FROM entries ORDER BY idx")).scalars()]
    fake = crypto.SigningKey.generate()
    for size in CHECKPOINTS:
        root = merkle.root(hashes[:size])
        signed = note.sign_checkpoint(note.Checkpoint(ORIGIN, size, root), ORIGIN, fake)
        set_columns(conn, "checkpoints", "size = :s", {"s": size}, root=root, note=str(signed))


def append_forged_entry(conn: Connection, log: Log) -> None:
    """INSERT a new last entry with chain, nodes and head, signed with a made-up key."""
    records = read_records(conn)
    coop = log.actor("coop-jinzhou")
    forged = make_signed(coop, key=crypto.SigningKey.generate(),
                         body={"text": "entry 41: recall lifted"})
    write_log(conn, [*records, Record.of(forged, format_time(utcnow()))], SIZE)


def forge_through_key_projection(conn: Connection, log: Log) -> None:
    """Swap the cooperative's public key in the actor_keys projection, then append through
    the ledger itself, which trusts the projection: the audit replays keys from the log."""
    coop = log.actor("coop-jinzhou")
    fake = crypto.SigningKey.generate()
    set_columns(conn, "actor_keys", "actor = :a AND key_id = :k",
                {"a": coop.name, "k": coop.key_id}, public_key=fake.public_key)
    with Session(bind=conn) as session:
        (result,) = ledger.append(session, [make_signed(coop, key=fake)])
    assert result.error is None and result.index == SIZE


def change_actor_column(conn: Connection, log: Log) -> None:
    set_columns(conn, "entries", "idx = :i", {"i": TARGET}, actor="carrier-sf")


def change_nonce_column(conn: Connection, log: Log) -> None:
    set_columns(conn, "entries", "idx = :i", {"i": TARGET}, nonce="0123456789abcdef")


def change_kind_column(conn: Connection, log: Log) -> None:
    set_columns(conn, "entries", "idx = :i", {"i": TARGET}, kind="harvest")


def insert_replayed_statement(conn: Connection, log: Log) -> None:
    """The same signed statement a second time as entry 41 (its nonce column disguised so
    the unique (actor, nonce) constraint lets it in), chain, nodes and head recomputed."""
    records = read_records(conn)
    write_log(conn, [*records, records[TARGET]], SIZE,
              columns={SIZE: {"nonce": "replayed-0001"}})


@dataclass(frozen=True)
class Case:
    """A way to tamper, and where `verify` must say the log first goes wrong: at entry
    ``index`` or, when every entry checks out, at the checkpoint of size ``checkpoint``."""

    tamper: Tamper
    index: int | None
    checkpoint: int | None
    kind: str | None
    words: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"entry {self.index}" if self.index is not None else f"checkpoint {self.checkpoint}"


def at_entry(index: int, tamper: Tamper, kind: str | None, *words: str) -> Case:
    return Case(tamper, index, None, kind, words)


def at_checkpoint(size: int, tamper: Tamper, kind: str, *words: str) -> Case:
    return Case(tamper, None, size, kind, words)


CP1, CP2 = CHECKPOINTS
CASES = [
    # the bytes of one entry, then its hash columns
    pytest.param(at_entry(TARGET, flip_statement_byte, "BadSignature", "signature"),
                 id="leaf-statement-byte"),
    pytest.param(at_entry(TARGET, flip_signature_byte, "BadSignature", "signature"),
                 id="leaf-signature-byte"),
    pytest.param(at_entry(TARGET, flip_prev_field, "ChainBroken", "prev"),
                 id="leaf-prev-byte"),
    pytest.param(at_entry(TARGET, flip_received_at, "ChainBroken", "hash"),
                 id="leaf-received-at-byte"),
    pytest.param(at_entry(TARGET, change_index_field, "ChainBroken", "says it is entry 8"),
                 id="leaf-index-field"),
    pytest.param(at_entry(TARGET, flip_key_id_field, "VerificationError", "key_id"),
                 id="leaf-key-id-byte"),
    pytest.param(at_entry(TARGET, flip_leaf_hash_column, "ChainBroken", "hash"),
                 id="leaf-hash-column"),
    pytest.param(at_entry(TARGET, flip_prev_column, "ChainBroken", "hash"),
                 id="prev-column"),
    # entries removed or moved
    pytest.param(at_entry(TARGET, delete_entry, "ChainBroken", "entry 9 is missing"),
                 id="entry-deleted-gap"),
    pytest.param(at_entry(SIZE - 1, delete_last_entry, "ChainBroken", "head"),
                 id="last-entry-deleted-vs-head"),
    pytest.param(at_checkpoint(CP2, truncate_entry_nodes_and_head, "RootMismatch", "beyond"),
                 id="truncated-with-nodes-and-head-vs-checkpoint"),
    pytest.param(at_entry(TARGET, swap_entries, "ChainBroken", "entry 9 says it is entry 30"),
                 id="entries-swapped"),
    pytest.param(at_checkpoint(CP1, swap_entries_and_rechain, "RootMismatch", "root"),
                 id="entries-swapped-and-rechained-vs-checkpoint"),
    pytest.param(at_entry(TARGET, rewrite_entry_with_stale_nodes, "RootMismatch",
                          "level 0, index 9"),
                 id="entry-rechained-nodes-stale"),
    # the stored tree
    pytest.param(at_entry(TARGET, flip_level0_node, "RootMismatch", "level 0, index 9"),
                 id="node-level-0-changed"),
    pytest.param(at_entry(16, flip_high_node, "RootMismatch", "level 3, index 2"),
                 id="node-level-3-changed"),
    pytest.param(at_entry(20, delete_node, "RootMismatch", "level 2, index 5", "missing"),
                 id="node-deleted"),
    pytest.param(at_entry(40, add_node_for_incomplete_subtree, "RootMismatch",
                          "level 1, index 20"),
                 id="bogus-node-incomplete-subtree"),
    pytest.param(at_entry(SIZE, add_node_above_the_root, "RootMismatch", "level 6"),
                 id="bogus-node-above-root"),
    # checkpoints and cosignatures
    pytest.param(at_checkpoint(CP1, flip_checkpoint_root_column, "NoteError", "root"),
                 id="checkpoint-root-column"),
    pytest.param(at_checkpoint(CP1, edit_checkpoint_note_root, "NoteError", "does not verify"),
                 id="checkpoint-note-text"),
    pytest.param(at_checkpoint(CP2, edit_checkpoint_signature, "NoteError", "does not verify"),
                 id="checkpoint-signature"),
    pytest.param(at_checkpoint(CP1, rewrite_and_forge_checkpoints, "NoteError", "not signed"),
                 id="checkpoints-re-signed-with-other-key"),
    pytest.param(at_checkpoint(CP2, edit_cosignature_line, "NoteError", "cosignature",
                               "does not verify"),
                 id="cosignature-line"),
    pytest.param(at_checkpoint(CP1, change_cosignature_time, "NoteError", "cosignature time"),
                 id="cosignature-time-column"),
    # forged entries
    pytest.param(at_entry(TARGET, resign_with_other_actors_key, "BadSignature", "signature"),
                 id="signature-by-other-actors-key-rechained"),
    pytest.param(at_entry(TARGET, forge_statement_with_fresh_key, "BadSignature", "signature"),
                 id="statement-forged-with-fresh-key-rechained"),
    pytest.param(at_entry(TARGET, forge_statement_under_unregistered_key, "VerificationError",
                          "never registered"),
                 id="statement-under-unregistered-key-rechained"),
    pytest.param(at_entry(20, forge_with_revoked_key, "VerificationError", "revoked"),
                 id="statement-signed-with-revoked-key-rechained"),
    pytest.param(at_checkpoint(CP1, replace_by_other_actor_and_rechain, "RootMismatch", "root"),
                 id="entry-replaced-validly-signed-rechained-vs-checkpoint"),
    pytest.param(at_entry(SIZE, append_forged_entry, "BadSignature", "signature"),
                 id="forged-entry-inserted-at-end"),
    pytest.param(at_entry(SIZE, forge_through_key_projection, "BadSignature", "signature"),
                 id="key-projection-swapped-then-appended"),
    # columns stored beside the leaf must agree with it
    pytest.param(at_entry(TARGET, change_actor_column, "VerificationError", "columns"),
                 id="actor-column"),
    pytest.param(at_entry(TARGET, change_nonce_column, "VerificationError", "columns"),
                 id="nonce-column"),
    pytest.param(at_entry(TARGET, change_kind_column, "VerificationError", "columns"),
                 id="kind-column"),
    pytest.param(at_entry(SIZE, insert_replayed_statement, "VerificationError", "columns"),
                 id="replayed-statement-inserted"),
]


# --- the tests -------------------------------------------------------------------------------


def test_untampered_log_verifies(log: Log) -> None:
    report = assert_verifies(log)
    assert report["size"] == SIZE
    assert report["checkpoints"] == 2
    assert report["cosignatures"] == 2
    with log.world.db.reader() as session, session.begin():
        assert report["root"] == ledger.root(session, SIZE).hex()


@pytest.mark.parametrize("via", [pytest.param("cli", marks=pytest.mark.slow), "library"])
@pytest.mark.parametrize("case", CASES)
def test_verify_names_the_first_bad_entry(log: Log, case: Case, via: str) -> None:
    """`suyuan verify` (slow: two processes per case) and, for quick runs, the audit it calls."""
    audit.audit(log.world.db, jobs=1)  # the log verified before the attack
    with attacker(log.url) as conn:
        case.tamper(conn, log)
    if via == "cli":
        assert_detected(log, case)
        return
    with pytest.raises(VerificationError) as caught:
        audit.audit(log.world.db, jobs=2)
    found = caught.value
    assert (found.index, found.checkpoint) == (case.index, case.checkpoint), found
    if case.kind is not None:
        assert type(caught.value).__name__ == case.kind, caught.value
    for word in case.words:
        assert word in str(caught.value)


# SQLite keeps whatever value a column is given: checkpoint and cosignature columns holding a
# fraction, text or bytes where the schema says integer or text must fail as the numbers would,
# never be rounded into agreement, and never end in a traceback.
SQLITE_ONLY = [
    pytest.param("PRAGMA defer_foreign_keys = ON; "  # its cosignature moves with it
                 "UPDATE checkpoints SET size = size + 0.25 WHERE size = 23; "
                 "UPDATE cosignatures SET size = size + 0.25 WHERE size = 23",
                 "stored size/root differ", id="checkpoint-size-fraction"),
    pytest.param("UPDATE checkpoints SET root = hex(root) WHERE size = 23",
                 "stored size/root differ", id="checkpoint-root-as-text"),
    pytest.param("UPDATE checkpoints SET note = CAST(note AS BLOB) WHERE size = 23",
                 "stored note is not text", id="checkpoint-note-as-bytes"),
    pytest.param("UPDATE cosignatures SET timestamp = timestamp + 0.5 WHERE size = 23",
                 "cosignature time differs", id="cosignature-time-fraction"),
    pytest.param("UPDATE cosignatures SET timestamp = CAST(timestamp AS TEXT) || 'x' "
                 "WHERE size = 23", "cosignature time differs", id="cosignature-time-as-text"),
    pytest.param("UPDATE cosignatures SET line = CAST(line AS BLOB) WHERE size = 23",
                 "stored line is not text", id="cosignature-line-as-bytes"),
    # (x'ff' is never UTF-8, and `||` makes text of its operands)
    pytest.param("UPDATE checkpoints SET root = x'ff' || substr(root, 2) WHERE size = 23",
                 "stored size/root differ", id="checkpoint-root-as-text-not-utf8"),
    pytest.param("UPDATE checkpoints SET root = CAST(root AS TEXT) WHERE size = 23",
                 "stored size/root differ", id="checkpoint-root-same-bytes-as-text"),
    pytest.param("UPDATE checkpoints SET note = x'ff' || note WHERE size = 23",
                 "stored note is not text", id="checkpoint-note-not-utf8"),
    pytest.param("UPDATE cosignatures SET line = x'ff' || line WHERE size = 23",
                 "stored line is not text", id="cosignature-line-not-utf8"),
]


@pytest.fixture
def sqlite_log(tmp_path: Path) -> Iterator[Log]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    database = Database(url)
    database.upgrade()
    yield build_log(database, url, tmp_path)
    database.dispose()


@pytest.mark.parametrize(("sql", "words"), SQLITE_ONLY)
def test_checkpoint_columns_of_another_type_fail_at_their_checkpoint(
        sqlite_log: Log, sql: str, words: str) -> None:
    with attacker(sqlite_log.url) as conn:
        for statement in sql.split("; "):
            conn.exec_driver_sql(statement)
    assert_detected(sqlite_log, at_checkpoint(CP1, lambda conn, log: None, "NoteError", words))
    with pytest.raises(NoteError, match=words) as caught:
        audit.audit(sqlite_log.world.db, jobs=2)
    assert caught.value.checkpoint == CP1


# Entries, their hash columns and tree nodes, stored as something else than the bytes the log
# wrote: text (what replace() or || on a BLOB gives), text that is not UTF-8 (which fails a
# plain query), or a number. Each is named where it is, like a changed byte.
NOT_AS_WRITTEN = [
    pytest.param("UPDATE entries SET leaf = replace(leaf, 'harvest', 'harvest!') WHERE idx = 9",
                 TARGET, "DamagedRecord", "leaf is stored as text", id="leaf-edited-as-text"),
    pytest.param("UPDATE entries SET leaf = CAST(leaf AS TEXT) WHERE idx = 9",
                 TARGET, "DamagedRecord", "leaf is stored as text", id="leaf-as-text-same-bytes"),
    pytest.param("UPDATE entries SET leaf = 99999999999999 WHERE idx = 9",
                 TARGET, "DamagedRecord", "leaf is stored as a number", id="leaf-as-number"),
    pytest.param("UPDATE entries SET leaf_hash = hex(leaf_hash) WHERE idx = 9",
                 TARGET, "DamagedRecord", "leaf_hash is stored as text", id="leaf-hash-as-text"),
    pytest.param("UPDATE entries SET leaf_hash = x'ff' || substr(leaf_hash, 2) WHERE idx = 9",
                 TARGET, "DamagedRecord", "leaf_hash is stored as text",
                 id="leaf-hash-not-utf8"),
    pytest.param("UPDATE entries SET prev = x'ff' || substr(prev, 2) WHERE idx = 9",
                 TARGET, "DamagedRecord", "prev is stored as text", id="prev-not-utf8"),
    pytest.param("UPDATE entries SET actor = x'ff' || actor WHERE idx = 9",
                 TARGET, "VerificationError", "columns differ", id="actor-not-utf8"),
    pytest.param("UPDATE entries SET idx = 'forty' WHERE idx = 40",
                 SIZE - 1, "ChainBroken", "a row with index 'forty', which is no entry",
                 id="index-as-text"),
    pytest.param("UPDATE entries SET idx = 8.5 WHERE idx = 9",
                 TARGET, "ChainBroken", "entry 9 is missing", id="index-as-fraction"),
    pytest.param("DELETE FROM entries WHERE idx = 9; UPDATE entries SET leaf = 5 WHERE idx = 10",
                 TARGET, "ChainBroken", "entry 9 is missing",
                 id="missing-entry-before-leaf-as-number"),
    pytest.param("INSERT INTO entries SELECT 9.5, leaf, randomblob(32), randomblob(32), actor, "
                 "nonce || 'x', kind FROM entries WHERE idx = 5",
                 TARGET + 1, "ChainBroken", "a row with index 9.5, which is no entry",
                 id="stray-row-between-entries"),
    pytest.param("INSERT INTO entries SELECT -1, leaf, randomblob(32), randomblob(32), actor, "
                 "nonce || 'x', kind FROM entries WHERE idx = 5",
                 0, "ChainBroken", "a row with index -1, which is no entry",
                 id="stray-row-before-entry-0"),
    pytest.param("UPDATE nodes SET hash = hex(hash) WHERE level = 1 AND idx = 4",
                 8, "DamagedRecord", "(level 1, index 4) over entries 8..9 is stored as text",
                 id="node-as-text"),
    pytest.param("UPDATE nodes SET hash = x'ff' || substr(hash, 2) WHERE level = 0 AND idx = 9",
                 TARGET, "DamagedRecord", "(level 0, index 9)", id="node-not-utf8"),
]


@pytest.mark.parametrize(("sql", "index", "kind", "words"), NOT_AS_WRITTEN)
def test_entries_and_nodes_not_stored_as_written_fail_where_they_are(
        sqlite_log: Log, sql: str, index: int, kind: str, words: str) -> None:
    with attacker(sqlite_log.url) as conn:
        for statement in sql.split("; "):
            conn.exec_driver_sql(statement)
    assert_detected(sqlite_log, at_entry(index, lambda conn, log: None, kind, words))
    with pytest.raises(VerificationError, match=re.escape(words)) as caught:
        audit.audit(sqlite_log.world.db, jobs=2)
    assert (caught.value.index, type(caught.value).__name__) == (index, kind)


def test_an_earlier_bad_entry_is_named_before_a_later_one_not_stored_as_written(
        sqlite_log: Log) -> None:
    with attacker(sqlite_log.url) as conn:
        flip_statement_byte(conn, sqlite_log)  # entry 9: its signature no longer verifies
        conn.exec_driver_sql("UPDATE entries SET leaf = CAST(leaf AS TEXT) WHERE idx = 30")
    with pytest.raises(VerificationError) as caught:
        audit.audit(sqlite_log.world.db, jobs=2)
    assert (caught.value.index, type(caught.value).__name__) == (TARGET, "BadSignature")


@pytest.mark.parametrize(("sql", "words"), [
    pytest.param("UPDATE log_head SET last_hash = hex(last_hash)",
                 "the log head's last hash is stored as text", id="head-hash-as-text"),
    pytest.param("UPDATE log_head SET last_hash = x'ff' || substr(last_hash, 2)",
                 "the log head's last hash is stored as text", id="head-hash-not-utf8"),
    pytest.param("UPDATE actor_keys SET added_at = added_at + 0.5 WHERE actor = 'carrier-sf'",
                 "the actor_keys table's row for 'carrier-sf'", id="key-added-at-fraction"),
    pytest.param("UPDATE actors SET name = CAST(name AS BLOB) WHERE name = 'carrier-sf'",
                 "the actors table's row for b'carrier-sf' is damaged: a text column holds "
                 "bytes", id="actor-name-as-bytes"),
    pytest.param("UPDATE actor_keys SET key_id = x'ff' || key_id WHERE actor = 'carrier-sf'",
                 "the actor_keys table's row for 'carrier-sf'", id="key-id-not-utf8"),
    pytest.param("UPDATE meta SET value = 'ledger.example+1234abcd+AAAA' WHERE key = 'log_vkey'",
                 "the log key in the meta table is not a verifier key", id="log-key-garbage"),
    pytest.param("UPDATE meta SET value = x'ff' || value WHERE key = 'origin'",
                 "the log's origin or key in the meta table is not stored as text",
                 id="origin-not-utf8"),
])
def test_a_damaged_head_or_log_identity_is_one_clear_line(
        sqlite_log: Log, sql: str, words: str) -> None:
    with attacker(sqlite_log.url) as conn:
        conn.exec_driver_sql(sql)
    for command in (["verify"], ["verify", "--json"], ["verify", "--jobs", "1"]):
        done = run_cli("--db", sqlite_log.url, *command, cwd=sqlite_log.cwd)
        assert done.returncode == 1, done.stderr
        lines = done.stderr.decode().splitlines()
        assert len(lines) == 1 and words in lines[0], lines
    with pytest.raises(VerificationError, match=re.escape(words)):
        audit.audit(sqlite_log.world.db, jobs=2)
    if "actor" in sql:  # what reads the actor tables says the same
        done = run_cli("--db", sqlite_log.url, "actors", "list", cwd=sqlite_log.cwd)
        assert done.returncode == 1 and done.stdout == b"", done.stderr
        lines = done.stderr.decode().splitlines()
        assert len(lines) == 1 and words in lines[0], lines


@pytest.mark.parametrize("sql", [
    "UPDATE entries SET leaf = CAST(leaf AS TEXT) WHERE idx = 9",
    "UPDATE entries SET leaf = x'ff' || leaf WHERE idx = 9",
    "UPDATE entries SET leaf = 99999999999999 WHERE idx = 9",
])
def test_entry_stored_as_something_else_is_one_clear_line(sqlite_log: Log, sql: str) -> None:
    with attacker(sqlite_log.url) as conn:
        conn.exec_driver_sql(sql)
    for raw in ([], ["--raw"]):
        done = run_cli("--db", sqlite_log.url, "entry", str(TARGET), *raw, cwd=sqlite_log.cwd)
        assert (done.returncode, done.stdout) == (1, b""), done.stderr
        assert done.stderr.decode().splitlines() == [
            f"suyuan: error: entry {TARGET} is stored as "
            f"{'a number' if '999' in sql else 'text that is not UTF-8' if 'ff' in sql else 'text'}"
            ", not as bytes: the database was "
            "changed outside the log"]
    assert run_cli("--db", sqlite_log.url, "entry", "8", cwd=sqlite_log.cwd).returncode == 0


@pytest.mark.parametrize("value", ["hex(hash)", "x'ff' || substr(hash, 2)"])
def test_proof_over_a_node_stored_as_text_is_one_clear_line(sqlite_log: Log, value: str) -> None:
    with attacker(sqlite_log.url) as conn:
        conn.exec_driver_sql(f"UPDATE nodes SET hash = {value} WHERE level = 0 AND idx = 8")
    done = run_cli("--db", sqlite_log.url, "proof", str(TARGET), cwd=sqlite_log.cwd)
    assert (done.returncode, done.stdout) == (1, b""), done.stderr
    assert done.stderr.decode().splitlines() == [
        "suyuan: error: stored node (level 0, index 8) over entries 8..8 is stored as "
        f"{'text that is not UTF-8' if 'ff' in value else 'text'}, not as bytes"]


# --- the triggers ----------------------------------------------------------------------------

REFUSED = {
    ("entries", "UPDATE"): "UPDATE entries SET leaf = :junk WHERE idx = 9",
    ("entries", "DELETE"): "DELETE FROM entries WHERE idx = 40",
    ("nodes", "UPDATE"): "UPDATE nodes SET hash = :junk WHERE level = 3 AND idx = 2",
    ("nodes", "DELETE"): "DELETE FROM nodes WHERE level = 0 AND idx = 40",
    ("checkpoints", "UPDATE"): "UPDATE checkpoints SET root = :junk WHERE size = 23",
    ("checkpoints", "DELETE"): "DELETE FROM checkpoints WHERE size = 41",
    ("cosignatures", "UPDATE"): "UPDATE cosignatures SET line = 'x' WHERE size = 23",
    ("cosignatures", "DELETE"): "DELETE FROM cosignatures WHERE size = 41",
}


def snapshot(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    with database.engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table}")).all()]
            for table in APPEND_ONLY_TABLES
        }


def test_every_append_only_table_has_a_statement_here() -> None:
    assert {table for table, _ in REFUSED} == set(APPEND_ONLY_TABLES)


@pytest.mark.parametrize(("table", "action"), sorted(REFUSED), ids=lambda v: v.lower())
def test_triggers_refuse_update_and_delete(log: Log, table: str, action: str) -> None:
    database = log.world.db
    before = snapshot(database)
    assert all(before.values())
    with pytest.raises(DBAPIError, match=f"{table} is append-only: {action} refused"):
        with database.engine.begin() as conn:
            conn.execute(text(REFUSED[(table, action)]), {"junk": bytes(32)})
    assert snapshot(database) == before
    audit.audit(database, jobs=1)


COLUMN = {"entries": "leaf", "nodes": "hash", "checkpoints": "note", "cosignatures": "line"}


def test_triggers_refuse_whole_table_statements(log: Log) -> None:
    """An UPDATE or DELETE over all rows fails as a whole: not one row changes."""
    database = log.world.db
    before = snapshot(database)
    for table, column in COLUMN.items():
        for statement in (f"DELETE FROM {table}", f"UPDATE {table} SET {column} = {column}"):
            with pytest.raises(DBAPIError, match=f"{table} is append-only"):
                with database.engine.begin() as conn:
                    conn.exec_driver_sql(statement)
    assert snapshot(database) == before


def test_postgresql_refuses_truncate(postgres_url: str, tmp_path: Path) -> None:
    database = Database(postgres_url)
    database.upgrade()
    try:
        build_log(database, postgres_url, tmp_path)
        before = snapshot(database)
        for table in APPEND_ONLY_TABLES:
            with pytest.raises(DBAPIError, match=f"{table} is append-only: TRUNCATE refused"):
                with database.engine.begin() as conn:
                    conn.exec_driver_sql(f"TRUNCATE {table} CASCADE")
        assert snapshot(database) == before
    finally:
        database.dispose()
