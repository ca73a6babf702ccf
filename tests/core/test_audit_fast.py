"""The audit's fast pass: alone, it passes a sound log; at anything else it steps aside, and the
reference pass names the first bad entry exactly as it always did.

The log here spans several worker ranges (of 64 or 256 entries) and levels of the tree above
them, holds a key rotation and revocation, statements bound to the log and not, bodies the
fast pass reads without a JSON parse and bodies it must parse (escapes, nesting, non-ASCII
keys), checkpoints and a witness cosignature; on a real SQLite file and on PostgreSQL.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from sqlalchemy import text

from suyuan import audit, canonical, crypto, ledger, note, witness
from suyuan.errors import VerificationError
from suyuan.model import SignedStatement, format_time, parse_signed_statement, utcnow
from suyuan.storage import plain, repo
from suyuan.storage.db import Database
from tests.core.test_tamper import attacker, flip, flip_column, get_leaf, set_leaf
from tests.helpers import (
    ORIGIN,
    Actor,
    LedgerWorld,
    interrupt_cli,
    make_signed,
    make_world,
    modules_loaded_by,
    run_cli,
)

SIZE = 700
ROTATED_AT = 300  # the cooperative's new key is added here, its old one revoked next
WITNESS = "witness.test/fast"


def build(database: Database, tmp_path: Path) -> LedgerWorld:
    world = make_world(database)
    coop, carrier = world.actors["coop-jinzhou"], world.actors["carrier-sf"]
    world.append_ok(make_signed(world.registrar, kind="actor_registered", body={
        "name": "lab-dalian", "role": "lab", "vkey": Actor("lab-dalian", coop.key).vkey,
        "info": {"认证": {"CMA": ["2021-01"], "n": 3}, "ascii": True}}))  # nested, non-ASCII
    bodies = [
        {"text": "樱桃采收 cherries picked", "lot": "JZ-1"},
        {"text": "two lines\nand a \"quote\" \\ backslash"},  # escapes: parsed, not matched
        {"text": "冷链 2°C"},
    ]
    batch = []
    while len(batch) + 4 < ROTATED_AT:
        actor = (coop, carrier)[len(batch) % 2]
        log = ORIGIN if len(batch) % 3 else None
        batch.append(make_signed(actor, body=bodies[len(batch) % 3], log=log))
    world.append_ok(*batch)
    new_coop = Actor(coop.name, crypto.SigningKey.generate())
    world.append_ok(make_signed(world.registrar, kind="key_added",
                                body={"actor": coop.name, "vkey": new_coop.vkey}))
    world.append_ok(make_signed(world.registrar, kind="key_revoked",
                                body={"actor": coop.name, "key_id": coop.key_id}))
    world.actors[coop.name] = new_coop
    batch = [make_signed((new_coop, carrier)[i % 2], body=bodies[i % 3], log=ORIGIN)
             for i in range(SIZE - ROTATED_AT - 2)]
    world.append_ok(*batch)
    witness_key = crypto.SigningKey.generate()
    with database.writer() as session, session.begin():
        repo.add_witness(session, WITNESS,
                         str(note.witness_verifier_key(WITNESS, witness_key.public_key)),
                         format_time(utcnow()))
        ledger.checkpoint(session, world.log_key)
    with database.writer() as session, session.begin():
        latest = repo.latest_checkpoint(session)
        stamp = int(time.time())
        cp, signature = witness.cosign(
            checkpoint_note=latest.note, log_key=ledger.log_vkey(session),
            origin=ledger.origin(session), name=WITNESS, key=witness_key,
            state_path=tmp_path / "witness.state",
            proof_for=lambda a, b: ledger.consistency_proof(session, a, b), timestamp=stamp)
        repo.add_cosignature(session, cp.size, WITNESS, stamp, signature.line())
    with database.reader() as session, session.begin():
        assert ledger.size(session) == SIZE
    return world


@pytest.fixture
def log(database: Database, tmp_path: Path) -> LedgerWorld:
    return build(database, tmp_path)


@pytest.fixture(params=["256-entry ranges", "tiny ranges", "tiny ranges, fed by a thread",
                        "tiny ranges, no hand-back area"])
def range_sizes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The ranges the processes get: as in production, or from 4 entries down to 1, so that
    these logs are cut into many ranges, several tree levels above them and a tail of small
    ones; with a task pipe that holds only two range numbers, so that the rest are written
    from a thread while the processes take them (as for a log of more than 134 million
    entries); and with no hand-back area (a mapping of more than the machine can give), so
    that this process checks every range alone."""
    if request.param != "256-entry ranges":
        monkeypatch.setattr(audit, "RANGE_MIN", 4)
    if request.param.endswith("fed by a thread"):
        monkeypatch.setattr(audit, "_pipe_room", lambda fd: 2 * audit._TASK.size)
    if request.param.endswith("no hand-back area"):
        monkeypatch.setattr(audit._Handback, "__init__", _no_memory)
    return request.param


