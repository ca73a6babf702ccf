"""The import's early start: the key table read without the database layer, workers set going
before it loads, and a command line that loads SQLAlchemy only for commands that use it."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.pool
import signal
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from suyuan import crypto, importer, ledger, prepare
from suyuan.storage import repo
from suyuan.storage.db import Database
from tests.helpers import (
    Actor,
    LedgerWorld,
    cli_in_python,
    interrupt_cli,
    make_signed,
    make_world,
    modules_loaded_by,
    run_cli,
)


@pytest.fixture
def sqlite_world(tmp_path: Path) -> LedgerWorld:
    db = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    db.upgrade()
    yield make_world(db)
    db.dispose()


def test_the_key_table_read_without_sqlalchemy_is_the_registrys(
        sqlite_world: LedgerWorld, tmp_path: Path) -> None:
    with sqlite_world.db.reader() as session, session.begin():
        expected = repo.load_registry(session).public_keys()
    assert len(expected) == 3  # registrar, cooperative, carrier
    assert prepare.sqlite_keys(f"sqlite:///{tmp_path / 'ledger.db'}") == expected
    assert prepare.sqlite_keys(f"sqlite+pysqlite:///{tmp_path / 'ledger.db'}") == expected


def test_anything_but_a_ledger_in_a_sqlite_file_gives_no_key_table(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, but long enough to have a header" * 10)
    for url in ("postgresql://postgres@127.0.0.1:5432/test", "sqlite://", "sqlite:///:memory:",
                f"sqlite:///{tmp_path / 'missing.db'}", f"sqlite:///{empty}",
                f"sqlite:///{text}", f"sqlite:///{empty}?mode=ro", f"sqlite:///{tmp_path}"):
        assert prepare.sqlite_keys(url) is None, url
    assert not (tmp_path / "missing.db").exists()  # nothing created on the way


def test_a_stale_key_snapshot_costs_time_not_correctness(sqlite_world: LedgerWorld) -> None:
    """Workers given no keys verify nothing; the ledger verifies every line itself and still
    appends the good ones and refuses the forged one."""
    coop = sqlite_world.actors["coop-jinzhou"]
    good = [make_signed(coop, body={"text": f"box {i}"}) for i in range(5)]
    forged = json.loads(make_signed(coop).to_line())
    forged["statement"]["body"]["text"] = "changed after signing"
    lines = [s.to_line() for s in good[:3]] + [json.dumps(forged)] + [
        s.to_line() for s in good[3:]]
    numbered = prepare.read_lines(line.encode() for line in lines)
    pipeline = prepare.Pipeline(numbered, {}, jobs=2, batch_size=2)
    pipeline.fill()  # as the command does, before the database is opened
    summary = importer.import_lines(sqlite_world.db, numbered, pipeline=pipeline)
    assert summary.appended == 5
    assert [(e.line, e.reason) for e in summary.errors] == [(4, "bad_signature")]
    assert pipeline.pool is None  # closed by the import


def test_a_key_registered_after_the_snapshot_is_still_checked(
        sqlite_world: LedgerWorld) -> None:
    """A worker holding the table from before a key existed leaves that key's lines to the
    ledger, which knows it by then."""
    snapshot = prepare.sqlite_keys(str(sqlite_world.db.url))
    assert snapshot is not None
    lab = Actor("lab-dalian", crypto.SigningKey.generate())
    sqlite_world.append_ok(make_signed(sqlite_world.registrar, kind="actor_registered",
                                       body={"name": lab.name, "role": "lab",
                                             "vkey": lab.vkey}))
    lines = [make_signed(lab, body={"text": "residue test passed"}).to_line(),
             make_signed(lab, key=crypto.SigningKey.generate()).to_line()]
    numbered = prepare.read_lines(line.encode() for line in lines)
    pipeline = prepare.Pipeline(numbered, snapshot, jobs=2)
    pipeline.fill()
    summary = importer.import_lines(sqlite_world.db, numbered, pipeline=pipeline)
    assert summary.appended == 1
    assert [(e.line, e.reason) for e in summary.errors] == [(2, "bad_signature")]
    with sqlite_world.db.reader() as session, session.begin():
        assert ledger.size(session) == 5


def test_help_and_offline_commands_do_not_load_the_database_layer(tmp_path: Path) -> None:
    assert modules_loaded_by("--help", cwd=tmp_path)[:2] == (0, [])
    assert modules_loaded_by("kinds", cwd=tmp_path)[:2] == (0, [])
    # nor the process pools (a command that starts workers loads them then)
    heavy = ("sqlalchemy", "alembic", "flask", "multiprocessing")
    assert modules_loaded_by("--help", cwd=tmp_path, roots=heavy)[:2] == (0, [])
    code, loaded, _ = modules_loaded_by("verify", "--help", cwd=tmp_path, roots=heavy)
    assert (code, loaded) == (0, [])
    code, loaded, _ = modules_loaded_by("--db", f"sqlite:///{tmp_path / 'x.db'}", "log", "vkey",
                                      cwd=tmp_path)
    assert code == 1 and "sqlalchemy" in loaded  # a command that needs it still gets it


def test_commands_start_without_the_gs1_table(tmp_path: Path) -> None:
    """The event kinds check GTINs with the GS1 keys alone: the AI table and the Digital Link
    syntax (milliseconds to build) load only for what uses them (EPCIS, Digital Link, the
    web pages), whose own tests run them."""
    for args in (("--help",), ("kinds", "harvest"), ("verify", "--help")):
        code, loaded, printed = modules_loaded_by(*args, cwd=tmp_path, roots=("suyuan",))
        assert code == 0, printed
        assert "suyuan.interop.gs1_keys" in loaded or args[-1] == "--help"
        assert "suyuan.interop.gs1" not in loaded


def test_import_into_an_outdated_ledger_stops_cleanly_after_starting_its_workers(
        sqlite_world: LedgerWorld, tmp_path: Path) -> None:
    """The key table is there (so the workers start), but the schema is not the newest: one
    clear line, exit 1, nothing appended."""
    path = tmp_path / "ledger.db"
    coop = sqlite_world.actors["coop-jinzhou"]
    (tmp_path / "in.ndjson").write_text(
        "".join(make_signed(coop, body={"text": f"{i}"}).to_line() + "\n" for i in range(3000)))
    with sqlite_world.db.reader() as session, session.begin():
        size = ledger.size(session)
    sqlite_world.db.dispose()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0003'")
    # the command as the console script runs it, telling on stdout when its workers start
    result = cli_in_python("from suyuan import prepare\n"
                           "start = prepare.Pipeline.__init__\n"
                           "def told(self, *a, **k):\n"
                           "    print('workers started', flush=True)\n"
                           "    start(self, *a, **k)\n"
                           "prepare.Pipeline.__init__ = told",
                           "--db", f"sqlite:///{path}", "import", "in.ndjson", "--jobs", "2",
                           cwd=tmp_path)
    err = result.stderr.decode()
    assert result.stdout.decode() == "workers started\n"  # the early path was taken
    assert result.returncode == 1 and "Traceback" not in err
    assert err.startswith("suyuan: error: no ledger here") and err.count("\n") == 1
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM entries").fetchone() == (size,)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.15, 0.6], ids=["during-start-up", "during-import"])
def test_ctrl_c_stops_an_import_cleanly_and_a_rerun_completes_it(
        sqlite_world: LedgerWorld, tmp_path: Path, delay: float) -> None:
    """Ctrl-C reaches the command and its workers (one process group): it stops with one
    line, whether the workers started before the database layer loaded or while appending;
    the log verifies, and running the same import again appends the rest, nothing twice."""
    coop = sqlite_world.actors["coop-jinzhou"]
    count = 24_000
    (tmp_path / "in.ndjson").write_text("".join(
        make_signed(coop, body={"text": f"box {i}"}).to_line() + "\n" for i in range(count)))
    with sqlite_world.db.reader() as session, session.begin():
        size = ledger.size(session)
    sqlite_world.db.dispose()
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    status, text = interrupt_cli("--db", url, "import", "in.ndjson", "--jobs", "2",
                                 "--batch-size", "500", cwd=tmp_path, after=delay)
    if status == 0:
        pytest.skip("the import finished before the interruption")  # a very fast machine
    assert "Traceback" not in text and text.strip().count("\n") == 0, text  # one line
    assert status == 130 and text.strip() == "interrupted"
    assert run_cli("--db", url, "verify", cwd=tmp_path).returncode == 0
    again = run_cli("--db", url, "import", "in.ndjson", "--json", cwd=tmp_path)
    summary = json.loads(again.stdout)
    assert again.returncode == 0 and summary["appended"] + summary["duplicates"] == count
    with sqlite3.connect(tmp_path / "ledger.db") as connection:
        assert connection.execute("SELECT count(*) FROM entries").fetchone() == (size + count,)


# Presses Ctrl-C (SIGINT to this process) the moment the command's modules start loading
# suyuan.events, as a slow start on a busy machine lets a real Ctrl-C do.
_CTRL_C_WHILE_LOADING = (
    "import os, signal, sys\n"
    "class Press:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'suyuan.events':\n"
    "            os.kill(os.getpid(), signal.SIGINT)\n"
    "sys.meta_path.insert(0, Press())\n")


def test_ctrl_c_while_the_command_is_still_loading_is_one_line(tmp_path: Path) -> None:
    result = cli_in_python(_CTRL_C_WHILE_LOADING, "kinds", cwd=tmp_path)
    assert (result.returncode, result.stderr.decode(), result.stdout) == (130, "interrupted\n", b"")
    # started from the command's own module instead, the same Ctrl-C is a traceback: the
    # console script must start from suyuan.__main__
    bare = subprocess.run([sys.executable, "-c", _CTRL_C_WHILE_LOADING +
                           "from suyuan.cli import main\nmain(['kinds'])\n"],
                          cwd=tmp_path, capture_output=True, timeout=120)
    assert bare.returncode == -signal.SIGINT and b"Traceback" in bare.stderr
    (script,) = metadata.entry_points(group="console_scripts", name="suyuan")
    assert script.value == "suyuan.__main__:main"


def test_python_m_suyuan_is_the_command(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "suyuan", "kinds"], cwd=tmp_path,
                            capture_output=True, timeout=120)
    assert result.returncode == 0 and result.stdout == run_cli("kinds", cwd=tmp_path).stdout
    assert b"harvest" in result.stdout


def _large_result(_: int) -> bytes:
    return bytes(8 << 20)  # 8 MB: written through the result pipe 64 KB at a time


def _nothing() -> None:
    pass


def _maintenance_loops(pool: multiprocessing.pool.Pool, counter: list[int]) -> int:
    counter[0] = 0
    try:
        assert pool.map(_large_result, range(8), chunksize=1) == [bytes(8 << 20)] * 8
    finally:
        pool.close()
        pool.join()
    return counter[0]


def test_the_workers_pool_does_not_spin_while_results_come_in(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The stock pool's worker-maintenance thread loops for as long as a result is in the
    pipe unread; the import's and the audit's pool wakes only when there is something to do
    (a few times per pool, not per result)."""
    counter = [0]
    maintain = multiprocessing.pool.Pool._maintain_pool

    def counted(*args: object) -> None:
        counter[0] += 1
        maintain(*args)

    monkeypatch.setattr(multiprocessing.pool.Pool, "_maintain_pool", staticmethod(counted))
    ours = _maintenance_loops(prepare.fork_pool(2, _nothing), counter)
    stock = _maintenance_loops(multiprocessing.get_context("fork").Pool(2), counter)
    assert ours <= 4, ours
    assert stock > 4 * ours, (stock, ours)  # what the override is for
