"""Many OS processes append to one ledger at once (SQLite file and PostgreSQL): nothing forks.

The workers are real processes (``sys.executable -c``), each with its own engine. They sign
everything first, wait at a start line, then append many small batches as fast as they can,
so the appends contend for the log head. Afterwards the log must hold every statement exactly
once at indexes 0..n-1 with an unbroken prev chain, each batch in consecutive entries, and
pass the real `suyuan verify`. A second test signs checkpoints from two more processes while
the appends run: every stored checkpoint must be signed, match the stored tree, and be
consistent with every other.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from suyuan import canonical, crypto, ledger, merkle, note
from suyuan.ledger import GENESIS_HASH
from suyuan.storage import repo
from suyuan.storage.db import Database
from tests.helpers import ORIGIN, LedgerWorld, make_world, run_cli

pytestmark = pytest.mark.slow

PROCESSES = 4
BATCHES = 30
BATCH_SIZE = 8
SHARED_ACTOR = "market-dalian"  # every process also writes as this one actor

APPENDER = textwrap.dedent("""
    import json, sys, time
    from suyuan import crypto, ledger
    from suyuan.model import Statement, format_time, sign_statement, utcnow
    from suyuan.storage import repo
    from suyuan.storage.db import Database

    url, proc, spec = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    actors = [(name, crypto.SigningKey(bytes.fromhex(seed))) for name, seed in spec["actors"]]
    batches = []
    for b in range(spec["batches"]):
        batch = []
        for i in range(spec["batch_size"]):
            name, key = actors[(b + i) % len(actors)]
            statement = Statement(
                kind="note", actor=name, key_id=crypto.key_id(name, key.public_key).hex(),
                time=format_time(utcnow()), nonce=f"p{proc}-b{b}-s{i}",
                body={"text": f"process {proc} batch {b} item {i}"})
            batch.append(sign_statement(statement, key))
        batches.append(batch)
    db = Database(url)
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.time()
    indexes = []
    for b, batch in enumerate(batches):
        with db.writer() as session, session.begin():
            results = ledger.append(session, batch)
        for result in results:
            if result.error is not None:
                raise result.error
        indexes.append([result.index for result in results])
        if b in spec["await_checkpoint"]:
            # hold on (others keep appending) until a checkpoint covers this batch
            deadline = time.time() + 120
            while True:
                with db.reader() as session, session.begin():
                    latest = repo.latest_checkpoint(session)
                if latest is not None and latest.size > indexes[-1][-1]:
                    break
                if time.time() > deadline:
                    raise SystemExit(f"no checkpoint covered index {indexes[-1][-1]}")
                time.sleep(0.01)
    print(json.dumps({"started": started, "ended": time.time(), "indexes": indexes}))
""")

CHECKPOINTER = textwrap.dedent("""
    import json, pathlib, sys, time
    from suyuan import crypto, ledger
    from suyuan.storage.db import Database

    url, seed, stop = sys.argv[1], bytes.fromhex(sys.argv[2]), pathlib.Path(sys.argv[3])
    key = crypto.SigningKey(seed)
    db = Database(url)
    print("ready", flush=True)
    sys.stdin.readline()
    signed, attempts = [], 0
    while True:
        last = stop.exists()
        with db.writer() as session, session.begin():
            result = ledger.checkpoint(session, key)
        attempts += 1
        if result.is_new:
            signed.append([result.checkpoint.size, result.checkpoint.root_hash.hex()])
        if last:
            break
        time.sleep(0.005)
    print(json.dumps({"signed": signed, "attempts": attempts}))