def _no_memory(*_: object) -> None:
    raise OSError(12, "Cannot allocate memory")


@pytest.mark.parametrize("capacity", [0, 1, 5, 64, 100, 255, 256, 700])
def test_the_hand_back_area_returns_each_range_as_put_or_refuses_it(capacity: int) -> None:
    size = 700
    ranges = audit._ranges(size, 8, 1)  # 256 entries, then 64s, the last one short (60)
    assert {stop - start for start, stop, _ in ranges} == {256, 64, 60}
    handback = audit._Handback(capacity)
    try:
        kept = []
        for start, stop, bits in ranges:
            levels = [bytearray(os.urandom(32 * ((stop >> level) - (start >> level))))
                      for level in range(bits + 1) if (stop >> level) > (start >> level)]
            nonces = os.urandom(8 * (stop - start))
            assert handback.put(start, levels, nonces) == (stop <= capacity)
            if stop <= capacity:
                kept.append((start, stop, bits, levels, nonces))
        for start, stop, bits, levels, nonces in kept:  # nothing overwrote anything
            assert handback.take(start, stop, bits) == (list(map(bytes, levels)), nonces)
    finally:
        handback.close()


@pytest.fixture
def fast_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "_reference_audit", _refuse)


def _refuse(*_: object) -> None:
    raise AssertionError("the reference pass ran on a sound log")


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_the_fast_pass_alone_passes_a_sound_log_and_agrees_with_the_reference(
        log: LedgerWorld, jobs: int, range_sizes: str, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = audit._reference_audit(log.db, 1, None, None)
    assert reference.size == SIZE and reference.checkpoints == 1 == reference.cosignatures
    seen: list[int] = []
    monkeypatch.setattr(audit, "_reference_audit", _refuse)
    taken: list[int] = []  # the ranges the parent took from the hand-back area
    take = audit._Handback.take
    monkeypatch.setattr(audit._Handback, "take",
                        lambda self, start, *rest: taken.append(start) or take(self, start, *rest))
    report = audit.audit(log.db, jobs=jobs, progress=lambda done, _: seen.append(done))
    assert report == reference
    assert seen == sorted(seen) and seen[-1] == SIZE
    if jobs == 1 or range_sizes.endswith("no hand-back area"):
        assert not taken  # this process alone: nothing handed back by a worker


def _parent_slowed(monkeypatch: pytest.MonkeyPatch, marker: Path, *,
                   in_worker: Callable[[int], None] = lambda start: None) -> list[int]:
    """Make this process wait (up to a minute) until the forked worker has begun a range,
    then take 50 ms over each range it checks, so that the worker checks most of them;
    ``in_worker(start)`` runs in the worker before each of its ranges. Returns the starts
    of the ranges this process checked."""
    parent, mine = os.getpid(), []
    check = audit._check_range_or_raise

    def slowed(plan, start, stop, bits):  # type: ignore[no-untyped-def]
        if os.getpid() == parent:
            mine.append(start)
            deadline = time.monotonic() + 60
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)
        else:
            marker.touch()
            in_worker(start)
        return check(plan, start, stop, bits)

    monkeypatch.setattr(audit, "_check_range_or_raise", slowed)
    monkeypatch.setattr(audit, "RANGE_MIN", 16)
    return mine


