"""The repository's hot queries go to the driver directly: they must still see what the
session holds but has not flushed yet, as queries through the session do."""

from __future__ import annotations

from suyuan import ledger
from suyuan.storage import repo
from suyuan.storage.db import Database
from suyuan.storage.schema import ActorKeyRow, ActorRow
from tests.helpers import LedgerWorld


def test_meta_set_in_the_session_is_read_back_before_a_flush(world: LedgerWorld) -> None:
    with world.db.writer() as session, session.begin():
        repo.set_meta(session, "test_key", "value 值")
        assert repo.get_meta(session, "test_key") == "value 值"
        assert repo.get_meta(session, "absent") is None
        session.rollback()


def test_registry_rows_added_in_the_session_are_loaded(world: LedgerWorld) -> None:
    with world.db.writer() as session, session.begin():
        before = repo.load_registry(session)
        assert set(before.actors) == {"registrar", "coop-jinzhou", "carrier-sf"}
        session.add(ActorRow(name="late", role="farm", registered_at=99, info='{"a": 1}'))
        session.add(ActorKeyRow(actor="late", key_id="0badf00d", public_key=bytes(32),
                                added_at=99, revoked_at=100))
        after = repo.load_registry(session)
        assert after.actors["late"].info == {"a": 1}
        assert after.keys[("late", "0badf00d")].revoked_at == 100
        assert after.actors["coop-jinzhou"] == before.actors["coop-jinzhou"]
        session.rollback()


def test_head_is_read_locked_and_moved_in_the_transaction(world: LedgerWorld,
                                                          database: Database) -> None:
    with database.writer() as session, session.begin():
        size, last = repo.lock_head(session)
        assert (size, last) == repo.read_head(session)
        assert size == ledger.size(session) == 3
        repo.set_head(session, size + 1, bytes(32))
        assert repo.read_head(session) == (size + 1, bytes(32))
        session.rollback()
    with database.reader() as session, session.begin():
        assert repo.read_head(session) == (size, last)
