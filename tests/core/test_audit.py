"""The audit's trust anchor (a policy held apart from the server) and replay detection."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from suyuan import audit, crypto, ledger, note
from suyuan.errors import VerificationError
from suyuan.storage import repo
from suyuan.storage.db import Database
from tests.helpers import LedgerWorld, make_signed, make_world


def _checkpoint(world: LedgerWorld) -> None:
    with world.db.writer() as session, session.begin():
        ledger.checkpoint(session, world.log_key)


def _policy(world: LedgerWorld) -> note.Policy:
    with world.db.reader() as session, session.begin():
        return ledger.policy(session)


def _disable_triggers(session, table: str) -> None:
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
    else:
        session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))


def _swap_log_key(world: LedgerWorld) -> None:
    """An operator replaces the log key recorded in the database and re-signs every
    checkpoint with the new key."""
    impostor = crypto.SigningKey.generate()
    with world.db.writer() as session, session.begin():
        origin = ledger.origin(session)
        _disable_triggers(session, "checkpoints")
        repo.set_meta(session, ledger.META_LOG_VKEY,
                      str(crypto.verifier_key(origin, impostor.public_key)))
        for row in repo.all_checkpoints(session):
            cp = note.parse_checkpoint(note.parse_note(row.note).text)
            session.execute(text("UPDATE checkpoints SET note = :n WHERE size = :s"),
                            {"n": str(note.sign_checkpoint(cp, origin, impostor)),
                             "s": row.size})


def test_swapped_log_key_passes_alone_but_fails_against_the_policy(world: LedgerWorld) -> None:
    world.append_ok(make_signed(world.actors["coop-jinzhou"]))
    _checkpoint(world)
    trusted = _policy(world)
    audit.audit(world.db, jobs=1, policy=trusted)
    _swap_log_key(world)
    audit.audit(world.db, jobs=1)  # internally consistent: only an outside anchor can tell
    with pytest.raises(VerificationError, match="not the policy's log key"):
        audit.audit(world.db, jobs=1, policy=trusted)


def test_policy_of_another_log_is_refused(world: LedgerWorld) -> None:
    other_key = crypto.SigningKey.generate()
    other = note.Policy(log=crypto.verifier_key("other.test/log", other_key.public_key),
                        origin="other.test/log", witnesses=(), quorum=0)
    with pytest.raises(VerificationError, match="origin"):
        audit.audit(world.db, jobs=1, policy=other)


def test_swapped_witness_key_fails_against_the_policy(world: LedgerWorld) -> None:
    _checkpoint(world)
    key = crypto.SigningKey.generate()
    vkey = note.witness_verifier_key("witness.test/w", key.public_key)
    with world.db.writer() as session, session.begin():
        repo.add_witness(session, "witness.test/w", str(vkey), "2026-01-01T00:00:00.000Z")
        latest = repo.latest_checkpoint(session)
        cp = note.parse_checkpoint(note.parse_note(latest.note).text)
        line = note.cosign(cp.body(), "witness.test/w", key, 1_780_000_000).line()
        repo.add_cosignature(session, cp.size, "witness.test/w", 1_780_000_000, line)
    trusted = _policy(world)
    audit.audit(world.db, jobs=1, policy=trusted)
    impostor = crypto.SigningKey.generate()
    with world.db.writer() as session, session.begin():
        _disable_triggers(session, "cosignatures")
        session.execute(text("UPDATE witnesses SET vkey = :v"), {
            "v": str(note.witness_verifier_key("witness.test/w", impostor.public_key))})
        session.execute(text("UPDATE cosignatures SET line = :l"), {
            "l": note.cosign(cp.body(), "witness.test/w", impostor, 1_780_000_000).line()})
    audit.audit(world.db, jobs=1)
    with pytest.raises(VerificationError, match="witness.test/w's key"):
        audit.audit(world.db, jobs=1, policy=trusted)


def test_a_replayed_statement_is_found_even_without_the_unique_constraint(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = Database(postgres_url)
    db.upgrade()
    try:
        world = make_world(db)
        signed = make_signed(world.actors["coop-jinzhou"])
        (first,) = world.append_ok(signed)
        audit.audit(db, jobs=1)
        # A faulty or malicious log that skips its replay check and has lost the constraint.
        with db.writer() as session, session.begin():
            session.execute(text("ALTER TABLE entries DROP CONSTRAINT uq_entries_nonce_actor"))
        monkeypatch.setattr(repo, "find_nonces", lambda session, keys: {})
        (second,) = world.append_ok(signed)
        with pytest.raises(VerificationError, match=f"repeats the nonce of entry {first}") as err:
            audit.audit(db, jobs=2)
        assert err.value.index == second
    finally:
        db.dispose()


def test_tampered_actor_tables_are_caught(world: LedgerWorld) -> None:
    audit.audit(world.db, jobs=1)
    with world.db.writer() as session, session.begin():
        session.execute(text("UPDATE actors SET role = 'regulator' WHERE name = 'coop-jinzhou'"))
    with pytest.raises(VerificationError, match="actors table disagrees"):
        audit.audit(world.db, jobs=1)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_statement_bound_to_another_log_is_found(world: LedgerWorld, jobs: int) -> None:
    coop = world.actors["coop-jinzhou"]
    with world.db.reader() as session, session.begin():
        origin = ledger.origin(session)
    world.append_ok(make_signed(coop, log=origin), make_signed(coop))  # bound here, or not at all
    _checkpoint(world)
    audit.audit(world.db, jobs=jobs, policy=_policy(world))
    # A faulty log that took a statement made for another log (its append check skipped by
    # reading another origin for one batch).
    with world.db.writer() as session, session.begin():
        repo.set_meta(session, ledger.META_ORIGIN, "other.example/log")
    (foreign,) = world.append_ok(make_signed(coop, log="other.example/log"))
    with world.db.writer() as session, session.begin():
        repo.set_meta(session, ledger.META_ORIGIN, origin)
    world.append_ok(make_signed(coop))
    _checkpoint(world)
    with pytest.raises(VerificationError, match="bound to the log 'other.example/log'") as err:
        audit.audit(world.db, jobs=jobs)
    assert err.value.index == foreign
