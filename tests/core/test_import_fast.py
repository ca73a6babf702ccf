"""Bulk import with its workers' shortcuts: the same lines are appended or refused, for the
same reasons, as through the general path, and the entries are byte for byte those the
ledger builds itself."""

from __future__ import annotations

import gc
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from suyuan import audit, canonical, crypto, importer, ledger, prepare
from suyuan.errors import SuyuanError
from suyuan.model import Entry, parse_signed_statement, utcnow
from suyuan.storage import repo
from suyuan.storage.db import Database
from tests.helpers import ORIGIN, Actor, LedgerWorld, make_signed


def mixed_lines(world: LedgerWorld) -> list[str]:
    coop, carrier, registrar = (world.actors["coop-jinzhou"], world.actors["carrier-sf"],
                                world.registrar)
    lab = Actor("lab-dalian", crypto.SigningKey.generate())
    stranger = Actor("stranger", crypto.SigningKey.generate())
    good = make_signed(coop, body={"text": "樱桃 cherries", "lot": "JZ-1"}, log=ORIGIN)
    forged = json.loads(make_signed(carrier).to_line())
    forged["statement"]["body"]["text"] = "changed after signing"
    reused = make_signed(coop, nonce=good.statement.nonce, body={"text": "other content"})
    return [
        good.to_line(),                                                     # appended
        make_signed(carrier, body={"text": 'two\nlines "quoted" \\'}).to_line(),  # escapes
        make_signed(registrar, kind="actor_registered", body={             # nested body
            "name": lab.name, "role": "lab", "vkey": lab.vkey,
            "info": {"认证": ["CMA"], "n": 1}}).to_line(),
        make_signed(lab, body={"text": "residue test passed"}).to_line(),  # key learnt above
        json.dumps(json.loads(make_signed(coop).to_line())),              # not canonical
        good.to_line(),                                                     # duplicate
        reused.to_line(),                                                   # nonce reused
        json.dumps(forged),                                                 # bad signature
        make_signed(stranger).to_line(),                                    # unknown actor
        make_signed(stranger, body={"text": "x", "extra": 1}).to_line(),   # unknown first
        make_signed(coop, body={"text": "x", "extra": 1}).to_line(),       # malformed body
        make_signed(coop, kind="no_such_kind", body={}).to_line(),         # unknown kind
        make_signed(coop, log="other.test/log").to_line(),                 # another log
        make_signed(coop, time="2099-01-01T00:00:00Z").to_line(),          # the future
        make_signed(coop, nonce="short").to_line().replace('"short"', '"sh"'),  # bad nonce
        '{"signature":"' + "A" * 86 + '==","statement":{"v":1}}',           # missing fields
        make_signed(coop, body={"text": "x" * 5000}).to_line(),            # body too long
        "{not json",
        make_signed(carrier, body={"lot": "JZ-1", "text": "到达 2°C"}).to_line(),  # appended
    ]


def run_import(database: Database, lines: list[str], jobs: int) -> importer.ImportSummary:
    return importer.import_lines(
        database, importer.read_lines(line.encode() for line in lines), jobs=jobs,
        batch_size=7)