def _fast_pass(database: Database, jobs: int = 2,
               progress: audit.Progress | None = None) -> audit.AuditReport:
    """The fast pass alone, reading as :func:`audit.audit` does (a SQLite file directly)."""
    path = plain.sqlite_path(database.url) if database.is_sqlite else None
    source = audit._Source(file=path, db=database)
    try:
        return audit._fast_audit(source, jobs, audit._Monotonic(progress), None)
    finally:
        source.close()


def test_the_worker_checks_what_this_process_does_not_and_hands_it_back(
        log: LedgerWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With this process slowed down, the worker takes range after range from the task pipe
    and hands each back; every range is checked once, by one of the two."""
    reference = audit._reference_audit(log.db, 1, None, None)
    mine = _parent_slowed(monkeypatch, tmp_path / "worker-began")
    theirs: list[int] = []
    take = audit._Handback.take
    monkeypatch.setattr(audit._Handback, "take",
                        lambda self, start, *rest: theirs.append(start) or take(self, start, *rest))
    assert _fast_pass(log.db) == reference
    starts = [start for start, _, _ in audit._ranges(SIZE, audit._range_bits(SIZE, 2), 2)]
    assert sorted(mine + theirs) == starts
    assert len(theirs) > len(mine) >= 1


def _exits(start: int) -> None:
    os._exit(3)


def _is_killed(start: int) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _raises(start: int) -> None:
    raise RuntimeError("disk on fire")


@pytest.mark.parametrize(("in_worker", "said"), [
    (_exits, "a worker stopped before it finished"),
    (_is_killed, "a worker stopped before it finished"),
    (_raises, r"entries \d+\.\.\d+: RuntimeError\('disk on fire'\)"),
], ids=["exits", "killed", "raises"])
def test_a_worker_that_stops_or_fails_is_a_doubt_and_the_reference_pass_decides(
        log: LedgerWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        in_worker: Callable[[int], None], said: str) -> None:
    reference = audit._reference_audit(log.db, 1, None, None)
    _parent_slowed(monkeypatch, tmp_path / "worker-began", in_worker=in_worker)
    with pytest.raises(audit._Doubt, match=said):
        _fast_pass(log.db)
    assert audit.audit(log.db, jobs=2) == reference  # through the reference pass


def test_left_early_the_workers_are_stopped_and_collected(
        log: LedgerWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A doubt (or Ctrl-C) in this process while a worker is still busy: the worker is
    stopped and its exit collected at once, not left to run out its ranges."""
    forked: list[int] = []
    fork = os.fork

    def recorded() -> int:
        pid = fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recorded)
    # The worker's ranges after entry 0 take it 30 s each: it is busy when this process,
    # with range 0 in hand, leaves.
    _parent_slowed(monkeypatch, tmp_path / "worker-began",
                   in_worker=lambda start: time.sleep(30) if start else None)

    def progress(done: int, total: int) -> None:
        raise RuntimeError("the caller gave up")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the caller gave up"):
        _fast_pass(log.db, progress=progress)
    assert time.monotonic() - started < 10
    assert len(forked) == 1
    with pytest.raises(ChildProcessError):  # collected already
        os.waitpid(forked[0], os.WNOHANG)


