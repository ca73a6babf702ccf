"""Appending to the log: key state, roles, replays, bad input, checkpoints, witnesses, proofs.

Every test runs on a real SQLite file and on a real PostgreSQL database.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from suyuan import audit, canonical, crypto, ledger, merkle, note, witness
from suyuan.errors import (
    BadSignature,
    Duplicate,
    InclusionProofError,
    InconsistentCheckpoint,
    MalformedInput,
    NoteError,
    NotFound,
    NotPermitted,
    Rejected,
    RevokedKey,
    UnknownKey,
)
from suyuan.model import Statement, format_time, utcnow
from suyuan.storage import repo
from suyuan.storage.db import Database
from suyuan.storage.schema import EntryRow
from tests.helpers import Actor, LedgerWorld, make_signed, make_world, register


def _size(world: LedgerWorld) -> int:
    with world.db.reader() as session, session.begin():
        return ledger.size(session)


def _count(world: LedgerWorld) -> int:
    with world.db.reader() as session, session.begin():
        return int(session.scalar(select(func.count()).select_from(EntryRow)))


def _refused(world: LedgerWorld, signed, error: type[Exception]) -> Exception:
    before = _count(world)
    (result,) = world.append(signed)
    assert isinstance(result.error, error), result.error
    assert _count(world) == before and _size(world) == before
    return result.error


def test_appended_statement_gets_the_next_index_and_its_leaf_hash(world: LedgerWorld) -> None:
    coop = world.actors["coop-jinzhou"]
    start = _size(world)
    (result,) = world.append(make_signed(coop))
    assert result.index == start and result.error is None
    with world.db.reader() as session, session.begin():
        stored = ledger.entry(session, start)
        assert merkle.leaf_hash(stored.leaf) == result.leaf_hash
        previous = ledger.entry(session, start - 1)
        assert stored.prev == merkle.leaf_hash(previous.leaf).hex()
        assert stored.statement_json()["actor"] == "coop-jinzhou"


def test_batch_appends_good_statements_consecutively_and_reports_bad_ones(
    world: LedgerWorld,
) -> None:
    coop, carrier = world.actors["coop-jinzhou"], world.actors["carrier-sf"]
    stranger = Actor("stranger", crypto.SigningKey.generate())
    start = _size(world)
    results = world.append(make_signed(coop), make_signed(stranger), make_signed(carrier),
                           make_signed(coop, key=carrier.key))
    assert [r.index for r in results] == [start, None, start + 1, None]
    assert isinstance(results[1].error, UnknownKey)
    assert isinstance(results[3].error, BadSignature)
    assert _size(world) == start + 2


def test_rolled_back_batch_leaves_no_trace(world: LedgerWorld) -> None:
    before = _size(world)
    with world.db.writer() as session:
        with session.begin():
            results = ledger.append(session, [make_signed(world.actors["coop-jinzhou"])])
            assert results[0].index == before
            session.rollback()
    assert _size(world) == before == _count(world)
    audit.audit(world.db, jobs=1)


def test_first_statement_must_register_the_registrar(database: Database) -> None:
    registrar = Actor("registrar", crypto.SigningKey.generate())
    with database.writer() as session, session.begin():
        repo.set_meta(session, ledger.META_ORIGIN, "x.test/log")
        repo.create_head(session, ledger.GENESIS_HASH)
    with database.writer() as session, session.begin():
        (result,) = ledger.append(session, [make_signed(registrar)])
    assert isinstance(result.error, Rejected) and result.error.reason == "no_registrar"


def test_unknown_actor_is_refused(world: LedgerWorld) -> None:
    _refused(world, make_signed(Actor("nobody", crypto.SigningKey.generate())), UnknownKey)


def test_unknown_key_of_a_known_actor_is_refused(world: LedgerWorld) -> None:
    coop = world.actors["coop-jinzhou"]
    other = Actor(coop.name, crypto.SigningKey.generate())
    error = _refused(world, make_signed(other), UnknownKey)
    assert "has no key" in str(error)


def test_signature_by_another_actors_key_is_refused(world: LedgerWorld) -> None:
    coop, carrier = world.actors["coop-jinzhou"], world.actors["carrier-sf"]
    _refused(world, make_signed(coop, key=carrier.key), BadSignature)


def test_altered_statement_no_longer_matches_its_signature(world: LedgerWorld) -> None:
    signed = make_signed(world.actors["coop-jinzhou"])
    body = {"text": "altered after signing"}
    forged = replace(signed, statement=replace(signed.statement, body=body),
                     data=canonical.statement_bytes({**signed.statement.to_json(), "body": body}))
    _refused(world, forged, BadSignature)


def test_revoked_key_cannot_sign_later_but_history_still_verifies(world: LedgerWorld) -> None:
    coop = world.actors["coop-jinzhou"]
    (before,) = world.append_ok(make_signed(coop))
    world.append_ok(make_signed(world.registrar, kind="key_revoked",
                                body={"actor": coop.name, "key_id": coop.key_id,
                                      "reason": "phone lost"}))
    error = _refused(world, make_signed(coop), RevokedKey)
    assert "revoked at entry" in str(error)
    report = audit.audit(world.db, jobs=1)
    assert report.size == _size(world) and before < report.size


def test_added_key_signs_and_actor_may_revoke_its_own_key(world: LedgerWorld) -> None:
    coop = world.actors["coop-jinzhou"]
    new = Actor(coop.name, crypto.SigningKey.generate())
    world.append_ok(make_signed(world.registrar, kind="key_added",
                                body={"actor": coop.name, "vkey": new.vkey}))
    world.append_ok(make_signed(new))
    world.append_ok(make_signed(new, kind="key_revoked",
                                body={"actor": coop.name, "key_id": coop.key_id}))
    _refused(world, make_signed(coop), RevokedKey)
    world.append_ok(make_signed(new))
    audit.audit(world.db, jobs=2)


@pytest.mark.parametrize("kind, body", [
    ("actor_registered", {"name": "fake-farm", "role": "farm"}),
    ("key_added", {"actor": "coop-jinzhou"}),
    ("key_revoked", {"actor": "coop-jinzhou"}),
])
def test_only_a_registrar_can_change_the_registry(world: LedgerWorld, kind: str, body: dict
                                                  ) -> None:
    carrier, coop = world.actors["carrier-sf"], world.actors["coop-jinzhou"]
    extra = Actor("fake-farm", crypto.SigningKey.generate())
    if kind == "actor_registered":
        body = {**body, "vkey": extra.vkey}
    elif kind == "key_added":
        body = {**body, "vkey": Actor(coop.name, crypto.SigningKey.generate()).vkey}
    else:
        body = {**body, "key_id": coop.key_id}
    _refused(world, make_signed(carrier, kind=kind, body=body), NotPermitted)


def test_actor_cannot_be_registered_twice(world: LedgerWorld) -> None:
    again = Actor("carrier-sf", crypto.SigningKey.generate())
    error = _refused(world, make_signed(world.registrar, kind="actor_registered", body={
        "name": "carrier-sf", "role": "carrier", "vkey": again.vkey}), Rejected)
    assert error.reason == "already_registered"


def test_replayed_statement_is_idempotent_and_returns_the_original_index(
    world: LedgerWorld,
) -> None:
    signed = make_signed(world.actors["coop-jinzhou"])
    (first,) = world.append_ok(signed)
    error = _refused(world, signed, Duplicate)
    assert error.index == first
    results = world.append(signed, signed)
    assert all(isinstance(r.error, Duplicate) and r.error.index == first for r in results)


def test_duplicate_inside_one_batch_is_appended_once(world: LedgerWorld) -> None:
    signed = make_signed(world.actors["coop-jinzhou"])
    start = _size(world)
    first, second = world.append(signed, signed)
    assert first.index == start
    assert isinstance(second.error, Duplicate) and second.error.index == start
    assert _size(world) == start + 1


def test_reused_nonce_with_other_content_is_refused(world: LedgerWorld) -> None:
    coop = world.actors["coop-jinzhou"]
    world.append_ok(make_signed(coop, nonce="nonce-0001-abcdef"))
    error = _refused(world, make_signed(coop, nonce="nonce-0001-abcdef", body={"text": "b"}),
                     Rejected)
    assert error.reason == "nonce_reused"


def test_statement_from_the_future_is_refused(world: LedgerWorld) -> None:
    later = format_time(utcnow() + timedelta(hours=1))
    error = _refused(world, make_signed(world.actors["coop-jinzhou"], time=later), Rejected)
    assert error.reason == "future_time"


@pytest.mark.parametrize("body, message", [
    ({}, "text is required"),
    ({"text": ""}, "non-empty"),
    ({"text": 5}, "non-empty string"),
    ({"text": "x" * 4001}, "longer than"),
    ({"text": "ok", "colour": "red"}, "unknown field"),
])
def test_malformed_body_is_refused(world: LedgerWorld, body: dict, message: str) -> None:
    error = _refused(world, make_signed(world.actors["coop-jinzhou"], body=body), MalformedInput)
    assert message in str(error)


def test_unknown_kind_is_refused(world: LedgerWorld) -> None:
    error = _refused(world, make_signed(world.actors["coop-jinzhou"], kind="teleport"), Rejected)
    assert error.reason == "unknown_kind"


def test_registration_with_a_key_named_for_someone_else_is_refused(world: LedgerWorld) -> None:
    imposter = Actor("someone-else", crypto.SigningKey.generate())
    _refused(world, make_signed(world.registrar, kind="actor_registered", body={
        "name": "new-farm", "role": "farm", "vkey": imposter.vkey}), MalformedInput)


def test_sqlite_connections_are_set_up_for_a_durable_log_of_millions(tmp_path: Path) -> None:
    """Each connection to a SQLite ledger: WAL, every commit synced, foreign keys on, the WAL
    checkpoint interval and size that keep appends fast on a large log, and a large page
    cache only while it writes (a reader that was a writer gives it back)."""
    from suyuan.storage import db as storage

    def settings(session: Any) -> tuple[Any, ...]:
        return tuple(session.execute(text(f"PRAGMA {name}")).scalar() for name in (
            "journal_mode", "synchronous", "foreign_keys", "wal_autocheckpoint",
            "journal_size_limit", "cache_size"))

    def connection_of(session: Any) -> int:
        return id(session.connection().connection.dbapi_connection)

    durable = ("wal", 2, 1, storage.SQLITE_WAL_CHECKPOINT_PAGES, storage.SQLITE_WAL_LIMIT_BYTES)
    database = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        database.upgrade()
        with (database.writer() as writer, writer.begin(),
              database.reader() as reader, reader.begin()):
            assert connection_of(writer) != connection_of(reader)
            assert settings(writer) == (*durable, -storage.SQLITE_WRITER_CACHE_KIB)
            assert settings(reader) == (*durable, -storage.SQLITE_READER_CACHE_KIB)
            connections = {connection_of(writer), connection_of(reader)}
        with (database.reader() as first, first.begin(),
              database.reader() as second, second.begin()):
            assert {connection_of(first), connection_of(second)} == connections
            assert settings(first) == settings(second) == (
                *durable, -storage.SQLITE_READER_CACHE_KIB)
    finally:
        database.dispose()


def test_log_tables_refuse_update_and_delete(world: LedgerWorld) -> None:
    for statement in ("UPDATE entries SET kind = 'x' WHERE idx = 0", "DELETE FROM entries",
                      "DELETE FROM nodes"):
        with pytest.raises(DBAPIError, match="append-only"):
            with world.db.writer() as session, session.begin():
                session.execute(text(statement))
    audit.audit(world.db, jobs=1)


# --- checkpoints, witnesses and proofs -------------------------------------------------------


def _checkpoint(world: LedgerWorld) -> ledger.CheckpointResult:
    with world.db.writer() as session, session.begin():
        return ledger.checkpoint(session, world.log_key)


def test_checkpoint_is_signed_only_when_the_log_grew(world: LedgerWorld) -> None:
    first = _checkpoint(world)
    assert first.is_new and first.checkpoint.size == _size(world)
    again = _checkpoint(world)
    assert not again.is_new and again.note == first.note
    world.append_ok(make_signed(world.actors["coop-jinzhou"]))
    grown = _checkpoint(world)
    assert grown.is_new and grown.checkpoint.size == first.checkpoint.size + 1
    with world.db.reader() as session, session.begin():
        cp, _ = note.open_checkpoint(grown.note, ledger.log_vkey(session), ledger.origin(session))
    assert cp.root_hash == merkle.root([merkle.leaf_hash(_leaf(world, i))
                                        for i in range(cp.size)])


def _leaf(world: LedgerWorld, index: int) -> bytes:
    with world.db.reader() as session, session.begin():
        return repo.leaf(session, index)


def test_log_refuses_to_sign_a_checkpoint_inconsistent_with_the_previous_one(
    world: LedgerWorld,
) -> None:
    first = _checkpoint(world)
    world.append_ok(make_signed(world.actors["coop-jinzhou"]))
    with world.db.writer() as session, session.begin():
        # An attacker rewrites the earlier checkpoint's root (bypassing the triggers).
        _drop_checkpoint_triggers(session)
        session.execute(text("UPDATE checkpoints SET root = :r WHERE size = :s"),
                        {"r": b"\x07" * 32, "s": first.checkpoint.size})
    with pytest.raises(InconsistentCheckpoint, match="not consistent"):
        _checkpoint(world)


def _drop_checkpoint_triggers(session) -> None:
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("DROP TRIGGER checkpoints_no_update"))
    else:
        session.execute(text("ALTER TABLE checkpoints DISABLE TRIGGER USER"))


def _cosign(world: LedgerWorld, name: str, key: crypto.SigningKey, state: Path,
            note_text: str | None = None) -> note.Checkpoint:
    with world.db.reader() as session, session.begin():
        latest = repo.latest_checkpoint(session)
        cp, sig = witness.cosign(
            checkpoint_note=note_text or latest.note, log_key=ledger.log_vkey(session),
            origin=ledger.origin(session), name=name, key=key, state_path=state,
            proof_for=lambda a, b: ledger.consistency_proof(session, a, b),
            timestamp=1_780_000_000,
        )
    with world.db.writer() as session, session.begin():
        if repo.witness(session, name) is None:
            repo.add_witness(session, name, str(note.witness_verifier_key(name, key.public_key)),
                             "2026-01-01T00:00:00.000Z")
        repo.add_cosignature(session, cp.size, name, 1_780_000_000, sig.line())
    return cp


def test_witness_cosigns_growing_checkpoints_and_proofs_verify_offline(
    world: LedgerWorld, tmp_path: Path,
) -> None:
    key = crypto.SigningKey.generate()
    state = tmp_path / "w.state"
    _checkpoint(world)
    _cosign(world, "witness.test/a", key, state)
    coop = world.actors["coop-jinzhou"]
    (index,) = world.append_ok(make_signed(coop))
    _checkpoint(world)
    cp = _cosign(world, "witness.test/a", key, state)
    assert witness.load_state(state)["ledger.test/dalian"].size == cp.size
    with world.db.reader() as session, session.begin():
        proof = ledger.tlog_proof(session, index)
        policy = note.parse_policy(str(ledger.policy(session)))
    leaf = _leaf(world, index)
    verified = note.verify_tlog_proof(str(proof), leaf, policy)
    assert verified.index == index and verified.witnesses == ("witness.test/a",)
    with pytest.raises(InclusionProofError):
        note.verify_tlog_proof(str(proof), _leaf(world, index - 1), policy)
    report = audit.audit(world.db, jobs=1)
    assert report.checkpoints == 2 and report.cosignatures == 2


def test_witness_refuses_a_forked_or_older_checkpoint(world: LedgerWorld, tmp_path: Path) -> None:
    key = crypto.SigningKey.generate()
    state = tmp_path / "w.state"
    world.append_ok(make_signed(world.actors["coop-jinzhou"]))
    _checkpoint(world)
    cp = _cosign(world, "witness.test/b", key, state)
    # A fork: a checkpoint of the same size with another root, signed by the log key.
    forked = note.Checkpoint(cp.origin, cp.size, b"\x01" * 32)
    forked_note = str(note.sign_checkpoint(forked, cp.origin, world.log_key))
    with pytest.raises(InconsistentCheckpoint, match="forked"):
        _cosign(world, "witness.test/b", key, state, forked_note)
    older = note.Checkpoint(cp.origin, cp.size - 1, b"\x02" * 32)
    with pytest.raises(InconsistentCheckpoint, match="smaller"):
        _cosign(world, "witness.test/b", key, state,
                str(note.sign_checkpoint(older, cp.origin, world.log_key)))
    # A bigger checkpoint that does not extend the cosigned tree.
    world.append_ok(make_signed(world.actors["coop-jinzhou"]))
    fake = note.Checkpoint(cp.origin, cp.size + 1, b"\x03" * 32)
    with pytest.raises(InconsistentCheckpoint, match="not consistent"):
        _cosign(world, "witness.test/b", key, state,
                str(note.sign_checkpoint(fake, cp.origin, world.log_key)))
    kept = witness.load_state(state)[cp.origin]
    assert (kept.size, kept.root) == (cp.size, cp.root_hash)


def test_witness_refuses_a_checkpoint_not_signed_by_the_log(world: LedgerWorld, tmp_path: Path
                                                           ) -> None:
    _checkpoint(world)
    with world.db.reader() as session, session.begin():
        latest = repo.latest_checkpoint(session)
    cp = note.parse_checkpoint(note.parse_note(latest.note).text)
    impostor = str(note.sign_checkpoint(cp, cp.origin, crypto.SigningKey.generate()))
    with pytest.raises(NoteError):
        _cosign(world, "witness.test/c", crypto.SigningKey.generate(), tmp_path / "s", impostor)
    assert not (tmp_path / "s").exists()


def test_proof_of_an_entry_not_yet_checkpointed_is_not_found(world: LedgerWorld) -> None:
    _checkpoint(world)
    (index,) = world.append_ok(make_signed(world.actors["coop-jinzhou"]))
    with world.db.reader() as session, session.begin(), pytest.raises(NotFound, match="checkpoint"):
        ledger.tlog_proof(session, index)


def test_root_from_stored_nodes_matches_a_full_recomputation(database: Database) -> None:
    world = make_world(database, actors={f"farm-{i}": "farm" for i in range(5)})
    farms = list(world.actors.values())
    for round_ in range(7):
        world.append_ok(*[make_signed(f) for f in farms[: round_ + 1]])
    size = _size(world)
    leaves = [merkle.leaf_hash(_leaf(world, i)) for i in range(size)]
    with world.db.reader() as session, session.begin():
        for n in range(1, size + 1):
            assert ledger.root(session, n) == merkle.root(leaves[:n])
        for index in (0, size // 2, size - 1):
            proof = ledger.inclusion_proof(session, index, size)
            merkle.verify_inclusion(leaves[index], index, size, proof, merkle.root(leaves))
        proof = ledger.consistency_proof(session, 3, size)
        merkle.verify_consistency(3, size, proof, merkle.root(leaves[:3]), merkle.root(leaves))


def test_registered_actor_from_a_regulator_is_accepted(world: LedgerWorld) -> None:
    regulator = register(world, "dalian-amr", "regulator")
    farm = Actor("new-farm", crypto.SigningKey.generate())
    world.append_ok(make_signed(regulator, kind="actor_registered", body={
        "name": "new-farm", "role": "farm", "vkey": farm.vkey}))
    world.append_ok(make_signed(farm))
    with pytest.raises(NotPermitted):
        fake = Actor("fake-registrar", crypto.SigningKey.generate())
        (result,) = world.append(make_signed(regulator, kind="actor_registered", body={
            "name": "fake-registrar", "role": "registrar", "vkey": fake.vkey}))
        raise result.error  # type: ignore[misc]


def test_witness_refuses_a_log_whose_key_was_swapped(world: LedgerWorld, tmp_path: Path) -> None:
    key, state = crypto.SigningKey.generate(), tmp_path / "w.state"
    _checkpoint(world)
    _cosign(world, "witness.test/d", key, state)
    world.append_ok(make_signed(world.actors["coop-jinzhou"]))
    impostor = crypto.SigningKey.generate()
    with world.db.reader() as session, session.begin():
        size, origin = ledger.size(session), ledger.origin(session)
        root = ledger.root(session, size)
        proof = ledger.consistency_proof(session, size - 1, size)
    forged = str(note.sign_checkpoint(note.Checkpoint(origin, size, root), origin, impostor))
    with pytest.raises(InconsistentCheckpoint, match="log key .* changed"):
        witness.cosign(checkpoint_note=forged, log_key=crypto.verifier_key(origin,
                       impostor.public_key), origin=origin, name="witness.test/d", key=key,
                       state_path=state, proof_for=lambda a, b: proof, timestamp=1)


def test_a_regulator_cannot_change_the_registrars_keys(world: LedgerWorld) -> None:
    regulator = register(world, "dalian-amr", "regulator")
    rogue = Actor("registrar", crypto.SigningKey.generate())
    _refused(world, make_signed(regulator, kind="key_added",
                                body={"actor": "registrar", "vkey": rogue.vkey}), NotPermitted)
    _refused(world, make_signed(regulator, kind="key_revoked", body={
        "actor": "registrar", "key_id": world.registrar.key_id}), NotPermitted)
    # A regulator may still recover another actor's key (an explicit rule).
    farm = world.actors["coop-jinzhou"]
    world.append_ok(make_signed(regulator, kind="key_added", body={
        "actor": farm.name, "vkey": Actor(farm.name, crypto.SigningKey.generate()).vkey}))


def test_an_unknown_signer_is_refused_before_its_body_is_read(world: LedgerWorld) -> None:
    stranger = Actor("stranger", crypto.SigningKey.generate())
    _refused(world, make_signed(stranger, kind="actor_registered", body={"role": [], "name": 1}),
             UnknownKey)


def test_statement_bound_to_this_log_is_appended(world: LedgerWorld) -> None:
    with world.db.reader() as session, session.begin():
        origin = ledger.origin(session)
        genesis = ledger.entry(session, 0).statement_json()
    assert genesis["log"] == origin  # the registrar's genesis names its log
    (index,) = world.append_ok(make_signed(world.actors["coop-jinzhou"], log=origin))
    with world.db.reader() as session, session.begin():
        assert ledger.entry(session, index).statement_json()["log"] == origin


def test_statement_bound_to_another_log_is_refused_and_nothing_is_appended(
    world: LedgerWorld,
) -> None:
    start = _size(world)
    error = _refused(world, make_signed(world.actors["coop-jinzhou"], log="other.example/log"),
                     Rejected)
    assert error.reason == "wrong_log"
    assert "other.example/log" in str(error)
    assert _size(world) == start


@pytest.mark.parametrize("value", ["", "has space", "a+b", 5, None, "x" * 256, "tab\there"])
def test_malformed_log_origin_in_a_statement_is_refused(value: object) -> None:
    document = make_signed(Actor("coop", crypto.SigningKey.generate())).statement.to_json()
    document["log"] = value
    with pytest.raises(MalformedInput, match="log must be a log origin"):
        Statement.from_json(document)