def ledger_with(database: Database, registrar: Actor, actors: list[Actor]) -> LedgerWorld:
    """A ledger whose registrar and actors (a cooperative, a carrier) have the given keys."""
    log_key = crypto.SigningKey.generate()
    with database.writer() as session, session.begin():
        ledger.initialise(session, origin=ORIGIN, log_key=log_key, registrar=registrar.name,
                          registrar_key=registrar.key)
    world = LedgerWorld(database, log_key, registrar)
    for actor, role in zip(actors, ("cooperative", "carrier"), strict=True):
        world.append_ok(make_signed(registrar, kind="actor_registered",
                                    body={"name": actor.name, "role": role, "vkey": actor.vkey}))
        world.actors[actor.name] = actor
    return world


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_workers_shortcuts_append_and_refuse_what_the_general_path_does(
        database: Database, tmp_path: Path, jobs: int, monkeypatch: pytest.MonkeyPatch) -> None:
    registrar = Actor("registrar", crypto.SigningKey.generate())
    actors = [Actor(name, crypto.SigningKey.generate()) for name in ("coop-jinzhou", "carrier-sf")]
    world = ledger_with(database, registrar, actors)
    lines = mixed_lines(world)
    fast = run_import(database, lines, jobs)
    assert (fast.appended, fast.duplicates, len(fast.errors)) == (6, 1, 12)

    general = Database(f"sqlite:///{tmp_path / 'general.db'}")
    general.upgrade()
    try:
        ledger_with(general, registrar, actors)
        monkeypatch.setattr(prepare, "parse_canonical_line", lambda raw: None)
        monkeypatch.setattr(prepare, "validate_body", _leave_to_the_ledger)
        slow = run_import(general, lines, jobs)
        assert statements(general)[3:] == statements(database)[3:]  # after the setup
    finally:
        general.dispose()
    assert _refusals(fast) == _refusals(slow)
    assert (fast.appended, fast.duplicates) == (slow.appended, slow.duplicates)
    assert (fast.first_index, fast.last_index) == (slow.first_index, slow.last_index)


def _refusals(summary: importer.ImportSummary) -> list[tuple[int, str, str]]:
    # (the log's clock, in the message about a statement from the future, moves on)
    return [(e.line, e.reason, e.message.split(" (log time")[0]) for e in summary.errors]


def _leave_to_the_ledger(statement: object) -> None:
    raise ValueError("the ledger checks the body")


def test_imported_entries_are_what_the_ledger_builds_itself(world: LedgerWorld) -> None:
    coop = world.actors["coop-jinzhou"]
    signed = [make_signed(coop, body={"text": f"第{i}箱 box {i}", "lot": "L-1"},
                          log=ORIGIN if i % 2 else None) for i in range(50)]
    with world.db.reader() as session, session.begin():
        start = ledger.size(session)
    summary = importer.import_lines(
        world.db, importer.read_lines(s.to_line().encode() for s in signed), jobs=2)
    assert summary.appended == 50
    with world.db.reader() as session, session.begin():
        for offset, expected in enumerate(signed):
            leaf = repo.leaf(session, start + offset)
            index, _, prev, received_at, _, _ = canonical.split_entry(leaf)
            assert Entry.build(index, prev, expected, received_at).leaf == leaf
    assert audit.audit(world.db, jobs=1).size == start + 50