""")


def start(script: str, *args: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=cwd,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def release(procs: list[subprocess.Popen[bytes]]) -> None:
    """Wait until every process is ready, then let them all go at once."""
    for proc in procs:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        if line != b"ready\n":
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"worker did not start: {line!r} {err.decode()}")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()


def finish(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    return json.loads(out.decode().splitlines()[-1])


def setup_world(database: Database) -> tuple[LedgerWorld, list[list[tuple[str, str]]]]:
    """Two own actors per process plus one actor every process writes as."""
    roles = {f"farm-{p}-{a}": "farm" for p in range(PROCESSES) for a in range(2)}
    world = make_world(database, actors={**roles, SHARED_ACTOR: "market"})
    per_process = [
        [(name, world.actors[name].key.seed.hex())
         for name in (f"farm-{p}-0", f"farm-{p}-1", SHARED_ACTOR)]
        for p in range(PROCESSES)
    ]
    return world, per_process


def start_appenders(url: str, per_process: list[list[tuple[str, str]]], cwd: Path,
                    await_checkpoint: tuple[int, ...] = ()) -> list[subprocess.Popen[bytes]]:
    """``await_checkpoint``: batches after which a worker waits for a checkpoint covering it."""
    return [
        start(APPENDER, url, str(p), json.dumps(
            {"actors": per_process[p], "batches": BATCHES, "batch_size": BATCH_SIZE,
             "await_checkpoint": list(await_checkpoint)}), cwd=cwd)
        for p in range(PROCESSES)
    ]


def check_log(database: Database, setup_size: int, reports: list[dict[str, Any]]) -> int:
    """The log after the race: size, indexes, chain, every statement exactly once."""
    appended = PROCESSES * BATCHES * BATCH_SIZE
    size = setup_size + appended
    with database.reader() as session, session.begin():
        assert ledger.size(session) == size
        rows = session.execute(
            text("SELECT idx, leaf, leaf_hash, prev, actor, nonce FROM entries ORDER BY idx")
        ).all()
    assert [int(r[0]) for r in rows] == list(range(size)), "gap or extra entry"

    prev = GENESIS_HASH
    nonces: list[tuple[str, str]] = []
    for idx, leaf, leaf_hash, stored_prev, actor, nonce in rows:
        leaf = bytes(leaf)
        index, _, prev_hex, _, _, statement = canonical.split_entry(leaf)
        assert index == idx
        assert prev_hex == prev.hex() and bytes(stored_prev) == prev, f"fork at entry {idx}"
        assert bytes(leaf_hash) == hashlib.sha256(b"\x00" + leaf).digest()
        parsed = canonical.loads(statement)
        assert (parsed["actor"], parsed["nonce"]) == (actor, nonce)
        nonces.append((actor, nonce))
        prev = bytes(leaf_hash)

    counts = Counter(nonces)
    assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1][:5]
    by_nonce = {nonce: idx for idx, (_, nonce) in enumerate(nonces)}
    expected = {f"p{p}-b{b}-s{i}" for p in range(PROCESSES) for b in range(BATCHES)
                for i in range(BATCH_SIZE)}
    assert expected <= set(by_nonce)
    assert len(set(by_nonce) - expected) == setup_size  # the registrations

    for p, report in enumerate(reports):
        assert len(report["indexes"]) == BATCHES
        for b, indexes in enumerate(report["indexes"]):
            # a batch is one transaction: consecutive entries, where the worker was told
            assert indexes == list(range(indexes[0], indexes[0] + BATCH_SIZE))
            assert [by_nonce[f"p{p}-b{b}-s{i}"] for i in range(BATCH_SIZE)] == indexes
    # the processes really ran at the same time
    assert max(r["started"] for r in reports) < min(r["ended"] for r in reports)
    return size


def assert_cli_verifies(url: str, cwd: Path, size: int, checkpoints: int) -> None:
    plain = run_cli("--db", url, "verify", cwd=cwd)
    assert plain.returncode == 0, plain.stderr.decode()
    assert plain.stdout.decode().startswith(f"OK: {size} entries")
    as_json = run_cli("--db", url, "verify", "--json", cwd=cwd)
    assert as_json.returncode == 0, as_json.stderr.decode()
    report = json.loads(as_json.stdout)
    assert (report["ok"], report["size"], report["checkpoints"]) == (True, size, checkpoints)


def test_concurrent_appenders_neither_fork_nor_lose_anything(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    world, per_process = setup_world(database)
    with database.reader() as session, session.begin():
        setup_size = ledger.size(session)
    procs = start_appenders(db_url, per_process, tmp_path)
    try:
        release(procs)
        reports = [finish(proc) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    size = check_log(database, setup_size, reports)
    assert_cli_verifies(db_url, tmp_path, size, checkpoints=0)


def test_checkpoints_signed_during_concurrent_appends_are_all_consistent(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    world, per_process = setup_world(database)
    with database.reader() as session, session.begin():
        setup_size = ledger.size(session)
    stop = tmp_path / "stop"
    # each worker waits, after its 10th and 20th batch, for a checkpoint covering it, so
    # at least two checkpoints fall strictly inside the appends however the scheduler runs
    appenders = start_appenders(db_url, per_process, tmp_path, await_checkpoint=(9, 19))
    signers = [start(CHECKPOINTER, db_url, world.log_key.seed.hex(), str(stop), cwd=tmp_path)
               for _ in range(2)]
    try:
        release(appenders + signers)
        reports = [finish(proc) for proc in appenders]
        stop.touch()
        outcomes = [finish(proc) for proc in signers]
    finally:
        stop.touch()  # on any failure too: the signers loop until it exists
        for proc in appenders + signers:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert all(o["attempts"] >= 2 for o in outcomes)
    signed = [o["signed"] for o in outcomes]
    size = check_log(database, setup_size, reports)

    claimed = [tuple(item) for items in signed for item in items]
    assert len(claimed) == len(set(claimed)), "two processes signed the same checkpoint"
    log_key = crypto.verifier_key(ORIGIN, world.log_key.public_key)
    with database.reader() as session, session.begin():
        rows = repo.all_checkpoints(session)
        stored = {int(row.size): bytes(row.root).hex() for row in rows}
        assert dict(claimed) == stored  # every signed checkpoint stored, nothing else
        assert max(stored) == size
        assert len([s for s in stored if setup_size < s < size]) >= 2, "none during appends"
        for row in rows:
            cp, _ = note.open_checkpoint(row.note, log_key, ORIGIN)
            assert (cp.size, cp.root_hash) == (row.size, bytes(row.root))
            assert cp.root_hash == ledger.root(session, cp.size)
        sizes = sorted(stored)
        for older, newer in zip(sizes, sizes[1:], strict=False):
            proof = ledger.consistency_proof(session, older, newer)
            merkle.verify_consistency(older, newer, proof, bytes.fromhex(stored[older]),
                                      bytes.fromhex(stored[newer]))
    assert_cli_verifies(db_url, tmp_path, size, checkpoints=len(stored))
