"""What the `suyuan` command says when it refuses: one line on stderr, the right exit status."""

from __future__ import annotations

import json
import socket
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from tests.core.test_cli import Cli
from tests.helpers import cli_in_python, run_cli


@pytest.fixture
def ready(tmp_path: Path, sqlite_url: str) -> Cli:
    """A ledger in a SQLite file with actors coop and carrier (what is refused here is
    refused the same way on PostgreSQL)."""
    cli = Cli(tmp_path, sqlite_url)
    cli("init", "--origin", "ledger.test/errors")
    for name, role in (("coop", "cooperative"), ("carrier", "carrier")):
        cli("keys", "new", name)
        cli("actors", "add", name, "--role", role)
    return cli


def _error(result: subprocess.CompletedProcess[bytes]) -> str:
    """The one error line of a finished command (without its newline)."""
    err = result.stderr.decode()
    assert err.startswith("suyuan: error: ") and err.count("\n") == 1, err
    return err[len("suyuan: error: "):-1]


@pytest.mark.parametrize(("args", "message"), [
    (["verify", "--jobs", "0"],
     "Invalid value for '--jobs': 0 is not in the range 1<=x<=256. (see: suyuan verify --help)"),
    (["import", "missing.json"],
     "Invalid value for '[SOURCE]': 'missing.json': No such file or directory "
     "(see: suyuan import --help)"),
    (["keys", "new", "bad name/../x"],
     "Invalid value for NAME: actor must be 1-64 letters, digits, '.', '_' or '-', starting "
     "with a letter or digit (see: suyuan keys new --help)"),
    (["actors", "add"], "Missing argument 'NAME'. (see: suyuan actors add --help)"),
    (["no-such-command"], "No such command 'no-such-command'. (see: suyuan --help)"),
])
def test_usage_errors_are_one_line_with_exit_2(tmp_path: Path, args: list[str],
                                               message: str) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert _error(result) == message
    assert result.stdout == b""