def test_a_line_signed_in_the_future_and_bound_elsewhere_is_refused_for_that(
        world: LedgerWorld) -> None:
    coop = world.actors["coop-jinzhou"]
    soon = (utcnow() + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    lines = [make_signed(coop, time=soon).to_line(),
             make_signed(coop, log="other.test/log").to_line()]
    summary = run_import(world.db, lines, 1)
    assert summary.appended == 1
    assert [(e.line, e.reason) for e in summary.errors] == [(2, "wrong_log")]
    assert parse_signed_statement(lines[0]).statement.time == soon


def statements(database: Database) -> list[bytes]:
    with database.reader() as session, session.begin():
        return [canonical.split_entry(leaf)[5] for _, leaf, *_ in repo.iter_entries(session)]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_batch_that_fails_unforeseen_is_rolled_back_and_appended_line_by_line(
        world: LedgerWorld, jobs: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent appends a batch part by part in one transaction; when a part fails in a
    way no rule foresaw, the parts already appended are rolled back with it, and the batch
    is appended line by line so that only the line at fault is refused."""
    coop = world.actors["coop-jinzhou"]
    signed = [make_signed(coop, body={"text": f"line {i}"}) for i in range(12)]
    poison = signed[6].statement.nonce  # batch 2 (lines 5-8), its second part
    append = ledger.append

    def failing_append(session, items, **kwargs):
        if any(item.signed.statement.nonce == poison for item in items):
            raise SuyuanError("an unforeseen failure")
        return append(session, items, **kwargs)

    monkeypatch.setattr(ledger, "append", failing_append)
    monkeypatch.setattr(prepare, "TASK_LINES", 2)
    with world.db.reader() as session, session.begin():
        start = ledger.size(session)
    summary = importer.import_lines(
        world.db, importer.read_lines(s.to_line().encode() for s in signed), jobs=jobs,
        batch_size=4)
    assert summary.appended == 11 and summary.duplicates == 0
    assert [(e.line, e.message) for e in summary.errors] == [(7, "an unforeseen failure")]
    with world.db.reader() as session, session.begin():
        assert ledger.size(session) == start + 11
        nonces = [canonical.loads(canonical.split_entry(repo.leaf(session, i))[5])["nonce"]
                  for i in range(start, start + 11)]
    assert nonces == [s.statement.nonce for s in signed if s.statement.nonce != poison]
    assert audit.audit(world.db, jobs=1).size == start + 11


def test_a_note_naming_no_lot_code_is_appended_on_every_database(world: LedgerWorld) -> None:
    """A note's ``lot`` is free text; one that is no lot code (here with a NUL, which
    PostgreSQL will not compare) names no lot and is appended like any note."""
    coop = world.actors["coop-jinzhou"]
    lines = [make_signed(coop, body={"text": "ok", "lot": "JZ-1"}).to_line(),
             make_signed(coop, body={"text": "odd lot", "lot": "JZ\u00001"}).to_line(),
             make_signed(coop, body={"text": "ok", "lot": "no such lot"}).to_line()]
    summary = run_import(world.db, lines, 2)
    assert (summary.appended, summary.errors) == (3, [])


def test_a_plain_sql_error_is_a_database_error_like_any_other(world: LedgerWorld) -> None:
    """The plain-SQL queries raise what SQLAlchemy raises, so the importer's and the
    command's handling of database errors covers them too."""
    with world.db.reader() as session, session.begin(), pytest.raises(DBAPIError):
        repo._raw_rows(session, "SELECT no_such_column FROM meta", ())


@pytest.mark.parametrize("collecting", [True, False])
def test_the_collector_waits_while_a_batch_is_appended_and_runs_between_batches(
        world: LedgerWorld, collecting: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen from the parent's side of an import of 19 lines in batches of 7: the collector is
    off for every part taken, on again (if it was) each time the next batch starts, and as
    it was after the import, also when the import fails."""
    taken, starting = [], []
    take = importer._Import.take
    parts = prepare.Pipeline.parts

    def recorded_take(self, is_batch_end, prepared):  # type: ignore[no-untyped-def]
        taken.append(gc.isenabled())
        return take(self, is_batch_end, prepared)

    def recorded_parts(self):  # type: ignore[no-untyped-def]
        for is_batch_end, part in parts(self):
            yield is_batch_end, part
            if is_batch_end:
                starting.append(gc.isenabled())

    monkeypatch.setattr(importer._Import, "take", recorded_take)
    monkeypatch.setattr(prepare.Pipeline, "parts", recorded_parts)
    was = gc.isenabled()
    (gc.enable if collecting else gc.disable)()
    try:
        summary = run_import(world.db, mixed_lines(world), jobs=1)
        assert summary.appended == 6
        assert taken and not any(taken)
        assert starting == [collecting] * 3  # after each of the 3 batches
        assert gc.isenabled() is collecting

        def broken(self, is_batch_end, prepared):  # type: ignore[no-untyped-def]
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(importer._Import, "take", broken)
        with pytest.raises(RuntimeError, match="disk on fire"):
            run_import(world.db, mixed_lines(world), jobs=1)
        assert gc.isenabled() is collecting
    finally:
        (gc.enable if was else gc.disable)()