@pytest.mark.parametrize("outcome", ["checked", "doubted", "failed"])
@pytest.mark.parametrize("collecting", [True, False])
def test_the_collector_waits_during_a_range_and_is_as_it_was_after(
        outcome: str, collecting: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def check(*_: object) -> audit.RangeResult:
        seen.append(gc.isenabled())
        if outcome == "doubted":
            raise audit._Doubt("no")
        if outcome == "failed":
            raise OSError("disk")
        return 0, 1, [], b""

    monkeypatch.setattr(audit, "_check_range_or_raise", check)
    was = gc.isenabled()
    (gc.enable if collecting else gc.disable)()
    try:
        if outcome == "checked":
            audit._check_range(None, 0, 1, 0)  # type: ignore[arg-type]
        else:
            with pytest.raises(audit._Doubt):
                audit._check_range(None, 0, 1, 0)  # type: ignore[arg-type]
        assert seen == [False] and gc.isenabled() is collecting
    finally:
        (gc.enable if was else gc.disable)()


def test_an_audit_after_the_callers_own_writes_writes_nothing(
        sqlite_log: tuple[LedgerWorld, Path]) -> None:
    """The caller has just written through its database layer (its connection is still open,
    the write still in the WAL): the audit closes that connection before its workers fork,
    and the last connection to close a file in WAL mode copies the WAL back into it. The
    audit's own read-only connection is open meanwhile and closes last, so neither file
    changes."""
    world, path = sqlite_log
    with world.db.writer() as session, session.begin():
        session.execute(text("CREATE TABLE scratch (x)"))
        session.execute(text("DROP TABLE scratch"))
    wal = path.with_name(path.name + "-wal")
    before = path.read_bytes(), wal.read_bytes()
    assert before[1], "the write is not in the WAL: this test would prove nothing"
    assert audit.audit(world.db, jobs=2).size == SIZE
    assert (path.read_bytes(), wal.read_bytes()) == before


def test_when_a_worker_cannot_be_forked_nothing_is_left_open(
        log: LedgerWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second of three workers cannot be forked: the error comes out (the fast pass
    steps aside), the first worker is stopped, and no pipe is left open."""
    forked: list[int] = []
    fork = os.fork

    def fork_once() -> int:
        if forked:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        pid = fork()
        if pid:
            forked.append(pid)
        return pid

    pipes_before = _open_pipes()
    monkeypatch.setattr(os, "fork", fork_once)
    with pytest.raises(BlockingIOError):
        _fast_pass(log.db, jobs=3)
    monkeypatch.undo()
    assert len(forked) == 1
    with pytest.raises(ChildProcessError):  # collected
        os.waitpid(forked[0], os.WNOHANG)
    assert _open_pipes() == pipes_before


def _open_pipes() -> set[str]:
    """The pipes this process holds open (by their inode: a number may be reused)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # (the listing's own descriptor is gone already)
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("pipe:"):
                found.add(target)
    return found


@pytest.mark.parametrize("count", [0, 1, 2, 3, 1000, 20000])
def test_the_task_pipe_gives_each_range_number_once_then_ends(
        count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Written at once when they fit, by a thread when they do not (the pipe here holds 12
    bytes of them): either way every number comes out once, in order, then the end."""
    monkeypatch.setattr(audit, "_pipe_room", lambda fd: 12)
    tasks, feed = os.pipe()
    try:
        feeder = audit._feed(feed, count)
        os.close(feed)
        assert (feeder is not None) == (count > 3)
        taken = []
        while (number := audit._next_task(tasks)) is not None:
            taken.append(number)
        if feeder is not None:
            feeder.join()
    finally:
        os.close(tasks)
    assert taken == list(range(count))


def test_a_ctrl_c_while_workers_are_forked_waits_for_the_end_of_it() -> None:
    """Between a fork and the worker's pid being noted, a Ctrl-C would leave that worker
    unknown (never stopped) and could reach the worker itself before it ignores Ctrl-C:
    SIGINT is held there, and comes in as soon as the block ends."""
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with audit.interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # (a signal let in is handled at the next instruction)
            reached.append("the end of the block")
    assert reached == ["the end of the block"]
    with pytest.raises(KeyboardInterrupt):  # and outside such a block, at once
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        reached.append("past the signal")
    assert reached == ["the end of the block"]


def test_outside_the_main_thread_holding_ctrl_c_changes_nothing() -> None:
    """Only the main thread may set a signal handler (and only it is interrupted): from
    another thread the block runs as it is, and the handler stays the process's own."""
    handler = signal.getsignal(signal.SIGINT)
    ran, failed = [], []

    def in_a_thread() -> None:
        try:
            with audit.interrupts_held():
                ran.append(signal.getsignal(signal.SIGINT))
        except BaseException as exc:  # noqa: BLE001 (the test reports it)
            failed.append(exc)

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert (ran, failed) == ([handler], [])
    assert signal.getsignal(signal.SIGINT) is handler


def test_the_reports_are_read_whatever_pieces_they_come_in() -> None:
    """A worker's reports (range numbers, then that it finished, or its doubt) are read
    however the pipe cuts them: a number split across two reads, a doubt's message in
    pieces; a worker gone without a word is a doubt too."""
    task = audit._TASK
    # two workers: one finishes, its numbers cut mid-way; the other doubts, in pieces
    finished, into_finished = os.pipe()
    doubting, into_doubting = os.pipe()
    done: set[int] = set()
    reports = audit._Reports({finished: 1, doubting: 2}, done)
    try:
        numbers = task.pack(0) + task.pack(5) + task.pack(7)
        os.write(into_finished, numbers[:6])
        reports.read(wait=True)
        assert done == {0} and reports.busy
        os.write(into_finished, numbers[6:] + task.pack(audit._FINISHED))
        reports.read(wait=True)
        assert done == {0, 5, 7} and list(reports.open) == [doubting]
        said = task.pack(audit._DOUBTS) + "区间 3 的签名: no".encode()
        os.write(into_doubting, task.pack(9) + said[:3])
        reports.read(wait=True)
        assert done == {0, 5, 7, 9}
        os.write(into_doubting, said[3:9])

        def the_rest() -> None:  # while the reader waits for the end of the message
            time.sleep(0.05)
            os.write(into_doubting, said[9:])
            os.close(into_doubting)

        writer = threading.Thread(target=the_rest)
        writer.start()
        with pytest.raises(audit._Doubt, match="^区间 3 的签名: no$"):
            reports.read(wait=True)
        writer.join()
    finally:
        for fd in (finished, into_finished, doubting):
            os.close(fd)
    silent, into_silent = os.pipe()
    try:
        reports = audit._Reports({silent: 3}, set())
        os.write(into_silent, task.pack(1))
        os.close(into_silent)
        with pytest.raises(audit._Doubt, match="a worker stopped before it finished"):
            reports.read(wait=True)
            reports.read(wait=True)
    finally:
        os.close(silent)


def test_a_policy_is_checked_by_the_fast_pass_too(log: LedgerWorld, fast_only: None) -> None:
    with log.db.reader() as session, session.begin():
        trusted = ledger.policy(session)
    audit.audit(log.db, jobs=2, policy=trusted)
    other_key = crypto.verifier_key(ORIGIN, crypto.SigningKey.generate().public_key)
    other = note.Policy(log=other_key, origin=ORIGIN, witnesses=(), quorum=0)
    with pytest.raises(VerificationError, match="not the policy's log key"):
        audit.audit(log.db, jobs=2, policy=other)


def _tamper_leaf(index: int):
    def tamper(conn) -> None:
        leaf = get_leaf(conn, index)
        set_leaf(conn, index, flip(leaf, leaf.index(b'"text":"') + 9))
    return tamper


def _tamper_column(table: str, column: str, where: str, params: dict):
    return lambda conn: flip_column(conn, table, column, where, params)


# Faults at the edges of the workers' ranges (64 or 256 entries) and above them in the tree.
@pytest.mark.parametrize(("tamper", "index", "kind"), [
    (_tamper_leaf(255), 255, "BadSignature"),
    (_tamper_leaf(256), 256, "BadSignature"),
    (_tamper_leaf(SIZE - 1), SIZE - 1, "BadSignature"),
    (_tamper_column("entries", "prev", "idx = :i", {"i": 512}), 512, "ChainBroken"),
    (_tamper_column("entries", "leaf_hash", "idx = :i", {"i": 511}), 511, "ChainBroken"),
    (_tamper_column("nodes", "hash", "level = 8 AND idx = 1", {}), 256, "RootMismatch"),
    (_tamper_column("nodes", "hash", "level = 9 AND idx = 0", {}), 0, "RootMismatch"),
    (lambda conn: conn.execute(text("DELETE FROM entries WHERE idx = 256")), 256, "ChainBroken"),
    (lambda conn: conn.execute(text("UPDATE entries SET kind = 'note' WHERE idx = :i"),
                               {"i": ROTATED_AT}), ROTATED_AT, "VerificationError"),
], ids=["leaf-255", "leaf-256", "last-leaf", "prev-column-512", "hash-column-511",
        "node-level-8", "node-above-the-ranges", "entry-256-deleted", "registry-kind-hidden"])
def test_faults_at_range_edges_are_named_as_the_reference_pass_names_them(
        log: LedgerWorld, db_url: str, range_sizes: str, tamper, index: int, kind: str) -> None:
    with attacker(db_url) as conn:
        tamper(conn)
    with pytest.raises(VerificationError) as reference:
        audit._reference_audit(log.db, 1, None, None)
    for jobs in (1, 2):
        with pytest.raises(VerificationError) as caught:
            audit.audit(log.db, jobs=jobs)
        assert caught.value.index == index == reference.value.index
        assert type(caught.value).__name__ == kind == type(reference.value).__name__
        assert str(caught.value) == str(reference.value)


def test_a_replay_in_another_range_is_named(postgres_url: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The same statement a second time, hundreds of entries (and ranges) later, from a log
    that skipped its replay check and lost its unique constraint: only the parent, which
    sees the nonces of every range, can tell."""
    database = Database(postgres_url)
    database.upgrade()
    try:
        world = build(database, tmp_path)
        with database.writer() as session, session.begin():
            session.execute(text("ALTER TABLE entries DROP CONSTRAINT uq_entries_nonce_actor"))
            first = repo.leaf(session, 11)  # by the carrier, whose key stays valid
        monkeypatch.setattr(repo, "find_nonces", lambda session, keys: {})
        (again,) = world.append_ok(_signed_of(first))
        with pytest.raises(VerificationError, match="repeats the nonce of entry 11") as caught:
            audit.audit(database, jobs=2)
        assert caught.value.index == again == SIZE
    finally:
        database.dispose()


def _signed_of(leaf: bytes) -> SignedStatement:
    _, _, _, _, signature, statement = canonical.split_entry(leaf)
    return parse_signed_statement({"statement": canonical.loads(statement),
                                   "signature": signature})


def test_progress_never_goes_back_when_the_reference_pass_runs(log: LedgerWorld,
                                                                db_url: str) -> None:
    with attacker(db_url) as conn:
        _tamper_column("nodes", "hash", "level = 0 AND idx = :i", {"i": SIZE - 1})(conn)
    seen: list[int] = []
    with pytest.raises(VerificationError):
        audit.audit(log.db, jobs=2, progress=lambda done, _: seen.append(done))
    assert seen == sorted(set(seen)) and seen[-1] == SIZE


@pytest.mark.parametrize("size", [1, 2, 3, 255, 256, 257, 700, 8191, 8192, 20009, 1_000_003])
@pytest.mark.parametrize("jobs", [1, 2, 4])
def test_ranges_tile_the_log_and_their_levels_are_prefixes(size: int, jobs: int) -> None:
    ranges = audit._ranges(size, audit._range_bits(size, jobs), jobs)
    assert [start for start, _, _ in ranges] == [0] + [stop for _, stop, _ in ranges[:-1]]
    assert ranges[-1][1] == size
    for start, stop, bits in ranges:
        assert start % (1 << bits) == 0 and stop - start <= 1 << bits
        assert stop - start == 1 << bits or stop == size
    sizes = [1 << bits for _, _, bits in ranges]
    assert sizes == sorted(sizes, reverse=True)  # the short tasks last, the finest at the end
    assert sizes[-1] == audit.RANGE_MIN // 4 and sizes[0] <= audit.RANGE_MAX
    widths = audit._widths(size)
    covered = audit._covered(ranges, len(widths))
    assert covered[0] == size and all(c <= w for c, w in zip(covered, widths, strict=True))


# --- a ledger in a SQLite file, read with the standard library alone ------------------------


@pytest.fixture
def sqlite_log(tmp_path: Path) -> Iterator[tuple[LedgerWorld, Path]]:
    path = tmp_path / "ledger.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    world = build(database, tmp_path)
    yield world, path
    database.dispose()


@pytest.mark.parametrize("jobs", [1, 2])
def test_audit_file_vouches_for_a_sound_log_as_the_reference_pass_does(
        sqlite_log: tuple[LedgerWorld, Path], jobs: int, range_sizes: str) -> None:
    world, path = sqlite_log
    reference = audit._reference_audit(world.db, 1, None, None)
    seen: list[int] = []
    report = audit.audit_file(path, jobs=jobs, progress=lambda done, _: seen.append(done))
    assert report == reference
    assert seen == sorted(seen) and seen[-1] == SIZE


@pytest.mark.parametrize(("tamper", "index"), [
    (_tamper_leaf(256), 256),
    (_tamper_column("entries", "prev", "idx = :i", {"i": 512}), 512),
    (_tamper_column("nodes", "hash", "level = 9 AND idx = 0", {}), 0),
    (lambda conn: conn.execute(text("DELETE FROM entries WHERE idx = 256")), 256),
    (_tamper_column("actor_keys", "public_key", "actor = 'carrier-sf'", {}), None),
], ids=["leaf", "prev-column", "node-above-the-ranges", "entry-deleted", "key-table"])
def test_audit_file_leaves_every_entry_fault_to_the_reference_pass(
        sqlite_log: tuple[LedgerWorld, Path], tamper, index: int | None) -> None:
    """It never names a fault in the entries, the tree or the registry tables itself: it
    says it does not vouch (Undecided), and the reference pass names the first bad entry."""
    world, path = sqlite_log
    with attacker(f"sqlite:///{path}") as conn:
        tamper(conn)
    with pytest.raises(audit.Undecided):
        audit.audit_file(path, jobs=2)
    with pytest.raises(VerificationError) as caught:
        audit.audit(world.db, jobs=2, fast=False)
    if index is not None:
        assert caught.value.index == index


def test_audit_file_raises_checkpoint_and_policy_faults_itself(
        sqlite_log: tuple[LedgerWorld, Path]) -> None:
    world, path = sqlite_log
    with world.db.reader() as session, session.begin():
        trusted = ledger.policy(session)
    assert audit.audit_file(path, jobs=2, policy=trusted) is not None
    other_key = crypto.verifier_key(ORIGIN, crypto.SigningKey.generate().public_key)
    other = note.Policy(log=other_key, origin=ORIGIN, witnesses=(), quorum=0)
    with pytest.raises(VerificationError, match="not the policy's log key"):
        audit.audit_file(path, jobs=2, policy=other)
    with attacker(f"sqlite:///{path}") as conn:
        conn.execute(text("UPDATE cosignatures SET timestamp = timestamp + 1"))
    with pytest.raises(VerificationError, match=f"checkpoint {SIZE}: cosignature") as caught:
        audit.audit_file(path, jobs=2)
    assert caught.value.checkpoint == SIZE


def test_audit_file_declines_what_is_not_a_current_ledger(
        sqlite_log: tuple[LedgerWorld, Path], tmp_path: Path) -> None:
    """None (take the usual way, which says what is wrong) for a missing file, a file that is
    not SQLite, a SQLite file without a ledger, and a ledger of another schema revision;
    and it creates nothing."""
    world, path = sqlite_log
    missing = tmp_path / "nowhere" / "ledger.db"
    assert audit.audit_file(missing) is None and not missing.parent.exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    assert audit.audit_file(junk) is None
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert audit.audit_file(empty) is None
    with attacker(f"sqlite:///{path}") as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    assert audit.audit_file(path) is None


def test_verify_of_a_sound_sqlite_ledger_loads_no_database_layer(
        sqlite_log: tuple[LedgerWorld, Path], tmp_path: Path) -> None:
    """`suyuan verify` on a SQLite file: the fast pass reads it with sqlite3, so the command
    never loads SQLAlchemy for a log that holds; a faulty one is still named (the reference
    pass, through the database layer: the tamper tests run the command on every fault)."""
    _, path = sqlite_log
    code, loaded, printed = modules_loaded_by("--db", f"sqlite:///{path}", "verify", "--json",
                                              cwd=tmp_path)
    assert (code, loaded) == (0, []), printed
    verdict = json.loads(printed)
    assert verdict["ok"] is True and verdict["size"] == SIZE
    with attacker(f"sqlite:///{path}") as conn:
        _tamper_leaf(256)(conn)
    failed = run_cli("--db", f"sqlite:///{path}", "verify", "--json", cwd=tmp_path)
    assert failed.returncode == 1 and json.loads(failed.stdout)["index"] == 256
    assert failed.stderr.decode().startswith("suyuan: error: verification FAILED at entry 256")


@pytest.mark.slow
def test_ctrl_c_stops_a_verify_cleanly(tmp_path: Path) -> None:
    """Ctrl-C reaches the command and its workers (one process group): it stops at once
    with one line, in either pass, and leaves no process behind."""
    path = tmp_path / "ledger.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    try:
        world = make_world(database)
        coop = world.actors["coop-jinzhou"]
        for start in range(0, 24_000, 4_000):
            world.append_ok(*[make_signed(coop, body={"text": f"box {i}"})
                              for i in range(start, start + 4_000)])
        with database.reader() as session, session.begin():
            last = ledger.size(session) - 1
    finally:
        database.dispose()
    url = f"sqlite:///{path}"

    def timed_verify() -> tuple[float, subprocess.CompletedProcess[bytes]]:
        started = time.perf_counter()
        done = run_cli("--db", url, "verify", "--jobs", "2", cwd=tmp_path)
        return time.perf_counter() - started, done

    def interrupted_at(delay: float) -> None:
        status, err = interrupt_cli("--db", url, "verify", "--jobs", "2", cwd=tmp_path,
                                    after=delay)
        assert status == 130 and err.strip() == "interrupted", err

    # How long each pass takes here: the fast pass alone on the sound log; on the log with its
    # last entry broken, the fast pass (which doubts at the end) and then the reference pass.
    fast, sound = timed_verify()
    assert sound.returncode == 0, sound.stderr
    interrupted_at(fast / 2)  # in the fast pass
    with attacker(url) as conn:
        _tamper_leaf(last)(conn)
    both, failed = timed_verify()
    assert failed.returncode == 1 and f"at entry {last}:".encode() in failed.stderr
    assert both > 1.5 * fast  # the reference pass takes a while: there is a middle to hit
    interrupted_at((fast + both) / 2)  # in the reference pass
    again = run_cli("--db", url, "verify", cwd=tmp_path)  # and the log is as it was
    assert again.returncode == 1 and f"at entry {last}:".encode() in again.stderr