def test_help_is_still_help(tmp_path: Path) -> None:
    result = run_cli("verify", "--help", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith(b"Usage: suyuan verify [OPTIONS]")
    result = run_cli("keys", cwd=tmp_path)  # a group without its command shows its help
    assert result.stderr.startswith(b"Usage: suyuan keys [OPTIONS] COMMAND [ARGS]...\n")
    assert b"Commands:" in result.stderr


def test_an_unreachable_database_server_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        result = run_cli("--db", f"postgresql://postgres@127.0.0.1:{port}/test", "verify",
                         cwd=tmp_path)
    assert result.returncode == 1
    message = _error(result)
    assert message.startswith("cannot open the database: ") and "Connection refused" in message
    assert "\t" not in message


def test_revoking_an_actor_whose_keys_are_revoked_already_is_refused(ready: Cli) -> None:
    ready("actors", "revoke", "carrier")
    _, err = ready("actors", "revoke", "carrier", code=1)
    assert err == "suyuan: error: carrier has no active key: its keys are revoked already\n"


def test_an_index_out_of_range_negative_or_not_is_no_entry(ready: Cli) -> None:
    size = json.loads(ready("log", "info", "--json")[0])["size"]
    for args in (["entry", "-1"], ["entry", "--raw", "-1"], ["proof", "-1"],
                 ["entry", str(size)], ["entry", str(2**64)]):
        _, err = ready(*args, code=1)
        assert err == f"suyuan: error: no entry {args[-1]}: the log has {size} entries\n"
    ready("checkpoint")
    ready("proof", str(size - 1))
    _, err = ready("proof", str(size), code=1)
    assert err == f"suyuan: error: no entry {size}: the log has {size} entries\n"
    ready("append", "--as", "coop", input='{"kind":"note","body":{"text":"later"}}')
    _, err = ready("proof", str(size), code=1)  # there, but not in the latest checkpoint
    assert f"entry {size} is not covered by the latest checkpoint (size {size})" in err


def test_witness_errors_are_clear(ready: Cli) -> None:
    ready("checkpoint")
    _, err = ready("witness", "cosign", "--as", "nobody", code=1)
    assert err.startswith("suyuan: error: no witness key 'nobody' in ")
    ready("witness", "new", "w2")
    state = ready.keys / "witnesses" / "w2.state"
    state.write_text("[]\n")
    _, err = ready("witness", "cosign", "--as", "w2", code=1)
    assert err.startswith(f"suyuan: error: witness state {state} is damaged: ")
    state.unlink()
    ready("witness", "cosign", "--as", "w2")


def test_a_policy_that_is_not_utf8_is_named_as_such(ready: Cli) -> None:
    work = ready.workdir
    ready("checkpoint")
    (work / "policy").write_text(ready("policy")[0])
    ready("proof", "0", "-o", "p.tlog-proof")
    (work / "leaf").write_bytes(run_cli("--db", ready.db_url, "entry", "0", "--raw", cwd=work,
                                        check=True).stdout)
    (work / "binary").write_bytes(b"log \x9f\x00\xff")
    for policy, proof in (("binary", "p.tlog-proof"), ("policy", "binary")):
        result = run_cli("verify-proof", proof, "--policy", policy, "--leaf", "leaf", cwd=work)
        assert result.returncode == 1
        assert _error(result) == ("policy: not UTF-8 text (byte 0x9f at position 4)"
                                  if policy == "binary" else
                                  "proof does not verify: proof is not valid UTF-8")
    _, err = ready("verify", "--policy", "binary", code=1)
    assert err == "suyuan: error: policy: not UTF-8 text (byte 0x9f at position 4)\n"
    assert run_cli("verify-proof", "p.tlog-proof", "--policy", "policy", "--leaf", "leaf",
                   cwd=work).returncode == 0


# --- init ------------------------------------------------------------------------------------


def test_init_with_the_keys_of_another_log_says_so_and_changes_nothing(
        tmp_path: Path, sqlite_url: str) -> None:
    Cli(tmp_path, sqlite_url)("init", "--origin", "ledger.test/first")
    keys_before = sorted(p.name for p in (tmp_path / "keys").rglob("*"))
    other = Cli(tmp_path, f"sqlite:///{tmp_path / 'second' / 'ledger.db'}")
    _, err = other("init", "--origin", "ledger.test/second", "--registrar", "clerk", code=1)
    assert err == (f"suyuan: error: {tmp_path / 'keys' / 'log.key'} is the key of the log "
                   "ledger.test/first, not of ledger.test/second: use another --keys folder\n")
    _, err = other("init", "--origin", "ledger.test/first", "--registrar", "clerk", code=1,
                   passphrase="not the passphrase")
    assert "wrong passphrase" in err
    assert not (tmp_path / "second").exists()
    assert sorted(p.name for p in (tmp_path / "keys").rglob("*")) == keys_before


def test_a_schema_newer_than_this_version_is_named(tmp_path: Path, sqlite_url: str) -> None:
    future = Cli(tmp_path, sqlite_url)
    future("init", "--origin", "ledger.test/future")
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    conn.close()
    for args in (["log", "info"], ["verify"], ["init", "--origin", "ledger.test/future"]):
        _, err = future(*args, code=1)
        assert "schema is at revision 0099_from_the_future, which suyuan " in err, err
        assert "a newer version probably made it" in err


# --- keystore folders ------------------------------------------------------------------------


def test_keystore_folders_are_private_whatever_the_umask(tmp_path: Path, passphrase: str
                                                        ) -> None:
    keys = tmp_path / "made" / "keys"
    result = cli_in_python("import os\nos.umask(0)\n", "--keys", str(keys), "keys", "new", "u0",
                           cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    for folder in (tmp_path / "made", keys, keys / "actors"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((keys / "actors" / "u0.key").stat().st_mode) == 0o600
