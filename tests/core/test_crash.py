"""`kill -9` in the middle of `suyuan import`: the log verifies and a rerun completes it once.

A large NDJSON file of pre-signed statements is imported by the real command in batches of
500. The test watches the database and, once some batches are committed, SIGKILLs the import
(and its worker processes). The log must then be exactly the setup entries plus the first
whole batches of the file, in file order, and pass `suyuan verify`; running the same import
again must append the rest, reject nothing and duplicate nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from suyuan import canonical, crypto
from suyuan.model import Statement, format_time, sign_statement, utcnow
from suyuan.storage.db import Database
from tests.helpers import Actor, LedgerWorld, make_signed, make_world, run_cli

pytestmark = pytest.mark.slow

LINES = 30_000
BATCH = 500
FARMS = [Actor(f"farm-{n}", crypto.SigningKey(bytes([n + 1]) * 32)) for n in range(4)]
SUYUAN = str(Path(sys.executable).with_name("suyuan"))


@pytest.fixture(scope="module")
def ndjson(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str]]]:
    """LINES signed statements by the FARMS actors, and their (actor, nonce) in file order."""
    path = tmp_path_factory.mktemp("import") / "statements.ndjson"
    now = format_time(utcnow())
    keys = [(farm.name, farm.key, farm.key_id) for farm in FARMS]
    order = []
    with path.open("w") as out:
        for n in range(LINES):
            name, key, key_id = keys[n % len(keys)]
            nonce = f"crash-{n:06d}"
            signed = sign_statement(
                Statement(kind="note", actor=name, key_id=key_id, time=now, nonce=nonce,
                          body={"text": f"冷链 reading {n}: 3.{n % 10} °C", "lot": f"L{n // 97}"}),
                key,
            )
            out.write(signed.to_line() + "\n")
            order.append((name, nonce))
    return path, order


def setup_ledger(database: Database) -> LedgerWorld:
    world = make_world(database, actors={})
    for farm in FARMS:
        world.append_ok(make_signed(world.registrar, kind="actor_registered",
                                    body={"name": farm.name, "role": "farm", "vkey": farm.vkey}))
        world.actors[farm.name] = farm
    return world


def log_size(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(text("SELECT size FROM log_head WHERE id = 1")).scalar_one())


def statements(database: Database) -> list[tuple[str, str]]:
    """(actor, nonce) of every entry in index order, read from the leaves themselves."""
    with database.engine.connect() as conn:
        rows = conn.execute(text("SELECT idx, leaf FROM entries ORDER BY idx")).all()
    assert [int(r[0]) for r in rows] == list(range(len(rows)))
    found = []
    for _, leaf in rows:
        parsed = canonical.loads(canonical.split_entry(bytes(leaf))[5])
        found.append((parsed["actor"], parsed["nonce"]))
    return found


def kill_import_after(url: str, source: Path, database: Database, setup: int, batches: int,
                      cwd: Path) -> None:
    """Start the import and SIGKILL it (and its workers) once ``batches`` are committed."""
    log = (cwd / "import.out").open("wb")
    proc = subprocess.Popen(
        [SUYUAN, "--db", url, "import", str(source), "--batch-size", str(BATCH), "--json"],
        cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while log_size(database) < setup + batches * BATCH:
            assert proc.poll() is None, f"import ended first: {(cwd / 'import.out').read_text()}"
            assert time.monotonic() < deadline, "import made no progress"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the pool workers it forked
        except ProcessLookupError:
            pass
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("batches", [1, 36], ids=["after-1-batch", "after-36-batches"])
def test_import_killed_mid_way_verifies_and_a_rerun_completes_it_once(
    database: Database, db_url: str, tmp_path: Path,
    ndjson: tuple[Path, list[tuple[str, str]]], batches: int,
) -> None:
    source, order = ndjson
    setup_ledger(database)
    setup = log_size(database)
    registrations = statements(database)

    kill_import_after(db_url, source, database, setup, batches, tmp_path)

    size = log_size(database)
    committed = size - setup
    assert batches * BATCH <= committed < LINES, "the kill did not land mid-import"
    assert committed % BATCH == 0, f"{committed} entries: a batch was half written"
    assert statements(database) == registrations + order[:committed]  # file order, no gap
    verify = run_cli("--db", db_url, "verify", cwd=tmp_path)
    assert verify.returncode == 0, verify.stderr.decode()
    assert verify.stdout.decode().startswith(f"OK: {size} entries")

    rerun = run_cli("--db", db_url, "import", str(source), "--batch-size", str(BATCH), "--json",
                    cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr.decode()
    summary = json.loads(rerun.stdout)
    assert (summary["appended"], summary["duplicates"], summary["rejected"]) == (
        LINES - committed, committed, 0)
    assert summary["first_index"] == size

    final = statements(database)
    assert len(final) == log_size(database) == setup + LINES
    assert final == registrations + order
    assert max(Counter(final).values()) == 1
    verify = run_cli("--db", db_url, "verify", "--json", cwd=tmp_path)
    assert verify.returncode == 0, verify.stderr.decode()
    report = json.loads(verify.stdout)
    assert (report["ok"], report["size"]) == (True, setup + LINES)


def _running(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (an orphan that ended may stay a zombie, unreaped)."""
    running = set()
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):  # ended and reaped
            continue
        if stat.rpartition(")")[2].split()[0] not in ("Z", "X"):
            running.add(pid)
    return running


def _group(pgid: int) -> set[int]:
    """The processes of process group ``pgid``."""
    members = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(stat.rpartition(")")[2].split()[2]) == pgid:
                members.add(int(entry.name))
    return members


def test_workers_of_an_import_killed_alone_end_quietly(
    database: Database, db_url: str, tmp_path: Path,
    ndjson: tuple[Path, list[tuple[str, str]]],
) -> None:
    """`kill -9` of the import's own process (not of its group): its workers, left with
    results nobody reads, end without writing a traceback to the stderr they share with it."""
    source, _ = ndjson
    setup_ledger(database)
    setup = log_size(database)
    err_path = tmp_path / "import.err"
    with err_path.open("wb") as err:
        proc = subprocess.Popen(
            [SUYUAN, "--db", db_url, "import", str(source), "--batch-size", str(BATCH),
             "--jobs", "3"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
        )
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while log_size(database) < setup + BATCH:
            assert proc.poll() is None, f"import ended first: {err_path.read_text()}"
            assert time.monotonic() < deadline, "import made no progress"
            time.sleep(0.002)
        workers = _group(proc.pid) - {proc.pid}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while _running(workers) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _running(workers), "a worker outlived the killed import"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert len(workers) == 3
    assert log_size(database) < setup + LINES, "the kill did not land mid-import"
    assert "Traceback" not in err_path.read_text(), err_path.read_text()
